"""The waiter on its store, in virtual time: what it once knew it does not forget.

Early news, kept outcomes, submissions through the store (with a resume
after the process "died" mid-CreateJob), ``completed()``, and the
guarantees a waiter gives when polls fail or waits are abandoned.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections import Counter
from typing import Any

import anyio
import httpx
import pytest
import trio.testing

from mediax_async import (
    AuthenticationError,
    Job,
    JobSource,
    MediaXClient,
    MediaXError,
    MemoryStore,
    PollPolicy,
    ResponseError,
    State,
    TransportError,
    WaitTimeoutError,
    separation_request,
)
from mediax_async._callbacks import CALLBACK_POLL_POLICY, CallbackReceiver
from mediax_async.testing import FakeMediaX, FixedDuration, LogNormalDuration, Profile, Schedule
from mediax_async.testing import Fault as F

pytestmark = pytest.mark.anyio

PUBLIC = "http://receiver.test"
EXACT = PollPolicy(
    first_delay=1.0, initial_interval=2.0, multiplier=2.0, max_interval=10.0, jitter="none"
)


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Every test here runs on trio with a clock that jumps whenever all tasks sleep."""
    return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})


def fixed(queue: float, processing: float) -> Schedule:
    return Schedule(
        default=Profile(queue=FixedDuration(queue), processing=FixedDuration(processing))
    )


async def create(client: MediaXClient, count: int, **kwargs: Any) -> list[Job]:
    return [
        await client.create_job(
            separation_request(f"https://s.test/{n}.mp3", content_id="r", **kwargs)
        )
        for n in range(count)
    ]


async def test_callbacks_before_the_wait_are_kept_and_settle_it_at_once() -> None:
    """200 jobs created with a callback first, waited for after: each settles within 1 s of it."""
    schedule = Schedule(default=Profile(processing=LogNormalDuration(median=60, sigma=1)))
    fake = FakeMediaX(seed=5, schedule=schedule, record_requests=False)
    receiver = CallbackReceiver()
    callback_at: dict[str, float] = {}
    settled_at: dict[str, float] = {}

    def heard(job: Job, watched: bool) -> None:
        callback_at.setdefault(job.id, anyio.current_time())

    receiver = CallbackReceiver(on_job=heard)
    async with (
        fake.running(callback_transport=httpx.ASGITransport(app=receiver)),
        fake.client() as client,
        client.waiter(
            policy=CALLBACK_POLL_POLICY,
            on_settled=lambda job_id, _: settled_at.setdefault(job_id, anyio.current_time()),
        ) as waiter,
    ):
        receiver.attach(waiter)
        url = receiver.callback_url(PUBLIC)
        jobs = await create(client, 200, callback=url)
        await anyio.sleep(120)  # many end, and call back, before anyone waits
        early = len(callback_at)
        waited_from = anyio.current_time()
        done = await waiter.wait_all(jobs)
    assert early > 50
    assert [job.state for job in done] == [State.COMPLETED] * 200
    # A wait settles within a second of its callback, or of its start if the callback came first.
    lags = [settled_at[job.id] - max(callback_at[job.id], waited_from) for job in jobs]
    assert max(lags) <= 1.0
    assert fake.request_counts["GetJob"] <= 1.1 * 200
    assert receiver.stats.unknown == early  # kept for later, not dropped


async def test_a_job_settled_after_add_is_returned_by_wait_without_a_poll() -> None:
    """A job that settled after add() and before wait() comes back at once, by Job or by id."""
    fake = FakeMediaX(schedule=fixed(0, 5))
    async with fake.client() as client:
        (job,) = await create(client, 1)
        async with client.waiter(policy=EXACT) as waiter:
            await waiter.add(job)
            await anyio.sleep(30)
            gets = fake.request_counts["GetJob"]
            by_job = await waiter.wait(job)
            by_id = await waiter.wait(job.id)
            both = await waiter.wait_all([job, job.id])
        assert fake.request_counts["GetJob"] == gets
    assert by_job.state == by_id.state == State.COMPLETED
    assert [j.state for j in both] == [State.COMPLETED] * 2
    assert waiter.stats.settled == 1


