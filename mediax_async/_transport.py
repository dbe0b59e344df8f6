"""Sending: one pooled ``httpx.AsyncClient``, deadlines, retries, redaction, logging.

The transport turns every httpx failure into a ``TransportError`` (or a
``ConfigurationError`` for a bad URL), bounds each attempt with a total
deadline (httpx's own timeouts are per read, so a trickling server could
otherwise hold a call forever), and retries what is safe to retry.
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

from . import _constants as C
from ._exceptions import (
    AuthenticationError,
    ConfigurationError,
    MediaXError,
    RateLimitError,
    ResponseError,
    ServerError,
    TransportError,
)
from ._inflate import BodyTooLarge, BoundedDecoder, DecodeFailed
from ._policies import RetryPolicy
from ._protocol import ACTION_PATHS, Answer, Credentials, encode_body, request_body
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

JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
"""Headers every request needs; a client the library creates sends them by default."""


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
    """Posts action bodies to the service and retries transient failures."""

    def __init__(
        self,
        *,
        base_url: str,
        credentials: Credentials,
        http_client: httpx.AsyncClient,
        owns_http_client: bool,
        timeout: float,
        retry: RetryPolicy,
        rng: random.Random | None = None,
        connect_errors_are_unsent: bool = True,
        max_response_bytes: int = C.DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._http = http_client
        self._owns_http = owns_http_client
        self._timeout = timeout
        self._max_response_bytes = max_response_bytes
        self._retry = retry
        self._random = rng or random.Random()
        self._redactor = Redactor([credentials.secret_key])
        self._urls = {action: f"{self._base_url}/{path}" for action, path in ACTION_PATHS.items()}
        # httpx raises ConnectError only before a request is written; other backends
        # (httpx-aiohttp) also report a connection dropped after sending that way.
        self._connect_errors_are_unsent = connect_errors_are_unsent
        # Merging per-request headers costs httpx more than the rest of our code: send
        # them per request only when a user's own client may not have them as defaults.
        has_defaults = all(http_client.headers.get(k) == v for k, v in JSON_HEADERS.items())
        self._request_headers = None if has_defaults else JSON_HEADERS
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
    def http_client(self) -> httpx.AsyncClient:
        """The underlying httpx client."""
        return self._http

    async def aclose(self) -> None:
        """Close the HTTP client if this transport created it."""
        if self._owns_http:
            await self._http.aclose()

    async def call(
        self,
        action: str,
        payload: Mapping[str, Any],
        parse: Callable[[Answer, Redactor], tuple[T, str | None]],
        *,
        retry: bool = True,
    ) -> T:
        """Send ``action`` and parse its answer, retrying transient failures.

        Every retry sends the same request again: use it only for actions that
        are safe to repeat (CreateJob reconciles first; see ``_create``).
        """
        content = encode_body(request_body(action, self._credentials, payload))
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
        url = self._urls[action]
        started = time.perf_counter()
        status: int | None = None
        request_id: str | None = None
        try:
            answer = await self._post(action, url, content)
            status = answer.status
            value, request_id = parse(answer, self._redactor)
        except MediaXError as exc:
            request_id = getattr(exc, "request_id", None)
            self._log(action, url, status, started, attempt, request_id, exc)
            raise
        self._log(action, url, status, started, attempt, request_id, None)
        return value

    async def _post(self, action: str, url: str, content: bytes) -> Answer:
        try:
            async with _deadline(self._timeout):
                request = self._http.build_request(
                    "POST", url, content=content, headers=self._request_headers
                )
                response = await self._http.send(request, stream=True)
                try:
                    body = await self._read(action, response)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise TransportError(
                f"{action} got no answer within {self._timeout:g} s", action=action, sent=True
            ) from None
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # "from None": the redacted description is in the message; the original
            # error's text is not ours to vouch for.
            raise TransportError(
                f"{action} could not connect: {self._describe(exc)}",
                action=action,
                sent=not self._connect_errors_are_unsent,
            ) from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise ConfigurationError(
                f"bad base URL {self._base_url!r}: {self._describe(exc)}"
            ) from None
        except httpx.HTTPError as exc:
            raise TransportError(
                f"{action} failed: {self._describe(exc)}", action=action, sent=True
            ) from None
        return Answer(response.status_code, response.headers, body)

    async def _read(self, action: str, response: httpx.Response) -> bytes:
        """The decoded body, refused (``ResponseError``) past ``max_response_bytes``.

        gzip and deflate are inflated here in bounded steps; a coding only httpx
        knows (br, zstd) is left to it, checked after each decoded chunk.
        """
        limit = self._max_response_bytes
        if response.is_stream_consumed:  # a transport that read it already (MockTransport)
            if len(response.content) > limit:
                raise self._too_large(action, response)
            return response.content
        declared = response.headers.get("content-length", "")
        encoding = response.headers.get("content-encoding", "")
        if declared.isdigit() and not encoding and int(declared) > limit:
            raise self._too_large(action, response)
        decoder = BoundedDecoder.for_encoding(encoding, limit)
        if decoder is None:
            return await self._read_through_httpx(action, response)
        # Past the limit the rest is read and dropped, up to the limit again: leaving
        # httpx's stream mid-way leaves its inner generators to the loop's finalizer
        # (trio warns of each), and a body that small costs nothing to drain.
        too_large = False
        received = 0
        try:
            # (httpx types its iterators as AsyncIterator, though they are generators.)
            async with contextlib.aclosing(response.aiter_raw()) as raw:  # type: ignore[type-var]
                async for chunk in raw:
                    received += len(chunk)
                    if too_large:
                        if received > limit:
                            break
                        continue
                    try:
                        decoder.feed(chunk)
                    except BodyTooLarge:
                        too_large = True
        except DecodeFailed as exc:
            raise TransportError(
                f"{action} failed: the {encoding} answer cannot be decoded: {exc}",
                action=action,
                sent=True,
            ) from None
        if too_large:
            raise self._too_large(action, response)
        return decoder.finish()

    async def _read_through_httpx(self, action: str, response: httpx.Response) -> bytes:
        limit = self._max_response_bytes
        chunks, size = [], 0
        async with contextlib.aclosing(response.aiter_bytes()) as decoded:  # type: ignore[type-var]
            async for chunk in decoded:
                size += len(chunk)
                if size > limit:
                    raise self._too_large(action, response)
                chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, action: str, response: httpx.Response) -> ResponseError:
        return ResponseError(
            f"the {action} answer is over max_response_bytes "
            f"({self._max_response_bytes} bytes once decompressed); not read further",
            status_code=response.status_code,
            action=action,
        )

    def _describe(self, exc: Exception) -> str:
        detail = str(exc)
        name = type(exc).__name__
        return self._redactor(f"{name}: {detail}" if detail else name)

    def _log(
        self,
        action: str,
        url: str,
        status: int | None,
        started: float,
        attempt: int,
        request_id: str | None,
        error: BaseException | None,
    ) -> None:
        if not logger.isEnabledFor(logging.DEBUG):
            return
        elapsed_ms = (time.perf_counter() - started) * 1000
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
