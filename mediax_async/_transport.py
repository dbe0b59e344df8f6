"""One attempt through an HTTP backend, under a total deadline; what a failure means.

A backend (``_http_httpx``, ``_http_aiohttp``) only posts bytes and returns
an ``Answer`` (status, headers, bytes), turning its library's failures into
a ``TransportError`` (or a ``ConfigurationError`` for a bad URL), redacted.
The transport bounds each attempt with a total deadline (the libraries' own
timeouts are per read, so a trickling server could otherwise hold a call
forever). It neither parses nor retries: that is the layer above
(``_calls``), which the answer goes back up to. ``is_transient``,
``is_ambiguous`` and ``classify_failure`` say what a failure means, for
that layer, for CreateJob reconciliation and for a waiter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import anyio
import httpx

from ._exceptions import (
    AuthenticationError,
    RateLimitError,
    ResponseError,
    ServerError,
    TransportError,
)
from ._http_common import Backend
from ._protocol import ACTION_PATHS, Answer
from ._redact import Redactor
from ._source import Failure, FailureKind

__all__ = [
    "Transport",
    "classify_failure",
    "is_ambiguous",
    "is_transient",
    "logger",
]

logger = logging.getLogger("mediax_async")


def _deadline(seconds: float) -> contextlib.AbstractAsyncContextManager[object]:
    """A total deadline for one attempt: ``TimeoutError`` when it passes.

    On asyncio (3.11+) the loop's own ``asyncio.timeout``: an anyio cancel
    scope around an aiohttp request costs 30-40 us of CPU, a third of our
    whole overhead per request there. Elsewhere (trio, and so trio's
    MockClock in tests) anyio's ``fail_after``.
    """
    if _asyncio_timeout is not None:
        try:
            asyncio.current_task()
        except RuntimeError:
            pass  # not on asyncio
        else:
            return _asyncio_timeout(seconds)
    return _AsyncFailAfter(seconds)


class _AsyncFailAfter:
    """``anyio.fail_after`` as an async context manager, like ``asyncio.timeout``."""

    __slots__ = ("_scope",)

    def __init__(self, seconds: float) -> None:
        self._scope = anyio.fail_after(seconds)

    async def __aenter__(self) -> object:
        return self._scope.__enter__()

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        return self._scope.__exit__(*exc_info)


_asyncio_timeout: Callable[[float], contextlib.AbstractAsyncContextManager[object]] | None = (
    getattr(asyncio, "timeout", None)  # Python 3.11+
)


def is_transient(exc: BaseException) -> bool:
    """Whether a failure may pass if the same request is sent again."""
    return isinstance(exc, (TransportError, RateLimitError, ServerError, ResponseError))


def classify_failure(exc: BaseException) -> Failure:
    """What a failed poll means for a waiter: retry, slow down, end one wait, or end all."""
    if isinstance(exc, AuthenticationError):
        return Failure(FailureKind.END_ALL)
    if isinstance(exc, RateLimitError):
        return Failure(FailureKind.RATE_LIMITED, exc.retry_after)
    if isinstance(exc, ServerError):
        return Failure(FailureKind.RETRY, exc.retry_after)  # a 503 may say when to come back
    if is_transient(exc):
        return Failure(FailureKind.RETRY)
    return Failure(FailureKind.END_JOB)


def is_ambiguous(exc: BaseException) -> bool:
    """Whether the service may have acted on a request that failed this way."""
    if isinstance(exc, TransportError):
        return exc.sent
    return isinstance(exc, (ServerError, ResponseError))


class Transport:
    """Posts action bodies through a backend, one attempt at a time, under a deadline."""

    def __init__(
        self,
        *,
        base_url: str,
        redactor: Redactor,
        backend: Backend,
        timeout: float,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._backend = backend
        self._timeout = timeout
        self._redactor = redactor
        self._urls = {action: f"{self._base_url}/{path}" for action, path in ACTION_PATHS.items()}
        self.retries = 0
        """Retries sent so far (all actions), counted by the layer that retries."""

    @property
    def redactor(self) -> Redactor:
        """The redactor that knows this client's secret."""
        return self._redactor

    @property
    def base_url(self) -> str:
        """The base URL requests go to."""
        return self._base_url

    @property
    def http_client(self) -> httpx.AsyncClient | None:
        """The underlying httpx client; None on ``http_backend="aiohttp"``."""
        client: httpx.AsyncClient | None = getattr(self._backend, "http_client", None)
        return client

    async def aclose(self) -> None:
        """Close the backend (a user's own ``http_client`` stays open)."""
        await self._backend.aclose()

    def count_retry(self) -> None:
        """Count one retry (the layer above retries; ``retries`` is read here)."""
        self.retries += 1

    def url(self, action: str) -> str:
        """The URL ``action`` is posted to (for logs)."""
        return self._urls[action]

    async def post(self, action: str, content: bytes) -> Answer:
        """One attempt: post ``content`` for ``action``; the whole answer, or a typed error.

        ``TransportError`` (``sent=True``) when no answer came within ``timeout``.
        """
        try:
            async with _deadline(self._timeout):
                return await self._backend.post(action, content)
        except TimeoutError:
            raise TransportError(
                f"{action} got no answer within {self._timeout:g} s", action=action, sent=True
            ) from None

    def __repr__(self) -> str:
        return f"Transport(base_url={self._base_url!r})"