async def test_a_bare_id_is_polled_at_once_and_a_timeout_carries_what_was_seen() -> None:
    """A wait given only an id polls it at once; its WaitTimeoutError has the last job seen."""
    fake = FakeMediaX(schedule=fixed(0, 1000))
    async with fake.client() as client:
        (job,) = await create(client, 1)
        start = anyio.current_time()
        async with client.waiter(policy=EXACT) as waiter:
            with pytest.raises(WaitTimeoutError) as caught:
                await waiter.wait(job.id, timeout=0.5)
        first_poll = next(r.at for r in fake.requests if r.action == "GetJob")
    assert first_poll == pytest.approx(start)
    assert caught.value.job is not None
    assert (caught.value.job.id, caught.value.job.state) == (job.id, State.PROCESSING)


async def test_pending_after_a_cancelled_block_lists_every_unsettled_job() -> None:
    """Cancelling the waiter's block loses nothing: pending() lists every job not yet settled."""
    fake = FakeMediaX(schedule=fixed(0, 10_000), record_requests=False)
    async with fake.client() as client:
        jobs = await create(client, 295)
        waited, all_at_once, streamed, added = jobs[:5], jobs[5:100], jobs[100:200], jobs[200:]
        with anyio.CancelScope() as scope:
            async with client.waiter() as waiter, anyio.create_task_group() as tasks:
                for job in waited:
                    tasks.start_soon(waiter.wait, job)
                tasks.start_soon(waiter.wait_all, all_at_once)

                async def stream() -> None:
                    async for _ in waiter.as_completed(streamed):
                        pass

                tasks.start_soon(stream)
                for job in added:
                    await waiter.add(job)
                await anyio.sleep(60)
                scope.cancel()
        pending = await waiter.pending()
    assert sorted(p["id"] for p in pending) == sorted(job.id for job in jobs)
    assert json.loads(json.dumps(pending)) == pending


async def test_an_abandoned_as_completed_stops_polling_its_jobs() -> None:
    """as_completed cancelled without `async with` releases its jobs: they are polled no more."""
    fake = FakeMediaX(schedule=fixed(0, 10_000))
    async with fake.client() as client:
        jobs = await create(client, 3)
        async with client.waiter(policy=EXACT) as waiter:
            with anyio.move_on_after(30):
                async for _ in waiter.as_completed(jobs):
                    pass
            gets = fake.request_counts["GetJob"]
            await anyio.sleep(600)
            assert fake.request_counts["GetJob"] == gets
            assert {p["polled"] for p in await waiter.pending()} == {False}


