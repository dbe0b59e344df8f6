"""One transport test, every HTTP backend: the scripted service in process or over loopback.

``over_every_backend()`` parametrizes a test over a ``Wire``: httpx in
process (``httpx.MockTransport``, on asyncio and trio, or on trio's
``MockClock`` for tests that wait), and aiohttp sending over real HTTP to
the same ``ScriptedService`` served on 127.0.0.1 (asyncio, real time). A
test is written once in the scripted service's seconds; ``wire.seconds(s)``
turns them into the wire's (virtual time runs them as written, real time
shrinks them) and ``wire.took`` checks an elapsed time against them.

Over loopback a scripted ``httpx.TransportError`` step (a read timeout, a
dropped or reset connection) closes the connection without an answer: the
request was sent, no answer came, as the client sees such failures. A
refused connection cannot be scripted per request over loopback (the
server is listening): ``test_a_refused_connection_is_known_unsent`` sends to
a closed port instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import anyio.abc
import httpx
import pytest
import trio.testing
from anyio.streams.buffered import BufferedByteReceiveStream
from seeds import FAST_RETRIES, SECRET_ID, SECRET_KEY, ScriptedService, client_for

from mediax_async import MediaXClient

__all__ = ["Served", "Wire", "over_every_backend", "serve_scripted"]

STOP_WITHIN = 5.0
"""Seconds the loopback server may take to stop once its block ends."""
REAL_SLACK = 2.0
"""Real seconds an exchange may take beyond what a test expects (a loaded 2-core machine)."""
MAX_HEAD = 64 * 1024


@dataclass
class Served:
    """A scripted service on a loopback port: its URL and the connections it saw."""

    url: str
    open: int = 0
    peak: int = 0
    """The most connections open at once."""
    connections: int = 0
    """Connections accepted in all."""


@asynccontextmanager
async def serve_scripted(service: ScriptedService) -> AsyncIterator[Served]:
    """Serve ``service`` over HTTP/1.1 on a free 127.0.0.1 port until the block ends.

    Each request is handed to ``service`` as an ``httpx.Request``; its answer
    is written back with its status, headers and body, and the connection
    kept open for the next request. A step that raises ``httpx.TransportError``
    closes the connection without answering. The server and every connection
    are cancelled when the block ends, within ``STOP_WITHIN`` seconds.
    """
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    served = Served(f"http://127.0.0.1:{port}")

    async def handle(stream: anyio.abc.SocketStream) -> None:
        served.open += 1
        served.connections += 1
        served.peak = max(served.peak, served.open)
        try:
            async with stream:
                reader = BufferedByteReceiveStream(stream)
                while True:
                    try:
                        request = await _read_request(reader, served.url)
                    except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError):
                        return
                    try:
                        response = await service(request)
                    except httpx.TransportError:
                        return  # sent, and no answer: the connection closes
                    await stream.send(_encode(response))
        except anyio.BrokenResourceError:
            pass  # the client went away (its deadline passed)
        finally:
            served.open -= 1

    with anyio.CancelScope() as bound:
        async with listener, anyio.create_task_group() as tasks:
            tasks.start_soon(listener.serve, handle)
            try:
                yield served
            finally:
                tasks.cancel_scope.cancel()  # the server and every connection, at once
                bound.deadline = anyio.current_time() + STOP_WITHIN
    if bound.cancelled_caught:
        raise TimeoutError(f"the scripted server did not stop within {STOP_WITHIN} s")


async def _read_request(reader: BufferedByteReceiveStream, base: str) -> httpx.Request:
    head = await reader.receive_until(b"\r\n\r\n", MAX_HEAD)
    request_line, *lines = head.decode("latin-1").split("\r\n")
    method, target, _ = request_line.split(" ", 2)
    headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines if line]
    length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
    body = await reader.receive_exactly(length) if length else b""
    return httpx.Request(method, base + target, headers=headers, content=body)


def _encode(response: httpx.Response) -> bytes:
    body = response.content
    lines = [f"HTTP/1.1 {response.status_code} {response.reason_phrase or 'Status'}"]
    lines += [
        f"{name}: {value}"
        for name, value in response.headers.multi_items()
        if name.lower() not in ("content-length", "transfer-encoding")
    ]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass(frozen=True)
class Wire:
    """How a test's client reaches its scripted service: backend, loopback or not, time."""

    http_backend: Literal["httpx", "aiohttp"]
    loopback: bool
    virtual: bool = False
    """Whether the test runs on trio's MockClock (waits take no wall time)."""
    scale: float = 1.0
    """Real seconds per scripted second (1 in virtual time, less in real time)."""

    def seconds(self, scripted: float) -> float:
        """``scripted`` seconds of the test, on this wire."""
        return scripted * self.scale

    def took(self, elapsed: float, expected: float, upto: float | None = None) -> bool:
        """Whether ``elapsed`` (this wire's seconds) is ``expected`` scripted seconds.

        ``upto``: up to that many instead (jitter). Virtual time is exact; real
        time may run over by ``REAL_SLACK`` on a busy machine, never under.
        """
        low, high = self.seconds(expected), self.seconds(upto if upto is not None else expected)
        if self.virtual:
            return low - 1e-9 <= elapsed <= high + 1e-9
        return low - 1e-6 <= elapsed <= high + REAL_SLACK  # a timer may fire 1 ns early

    @asynccontextmanager
    async def client(self, service: ScriptedService, **options: Any) -> AsyncIterator[MediaXClient]:
        """A client whose requests reach ``service`` through this wire (retries do not wait)."""
        async with self.connect(service, **options) as (client, _):
            yield client

    @asynccontextmanager
    async def connect(
        self, service: ScriptedService, **options: Any
    ) -> AsyncIterator[tuple[MediaXClient, Served | None]]:
        """As ``client``, with the loopback server (None in process)."""
        if not self.loopback:
            assert self.http_backend == "httpx"
            async with client_for(service, **options) as client:
                yield client, None
            return
        options.setdefault("retry_policy", FAST_RETRIES)
        secret_id = options.pop("secret_id", SECRET_ID)
        secret_key = options.pop("secret_key", SECRET_KEY)
        async with (
            serve_scripted(service) as served,
            MediaXClient(
                secret_id,
                secret_key,
                base_url=served.url,
                http_backend=self.http_backend,
                **options,
            ) as client,
        ):
            yield client, served


