"""``CallbackReceiver``: a raw ASGI app that takes MediaX callbacks and tells the waiters.

The decisions (token, route, size, body) are the pure functions of ``_rules``;
this module only moves bytes between the ASGI server and them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Final

import anyio
import attrs

from .._asgi import Receive, Scope, Send, serve_lifespan
from .._conn_guard import DEFAULT_HEADER_TIMEOUT
from .._models import Job
from .._redact import REDACTED, Secret
from ._rules import (
    DEFAULT_CALLBACK_PATH,
    DEFAULT_MAX_BODY_SIZE,
    Rejection,
    build_callback_url,
    check_content_length,
    check_route,
    check_token,
    new_callback_token,
    normalize_path,
    parse_callback_body,
    route_path,
    token_digest,
)

if TYPE_CHECKING:
    from .._waiter import JobWaiter

__all__ = ["CallbackReceiver", "CallbackStats", "JobHook"]

logger = logging.getLogger("mediax_async.callbacks")

JobHook = Callable[[Job, bool], object]
"""A receiver's ``on_job(job, watched)``: each accepted job, and whether a waiter watches it."""

DEFAULT_BODY_TIMEOUT: Final = 30.0
"""Seconds a sender may take to send a callback body (a slow sender is answered 400)."""

_JSON: Final = [(b"content-type", b"application/json")]


@attrs.define
class CallbackStats:
    """What a receiver has seen: callbacks accepted, and rejected by reason."""

    accepted: int = 0
    """Callbacks answered 204: an authenticated job, handed to the waiters."""
    unknown: int = 0
    """Accepted callbacks for a job no waiter was watching (unknown, already settled, late)."""
    not_found: int = 0
    """404: another path."""
    bad_token: int = 0
    """401: a missing or wrong token."""
    method_not_allowed: int = 0
    """405: not a POST."""
    too_large: int = 0
    """413: a body over the limit, declared or streamed."""
    malformed: int = 0
    """400: not JSON, a bad Content-Length, or a body sent too slowly."""
    not_a_job: int = 0
    """400: JSON that is not a job."""
    disconnected: int = 0
    """Senders that hung up before their body was read (no answer)."""
    errors: int = 0
    """500: a waiter raised while taking the news (a bug; logged)."""

    @property
    def rejected(self) -> int:
        """Every request refused, whatever the reason."""
        return sum(self.rejections().values())

    def rejections(self) -> dict[str, int]:
        """Refused requests by reason (``Rejection`` values), zeros included."""
        return {reason.value: getattr(self, reason.value) for reason in Rejection}