async def test_a_dead_service_is_logged_named_and_can_end_the_waits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Polls that keep failing: a WARNING, the timeout names the error, give_up_after ends waits."""
    fake = FakeMediaX(schedule=fixed(0, 1000))
    async with fake.client() as client:
        (job,) = await create(client, 1)
        fake.faults.set_rate(F.DROP, 1.0, action="GetJob")
        with caplog.at_level(logging.WARNING, logger="mediax_async"):
            async with client.waiter(policy=EXACT) as waiter:
                with pytest.raises(WaitTimeoutError) as timed_out:
                    await waiter.wait(job, timeout=120)
        assert "polls in a row failed" in caplog.text
        assert isinstance(timed_out.value.last_error, TransportError)
        assert "TransportError" in str(timed_out.value)
        start = anyio.current_time()
        async with client.waiter(policy=EXACT, give_up_after=300) as waiter:
            with pytest.raises(TransportError):
                await waiter.wait(job)
            assert 300 <= anyio.current_time() - start <= 400
            with pytest.raises(TransportError):  # new waits end at once while it stays down
                await waiter.wait(job)
            assert [p["id"] for p in await waiter.pending()] == [job.id]  # not lost


async def test_an_answer_that_stays_unparseable_is_surfaced_too() -> None:
    """Malformed answers count as failed polls: give_up_after ends the wait with ResponseError."""
    fake = FakeMediaX(schedule=fixed(0, 1000))
    async with fake.client() as client:
        (job,) = await create(client, 1)
        fake.faults.set_rate(F.MALFORMED_JSON, 1.0, action="GetJob")
        async with client.waiter(policy=EXACT, give_up_after=200) as waiter:
            with pytest.raises(ResponseError):
                await waiter.wait(job)


async def test_rejected_credentials_give_each_wait_its_own_error() -> None:
    """200 waits ended by one rejected key each raise an exception of their own, kept short."""
    fake = FakeMediaX(schedule=fixed(0, 1000), record_requests=False)
    async with fake.client() as client:
        jobs = await create(client, 200)
    wrong = MediaXClient(
        fake.secret_id, "wrong", base_url=fake.base_url, http_client=fake.http_client()
    )
    errors: list[BaseException] = []
    async with wrong, wrong.waiter(max_concurrency=4) as waiter, anyio.create_task_group() as tasks:

        async def wait(job: Job) -> None:
            try:
                await waiter.wait(job)
            except AuthenticationError as exc:
                errors.append(exc)

        for job in jobs:
            tasks.start_soon(wait, job)
    assert len(errors) == 200
    assert len({id(e) for e in errors}) == 200
    assert max(len(traceback.extract_tb(e.__traceback__)) for e in errors) < 20


class SlowSource:
    """A JobSource that suspends on every request, as a real transport does."""

    def __init__(self, client: MediaXClient) -> None:
        self._client = client
        self.lists: Counter[str] = Counter()

    async def get_job(self, job_id: str, *, retry: bool = True) -> Job:
        await anyio.sleep(0.05)
        return await self._client.get_job(job_id, retry=retry)

    async def list_jobs(self, custom_id: str, *, retry: bool = True) -> list[Job]:
        self.lists[custom_id] += 1
        await anyio.sleep(0.5)
        return await self._client.list_jobs(custom_id, retry=retry)

    def classify_failure(self, error: Exception) -> Any:
        return self._client.classify_failure(error)


async def test_one_list_jobs_in_flight_per_batch_tag() -> None:
    """Members of a batch are listed by one worker at a time and observed once per round."""
    fake = FakeMediaX(schedule=fixed(0, 200), record_requests=False)
    async with fake.client() as client:
        jobs = await create(client, 100, custom_id="batch-1")
        source = SlowSource(client)
        assert isinstance(source, JobSource)
        from mediax_async import JobWaiter

        policy = PollPolicy(first_delay=10, initial_interval=10, multiplier=1, max_interval=10)
        async with JobWaiter(source, policy=policy, max_concurrency=16) as waiter:
            done = await waiter.wait_all(jobs)
        stats = waiter.stats
    assert [job.state for job in done] == [State.COMPLETED] * 100
    rounds = source.lists["batch-1"]
    assert 19 <= rounds <= 22  # one ListJobs every 10 s for 200 s, not one per worker
    assert stats.polls == 0
    assert (stats.list_polls + stats.polls) / 100 / rounds <= 0.012


async def test_a_submission_cut_off_after_creation_is_reconciled_on_resume() -> None:
    """A process "dies" mid-CreateJob: a waiter on its saved state finds the job, sends none."""
    fake = FakeMediaX(schedule=fixed(0, 50))
    async with fake.client() as client:
        store = MemoryStore()
        fake.faults.inject(F.ANSWER_LOST, action="CreateJob")
        fake.faults.set_rate(F.DROP, 1.0, action="ListJobs")  # the lookup cannot tell either
        async with client.waiter(store=store) as first:
            with pytest.raises(MediaXError):  # JobMayExistError, once the client says so
                await first.submit(separation_request("https://s.test/a.mp3", content_id="r"))
        saved = json.dumps(store.dump())
        assert fake.request_counts["CreateJob"] == 1
        assert len(fake.jobs) == 1
        fake.faults.set_rate(F.DROP, 0.0, action="ListJobs")
        resumed = MemoryStore.load(json.loads(saved))
        with anyio.fail_after(3600):  # virtual time: a bound, so a bug fails rather than hangs
            async with client.waiter(store=resumed) as second, second.completed() as results:
                settlement = await anext(results)
        assert fake.request_counts["CreateJob"] == 1
        (only,) = (job["id"] for job in fake.jobs)
        assert settlement.job_id == only
        assert settlement.job is not None
        assert settlement.job.state == State.COMPLETED
        assert await resumed.submissions() == {settlement.key: only}


async def test_completed_streams_every_settlement_to_every_reader() -> None:
    """completed(): each reader gets every job the waiter settles, whoever added it."""
    fake = FakeMediaX(schedule=fixed(0, 5))
    async with fake.client() as client:
        jobs = await create(client, 5)
        async with client.waiter(policy=EXACT) as waiter:
            first, second = waiter.completed(), waiter.completed()
            submitted = await waiter.submit(
                separation_request("https://s.test/x.mp3", content_id="r")
            )
            for job in jobs:
                await waiter.add(job)
            seen = [[(await anext(stream)).job_id for _ in range(6)] for stream in (first, second)]
    expected = {job.id for job in jobs} | {submitted.id}
    assert set(seen[0]) == set(seen[1]) == expected
    assert fake.request_counts["CreateJob"] == 6
