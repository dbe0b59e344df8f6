"""The 1,000-job fault test's workload and checks, shared by its in-process and loopback runs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from mediax_async import Job, MediaXClient, PollStrategy, State, WaiterStats
from mediax_async.testing import FakeMediaX, LogNormalDuration, Profile, Schedule
from mediax_async.testing import Fault as F

JOBS = 1000

SCHEDULE = Schedule(
    default=Profile(
        queue=LogNormalDuration(median=5, sigma=1),
        processing=LogNormalDuration(median=60, sigma=1),
        error_rate=0.1,
        cancel_rate=0.05,
    )
)
"""Random durations, 10% of jobs ending in ERROR and 5% CANCELED."""

FAULTS = (F.RATE_LIMITED, F.SERVER_ERROR, F.BAD_GATEWAY, F.UNAVAILABLE, F.DROP)


def inject_faults(fake: FakeMediaX) -> None:
    """2% of each fault on GetJob and on ListJobs: 10% of polls fail."""
    for action in ("GetJob", "ListJobs"):
        for fault in FAULTS:
            fake.faults.set_rate(fault, 0.02, action=action)


async def wait_for_each(
    client: MediaXClient, fake: FakeMediaX, jobs: Sequence[Job], policy: PollStrategy | None
) -> tuple[Counter[str], WaiterStats]:
    """Wait for every job through one waiter; how often each came out, and the waiter's stats."""
    seen: Counter[str] = Counter()
    async with client.waiter(policy=policy, max_concurrency=32) as waiter:
        async for job in waiter.as_completed(jobs):
            seen[job.id] += 1
            assert job.state.is_terminal
            assert job.state == fake.job(job.id)["state"]
    return seen, waiter.stats


def check_each_ended_once(
    fake: FakeMediaX,
    jobs: Sequence[Job],
    seen: Counter[str],
    stats: WaiterStats,
    *,
    batch_polling: bool,
) -> None:
    """None lost, none twice, each with the fake's own outcome; every fault retried once."""
    assert len(jobs) == len(seen) == JOBS
    assert set(seen.values()) == {1}
    states = Counter(fake.job(job.id)["state"] for job in jobs)
    assert states[State.ERROR] > 50
    assert states[State.CANCELED] > 20
    assert stats.settled == JOBS
    assert stats.completed + stats.failed + stats.canceled == JOBS
    assert fake.faults.injected(action="GetJob") > 0
    assert stats.retries == fake.faults.injected()  # each failed poll, by id or by tag, once
    assert stats.rate_limited == fake.faults.injected(fault=F.RATE_LIMITED)
    if batch_polling:
        assert stats.list_polls > 0
