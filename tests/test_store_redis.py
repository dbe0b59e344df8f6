"""The store contract (``store_contract.py``) on ``RedisStore``, against a real redis-server.

Each test gets its own namespace on one server for the module; the contract
runs on asyncio and on trio (coredis runs on anyio).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from dropping_proxy import dropping_proxy
from redis_server import RedisServer
from store_contract import *  # noqa: F403 - the contract's tests run here
from store_contract import ManualClock, job

from mediax_async import PendingStore, State
from mediax_async.stores import Reschedule, Settle, Submission, TicketStatus, Watch

pytest.importorskip("coredis")

import coredis

from mediax_async.redis import RedisStore

pytestmark = pytest.mark.anyio
_namespaces = itertools.count()
T = TypeVar("T")


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the module."""
    with RedisServer(Path(tmp_path_factory.mktemp("redis"))) as server:
        yield server


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_store(redis_server: RedisServer) -> object:
    """RedisStore on the contract's clock, in a namespace of its own (the contract closes it)."""

    async def make(clock: ManualClock, **options: Any) -> PendingStore:
        store = RedisStore.from_url(
            redis_server.url, namespace=f"contract-{next(_namespaces)}", clock=clock, **options
        )
        await store.__aenter__()
        return store

    return make


async def raw_client(server: RedisServer) -> coredis.Redis[bytes]:
    """A plain client on the server, as a foreign writer (or an operator) uses it."""
    client: coredis.Redis[bytes] = coredis.Redis.from_url(server.url, decode_responses=False)
    await client.__aenter__()
    return client