def over_every_backend(
    *, waits: bool = False, loopback_httpx: bool = False
) -> pytest.MarkDecorator:
    """Run the test once per HTTP backend, with a ``wire`` argument to reach the service by.

    ``waits``: the test waits (deadlines, backoff, Retry-After): httpx runs it
    on trio's MockClock, aiohttp in real time at 1/50 of its seconds.
    ``loopback_httpx``: httpx over loopback too, with its own pool (for what
    only a real pool shows, such as the connection cap); asyncio and trio.
    """
    if waits:
        clock = trio.testing.MockClock(autojump_threshold=0)
        params = [
            pytest.param(
                ("trio", {"clock": clock}),
                Wire("httpx", loopback=False, virtual=True),
                id="httpx-trio-mockclock",
            )
        ]
        aiohttp = Wire("aiohttp", loopback=True, scale=0.02)
    else:
        httpx_wire = Wire("httpx", loopback=loopback_httpx)
        kind = "loopback" if loopback_httpx else "inprocess"
        params = [
            pytest.param("asyncio", httpx_wire, id=f"httpx-{kind}-asyncio"),
            pytest.param("trio", httpx_wire, id=f"httpx-{kind}-trio"),
        ]
        aiohttp = Wire("aiohttp", loopback=True, scale=0.02)
    params.append(pytest.param("asyncio", aiohttp, id="aiohttp-loopback"))  # asyncio only
    return pytest.mark.parametrize(("anyio_backend", "wire"), params)
