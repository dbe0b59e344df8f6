"""JobWaiter against the fake service, in virtual time (trio MockClock through anyio)."""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import anyio.lowlevel
import pytest
import thousand_jobs
import trio.testing

from mediax_async import (
    AuthenticationError,
    Job,
    JobCanceledError,
    JobFailedError,
    LearningPollPolicy,
    MediaXClient,
    NotFoundError,
    PollPolicy,
    State,
    WaitTimeoutError,
    separation_request,
)
from mediax_async.testing import (
    FakeMediaX,
    FixedDuration,
    LogNormalDuration,
    Profile,
    Schedule,
)
from mediax_async.testing import Fault as F

pytestmark = pytest.mark.anyio

EXACT = PollPolicy(
    first_delay=1.0,
    initial_interval=2.0,
    multiplier=2.0,
    max_interval=10.0,
    submitted_factor=1.0,
    jitter="none",
)


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Every test here runs on trio with a clock that jumps whenever all tasks sleep."""
    return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})


def fixed(queue: float, processing: float, **rates: float) -> Schedule:
    return Schedule(
        default=Profile(queue=FixedDuration(queue), processing=FixedDuration(processing), **rates)
    )


async def submit(client: MediaXClient, count: int = 1, **kwargs: Any) -> list[Job]:
    return [
        await client.create_job(
            separation_request(f"https://songs.test/{n}.mp3", content_id="repo", **kwargs)
        )
        for n in range(count)
    ]


def get_job_times(fake: FakeMediaX, start: float) -> list[float]:
    return [round(r.at - start, 6) for r in fake.requests if r.action == "GetJob"]


@pytest.mark.parametrize(
    ("policy", "tag"),
    [
        pytest.param(None, None, id="default-policy"),
        pytest.param(LearningPollPolicy(), None, id="learning-policy"),
        pytest.param(None, "one-batch", id="batch-polling"),
    ],
)
async def test_thousand_jobs_with_faults_each_end_once_with_the_right_outcome(
    policy: LearningPollPolicy | None, tag: str | None
) -> None:
    """1,000 jobs with random durations, failures and 10% injected faults: none lost, none twice."""
    fake = FakeMediaX(seed=7, schedule=thousand_jobs.SCHEDULE, record_requests=False)
    thousand_jobs.inject_faults(fake)
    async with fake.client() as client:
        jobs = await submit(client, thousand_jobs.JOBS, custom_id=tag)
        seen, stats = await thousand_jobs.wait_for_each(client, fake, jobs, policy)
    thousand_jobs.check_each_ended_once(fake, jobs, seen, stats, batch_polling=tag is not None)


async def test_the_exact_poll_schedule_of_a_policy() -> None:
    """Polls come at first_delay, then intervals growing by the multiplier up to the cap."""
    fake = FakeMediaX(schedule=fixed(queue=0, processing=40))
    async with fake.client() as client:
        (job,) = await submit(client)
        start = anyio.current_time()
        async with client.waiter(policy=EXACT) as waiter:
            done = await waiter.wait(job)
    assert done.state == State.COMPLETED
    assert get_job_times(fake, start) == [1, 3, 7, 15, 25, 35, 45]


async def test_submitted_jobs_are_polled_more_slowly_than_processing_ones() -> None:
    """While queued, a job is polled submitted_factor times less often."""
    fake = FakeMediaX(schedule=fixed(queue=30, processing=100))
    policy = PollPolicy(
        first_delay=1,
        initial_interval=2,
        multiplier=2,
        max_interval=10,
        submitted_factor=3,
        jitter="none",
    )
    async with fake.client() as client:
        (job,) = await submit(client)
        start = anyio.current_time()
        async with client.waiter(policy=policy) as waiter:
            with anyio.move_on_after(60):
                await waiter.wait(job)
    # SUBMITTED until t=30: 1, then +6, +12, +24 (=43); PROCESSING after: capped 10 s steps.
    assert get_job_times(fake, start) == [1, 7, 19, 43, 53]


async def test_wait_timeout_gives_the_last_seen_job_and_others_go_on() -> None:
    """A per-wait timeout raises WaitTimeoutError with the last state seen; the job is not lost."""
    fake = FakeMediaX(schedule=fixed(queue=1, processing=100))
    async with fake.client() as client:
        slow, other = await submit(client, 2)
        async with client.waiter(policy=EXACT) as waiter:
            start = anyio.current_time()
            with pytest.raises(WaitTimeoutError) as caught:
                await waiter.wait(slow, timeout=20)
            assert anyio.current_time() - start == pytest.approx(20)
            assert caught.value.job is not None
            assert caught.value.job.state == State.PROCESSING
            assert caught.value.job_id == slow.id
            assert (await waiter.wait(other)).state == State.COMPLETED
            assert (await waiter.wait(slow)).state == State.COMPLETED


async def test_waiter_deadline_ends_every_wait() -> None:
    """A deadline for the whole waiter bounds every wait in it."""
    fake = FakeMediaX(schedule=fixed(queue=0, processing=1000))
    async with fake.client() as client:
        jobs = await submit(client, 3)
        start = anyio.current_time()
        async with client.waiter(deadline=50) as waiter:
            with pytest.raises(WaitTimeoutError, match="3 job"):
                await waiter.wait_all(jobs)
            with pytest.raises(WaitTimeoutError):
                await waiter.wait(jobs[0], timeout=500)
        assert anyio.current_time() - start == pytest.approx(50)


async def test_a_429_slows_the_whole_waiter() -> None:
    """After a 429 with Retry-After, no job is polled until it has passed, then polling resumes."""
    fake = FakeMediaX(schedule=fixed(queue=0, processing=30))
    fake.faults.retry_after = 12
    async with fake.client() as client:
        jobs = await submit(client, 5)
        start = anyio.current_time()
        fake.faults.inject(F.RATE_LIMITED, action="GetJob", times=1)
        async with client.waiter(policy=EXACT, max_concurrency=1) as waiter:
            done = await waiter.wait_all(jobs)
        stats = waiter.stats
    assert [job.state for job in done] == [State.COMPLETED] * 5
    assert stats.rate_limited == 1
    times = get_job_times(fake, start)
    # The first poll (t=1) got the 429; the next request of any job waits until t=13.
    assert times[0] == 1
    assert times[1] >= 13


async def test_jobs_can_be_added_while_others_are_waited_on() -> None:
    """A job added mid-wait is watched too, and each wait gets its own job."""
    fake = FakeMediaX(schedule=fixed(queue=0, processing=10))
    async with fake.client() as client:
        (first,) = await submit(client)
        results: dict[str, Job] = {}
        async with client.waiter(policy=EXACT) as waiter, anyio.create_task_group() as tasks:

            async def wait_for(job: Job) -> None:
                results[job.id] = await waiter.wait(job)

            tasks.start_soon(wait_for, first)
            await anyio.sleep(5)
            (second,) = await submit(client)
            tasks.start_soon(wait_for, second)
    assert {job.id: job.state for job in results.values()} == {
        first.id: State.COMPLETED,
        second.id: State.COMPLETED,
    }


async def test_wait_all_returns_jobs_in_the_order_given() -> None:
    """wait_all keeps the caller's order whatever order the jobs end in."""
    fake = FakeMediaX(
        schedule=Schedule(default=Profile(processing=LogNormalDuration(median=30, sigma=1.5))),
        seed=3,
    )
    async with fake.client() as client:
        jobs = await submit(client, 20)
        async with client.waiter() as waiter:
            done = await waiter.wait_all(list(reversed(jobs)))
    assert [job.id for job in done] == [job.id for job in reversed(jobs)]


