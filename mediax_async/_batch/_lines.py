"""Batch lines: one JSON object per job, parsed into a ``CreateJobRequest``. Pure."""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from .._builders import (
    humming_request,
    image_to_music_request,
    separation_request,
    singing_request,
    singing_training_request,
)
from .._enums import SwitchOption, WireEnum
from .._exceptions import RequestValidationError
from .._models import CreateJobRequest, Input, Source

__all__ = [
    "BATCH_KINDS",
    "BATCH_KIND_SPECS",
    "BATCH_TAG_PREFIX",
    "BatchLine",
    "BatchLineError",
    "KindSpec",
    "parse_batch_line",
    "read_batch_file",
    "tagged",
]

BATCH_KINDS: Mapping[str, Callable[..., CreateJobRequest]] = {
    "image_to_music": image_to_music_request,
    "humming": humming_request,
    "singing": singing_request,
    "singing_training": singing_training_request,
    "separation": separation_request,
}
"""The ``kind`` of a batch line, and the builder that makes its request."""

BATCH_TAG_PREFIX = "mxb-"
"""Prefix of batch tags (the ``custom_id`` every job of a batch shares)."""


class BatchLineError(ValueError):
    """A batch line that does not describe a job: bad JSON, unknown kind or key, bad value.

    ``problem`` says which, in a few words (``invalid JSON``, ``not a JSON
    object``, ``unknown kind``, ``missing key``, ``unknown key``, ``invalid
    value``); ``kind`` is the line's kind when it names a known one.
    """

    def __init__(self, message: str, *, problem: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.problem = problem
        self.kind = kind

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_line_error, (str(self), self.problem, self.kind))


def _rebuild_line_error(message: str, problem: str, kind: str | None) -> BatchLineError:
    return BatchLineError(message, problem=problem, kind=kind)


# -- what each kind takes -----------------------------------------------------------


@attrs.frozen
class KindSpec:
    """What a batch line of one kind holds: its input key and its builder's keyword arguments."""

    kind: str
    input_key: str
    """The key of the line's input (a URL, ``{"content_id", "path"}``, ...)."""
    required: tuple[str, ...]
    """Keys a line of this kind must have, besides its input."""
    optional: tuple[str, ...]
    enums: Mapping[str, tuple[type[WireEnum], ...]]
    """Each key whose value names an enum member, with the enums it may name."""

    @property
    def keywords(self) -> tuple[str, ...]:
        """Every key besides the input, required ones first."""
        return (*self.required, *self.optional)


def _spec(kind: str, builder: Callable[..., CreateJobRequest]) -> KindSpec:
    hints = typing.get_type_hints(builder)
    params = list(inspect.signature(builder).parameters.values())
    keywords = [p for p in params[1:] if p.name != "custom_id"]
    enums = {
        p.name: tuple(
            t
            for t in typing.get_args(hints[p.name]) or (hints[p.name],)
            if isinstance(t, type) and issubclass(t, WireEnum)
        )
        for p in keywords
    }
    return KindSpec(
        kind=kind,
        input_key=params[0].name,
        required=tuple(p.name for p in keywords if p.default is inspect.Parameter.empty),
        optional=tuple(p.name for p in keywords if p.default is not inspect.Parameter.empty),
        enums={name: found for name, found in enums.items() if found},
    )


BATCH_KIND_SPECS: Mapping[str, KindSpec] = {
    kind: _spec(kind, builder) for kind, builder in BATCH_KINDS.items()
}
"""What a line of each kind holds (for help texts and checks)."""


# -- parsing one line ---------------------------------------------------------------


