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
    "BATCH_TAG_PREFIX",
    "BatchLine",
    "BatchLineError",
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
    """A batch line that does not describe a job: bad JSON, unknown kind or key, bad value."""


# -- parsing one line ---------------------------------------------------------------


@attrs.frozen
class _Signature:
    input_key: str
    keywords: Mapping[str, tuple[type[WireEnum], ...]]
    """Each keyword argument, with the enums its value may name."""


def _signature(builder: Callable[..., CreateJobRequest]) -> _Signature:
    hints = typing.get_type_hints(builder)
    params = list(inspect.signature(builder).parameters.values())
    keywords = {
        p.name: tuple(
            t
            for t in typing.get_args(hints[p.name]) or (hints[p.name],)
            if isinstance(t, type) and issubclass(t, WireEnum)
        )
        for p in params[1:]
        if p.name != "custom_id"
    }
    return _Signature(params[0].name, keywords)


_SIGNATURES = {kind: _signature(builder) for kind, builder in BATCH_KINDS.items()}


def _input(value: Any, key: str) -> str | Source | Input:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        if set(value) == {"content_id", "path"}:
            return Source(content_id=value["content_id"], path=value["path"])
        if len(value) == 1 and next(iter(value)) in ("url", "source_data"):
            return Input(**value)
    raise BatchLineError(
        f"{key} must be a URL, {{'content_id': ..., 'path': ...}}, {{'url': ...}} "
        f"or {{'source_data': ...}}, got {value!r}"
    )


def _enum_value(key: str, value: Any, enums: tuple[type[WireEnum], ...]) -> Any:
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
            raise BatchLineError(f"{key}: {exc}") from None
    raise BatchLineError(f"{key} must be a {enum_type.__name__} name or number, got {value!r}")


def parse_batch_line(text: str, *, custom_id: str | None = None) -> CreateJobRequest:
    """The request a batch line describes, under ``custom_id``; ``BatchLineError`` if none."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BatchLineError(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BatchLineError(f"expected a JSON object, got {type(data).__name__}")
    kind = data.pop("kind", None)
    signature = _SIGNATURES.get(kind) if isinstance(kind, str) else None
    if signature is None:
        raise BatchLineError(f"unknown kind {kind!r} (choose from {', '.join(BATCH_KINDS)})")
    if signature.input_key not in data:
        raise BatchLineError(f"{kind} needs {signature.input_key!r} (its input)")
    raw_input = data.pop(signature.input_key)
    if kind == "singing_training" and isinstance(raw_input, list):
        inputs: Any = [_input(item, signature.input_key) for item in raw_input]
    else:
        inputs = _input(raw_input, signature.input_key)
    if "custom_id" in data:
        raise BatchLineError("custom_id is set by the batch (its tag); remove it from the line")
    unknown = sorted(set(data) - set(signature.keywords))
    if unknown:
        allowed = ", ".join(signature.keywords)
        raise BatchLineError(f"unknown key(s) {', '.join(unknown)} for {kind} (allowed: {allowed})")
    kwargs = {k: _enum_value(k, v, signature.keywords[k]) for k, v in data.items()}
    try:
        return BATCH_KINDS[kind](inputs, custom_id=custom_id, **kwargs)
    except RequestValidationError as exc:
        raise BatchLineError(str(exc)) from None
    except TypeError as exc:  # a required keyword argument is missing
        raise BatchLineError(str(exc).replace("_request()", "")) from None


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
            kind: str | None = None
            try:
                data = json.loads(text)
                kind = data.get("kind") if isinstance(data, dict) else None
                request = parse_batch_line(text, custom_id=custom_id)
            except BatchLineError as exc:
                lines.append(BatchLine(number, kind if isinstance(kind, str) else None, None, exc))
            except ValueError as exc:
                error = BatchLineError(f"invalid JSON: {exc}")
                lines.append(BatchLine(number, None, None, error))
            else:
                lines.append(BatchLine(number, kind, request))
    return lines


def tagged(line: BatchLine, tag: str) -> BatchLine:
    if line.request is None:
        return line
    return attrs.evolve(line, request=line.request.with_custom_id(tag))