class CallbackReceiver:
    """An ASGI app that takes the service's callbacks and hands each job to JobWaiters.

    The service POSTs the whole job to the job's ``callback`` URL when it ends
    COMPLETED or ERROR; nothing authenticates that POST, so the URL carries a
    secret token (``callback_url(public_url)`` builds it) that the receiver
    checks in constant time. Mount it in Starlette or FastAPI
    (``Mount("/hooks", app=receiver)``), serve it with uvicorn (or
    ``receiver.serve()``), or call it through ``httpx.ASGITransport``.

    Each accepted job goes to every attached waiter's ``notify``: by default
    a waiter only polls that job at once, so a forged callback settles
    nothing the service does not confirm. Answers: 204 accepted (also for a
    job no waiter watches: duplicates and late callbacks are harmless, and
    counted in ``stats.unknown``), 400 not JSON or not a job, 401 missing or
    wrong token, 404 another path, 405 not a POST, 413 a body over
    ``max_body_size`` bytes.

    ``token`` defaults to a fresh random one; it never appears in a repr, a
    log line or an error. ``path`` is where callbacks arrive below the mount
    point (``""`` for the mount point itself). ``on_job(job, watched)`` is
    called for each accepted job (its exceptions are logged). The waiters
    must run on the event loop that serves the receiver.
    """

    def __init__(
        self,
        *waiters: JobWaiter,
        token: str | None = None,
        path: str = DEFAULT_CALLBACK_PATH,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        on_job: JobHook | None = None,
    ) -> None:
        if max_body_size < 1:
            raise ValueError(f"max_body_size must be >= 1 byte, got {max_body_size!r}")
        if not body_timeout > 0:
            raise ValueError(f"body_timeout must be > 0 seconds, got {body_timeout!r}")
        secret = check_token(token) if token is not None else new_callback_token()
        self._token = Secret(secret)
        self._digest = token_digest(secret)
        self._path = normalize_path(path)
        self._max_body_size = max_body_size
        self._body_timeout = body_timeout
        self._on_job = on_job
        self._waiters: dict[JobWaiter, None] = dict.fromkeys(waiters)
        self.stats = CallbackStats()
        """Callbacks accepted, unknown, and rejected by reason."""

    def __repr__(self) -> str:
        return (
            f"CallbackReceiver(path={self._path!r}, waiters={len(self._waiters)}, "
            f"accepted={self.stats.accepted}, rejected={self.stats.rejected})"
        )

    @property
    def path(self) -> str:
        """Where callbacks arrive, below the mount point (the token follows it)."""
        return self._path

    @property
    def max_body_size(self) -> int:
        """The largest body accepted, in bytes."""
        return self._max_body_size

    # -- waiters -----------------------------------------------------------------------

    @property
    def waiters(self) -> tuple[JobWaiter, ...]:
        """The waiters told of each callback."""
        return tuple(self._waiters)

    def attach(self, waiter: JobWaiter) -> None:
        """Tell ``waiter`` of every callback from now on."""
        self._waiters[waiter] = None

    def detach(self, waiter: JobWaiter) -> None:
        """Stop telling ``waiter`` (a waiter not attached is ignored)."""
        self._waiters.pop(waiter, None)

    @contextlib.contextmanager
    def watching(self, waiter: JobWaiter) -> Iterator[JobWaiter]:
        """Attach ``waiter`` for the ``with`` block: ``with receiver.watching(w): ...``."""
        self.attach(waiter)
        try:
            yield waiter
        finally:
            self.detach(waiter)

    async def deliver(self, job: Job) -> bool:
        """Hand an authenticated callback's job to every waiter; whether one was watching it.

        A waiter that does not watch the job yet keeps the news for when it does.
        """
        watched = False
        for waiter in tuple(self._waiters):
            watched = await waiter.notify(job) or watched
        self.stats.accepted += 1
        if not watched:
            self.stats.unknown += 1
        logger.debug(
            "callback for job %s (%s)%s",
            job.id,
            job.state.name,
            "" if watched else ": no waiter watches it",
        )
        if self._on_job is not None:
            try:
                self._on_job(job, watched)
            except Exception:
                logger.exception("the on_job hook of a callback receiver raised")
        return watched

    # -- the URL and the token ---------------------------------------------------------

    def callback_url(self, public_url: str) -> str:
        """The URL to give jobs as ``callback``: ``public_url`` + path + ``/`` + token.

        ``public_url`` is where the service reaches this receiver's mount point,
        e.g. ``https://hooks.example.com/mediax``. The result holds the token:
        pass it to ``CreateJobRequest(callback=...)``, never to a log.
        """
        return build_callback_url(public_url, self._token.reveal(), self._path)

    def redact(self, text: str) -> str:
        """``text`` with this receiver's token replaced by ``***``."""
        return text.replace(self._token.reveal(), REDACTED)

    def log_filter(self) -> logging.Filter:
        """A filter that hides the token in log records, e.g. uvicorn's access log.

        ``logging.getLogger("uvicorn.access").addFilter(receiver.log_filter())``
        when you serve the receiver yourself with access logging on.
        """
        return _RedactingFilter(self)

    def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        max_connections: int | None = None,
    ) -> contextlib.AbstractAsyncContextManager[str]:
        """Serve this receiver with uvicorn (asyncio only) for an ``async with`` block.

        Yields the base URL it listens on (``port=0`` picks a free one);
        ``callback_url(base_url)`` is then the callback URL, unless the service
        reaches this server through another public URL. Needs uvicorn.

        The server stays reachable under a flood of slow connections: each has
        ``header_timeout`` seconds to send its request head, and at most
        ``max_connections`` are open at once (default 1000, and never more than
        the descriptor limit leaves); past that, the oldest connection that has
        not sent a whole request is closed to make room.
        """
        from ._serve import serve_receiver

        return serve_receiver(
            self, host, port, header_timeout=header_timeout, max_connections=max_connections
        )

    # -- ASGI --------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one ASGI connection (``http``; ``lifespan`` is acknowledged)."""
        kind = scope["type"]
        if kind == "lifespan":
            await serve_lifespan(receive, send)
            return
        if kind != "http":
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        rejection = check_route(
            path=route_path(scope),
            query_string=bytes(scope.get("query_string", b"")),
            method=str(scope.get("method", "")),
            prefix=self._path,
            expected=self._digest,
        ) or check_content_length(scope.get("headers", ()), self._max_body_size)
        if rejection is not None:
            await self._reject(send, rejection)
            return
        body = await self._read_body(receive)
        if body is None:
            self.stats.disconnected += 1
            return
        parsed = body if isinstance(body, Rejection) else parse_callback_body(body)
        if isinstance(parsed, Rejection):
            await self._reject(send, parsed)
            return
        try:
            await self.deliver(parsed)
        except Exception:
            self.stats.errors += 1
            logger.exception("a waiter raised while taking a callback for job %s", parsed.id)
            await _respond(send, 500, b'{"error":"internal"}', _JSON)
            return
        await _respond(send, 204)

    async def _read_body(self, receive: Receive) -> bytes | Rejection | None:
        """The whole body; TOO_LARGE once it passes the limit; None if the sender hung up."""
        chunks: list[bytes] = []
        size = 0
        with anyio.move_on_after(self._body_timeout):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                chunk = bytes(message.get("body", b""))
                size += len(chunk)
                if size > self._max_body_size:
                    return Rejection.TOO_LARGE
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
        return Rejection.MALFORMED  # sent too slowly

    async def _reject(self, send: Send, rejection: Rejection) -> None:
        setattr(self.stats, rejection.value, getattr(self.stats, rejection.value) + 1)
        logger.info("callback refused: %s (HTTP %d)", rejection.value, rejection.status)
        headers = list(_JSON)
        if rejection is Rejection.METHOD_NOT_ALLOWED:
            headers.append((b"allow", b"POST"))
        body = b'{"error":"' + rejection.value.encode() + b'"}'
        await _respond(send, rejection.status, body, headers)


async def _respond(
    send: Send, status: int, body: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    head = [*(headers or ()), (b"content-length", str(len(body)).encode())]
    if status == 204:
        head = []
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


class _RedactingFilter(logging.Filter):
    """Hides a receiver's token in a record's message and arguments."""

    def __init__(self, receiver: CallbackReceiver) -> None:
        super().__init__()
        self._receiver = receiver

    def filter(self, record: logging.LogRecord) -> bool:
        redact = self._receiver.redact
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True
