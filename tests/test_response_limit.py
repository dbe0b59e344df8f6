"""Answers are bounded after decompression: a gzip bomb over real loopback HTTP is refused.

A tiny HTTP server on 127.0.0.1 answers every request with a fixed body; the
client sends through httpx (asyncio and trio) and aiohttp (asyncio). Memory is
measured with tracemalloc: the peak while the answer is read, not time.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import tracemalloc
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from anyio.abc import SocketStream

from mediax_async import ConfigurationError, MediaXClient, ResponseError, RetryPolicy, State

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
BOMB_SIZE = 200 * MiB
ONCE = RetryPolicy(max_retries=0)


def _bomb() -> bytes:
    """About 200 KiB of gzip that inflates to 200 MiB of zeros."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(MiB)
    parts = [packer.compress(block) for _ in range(BOMB_SIZE // MiB)]
    parts.append(packer.flush())
    return b"".join(parts)


BOMB = _bomb()


def _job_answer(padding: int) -> bytes:
    """A GetJob answer for job "j-1" (COMPLETED), padded to about ``padding`` bytes."""
    job = {"id": "j-1", "state": 3, "customId": "c", "padding": "x" * padding}
    return json.dumps({"requestId": "r-1", "getJobResponse": {"job": job}}).encode()


@asynccontextmanager
async def answering(body: bytes, headers: dict[str, str]) -> AsyncIterator[str]:
    """Serve ``body`` with ``headers`` to every POST on a free loopback port; yield the URL.

    The answer is built before serving: nothing the server allocates per request
    may count in the client's measured peak.
    """
    lines = [b"HTTP/1.1 200 OK", b"Content-Length: %d" % len(body), b"Connection: close"]
    lines += [f"{name}: {value}".encode() for name, value in headers.items()]
    response = b"\r\n".join(lines) + b"\r\n\r\n" + body

    async def handle(stream: SocketStream) -> None:
        async with stream:
            data = b""
            while b"\r\n\r\n" not in data:
                data += await stream.receive()
            head, _, rest = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(rest) < length:
                rest += await stream.receive()
            # The client may stop reading and close: what a bounded reader does.
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await stream.send(response)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tasks:  # serving stops, then closes
        tasks.start_soon(listener.serve, handle)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            tasks.cancel_scope.cancel()


async def peak_while(client: MediaXClient, job_id: str) -> tuple[int, BaseException | Any]:
    """Peak traced memory while ``get_job(job_id)`` runs, and its result or error."""
    tracemalloc.start()
    try:
        outcome: BaseException | Any = await client.get_job(job_id)
    except Exception as exc:
        outcome = exc
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak, outcome


COMBINATIONS = pytest.mark.parametrize(
    ("anyio_backend", "http_backend"),
    [("asyncio", "httpx"), ("trio", "httpx"), ("asyncio", "aiohttp")],  # aiohttp: asyncio only
)


def client(base_url: str, http_backend: str, **options: Any) -> MediaXClient:
    return MediaXClient(
        "id", "key", base_url=base_url, http_backend=http_backend, retry_policy=ONCE, **options
    )


@COMBINATIONS
async def test_a_gzip_bomb_is_a_response_error_without_inflating_it(
    anyio_backend: str, http_backend: str
) -> None:
    """200 KiB of gzip inflating to 200 MiB: refused at the default 32 MiB, never all held."""
    assert len(BOMB) < 1 * MiB
    async with (
        answering(BOMB, {"Content-Encoding": "gzip"}) as url,
        client(url, http_backend) as mediax,
    ):
        peak, outcome = await peak_while(mediax, "j-1")
    assert isinstance(outcome, ResponseError), outcome
    assert "max_response_bytes" in str(outcome)
    assert outcome.action == "GetJob"
    assert peak < 80 * MiB  # today: the 200 MiB inflated, then copied (over 400 MiB)


@COMBINATIONS
async def test_max_response_bytes_sets_the_limit_after_decompression(
    anyio_backend: str, http_backend: str
) -> None:
    """A 2 MiB gzip JSON answer: refused under a 1 MiB limit, read under a 4 MiB one."""
    answer = _job_answer(2 * MiB)
    packed = gzip.compress(answer)
    assert len(packed) < 64 * 1024  # small on the wire: the limit counts what it inflates to
    async with answering(packed, {"Content-Encoding": "gzip"}) as url:
        async with client(url, http_backend, max_response_bytes=1 * MiB) as small:
            peak, outcome = await peak_while(small, "j-1")
        assert isinstance(outcome, ResponseError), outcome
        assert "1048576" in str(outcome)
        assert peak < 8 * MiB
        async with client(url, http_backend, max_response_bytes=4 * MiB) as large:
            job = await large.get_job("j-1")
    assert job.id == "j-1"
    assert job.state == State.COMPLETED


@COMBINATIONS
async def test_a_plain_answer_over_the_limit_is_refused_by_its_length(
    anyio_backend: str, http_backend: str
) -> None:
    """No compression: a Content-Length over the limit is refused before the body is read."""
    answer = _job_answer(3 * MiB)
    async with (
        answering(answer, {"Content-Type": "application/json"}) as url,
        client(url, http_backend, max_response_bytes=1 * MiB) as mediax,
    ):
        peak, outcome = await peak_while(mediax, "j-1")
    assert isinstance(outcome, ResponseError), outcome
    assert peak < 3 * MiB


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "32"])
def test_a_bad_max_response_bytes_is_a_configuration_error(value: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_response_bytes"):
        MediaXClient("id", "key", max_response_bytes=value)