async def test_failed_and_canceled_jobs_are_returned_or_raised_on_request() -> None:
    """ERROR and CANCELED come back as jobs; raise_on_failure turns them into errors."""
    fake = FakeMediaX(schedule=fixed(queue=0, processing=5))
    async with fake.client() as client:
        failed, canceled = await submit(client, 2)
        fake.force_state(failed.id, State.ERROR)
        fake.force_state(canceled.id, State.CANCELED)
        async with client.waiter() as waiter:
            assert (await waiter.wait(failed)).state == State.ERROR
            assert (await waiter.wait(canceled)).state == State.CANCELED
        async with client.waiter(raise_on_failure=True) as waiter:
            with pytest.raises(JobFailedError) as failure:
                await waiter.wait(failed.id)
            assert failure.value.job.id == failed.id
            with pytest.raises(JobCanceledError):
                await waiter.wait(canceled.id)
            outcomes = await waiter.wait_all([failed, canceled], return_exceptions=True)
            assert [type(o) for o in outcomes] == [JobFailedError, JobCanceledError]


async def test_an_unknown_job_ends_alone_with_not_found() -> None:
    """A job the service does not know ends its own wait with NotFoundError; others complete."""
    fake = FakeMediaX(schedule=fixed(queue=0, processing=5))
    async with fake.client() as client:
        (job,) = await submit(client)
        async with client.waiter() as waiter:
            outcomes = await waiter.wait_all([job, "no-such-job"], return_exceptions=True)
    assert outcomes[0].state == State.COMPLETED
    assert isinstance(outcomes[1], NotFoundError)
    assert outcomes[1].job_id == "no-such-job"
    assert outcomes[1].status_code == 404


async def test_rejected_credentials_end_every_wait_at_once() -> None:
    """Wrong credentials end all waits with AuthenticationError after the first answer."""
    fake = FakeMediaX(schedule=fixed(queue=0, processing=500))
    async with fake.client() as client:
        jobs = await submit(client, 3)
    wrong = MediaXClient(
        fake.secret_id, "not-the-key", base_url=fake.base_url, http_client=fake.http_client()
    )
    async with wrong:
        start = anyio.current_time()
        async with wrong.waiter() as waiter:
            with pytest.raises(AuthenticationError):
                await waiter.wait_all(jobs)
            with pytest.raises(AuthenticationError):
                await waiter.wait(jobs[0])
        assert anyio.current_time() - start < 5


