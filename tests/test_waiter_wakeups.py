"""Workers are woken one at a time, yet a job that comes due never waits for a slow poll."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import pytest
from client_helpers import virtual_time

from mediax_async import Failure, FailureKind, Job, JobWaiter, PollPolicy, State, converter
from mediax_async.stores import MemoryStore, Update

pytestmark = [pytest.mark.anyio, virtual_time()]

SLOW = 10.0
"""Seconds a poll of a slow job takes."""


def job(job_id: str) -> Job:
    return converter.structure({"id": job_id, "state": int(State.PROCESSING)}, Job)


class SlowSource:
    """Polls of ``slow`` jobs take 10 s; the first poll of ``a`` adds ``c`` to the waiter."""

    def __init__(self, slow: set[str]) -> None:
        self.slow = slow
        self.waiter: JobWaiter | None = None
        self.first_poll: dict[str, float] = {}

    async def get_job(self, job_id: str, *, retry: bool = True) -> Job:
        self.first_poll.setdefault(job_id, anyio.current_time())
        if job_id == "a" and self.waiter is not None and "c" not in self.first_poll:
            await self.waiter.add("c")  # due at once, while the other workers are parked
        if job_id in self.slow:
            await anyio.sleep(SLOW)
        return job(job_id)

    async def list_jobs(self, custom_id: str, *, retry: bool = True) -> list[Job]:
        return []

    def classify_failure(self, error: Exception) -> Failure:
        return Failure(FailureKind.RETRY)


async def test_a_job_added_while_a_woken_worker_has_yet_to_run_is_polled_at_once() -> None:
    """A job added during a slow poll is polled at once by an idle worker, not after that poll."""
    source = SlowSource(slow={"a", "b"})
    policy = PollPolicy(first_delay=0, initial_interval=60, max_interval=60)
    with anyio.fail_after(60):
        async with JobWaiter(source, policy=policy, max_concurrency=4) as waiter:
            source.waiter = waiter
            started = anyio.current_time()
            await waiter.add(job("a"))
            await waiter.add(job("b"))
            while "c" not in source.first_poll:  # noqa: ASYNC110 - virtual time, bounded above
                await anyio.sleep(0.1)
    assert source.first_poll["c"] - started < 1.0


class CountingStore(MemoryStore):
    """A MemoryStore that counts its ``apply`` calls."""

    def __init__(self) -> None:
        super().__init__()
        self.applies = 0

    async def apply(self, updates: Sequence[Update]) -> list[bool]:
        self.applies += 1
        return await super().apply(updates)


class InstantSource:
    """Answers every poll at once, without suspending (as an in-process source may)."""

    async def get_job(self, job_id: str, *, retry: bool = True) -> Job:
        return job(job_id)

    async def list_jobs(self, custom_id: str, *, retry: bool = True) -> list[Job]:
        return []

    def classify_failure(self, error: Exception) -> Failure:
        return Failure(FailureKind.RETRY)


async def test_polls_answered_without_suspending_are_written_in_one_apply() -> None:
    """A claim of 32 jobs polled back to back costs the store one write, not 32."""
    store = CountingStore()
    policy = PollPolicy(first_delay=0, initial_interval=60, max_interval=60)
    with anyio.fail_after(60):
        async with JobWaiter(
            InstantSource(), policy=policy, store=store, max_concurrency=32
        ) as waiter:
            for n in range(32):
                await waiter.add(job(f"j{n}"))
            while waiter.stats.polls < 32:  # noqa: ASYNC110 - virtual time, bounded above
                await anyio.sleep(0.1)
            applies = store.applies
    assert applies <= 2


class FastAndSlowSource(SlowSource):
    """``fast`` ends at its first poll, without suspending; polls of ``slow`` jobs take 10 s."""

    async def get_job(self, job_id: str, *, retry: bool = True) -> Job:
        if job_id == "fast":
            return converter.structure({"id": job_id, "state": int(State.COMPLETED)}, Job)
        return await super().get_job(job_id, retry=retry)


async def test_a_settlement_is_reported_at_once_though_the_worker_goes_on_to_a_slow_poll() -> None:
    """Writes gathered from polls that did not suspend reach the store once the worker does."""
    policy = PollPolicy(first_delay=0, initial_interval=60, max_interval=60)
    with anyio.fail_after(60):
        source = FastAndSlowSource(slow={"slow-1", "slow-2"})
        async with JobWaiter(source, policy=policy, max_concurrency=4) as waiter:
            started = anyio.current_time()
            for job_id in ("fast", "slow-1", "slow-2"):  # one claim, polled in this order
                await waiter.add(job(job_id))
            settled = await waiter.wait("fast")
            waited = anyio.current_time() - started
    assert settled.state is State.COMPLETED
    assert waited < 1.0