async def test_a_malformed_results_entry_is_skipped_acknowledged_and_logged(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Foreign or corrupt entries in the results stream: skipped by every reader, never again.

    Followers go on past them; a group acknowledges them (no redelivery) and
    each is logged once per reader at WARNING, without its contents.
    """
    clock = ManualClock()
    namespace = f"contract-{next(_namespaces)}"
    store = RedisStore.from_url(redis_server.url, namespace=namespace, clock=clock)
    raw = await raw_client(redis_server)
    try:
        await store.__aenter__()
        _, cursor = await store.follow_results(None, 10, 0.0)
        stream = f"mediax:{{{namespace}}}:res"
        await raw.xadd(stream, {"foreign": "x"})
        await raw.xadd(stream, {"i": "bad-json", "k": "", "b": "not json s3cr3t"})
        await raw.xadd(stream, {"i": "bad-job", "k": "", "b": '{"job": {"id": 5}}'})
        await raw.xadd(stream, {"i": "bad-error", "k": "", "b": '{"error": 7}'})
        await store.apply([Settle("good", None, job("good", State.COMPLETED))])
        with caplog.at_level(logging.WARNING, logger="mediax_async"):
            entries, cursor = await store.follow_results(cursor, 10, 0.0)
            assert [e.settlement.job_id for e in entries] == ["good"]
            assert await store.follow_results(cursor, 10, 0.0) == ([], cursor)
            read = await store.read_results("g", "c1", 10, 0.0)
            assert [e.settlement.job_id for e in read] == ["good"]
            await store.ack_results("g", [e.entry_id for e in read])
            clock.advance(61.0)
            assert await store.read_results("g", "c2", 10, 0.0) == []
        pending = await raw.xpending(stream, "g")
        assert pending.pending == 0
        warned = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warned) == 8  # four entries, each once by the follower and once by the group
        assert all("malformed" in r.getMessage() for r in warned)
        assert not any("s3cr3t" in r.getMessage() for r in warned)
    finally:
        await store.aclose()  # entered last, left first (coredis clients hold task groups)
        await raw.__aexit__(None, None, None)


async def test_trimming_the_results_stream_keeps_what_a_group_has_not_read(
    redis_server: RedisServer,
) -> None:
    """``results_limit`` trims only entries every group has read and acknowledged.

    A group's unread and unacknowledged entries are kept past the limit (up to
    ``results_hard_limit``, for a group nobody reads any more); once the group
    has them all, the stream is trimmed back to the limit. (Hundreds of
    entries: Redis trims whole nodes of a hundred at a time.)
    """
    clock = ManualClock()
    namespace = f"contract-{next(_namespaces)}"
    options: dict[str, Any] = {"results_limit": 3, "results_hard_limit": 400}
    store = RedisStore.from_url(redis_server.url, namespace=namespace, clock=clock, **options)
    raw = await raw_client(redis_server)
    stream = f"mediax:{{{namespace}}}:res"

    async def settle(prefix: str, count: int) -> list[str]:
        ids = [f"{prefix}{n}" for n in range(count)]
        await store.apply([Settle(i, None, job(i, State.COMPLETED)) for i in ids])
        return ids

    try:
        await store.__aenter__()
        first = await settle("a", 2)
        (held,) = await store.read_results("g", "dies", 1, 0.0)  # read, never acknowledged
        later = await settle("b", 250)
        read = await store.read_results("g", "c1", 300, 0.0)
        assert [e.settlement.job_id for e in read] == first[1:] + later
        await store.ack_results("g", [e.entry_id for e in read])
        clock.advance(61.0)
        back = await store.read_results("g", "c1", 300, 0.0)
        assert [e.settlement.job_id for e in back] == [held.settlement.job_id] == ["a0"]
        await store.ack_results("g", [e.entry_id for e in back])
        await settle("c", 1)
        assert await raw.xlen(stream) == 3  # all read: back to the limit
        await store.read_results("g", "c1", 1, 0.0)  # "g" takes one and is never seen again
        await settle("d", 600)
        assert await raw.xlen(stream) <= 400
    finally:
        await store.aclose()
        await raw.__aexit__(None, None, None)


async def test_a_call_retried_after_its_answer_was_lost_does_not_run_twice(
    redis_server: RedisServer,
) -> None:
    """The connection drops after a script ran: the retried call gets the first answer.

    Run twice, a settlement would be refused (the caller never reports it), a
    submission just begun would be busy, a finished one refused, a claim
    lost (its jobs leased to no one until the lease ends).
    """
    clock = ManualClock()
    namespace = f"contract-{next(_namespaces)}"
    with anyio.fail_after(60):  # a bound: every call answers at once
        async with dropping_proxy(redis_server.port) as proxy:
            store = RedisStore.from_url(proxy.url, namespace=namespace, clock=clock)
            await store.__aenter__()
            try:

                async def lost_once(call: Callable[[], Awaitable[T]]) -> T:
                    proxy.arm()
                    dropped = proxy.dropped
                    answer = await call()
                    assert proxy.dropped == dropped + 1
                    return answer

                await store.watch([Watch("warm", 0.0)])  # loads the scripts first
                await store.claim(10, 30.0)
                await store.begin_submission(Submission("warm", "cid", {}), 60.0)
                ticket = await lost_once(
                    lambda: store.begin_submission(Submission("k1", "cid", {}), 60.0)
                )
                assert (ticket.status, ticket.fence, ticket.attempts) == (
                    TicketStatus.SEND,
                    1,
                    0,
                )
                finished = await lost_once(
                    lambda: store.finish_submission("k1", ticket.fence, Watch("j1", 0.0, key="k1"))
                )
                assert finished
                batch = await lost_once(lambda: store.claim(10, 30.0))
                (claimed,) = [c for claim in batch.claims for c in claim.jobs]
                assert claimed.job_id == "j1"
                again = Reschedule("j1", claimed.fence, 0.0, State.PROCESSING, 1, 0)
                assert await lost_once(lambda: store.apply([again])) == [True]
                (claim,) = (await store.claim(10, 30.0)).claims
                fence = claim.jobs[0].fence
                done = Settle("j1", fence, job("j1", State.COMPLETED))
                assert await lost_once(lambda: store.apply([done])) == [True]
                entries = await store.read_results("g", "c", 10, 0.0)
                assert [e.settlement.job_id for e in entries] == ["j1"]  # one entry
            finally:
                await store.aclose()


async def test_watching_again_a_job_whose_due_time_was_evicted_makes_it_due(
    redis_server: RedisServer,
) -> None:
    """One key lost (``due`` evicted): a job watched again is due at once, not stuck unpolled."""
    clock = ManualClock()
    namespace = f"contract-{next(_namespaces)}"
    store = RedisStore.from_url(redis_server.url, namespace=namespace, clock=clock)
    raw = await raw_client(redis_server)
    try:
        await store.__aenter__()
        await store.watch([Watch("j1", 500.0, "t")])
        await raw.delete([f"mediax:{{{namespace}}}:due"])
        assert (await store.claim(10, 30.0)).next_due is None  # what the waiter notices
        assert await store.watch([Watch("j1", 500.0, "t")]) == [None]
        (claim,) = (await store.claim(10, 30.0)).claims
        assert [c.job_id for c in claim.jobs] == ["j1"]
    finally:
        await store.aclose()
        await raw.__aexit__(None, None, None)


async def test_a_store_emptied_under_it_keeps_its_own_limits(redis_server: RedisServer) -> None:
    """After FLUSHDB the store's options (here ``results_limit``) still hold, not the defaults."""
    namespace = f"contract-{next(_namespaces)}"
    store = RedisStore.from_url(redis_server.url, namespace=namespace, results_limit=3)
    raw = await raw_client(redis_server)
    try:
        await store.__aenter__()
        await raw.flushdb()
        ids = [f"j{n}" for n in range(300)]
        await store.apply([Settle(i, None, job(i, State.COMPLETED)) for i in ids])
        assert await raw.xlen(f"mediax:{{{namespace}}}:res") == 3
    finally:
        await store.aclose()
        await raw.__aexit__(None, None, None)
