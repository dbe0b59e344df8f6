r"""The waiter's own cost per poll: a source that answers at once, so only the waiter is timed.

1,000 jobs that never end are polled unthrottled (every delay 0) at
concurrency 32 through a ``JobSource`` that hands back the same ``Job`` without
any I/O. Printed: CPU time per poll (median of three runs) and, from a run
under cProfile, Python function calls per poll and the counts of the calls that
matter for cost (parks, fetches, clock reads, heap pushes, checkpoints).

    python benchmarks/waiter_overhead.py            # 100,000 polls per run
    python benchmarks/waiter_overhead.py --quick    # 5,000

For a count no other process can disturb, run it under callgrind at two sizes
and take the difference (start-up cancels out):

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        python benchmarks/waiter_overhead.py --polls 4000 --runs 1 --no-profile
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).parent))
from waiter_scale import NEVER_ENDS, UNTHROTTLED, make_jobs

from mediax_async import Failure, FailureKind, Job, JobWaiter
from mediax_async.testing import FakeMediaX

COUNTED = {
    "_park": "worker parks",
    "_fetch": "fetches",
    "checkpoint": "checkpoints",
    "current_time": "anyio.current_time() calls",
    "_asyncio_time": "fast_clock reads",
    "schedule": "heap pushes",
}


class Instant:
    """A JobSource that answers every poll at once with the job as it was created."""

    def __init__(self, jobs: Sequence[Job]) -> None:
        self.jobs = {job.id: job for job in jobs}

    async def get_job(self, job_id: str, *, retry: bool = True) -> Job:
        return self.jobs[job_id]

    async def list_jobs(self, custom_id: str, *, retry: bool = True) -> list[Job]:
        return []

    def classify_failure(self, error: Exception) -> Failure:
        return Failure(FailureKind.RETRY)


async def run(jobs: Sequence[Job], polls: int) -> tuple[float, int]:
    """CPU seconds for ``polls`` polls (after the jobs are handed over), and the polls made."""
    async with JobWaiter(Instant(jobs), policy=UNTHROTTLED, max_concurrency=32) as waiter:
        for job in jobs:
            await waiter.add(job)
        first = waiter.stats.polls
        started = time.process_time()
        while waiter.stats.polls < first + polls:  # noqa: ASYNC110 - sampling a counter
            await anyio.sleep(0.01)
        return time.process_time() - started, waiter.stats.polls - first


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--polls", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a smoke run of 5,000 polls")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile run")
    args = parser.parse_args()
    polls = 5_000 if args.quick else args.polls
    jobs = make_jobs(FakeMediaX(schedule=NEVER_ENDS, record_requests=False, seed=1), 1_000)

    costs = []
    for _ in range(args.runs):
        cpu, done = anyio.run(run, jobs, polls)
        costs.append(cpu / done * 1e6)
    shown = " ".join(f"{c:.1f}" for c in costs)
    print(f"waiter's own CPU per poll: median {statistics.median(costs):.1f} us (runs: {shown})")
    if args.no_profile:
        return

    profiler = cProfile.Profile()
    profiler.enable()
    _, done = anyio.run(run, jobs, polls)
    profiler.disable()
    stats = pstats.Stats(profiler)
    print(f"per poll, from a run under cProfile ({done} polls):")
    print(f"  {stats.total_calls / done:6.1f} Python function calls")  # type: ignore[attr-defined]  # not in typeshed
    for (path, _, name), (_, calls, *_) in stats.stats.items():  # type: ignore[attr-defined]  # not in typeshed
        if name in COUNTED and ("mediax_async" in path or "anyio" in path):
            print(f"  {calls / done:6.2f} {COUNTED[name]} ({Path(path).name})")


if __name__ == "__main__":
    main()