async def test_resume_from_pending_after_a_restart_never_recreates() -> None:
    """pending() survives JSON; a new waiter takes the jobs up and no CreateJob is sent again."""
    fake = FakeMediaX(schedule=fixed(queue=10, processing=100))
    async with fake.client() as client:
        jobs = await submit(client, 4)
        async with client.waiter() as first:
            for job in jobs:
                await first.add(job)
            await anyio.sleep(30)
        saved = json.dumps(await first.pending())  # still known once the waiter has closed
        assert fake.request_counts["CreateJob"] == 4
        records = json.loads(saved)
        assert sorted(r["id"] for r in records) == sorted(job.id for job in jobs)
        assert {r["state"] for r in records} == {State.PROCESSING}
        async with client.waiter() as second:
            ids = await second.resume(records)
            done = await second.wait_all(ids)
    assert [job.state for job in done] == [State.COMPLETED] * 4
    assert fake.request_counts["CreateJob"] == 4


async def test_a_failing_hook_is_logged_and_the_waiter_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An exception in a user's hook is logged and counted, never fatal."""
    fake = FakeMediaX(schedule=fixed(queue=2, processing=5))
    changes: list[tuple[State | None, State]] = []

    def on_change(job: Job, old: State | None, new: State) -> None:
        changes.append((old, new))
        raise RuntimeError("hook bug")

    async def on_settled(job_id: str, outcome: object) -> None:
        raise ValueError("async hook bug")

    async with fake.client() as client:
        (job,) = await submit(client)
        with caplog.at_level(logging.ERROR, logger="mediax_async"):
            async with client.waiter(
                policy=EXACT, on_state_change=on_change, on_settled=on_settled
            ) as waiter:
                done = await waiter.wait(job)
                await anyio.lowlevel.checkpoint()
    assert done.state == State.COMPLETED
    assert changes == [(State.SUBMITTED, State.PROCESSING), (State.PROCESSING, State.COMPLETED)]
    assert waiter.stats.hook_errors == 3
    assert "hook bug" in caplog.text
    assert "async hook bug" in caplog.text


async def test_notify_polls_at_once() -> None:
    """A callback's news makes the waiter poll that job now instead of at its next turn."""
    fake = FakeMediaX(schedule=fixed(queue=0, processing=10_000))
    async with fake.client() as client:
        (job,) = await submit(client)
        async with client.waiter(policy=EXACT) as waiter, anyio.create_task_group() as tasks:
            result: list[Job] = []

            async def wait() -> None:
                result.append(await waiter.wait(job))

            tasks.start_soon(wait)
            await anyio.sleep(100)
            fake.force_state(job.id, State.COMPLETED)
            noticed = anyio.current_time()
            assert await waiter.notify(job.id) is True
            assert await waiter.notify("unknown-job") is False
        assert result[0].state == State.COMPLETED
        assert anyio.current_time() - noticed < 0.01


async def test_client_wait_for_one_job() -> None:
    """client.wait(job) waits for one job without managing a waiter."""
    fake = FakeMediaX(schedule=fixed(queue=3, processing=30))
    async with fake.client() as client:
        (job,) = await submit(client)
        done = await client.wait(job.id)
        assert done.state == State.COMPLETED
        assert done.output_files()
        with pytest.raises(WaitTimeoutError):
            await client.wait((await submit(client))[0], timeout=5)


async def test_jobs_sharing_a_custom_id_are_refreshed_with_one_list_jobs() -> None:
    """A batch tagged with one custom id costs one ListJobs per round, not one GetJob per job."""
    fake = FakeMediaX(
        schedule=Schedule(default=Profile(processing=LogNormalDuration(median=30, sigma=1))),
        record_requests=False,
    )
    async with fake.client() as client:
        jobs = await submit(client, 100, custom_id="batch-7")
        async with client.waiter() as waiter:
            done = await waiter.wait_all(jobs)
        stats = waiter.stats
    assert [job.state for job in done] == [State.COMPLETED] * 100
    assert fake.request_counts["GetJob"] == stats.polls
    assert fake.request_counts["ListJobs"] == stats.list_polls > 0
    # Each job alone would take 6 or more GetJob polls; the whole batch takes well under one
    # request per job, the stragglers' GetJob included.
    assert (stats.polls + stats.list_polls) / 100 <= 0.5


async def test_batch_polling_falls_back_to_get_job_and_ignores_strangers() -> None:
    """ListJobs failures fall back to GetJob; other jobs with the same custom id are left alone."""
    fake = FakeMediaX(schedule=fixed(queue=0, processing=20))
    async with fake.client() as client:
        ours = await submit(client, 5, custom_id="shared")
        strangers = await submit(client, 3, custom_id="shared")
        for job in strangers:
            fake.force_state(job.id, State.CANCELED)
        fake.faults.inject(F.SERVER_ERROR, action="ListJobs", times=2)
        async with client.waiter(policy=EXACT) as waiter:
            done = await waiter.wait_all(ours)
        stats = waiter.stats
    assert [job.state for job in done] == [State.COMPLETED] * 5
    assert stats.settled == 5
    assert fake.faults.injected(action="ListJobs") == 2
    assert stats.polls >= 2  # the two failed rounds were asked by id
    assert stats.list_polls >= 1
