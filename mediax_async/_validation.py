"""Construction-time checks for the values a user builds.

Checks run when a user builds a model. They do not run while the converter
builds models from the service's answers: a server that returns a shape this
release would refuse to send (a new capability, a longer name) must still
parse, so ``lenient()`` switches the checks off for the current context only
(a ``ContextVar``, so other tasks and threads keep validating).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import attrs

from ._enums import WireEnum
from ._exceptions import RequestValidationError

__all__ = [
    "MODEL_NAME_PATTERN",
    "at_most_chars",
    "callback_url",
    "checked",
    "enum_member",
    "fail",
    "http_url",
    "int_range",
    "is_instance",
    "is_lenient",
    "lenient",
    "model_name",
    "non_empty_string",
    "shorter_than",
]

MODEL_NAME_PATTERN = re.compile(r"[A-Za-z0-9_]{1,63}")

_lenient: ContextVar[bool] = ContextVar("mediax_async_lenient", default=False)


@contextmanager
def lenient() -> Iterator[None]:
    """Skip construction checks in this context (used when parsing answers)."""
    token = _lenient.set(True)
    try:
        yield
    finally:
        _lenient.reset(token)


def is_lenient() -> bool:
    """Whether construction checks are off in this context."""
    return _lenient.get()


def checked(
    check: Callable[[Any], str | None],
) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """Wrap ``check(value) -> problem or None`` as an attrs validator naming its field."""

    def validator(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None or _lenient.get():
            return
        problem = check(value)
        if problem is not None:
            raise RequestValidationError(attribute.name, problem)

    return validator


def int_range(low: int, high: int) -> Callable[[Any], str | None]:
    """A check that an integer lies in ``low..high``."""

    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be an integer from {low} to {high}, got {value!r}"
        if not low <= value <= high:
            return f"must be from {low} to {high}, got {value}"
        return None

    return check


def shorter_than(limit: int) -> Callable[[Any], str | None]:
    """A check that a string has fewer than ``limit`` characters."""

    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return f"must be a string, got {type(value).__name__}"
        if len(value) >= limit:
            return f"must be shorter than {limit} characters, got {len(value)}"
        return None

    return check


def at_most_chars(limit: int) -> Callable[[Any], str | None]:
    """A check that a string has at most ``limit`` characters."""

    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return f"must be a string, got {type(value).__name__}"
        if len(value) > limit:
            return f"must be at most {limit} characters, got {len(value)}"
        return None

    return check


def non_empty_string(value: Any) -> str | None:
    """A check that a value is a non-empty string."""
    if not isinstance(value, str) or not value:
        return f"must be a non-empty string, got {value!r}"
    return None


def callback_url(value: Any) -> str | None:
    """A check of a callback URL: ``http://`` or ``https://``, a host, a valid port, no spaces.

    The service POSTs the finished job there; a URL it cannot call would only
    make the callback silently never arrive.
    """
    return http_url(value)


def http_url(value: Any) -> str | None:
    """A check of a URL to send to: ``http://`` or ``https://``, a host, a port 1-65535, no spaces.

    Also the client's base URL: a URL no request can reach is a configuration
    error when the client is made, not a network error at its first request.
    """
    if not isinstance(value, str) or not value:
        return f"must be a non-empty string, got {value!r}"
    shown = value if len(value) <= 80 else value[:79] + "…"
    if any(char.isspace() for char in value):
        return f"must be a URL without spaces, got {shown!r}"
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https"):
        return f"must be an http:// or https:// URL, got {shown!r}"
    try:
        port = parts.port
    except ValueError:
        port = -1
    if not parts.hostname:
        return f"must name a host, got {shown!r}"
    if port is not None and not 0 < port <= 65535:
        return f"must have a port from 1 to 65535, got {shown!r}"
    return None


def model_name(value: Any) -> str | None:
    """A check of a singing model name: letters, digits and ``_``, under 64 characters."""
    if not isinstance(value, str) or MODEL_NAME_PATTERN.fullmatch(value) is None:
        return f"must be 1 to 63 characters of letters, digits and underscores, got {value!r}"
    return None


def is_instance(kind: type[Any] | tuple[type[Any], ...]) -> Callable[[Any], str | None]:
    """A check of a value's type (enum values are checked by the enum itself)."""
    names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)

    def check(value: Any) -> str | None:
        if not isinstance(value, kind):
            return f"must be {names}, got {type(value).__name__}"
        return None

    return check


def enum_member(enum_type: type[WireEnum]) -> Callable[[Any], str | None]:
    """A check that a value is a documented member of ``enum_type``."""

    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be a {enum_type.__name__}, got {value!r}"
        if isinstance(value, WireEnum) and not isinstance(value, enum_type):
            # Another capability's enum: HummingOutputType.MP3 is 2, which is MP4 here.
            return f"must be a {enum_type.__name__}, got {value!r}"
        member = enum_type(value)
        if not member.is_known:
            choices = ", ".join(f"{m.name} ({m.value})" for m in enum_type)
            return f"must be one of {choices}, got {value}"
        return None

    return check


def fail(field: str, message: str) -> RequestValidationError:
    """The error for a rule that spans several fields, named by ``field``."""
    return RequestValidationError(field, message)
