"""JobWaiter lifecycle on asyncio and trio: cancellation, closing, errors in the body."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

import anyio
import anyio.lowlevel
import pytest
from anyio import wait_all_tasks_blocked

from mediax_async import (
    Job,
    LearningPollPolicy,
    MediaXError,
    PollPolicy,
    State,
    WaiterClosedError,
    separation_request,
)
from mediax_async.testing import FakeMediaX, FixedDuration, Profile, Schedule

pytestmark = pytest.mark.anyio

NEVER_ENDS = Schedule(default=Profile(queue=FixedDuration(0), processing=FixedDuration(1e9)))


def task_ids() -> set[int]:
    return {task.id for task in anyio.get_running_tasks()}


async def submit(fake: FakeMediaX, count: int) -> list[Job]:
    async with fake.client() as client:
        return [
            await client.create_job(separation_request(f"https://s.test/{n}", content_id="r"))
            for n in range(count)
        ]


async def test_cancelling_one_wait_leaves_the_others_running() -> None:
    """A wait cancelled by its caller stops that job's polling; the other wait goes on."""
    fake = FakeMediaX(schedule=NEVER_ENDS)
    cancelled, kept = await submit(fake, 2)
    outcome: list[Job] = []
    async with fake.client() as client, client.waiter() as waiter:
        scope = anyio.CancelScope()
        async with anyio.create_task_group() as tasks:

            async def wait_cancelled() -> None:
                with scope:
                    await waiter.wait(cancelled)

            async def wait_kept() -> None:
                outcome.append(await waiter.wait(kept))

            tasks.start_soon(wait_cancelled)
            tasks.start_soon(wait_kept)
            await wait_all_tasks_blocked()
            scope.cancel()
            await wait_all_tasks_blocked()
            # Still pending (it has not ended), but no longer polled.
            pending = {p["id"]: p["polled"] for p in await waiter.pending()}
            assert pending == {cancelled.id: False, kept.id: True}
            fake.force_state(kept.id, State.COMPLETED)
            await waiter.notify(kept.id)
    assert scope.cancelled_caught
    assert [job.state for job in outcome] == [State.COMPLETED]


async def test_leaving_the_block_ends_pending_waits_and_leaves_no_task() -> None:
    """Closing the waiter gives every blocked wait WaiterClosedError and stops all its tasks."""
    fake = FakeMediaX(schedule=NEVER_ENDS)
    jobs = await submit(fake, 3)
    before = task_ids()
    errors: list[BaseException] = []
    async with fake.client() as client, anyio.create_task_group() as tasks:
        waiter = client.waiter()
        async with waiter:

            async def wait(job: Job) -> None:
                try:
                    await waiter.wait(job)
                except MediaXError as exc:
                    errors.append(exc)

            for job in jobs:
                tasks.start_soon(wait, job)
            await wait_all_tasks_blocked()
        await wait_all_tasks_blocked()
    assert [type(e) for e in errors] == [WaiterClosedError] * 3
    assert sorted(e.job_id or "" for e in errors) == sorted(job.id for job in jobs)
    assert task_ids() == before


async def test_an_error_in_the_block_comes_out_unwrapped() -> None:
    """A user's exception inside `async with waiter` is raised as is, not in an ExceptionGroup."""
    fake = FakeMediaX(schedule=NEVER_ENDS)
    async with fake.client() as client:
        with pytest.raises(KeyError, match="mine"):
            async with client.waiter():
                raise KeyError("mine")


async def test_outer_cancellation_exits_cleanly() -> None:
    """A timeout around the whole waiter cancels it without errors or leftover tasks."""
    fake = FakeMediaX(schedule=NEVER_ENDS)
    (job,) = await submit(fake, 1)
    before = task_ids()
    async with fake.client() as client:
        with anyio.CancelScope() as scope:
            async with client.waiter() as waiter, anyio.create_task_group() as tasks:
                tasks.start_soon(waiter.wait, job)
                await wait_all_tasks_blocked()
                scope.cancel()
                await anyio.sleep_forever()
        assert scope.cancelled_caught
    assert task_ids() == before


