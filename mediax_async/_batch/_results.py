"""The results file of a batch: a header, then one whole, flushed record per line."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

import attrs

from .._enums import State
from .._exceptions import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    RateLimitError,
    RequestValidationError,
    ServerError,
)
from .._models import Job
from ._lines import BATCH_TAG_PREFIX, BatchLineError

__all__ = [
    "BatchFileError",
    "LineResult",
    "ResultsFile",
    "default_results_path",
    "new_batch_tag",
]


class BatchFileError(ConfigurationError):
    """A results file that cannot be used: not a results file, or another batch's."""


def new_batch_tag() -> str:
    """A fresh batch tag."""
    return BATCH_TAG_PREFIX + secrets.token_hex(8)


def default_results_path(source: Path) -> Path:
    """Where results go when no path is given: ``jobs.jsonl`` -> ``jobs.results.jsonl``."""
    return source.with_name(f"{source.stem}.results.jsonl")


def _retryable(exc: BaseException) -> bool:
    """Whether running the batch again may give this line a better outcome."""
    if isinstance(exc, (BatchLineError, RequestValidationError)):
        return False
    if isinstance(exc, APIError):
        return isinstance(exc, (AuthenticationError, RateLimitError, ServerError))
    return True


@attrs.frozen(kw_only=True)
class LineResult:
    """The outcome of one batch line, as its results record says."""

    line: int
    kind: str | None = None
    job_id: str | None = None
    state: str | None = None
    files: tuple[Mapping[str, Any], ...] = ()
    model_name: str | None = None
    error: Mapping[str, Any] | None = None

    @property
    def finished(self) -> bool:
        """Whether a rerun leaves this line alone (its job ended, or it cannot succeed)."""
        if self.state in ("COMPLETED", "ERROR", "CANCELED"):
            return True
        return self.error is not None and not self.error.get("retryable", True)

    @property
    def completed(self) -> bool:
        """Whether the line's job ended COMPLETED."""
        return self.state == "COMPLETED"

    @classmethod
    def of_job(cls, line: int, kind: str | None, job: Job) -> LineResult:
        """The record of a line whose job ended."""
        error = None
        if job.state != State.COMPLETED:
            name = "JobFailedError" if job.state == State.ERROR else "JobCanceledError"
            message = f"job {job.id} ended {job.state.name}"
            error = {"type": name, "message": message, "retryable": False}
        return cls(
            line=line,
            kind=kind,
            job_id=job.id,
            state=job.state.name,
            files=tuple({"content_id": f.content_id, "path": f.path} for f in job.output_files()),
            model_name=job.trained_model_name,
            error=error,
        )

    @classmethod
    def of_error(
        cls, line: int, kind: str | None, exc: BaseException, job: Job | None = None
    ) -> LineResult:
        """The record of a line that failed with ``exc`` (before or after its job was made)."""
        message = str(exc) or type(exc).__name__
        return cls(
            line=line,
            kind=kind,
            job_id=job.id if job is not None else getattr(exc, "job_id", None),
            state=job.state.name if job is not None else None,
            error={"type": type(exc).__name__, "message": message, "retryable": _retryable(exc)},
        )

    def to_json(self) -> dict[str, Any]:
        """The record as JSON-able data."""
        record: dict[str, Any] = {
            "line": self.line,
            "kind": self.kind,
            "job_id": self.job_id,
            "state": self.state,
            "files": [dict(f) for f in self.files],
        }
        if self.model_name is not None:
            record["model_name"] = self.model_name
        record["error"] = dict(self.error) if self.error is not None else None
        return record

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LineResult:
        """A record read back from a results file."""
        return cls(
            line=int(data["line"]),
            kind=data.get("kind"),
            job_id=data.get("job_id"),
            state=data.get("state"),
            files=tuple(data.get("files") or ()),
            model_name=data.get("model_name"),
            error=data.get("error"),
        )


class ResultsFile:
    """A batch's results file, opened for appending whole, flushed records.

    ``open()`` starts a new file (a header with a fresh tag) or takes up an
    old one: its finished records are kept (the last one per line), the rest
    dropped, in a rewrite that replaces the file atomically.
    """

    def __init__(self, path: Path, tag: str, finished: Mapping[int, LineResult]) -> None:
        self.path = path
        self.tag = tag
        self.finished = dict(finished)
        """The lines already finished when the file was opened, by line number."""
        self.resumed = False
        """Whether the file existed: an earlier run of this batch may have created jobs."""
        self._file: TextIO | None = None

    @classmethod
    def open(cls, path: Path, source: str) -> ResultsFile:
        """Open ``path`` for the batch read from the file named ``source``."""
        tag: str | None = None
        finished: dict[int, LineResult] = {}
        resumed = path.exists() and path.stat().st_size > 0
        if resumed:
            tag, finished = _read_results(path, source)
        results = cls(path, tag or new_batch_tag(), finished)
        results.resumed = resumed
        results._rewrite(source)
        results._file = path.open("a", encoding="utf-8")
        return results

    def _rewrite(self, source: str) -> None:
        temporary = self.path.with_name(self.path.name + ".tmp")
        with temporary.open("w", encoding="utf-8") as out:
            out.write(json.dumps({"batch": self.tag, "source": source}) + "\n")
            for number in sorted(self.finished):
                out.write(json.dumps(self.finished[number].to_json()) + "\n")
        os.replace(temporary, self.path)

    def write(self, result: LineResult) -> None:
        """Append one record, whole, and flush it."""
        if self._file is None:
            raise ValueError("the results file is closed")
        self._file.write(json.dumps(result.to_json()) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None


def _read_results(path: Path, source: str) -> tuple[str, dict[int, LineResult]]:
    with path.open(encoding="utf-8") as lines:
        try:
            header = json.loads(next(lines))
        except ValueError:
            header = None
        if not isinstance(header, dict) or not isinstance(header.get("batch"), str):
            raise BatchFileError(f"{path} is not a batch results file (no header line)")
        if header.get("source") != source:
            raise BatchFileError(
                f"{path} holds the results of {header.get('source')!r}, not {source!r}"
            )
        finished: dict[int, LineResult] = {}
        for text in lines:
            try:
                result = LineResult.from_json(json.loads(text))
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a crash: the line runs again
            if result.finished:
                finished[result.line] = result
            else:
                finished.pop(result.line, None)
    return header["batch"], finished
