"""Sending: deadlines, retries, redaction and logging, above every HTTP backend.

A backend (``_http_httpx``, ``_http_aiohttp``) only posts bytes and returns
an ``Answer``, turning its library's failures into a ``TransportError`` (or
a ``ConfigurationError`` for a bad URL). The transport bounds each attempt
with a total deadline (the libraries' own timeouts are per read, so a
trickling server could otherwise hold a call forever), and retries what is
safe to retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import anyio
import httpx

from ._exceptions import (
    AuthenticationError,
    MediaXError,
    RateLimitError,
    ResponseError,
    ServerError,
    TransportError,
)
from ._http_common import Backend
from ._http_httpx import JSON_HEADERS
from ._policies import RetryPolicy
from ._protocol import (
    ACTION_PATHS,
    Answer,
    Credentials,
    EncodedBody,
    encode_body,
    request_body,
)
from ._redact import Redactor
from ._source import Failure, FailureKind

__all__ = [
    "JSON_HEADERS",
    "Transport",
    "classify_failure",
    "is_ambiguous",
    "is_transient",
    "logger",
]

T = TypeVar("T")

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
    """Posts action bodies through a backend, with deadlines, retries and logging."""

    def __init__(
        self,
        *,
        base_url: str,
        credentials: Credentials,
        backend: Backend,
        timeout: float,
        retry: RetryPolicy,
        rng: random.Random | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._backend = backend
        self._timeout = timeout
        self._retry = retry
        self._random = rng or random.Random()
        self._redactor = Redactor([credentials.secret_key])
        self._urls = {action: f"{self._base_url}/{path}" for action, path in ACTION_PATHS.items()}
        self.retries = 0
        """Retries sent so far (all actions)."""

    @property
    def redactor(self) -> Redactor:
        """The redactor that knows this client's secret."""
        return self._redactor

    @property
    def base_url(self) -> str:
        """The base URL requests go to."""
        return self._base_url

    @property
    def retry_policy(self) -> RetryPolicy:
        """The policy for retrying failed requests."""
        return self._retry

    @property
    def http_client(self) -> httpx.AsyncClient | None:
        """The underlying httpx client; None on ``http_backend="aiohttp"``."""
        client: httpx.AsyncClient | None = getattr(self._backend, "http_client", None)
        return client

    async def aclose(self) -> None:
        """Close the backend (a user's own ``http_client`` stays open)."""
        await self._backend.aclose()

    def encode(self, action: str, payload: Mapping[str, Any]) -> EncodedBody:
        """The body ``action`` sends for ``payload``, as bytes."""
        return encode_body(request_body(action, self._credentials, payload))

    async def call(
        self,
        action: str,
        payload: Mapping[str, Any] | EncodedBody,
        parse: Callable[[Answer, Redactor], tuple[T, str | None]],
        *,
        retry: bool = True,
    ) -> T:
        """Send ``action`` and parse its answer, retrying transient failures.

        ``payload`` is the action's request object, or its body as ``encode``
        made it. Every retry sends the same request again: use it only for
        actions that are safe to repeat (CreateJob reconciles first; see ``_create``).
        """
        content = payload if isinstance(payload, EncodedBody) else self.encode(action, payload)
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self.send_once(action, content, parse, attempt=attempt)
            except MediaXError as exc:
                if not retry or not is_transient(exc):
                    raise
                delay = self.retry_delay(attempt, exc)
                if delay is None:
                    raise
                self.log_retry(action, exc, attempt, delay)
                await anyio.sleep(delay)

    def retry_delay(self, attempt: int, exc: MediaXError) -> float | None:
        """Seconds to wait after failed ``attempt`` (from 1) before the next; None: give up.

        None too when ``exc`` is not worth retrying at all.
        """
        if not is_transient(exc):
            return None
        # A 503 may say when the service is back, as a 429 says when to send again.
        retry_after = exc.retry_after if isinstance(exc, (RateLimitError, ServerError)) else None
        return self._retry.delay(attempt, retry_after=retry_after, draw=self._random.random())

    def log_retry(self, action: str, exc: BaseException, attempt: int, delay: float) -> None:
        """Log and count one retry of ``action`` (as ``call`` does for its own)."""
        logger.info(
            "%s failed (%s), retry %d in %.2f s",
            action,
            type(exc).__name__,
            attempt,
            delay,
            extra={"mediax_action": action, "mediax_attempt": attempt},
        )
        self.retries += 1

    async def send_once(
        self,
        action: str,
        content: bytes,
        parse: Callable[[Answer, Redactor], tuple[T, str | None]],
        *,
        attempt: int = 1,
    ) -> T:
        """One attempt: post ``content``, parse the answer, log the exchange."""
        started = time.perf_counter()
        status: int | None = None
        request_id: str | None = None
        try:
            answer = await self._post(action, content)
            status = answer.status
            value, request_id = parse(answer, self._redactor)
        except MediaXError as exc:
            request_id = getattr(exc, "request_id", None)
            self._log(action, status, started, attempt, request_id, exc)
            raise
        self._log(action, status, started, attempt, request_id, None)
        return value

    async def _post(self, action: str, content: bytes) -> Answer:
        try:
            async with _deadline(self._timeout):
                return await self._backend.post(action, content)
        except TimeoutError:
            raise TransportError(
                f"{action} got no answer within {self._timeout:g} s", action=action, sent=True
            ) from None

    def _log(
        self,
        action: str,
        status: int | None,
        started: float,
        attempt: int,
        request_id: str | None,
        error: BaseException | None,
    ) -> None:
        if not logger.isEnabledFor(logging.DEBUG):
            return
        elapsed_ms = (time.perf_counter() - started) * 1000
        url = self._urls[action]
        outcome = status if status is not None else "no answer"
        logger.debug(
            "%s POST %s -> %s in %.1f ms (attempt %d, request_id=%s)%s",
            action,
            url,
            outcome,
            elapsed_ms,
            attempt,
            request_id,
            f" {type(error).__name__}" if error is not None else "",
            extra={
                "mediax_action": action,
                "mediax_path": url,
                "mediax_status": status,
                "mediax_duration_ms": elapsed_ms,
                "mediax_attempt": attempt,
                "mediax_request_id": request_id,
            },
        )

    def __repr__(self) -> str:
        return f"Transport(base_url={self._base_url!r})"
