"""Two waiters on two ``RedisStore`` s of one namespace behave as one: a real redis-server.

Each waiter stands for a process (its own store, its own connections). The
fake service is in-process; jobs end after a fixed time, and nothing
asserted depends on how fast the machine is: polls can only come later on a
busy machine, never more often.
"""

from __future__ import annotations

import errno
import itertools
import json
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from redis_server import RedisServer
from store_contract import ManualClock, job

from mediax_async import CallbackReceiver, PollPolicy, State
from mediax_async.stores import Settle, Watch
from mediax_async.testing import FakeMediaX, FixedDuration, Profile, Schedule

pytest.importorskip("coredis")

import coredis

from mediax_async.redis import RedisStore

pytestmark = pytest.mark.anyio
_namespaces = itertools.count()
FAST = PollPolicy(first_delay=0.05, initial_interval=0.1, multiplier=1.0, max_interval=0.1)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(Path(tmp_path_factory.mktemp("redis"))) as server:
        yield server


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def namespace() -> str:
    return f"share-{next(_namespaces)}"


@asynccontextmanager
async def two_stores(
    server: RedisServer, namespace: str, **options: object
) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    async with (
        RedisStore.from_url(server.url, namespace=namespace, **options) as one,  # type: ignore[arg-type]
        RedisStore.from_url(server.url, namespace=namespace, **options) as two,  # type: ignore[arg-type]
    ):
        yield one, two


async def test_two_waiters_share_the_polling_of_their_jobs(
    redis_server: RedisServer, namespace: str
) -> None:
    """Jobs added on either waiter are polled once per round between them, and end both's waits."""
    duration = 0.45
    fake = FakeMediaX(
        seed=1,
        schedule=Schedule(
            default=Profile(queue=FixedDuration(0), processing=FixedDuration(duration))
        ),
    )
    async with fake.client() as client, two_stores(redis_server, namespace) as (one, two):
        jobs = [
            await client.submit_separation(f"https://e.com/{n}.mp3", content_id="r")
            for n in range(20)
        ]
        async with (
            client.waiter(store=one, policy=FAST, max_concurrency=4) as a,
            client.waiter(store=two, policy=FAST, max_concurrency=4) as b,
        ):
            for n, created in enumerate(jobs):
                await (a if n % 2 else b).add(created)
            with anyio.fail_after(30):  # a bound, not a wait: jobs end in half a second
                ended_a = await a.wait_all(jobs)
                ended_b = await b.wait_all(jobs)
    assert {j.state for j in ended_a} == {j.state for j in ended_b} == {State.COMPLETED}
    polls = Counter(r.body["getJobRequest"]["id"] for r in fake.requests if r.action == "GetJob")
    # One waiter alone: at most one poll per 0.1 s of the job's life, plus the one that sees it end.
    most = int(duration / 0.1) + 2
    assert max(polls.values()) <= most, polls
    assert a.stats.polls > 0
    assert b.stats.polls > 0  # both did part of the work


async def test_a_429_in_one_process_pauses_polling_in_all(
    redis_server: RedisServer, namespace: str
) -> None:
    """A pause set through one store holds every claim through the other, until it ends."""
    clock = ManualClock()
    async with two_stores(redis_server, namespace, clock=clock) as (one, two):
        await two.watch([Watch("j1", 0.0)])
        await one.pause(30.0)
        held = await two.claim(10, 60.0)
        assert held.claims == []
        assert 29.0 < held.paused <= 30.0
        clock.advance(30.5)
        (claim,) = (await two.claim(10, 60.0)).claims
        assert [c.job_id for c in claim.jobs] == ["j1"]


async def test_a_callback_taken_by_any_process_ends_the_wait_in_the_one_that_waits(
    redis_server: RedisServer, namespace: str
) -> None:
    """A receiver attached to waiter B settles a job only waiter A waits for (trusted callbacks)."""
    fake = FakeMediaX(
        seed=2,
        schedule=Schedule(default=Profile(queue=FixedDuration(0), processing=FixedDuration(1e9))),
    )
    slow = PollPolicy(first_delay=3600, initial_interval=3600, max_interval=3600)
    receiver = CallbackReceiver()
    async with fake.client() as client, two_stores(redis_server, namespace) as (one, two):
        created = await client.submit_separation("https://e.com/a.mp3", content_id="r")
        async with (
            client.waiter(store=one, policy=slow) as a,
            client.waiter(store=two, policy=slow, trust_callbacks=True) as b,
        ):
            receiver.attach(b)
            await a.add(created)
            fake.force_state(created.id, State.COMPLETED)
            done = fake.job(created.id)
            from mediax_async import parse_job

            assert await receiver.deliver(parse_job(done))
            with anyio.fail_after(10):
                ended = await a.wait(created)
    assert ended.state == State.COMPLETED
    assert not [r for r in fake.requests if r.action == "GetJob"]  # settled by the callback alone