def _input(value: Any, key: str, kind: str) -> str | Source | Input:
    try:
        if isinstance(value, str):
            return value
        if isinstance(value, Mapping):
            if set(value) == {"content_id", "path"}:
                return Source(content_id=value["content_id"], path=value["path"])
            if len(value) == 1 and next(iter(value)) in ("url", "source_data"):
                return Input(**value)
    except RequestValidationError as exc:
        raise BatchLineError(
            f"invalid value: {key}.{exc}", problem="invalid value", kind=kind
        ) from None
    raise BatchLineError(
        f"invalid value: {key} must be a URL, {{'content_id': ..., 'path': ...}}, "
        f"{{'url': ...}} or {{'source_data': ...}}, got {_short_repr(value)}",
        problem="invalid value",
        kind=kind,
    )


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _enum_value(kind: str, key: str, value: Any, enums: tuple[type[WireEnum], ...]) -> Any:
    if not enums or isinstance(value, WireEnum):
        return value
    if isinstance(value, bool) and SwitchOption in enums:
        return value
    enum_type = enums[0]
    if isinstance(value, int) and not isinstance(value, bool):
        return enum_type(value)
    if isinstance(value, str):
        try:
            return enum_type.parse_name(value)
        except ValueError as exc:
            raise BatchLineError(
                f"invalid value: {key}: {exc}", problem="invalid value", kind=kind
            ) from None
    raise BatchLineError(
        f"invalid value: {key} must be a {enum_type.__name__} name or number, "
        f"got {_short_repr(value)}",
        problem="invalid value",
        kind=kind,
    )


def _document(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BatchLineError(f"invalid JSON: {exc}", problem="invalid JSON") from None
    if not isinstance(data, dict):
        raise BatchLineError(
            f"expected a JSON object, got {type(data).__name__}", problem="not a JSON object"
        )
    return data


def parse_batch_line(text: str, *, custom_id: str | None = None) -> CreateJobRequest:
    """The request a batch line describes, under ``custom_id``; ``BatchLineError`` if none."""
    data = _document(text)
    kind = data.pop("kind", None)
    spec = BATCH_KIND_SPECS.get(kind) if isinstance(kind, str) else None
    if spec is None:
        raise BatchLineError(
            f"unknown kind {_short_repr(kind)} (choose from {', '.join(BATCH_KINDS)})",
            problem="unknown kind",
        )
    assert isinstance(kind, str)
    if spec.input_key not in data:
        raise BatchLineError(
            f"{kind} needs {spec.input_key!r} (its input)", problem="missing key", kind=kind
        )
    raw_input = data.pop(spec.input_key)
    if kind == "singing_training" and isinstance(raw_input, list):
        inputs: Any = [_input(item, spec.input_key, kind) for item in raw_input]
    else:
        inputs = _input(raw_input, spec.input_key, kind)
    if "custom_id" in data:
        raise BatchLineError(
            "custom_id is set by the batch (its tag); remove it from the line",
            problem="unknown key",
            kind=kind,
        )
    unknown = sorted(set(data) - set(spec.keywords))
    if unknown:
        raise BatchLineError(
            f"unknown key(s) {', '.join(unknown)} for {kind} (allowed: {', '.join(spec.keywords)})",
            problem="unknown key",
            kind=kind,
        )
    missing = [key for key in spec.required if key not in data]
    if missing:
        raise BatchLineError(
            f"{kind} needs {', '.join(repr(key) for key in missing)}",
            problem="missing key",
            kind=kind,
        )
    kwargs = {k: _enum_value(kind, k, v, spec.enums.get(k, ())) for k, v in data.items()}
    try:
        return BATCH_KINDS[kind](inputs, custom_id=custom_id, **kwargs)
    except RequestValidationError as exc:
        raise BatchLineError(f"invalid value: {exc}", problem="invalid value", kind=kind) from None


@attrs.frozen
class BatchLine:
    """One non-blank line of a batch file: its request, or why it has none."""

    number: int
    kind: str | None
    request: CreateJobRequest | None = None
    error: BatchLineError | None = None


def read_batch_file(path: Path, *, custom_id: str | None) -> list[BatchLine]:
    """Every non-blank line of a batch file (numbered from 1), parsed under ``custom_id``."""
    lines = []
    with path.open(encoding="utf-8") as source:
        for number, text in enumerate(source, start=1):
            if not text.strip():
                continue
            try:
                request = parse_batch_line(text, custom_id=custom_id)
            except BatchLineError as exc:
                lines.append(BatchLine(number, exc.kind, None, exc))
            else:
                lines.append(BatchLine(number, _kind_of(text), request))
    return lines


def _kind_of(text: str) -> str | None:
    kind = json.loads(text).get("kind")
    return kind if isinstance(kind, str) else None


def tagged(line: BatchLine, tag: str) -> BatchLine:
    """``line`` with its request under the batch's tag."""
    if line.request is None:
        return line
    return attrs.evolve(line, request=line.request.with_custom_id(tag))
