"""What every HTTP backend shares: the interface, and the errors it raises.

A backend only sends bytes and returns an ``Answer`` (status, headers and
body bytes, decoded and bounded by ``max_response_bytes``). Above every
backend the ``Transport`` bounds each attempt with a deadline, and
``_calls`` builds bodies, parses answers, logs, retries and reconciles
CreateJob. A failure is raised typed: a
``TransportError`` saying whether the request may have been sent, a
``ConfigurationError`` for a bad URL, a ``ResponseError`` for an answer too
long; every message passes the ``Redactor`` first.
"""

from __future__ import annotations

from typing import Protocol

from ._exceptions import ResponseError, TransportError
from ._protocol import Answer
from ._redact import Redactor

__all__ = ["Backend", "decode_failed", "describe", "too_large"]


class Backend(Protocol):
    """Posts one request body for an action and returns the whole answer."""

    async def post(self, action: str, content: bytes) -> Answer:
        """Send ``content`` to ``action``'s URL; the answer, or a typed error."""
        ...

    async def aclose(self) -> None:
        """Close what this backend opened."""
        ...


def describe(redactor: Redactor, exc: BaseException) -> str:
    """``Name: text`` of a library's exception, with the secret taken out."""
    detail = str(exc)
    name = type(exc).__name__
    return redactor(f"{name}: {detail}" if detail else name)


def too_large(action: str, status: int, limit: int) -> ResponseError:
    """The error for an answer longer than ``max_response_bytes`` once decoded."""
    return ResponseError(
        f"the {action} answer is over max_response_bytes "
        f"({limit} bytes once decompressed); not read further",
        status_code=status,
        action=action,
    )


def decode_failed(action: str, encoding: str, exc: BaseException) -> TransportError:
    """The error for an answer its ``Content-Encoding`` does not decode."""
    return TransportError(
        f"{action} failed: the {encoding} answer cannot be decoded: {exc}",
        action=action,
        sent=True,
    )
