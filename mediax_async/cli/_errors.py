"""What an error that ends a command looks like: its exit code and its one line. Pure."""

from __future__ import annotations

import re
from collections.abc import Sequence

from .._exceptions import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    JobError,
    MediaXError,
    RequestValidationError,
    ResponseError,
)
from ._parser import EXIT_CONFIG, EXIT_JOB_FAILED, EXIT_SERVICE, EXIT_USAGE

__all__ = ["describe", "exit_code_for", "few", "shorten", "shorten_values", "summary"]

_LONG_VALUE = re.compile(r"\S{61,}")
_VALUE_CHARS = 60
"""A run of characters without a space longer than this is shortened in the middle."""
_LINE_CHARS = 400
"""An error line longer than this is shortened in the middle."""
_EXCERPT_CHARS = 100


def exit_code_for(exc: BaseException) -> int:
    """The exit code for an error that ended a command.

    The library's own errors are matched first: ``WaitTimeoutError`` is also a
    ``TimeoutError`` (an ``OSError``), and a wait that ran out of time is a
    service outcome (4), not a usage error.
    """
    if isinstance(exc, (ConfigurationError, AuthenticationError)):
        return EXIT_CONFIG
    if isinstance(exc, JobError):
        return EXIT_JOB_FAILED
    if isinstance(exc, RequestValidationError):
        return EXIT_USAGE
    if isinstance(exc, MediaXError):
        return EXIT_SERVICE
    if isinstance(exc, (OSError, ValueError)):  # a missing input file, a bad value
        return EXIT_USAGE
    return EXIT_SERVICE


def shorten(text: str, limit: int, *, head_share: float = 2 / 3) -> str:
    """``text``, or its start and end around ``…`` when it is longer than ``limit``.

    ``head_share`` of what is kept comes from the start (a path keeps more of
    its end, the file name, with a small share).
    """
    if len(text) <= limit:
        return text
    if limit < 2:
        return "…"[:limit]
    head = int((limit - 1) * head_share)
    tail = limit - 1 - head
    return text[:head] + "…" + (text[-tail:] if tail else "")


def shorten_values(text: str, *, value_chars: int = _VALUE_CHARS) -> str:
    """``text`` with each long run of characters without a space shortened in the middle."""
    return _LONG_VALUE.sub(lambda m: shorten(m.group(0), value_chars), text)


def few(ids: Sequence[str], shown: int = 3) -> str:
    """A few of ``ids`` and how many more: ``a, b, c and 7 more``."""
    listed = ", ".join(ids[:shown])
    rest = len(ids) - shown
    return f"{listed} and {rest} more" if rest > 0 else listed


def _exchange(exc: APIError | ResponseError) -> str:
    """An error answer in one line: code, message, where, and the body only if it adds to them."""
    text = f"[{exc.code}] {exc.message}" if isinstance(exc, APIError) and exc.code else exc.message
    details = []
    if exc.action:
        details.append(f"action={exc.action}")
    if exc.status_code is not None:
        details.append(f"status={exc.status_code}")
    if exc.request_id:
        details.append(f"request_id={exc.request_id}")
    if details:
        text += f" ({', '.join(details)})"
    excerpt = exc.body_excerpt
    told = [part for part in (exc.message, getattr(exc, "code", None)) if part]
    if excerpt and not any(part in excerpt for part in told):
        text += f"; body: {shorten(excerpt, _EXCERPT_CHARS)}"
    return text


def summary(exc: BaseException) -> str:
    """An error in a few words, without ``describe``'s lead-in (inside another message)."""
    if isinstance(exc, (APIError, ResponseError)):
        return shorten(shorten_values(" ".join(_exchange(exc).split())), _LINE_CHARS)
    return describe(exc)


def describe(exc: BaseException) -> str:
    """One line saying what went wrong, without repeating itself, long values shortened."""
    if isinstance(exc, RequestValidationError):
        text = f"invalid request: {exc}"
    elif isinstance(exc, AuthenticationError):
        text = f"credentials rejected: {_exchange(exc)}"
    elif isinstance(exc, APIError):
        text = f"the service answered with an error: {_exchange(exc)}"
    elif isinstance(exc, ResponseError):
        text = _exchange(exc)
    elif isinstance(exc, MediaXError):
        text = str(exc) or type(exc).__name__
    elif isinstance(exc, OSError) and exc.strerror and exc.filename:
        text = f"{exc.strerror}: {exc.filename}"
    else:
        text = str(exc) or type(exc).__name__
    text = " ".join(text.split())  # one line, whatever the service put in its message
    return shorten(shorten_values(text), _LINE_CHARS)