async def test_results_unacknowledged_by_a_dead_reader_go_to_a_reader_elsewhere(
    redis_server: RedisServer, namespace: str
) -> None:
    """A group's entries read in one process and never acknowledged are redelivered in another."""
    clock = ManualClock()
    async with two_stores(redis_server, namespace, clock=clock) as (one, two):
        await one.apply([Settle(f"j{n}", None, job(f"j{n}", State.COMPLETED)) for n in range(3)])
        taken = await one.read_results("batch", "dies", 10, 0.0)
        assert [e.settlement.job_id for e in taken] == ["j0", "j1", "j2"]
        assert await two.read_results("batch", "lives", 10, 0.0) == []
        clock.advance(61.0)  # "dies" never acknowledged them
        back = await two.read_results("batch", "lives", 10, 0.0)
        assert [e.settlement.job_id for e in back] == ["j0", "j1", "j2"]
        await two.ack_results("batch", [e.entry_id for e in back])
        clock.advance(61.0)
        assert await one.read_results("batch", "third", 10, 0.0) == []


async def test_a_settlement_is_acknowledged_only_once_its_record_is_written(
    redis_server: RedisServer, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch whose record write fails (a full disk, a kill) loses no line: a rerun has it.

    The write waits until the settlement would be acknowledged (or 0.5 s) and
    then fails: acknowledged before it was written, the rerun could never see it.
    """
    from mediax_async._batch import BatchRunner
    from mediax_async._batch._results import ResultsFile

    fake = FakeMediaX(
        seed=3,
        schedule=Schedule(default=Profile(queue=FixedDuration(0), processing=FixedDuration(0.1))),
    )
    source, results = tmp_path / "jobs.jsonl", tmp_path / "jobs.results.jsonl"
    song = {"kind": "separation", "content_id": "r"}
    lines = [{**song, "song": f"https://e.com/{n}.mp3"} for n in range(3)]
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    acked = threading.Event()
    real_write = ResultsFile.write

    def full_disk(self: ResultsFile, result: object) -> None:
        acked.wait(0.5)
        raise OSError(errno.ENOSPC, "No space left on device")

    async with (
        fake.client() as client,
        two_stores(redis_server, namespace, claim_idle=0.2) as (
            one,
            two,
        ),
    ):
        real_ack = one.ack_results

        async def ack_results(group: str, entry_ids: Sequence[str]) -> None:
            acked.set()
            await real_ack(group, entry_ids)

        monkeypatch.setattr(one, "ack_results", ack_results)
        monkeypatch.setattr(ResultsFile, "write", full_disk)
        with anyio.fail_after(20), pytest.raises(OSError, match="No space"):
            await BatchRunner(client, source, results, policy=FAST, store=one).run()
        monkeypatch.setattr(ResultsFile, "write", real_write)
        with anyio.fail_after(20):
            summary = await BatchRunner(client, source, results, policy=FAST, store=two).run()
    assert summary.all_completed
    recorded = [json.loads(text) for text in results.read_text().splitlines()[1:]]
    assert sorted(r["line"] for r in recorded) == [1, 2, 3]
    assert fake.request_counts["CreateJob"] == 3


async def test_a_reader_without_a_group_gets_each_settlement_once(
    redis_server: RedisServer, namespace: str
) -> None:
    """``completed()`` on a shared store: a job settled here is not repeated by the store's feed.

    A last job, settled through the other store, comes after the others in the
    results stream: once the reader has it, the feed has brought everything before.
    """
    fake = FakeMediaX(
        seed=4,
        schedule=Schedule(default=Profile(queue=FixedDuration(0), processing=FixedDuration(0.1))),
    )
    async with fake.client() as client, two_stores(redis_server, namespace) as (one, two):
        jobs = [
            await client.submit_separation(f"https://e.com/{n}.mp3", content_id="r")
            for n in range(6)
        ]
        async with client.waiter(store=one, policy=FAST) as waiter:
            seen: list[str] = []
            async with waiter.completed() as reader:
                for created in jobs:
                    await waiter.add(created)
                with anyio.fail_after(30):  # a bound, not a wait: jobs end in 0.1 s
                    await waiter.wait_all(jobs)
                    await two.apply([Settle("last", None, job("last", State.COMPLETED))])
                    async for settlement in reader:
                        seen.append(settlement.job_id)
                        if settlement.job_id == "last":
                            break
    assert Counter(seen) == Counter([j.id for j in jobs] + ["last"])


async def test_a_wait_survives_the_store_being_emptied_under_it(
    redis_server: RedisServer, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    """FLUSHDB (or every key evicted) under a waiting process: its jobs are watched again.

    The waiter sees the store hold nothing while it still waits, says so at
    WARNING, watches every job it waits for again, and the waits end when
    the jobs do.
    """
    fake = FakeMediaX(
        seed=5,
        schedule=Schedule(default=Profile(queue=FixedDuration(0), processing=FixedDuration(1e9))),
    )
    operator: coredis.Redis[bytes] = coredis.Redis.from_url(redis_server.url)
    async with fake.client() as client, operator, two_stores(redis_server, namespace) as (one, _):
        jobs = [
            await client.submit_separation(f"https://e.com/{n}.mp3", content_id="r")
            for n in range(3)
        ]
        async with (
            client.waiter(store=one, policy=FAST) as waiter,
            waiter.as_completed(jobs) as stream,  # watched from here on
        ):
            await operator.flushdb()  # the operator's FLUSHDB, or an eviction of everything
            for created in jobs:
                fake.force_state(created.id, State.COMPLETED)
            with anyio.fail_after(20):  # a bound, not a wait: polled again within a second
                ended = [j async for j in stream]
    assert {j.state for j in ended} == {State.COMPLETED}
    assert len(ended) == 3
    assert any("watching them again" in r.getMessage() for r in caplog.records)