async def test_a_waiter_outside_its_block_says_how_to_use_it() -> None:
    """Using a waiter that was never entered raises a clear RuntimeError."""
    fake = FakeMediaX()
    async with fake.client() as client:
        waiter = client.waiter()
        with pytest.raises(RuntimeError, match="async with"):
            await waiter.wait("some-id")


async def test_an_already_finished_job_returns_without_polling() -> None:
    """A Job passed in terminal state is returned at once, with no GetJob sent."""
    fake = FakeMediaX(schedule=NEVER_ENDS)
    (job,) = await submit(fake, 1)
    fake.force_state(job.id, State.COMPLETED)
    async with fake.client() as client:
        finished = await client.get_job(job.id)
        gets = fake.request_counts["GetJob"]
        async with client.waiter() as waiter:
            assert (await waiter.wait(finished)) is finished
        assert fake.request_counts["GetJob"] == gets


class LoopStarved(BaseException):
    """The event loop ran no other task for the guard's whole time.

    A BaseException, so that the code under test cannot take it for a failed poll.
    """


@contextlib.contextmanager
def loop_starvation_guard(seconds: float) -> Iterator[None]:
    """Raise ``LoopStarved`` in whatever runs after ``seconds`` of wall time.

    A task that never yields also blocks ``fail_after``, so a starving waiter
    would hang the suite; a signal interrupts even a loop that never yields,
    turning the hang into a failure (where there is no SIGALRM, no guard).
    """
    if not hasattr(signal, "setitimer"):
        yield
        return

    def starved(signum: int, frame: FrameType | None) -> None:
        raise LoopStarved(f"no other task ran for {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, starved)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


async def test_a_job_handed_back_after_it_settled_is_not_counted_twice() -> None:
    """Jobs from as_completed waited for again: not counted, reported or learned twice."""
    fake = FakeMediaX(schedule=Schedule.instant())
    jobs = await submit(fake, 3)
    settled: list[str] = []
    # Instant jobs, and a first poll at once: nothing here waits on the wall clock.
    policy = LearningPollPolicy(min_samples=2, fallback=PollPolicy(first_delay=0))
    async with (
        fake.client() as client,
        client.waiter(policy=policy, on_settled=lambda job_id, _: settled.append(job_id)) as waiter,
    ):
        async with waiter.as_completed(jobs) as stream:
            finished = [job async for job in stream]
        gets = fake.request_counts["GetJob"]
        again = await waiter.wait_all(finished)
        by_id = await waiter.wait(jobs[0].id)  # its outcome is kept: not asked again
    assert [job.id for job in again] == [job.id for job in finished]
    assert by_id.id == jobs[0].id
    assert fake.request_counts["GetJob"] == gets
    assert (waiter.stats.settled, waiter.stats.completed) == (3, 3)
    assert sorted(settled) == sorted(job.id for job in jobs)
    assert len(policy.samples("musicSeperate")) == 3


async def test_a_finished_job_from_elsewhere_is_counted_and_reported() -> None:
    """A job that ended before this waiter saw it still counts as settled here, once."""
    fake = FakeMediaX(schedule=Schedule.instant())
    (job,) = await submit(fake, 1)
    settled: list[str] = []
    async with fake.client() as client:
        finished = await client.get_job(job.id)
        async with client.waiter(on_settled=lambda job_id, _: settled.append(job_id)) as waiter:
            await waiter.wait(finished)
            await waiter.wait(finished)
    assert settled == [job.id]
    assert waiter.stats.settled == 1


async def test_a_zero_delay_policy_does_not_starve_other_tasks() -> None:
    """Polling with no delay through an in-process transport still lets other tasks run."""
    fake = FakeMediaX(schedule=NEVER_ENDS, record_requests=False)
    (job,) = await submit(fake, 1)
    eager = PollPolicy(first_delay=0, initial_interval=0, max_interval=0, jitter="none")
    with loop_starvation_guard(60):
        async with (
            fake.client() as client,
            client.waiter(policy=eager, max_concurrency=2) as waiter,
        ):
            await waiter.add(job)
            with anyio.fail_after(30):  # a guard against a hang, not a wait for time to pass
                while waiter.stats.polls < 50:
                    await anyio.lowlevel.checkpoint()
    assert waiter.stats.polls >= 50
