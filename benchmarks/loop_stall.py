"""How long the learning policy holds up the event loop: the longest single policy call.

A real ``JobWaiter`` waits, with ``LearningPollPolicy()``, for 10,000 jobs on the
in-process fake, in virtual time (trio's MockClock, so days of job time run in
seconds): log-normal durations, sigma 1, median 300 s (where a refit on 4,096
samples is costliest), one job created every 12 s, each added to the waiter as
soon as CreateJob answers. The policy sits behind a wrapper that times each
call the waiter makes (``next_delay``, ``observe``, ``error_delay``) on the
wall clock: the policy runs synchronously on the event loop, so its longest
call is the longest stall it causes. Each call is timed twice: "own", the
CPU time of the thread during the call (``time.thread_time``), less any
garbage collection that happened to run in it (timed through ``gc.callbacks``:
it would have held up whatever code was running); and "wall", the whole call
on the wall clock, which also counts the times the machine ran another
process instead (on a shared machine, milliseconds at a time).

Two ways of refitting, alternated (A B A B) in one invocation:

- *in steps* (the policy as it is): each call advances a refit in progress by a
  bounded slice of work; polls follow the last schedule until the new one is done;
- *in one go* (the policy as it was): the wrapper calls ``complete_fits()``
  inside the ``observe()`` that made a refit due, so the whole fit runs there,
  as it did before refits ran in steps.

    python benchmarks/loop_stall.py            # 10,000 jobs, 2 runs of each way (8-10 min)
    python benchmarks/loop_stall.py --quick    # 1,500 jobs of median 30 s, one run of each
"""

from __future__ import annotations

import argparse
import gc
import math
import statistics
import sys
import time
from collections.abc import Sequence

import anyio
import attrs
import trio.testing

from mediax_async import (
    Job,
    MediaXClient,
    PollContext,
    separation_request,
)
from mediax_async._learning import LearningPollPolicy
from mediax_async.testing import FakeMediaX, FixedDuration, LogNormalDuration, Profile, Schedule

SIGMA = 1.0
ARRIVALS_PER_MEDIAN = 25
TARGET_MS = 5.0
WAYS = ("in steps", "in one go")


@attrs.define
class GcClock:
    """CPU seconds spent in garbage collections so far (through ``gc.callbacks``)."""

    total: float = 0.0
    _started: float = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.thread_time()
        else:
            self.total += time.thread_time() - self._started


GC = GcClock()


@attrs.define
class TimedPolicy:
    """A ``PollStrategy`` that times each call to the policy it wraps (wall clock)."""

    policy: LearningPollPolicy
    one_go: bool
    """Finish a refit inside the ``observe()`` that made it due, as the policy once did."""
    durations: dict[str, list[float]] = attrs.Factory(
        lambda: {"next_delay": [], "observe": [], "error_delay": []}
    )
    """Per method: each call's CPU time, the collections during it taken out."""
    whole: list[float] = attrs.Factory(list)
    """Each call's wall-clock time, everything included."""

    def _record(self, method: str, started: tuple[float, float, float]) -> None:
        collected, cpu, wall = started
        self.whole.append(time.perf_counter() - wall)
        self.durations[method].append(time.thread_time() - cpu - (GC.total - collected))

    def next_delay(self, context: PollContext, draw: float) -> float:
        """The wrapped policy's delay, timed."""
        started = GC.total, time.thread_time(), time.perf_counter()
        delay = self.policy.next_delay(context, draw)
        self._record("next_delay", started)
        return delay

    def error_delay(self, failures: int, draw: float) -> float:
        """The wrapped policy's error delay, timed."""
        started = GC.total, time.thread_time(), time.perf_counter()
        delay = self.policy.error_delay(failures, draw)
        self._record("error_delay", started)
        return delay

    def observe(self, job: Job) -> None:
        """The wrapped policy learns, timed (and, in one go, finishes any refit at once)."""
        started = GC.total, time.thread_time(), time.perf_counter()
        self.policy.observe(job)
        if self.one_go:
            self.policy.complete_fits()
        self._record("observe", started)


@attrs.frozen
class Run:
    """What one run measured."""

    way: str
    jobs: int
    polls: int
    wall: float
    longest_ms: dict[str, float]
    longest_wall_ms: float
    over_1ms: int
    over_target: int
    calls: int
    fitted_first: float


async def wait_for_jobs(count: int, median: float, one_go: bool) -> tuple[TimedPolicy, int, float]:
    """Create ``count`` jobs at a steady pace, each waited for by one waiter as it is created."""
    fake = FakeMediaX(
        seed=1,
        schedule=Schedule(
            default=Profile(queue=FixedDuration(0), processing=LogNormalDuration(median, SIGMA))
        ),
        record_requests=False,
    )
    timed = TimedPolicy(LearningPollPolicy(), one_go)
    gap = median / ARRIVALS_PER_MEDIAN
    settled = 0
    all_settled = anyio.Event()

    def on_settled(job_id: str, outcome: Job | BaseException) -> None:
        nonlocal settled
        settled += 1
        if settled == count:
            all_settled.set()

    client: MediaXClient
    async with fake.client() as client, client.waiter(policy=timed, on_settled=on_settled) as w:
        start = anyio.current_time()
        for n in range(count):
            await anyio.sleep_until(start + n * gap)
            request = separation_request(f"https://songs.test/{n}.mp3", content_id="repo")
            await w.add(await client.create_job(request))
        await all_settled.wait()
        polls = w.stats.polls
    schedule = timed.policy.schedule("musicSeperate")
    return timed, polls, schedule.first if schedule is not None else math.nan


def measure(way: str, count: int, median: float) -> Run:
    """One run in virtual time (its own trio loop and MockClock)."""
    clock = trio.testing.MockClock(autojump_threshold=0)
    started = time.perf_counter()
    gc.callbacks.append(GC)
    try:
        timed, polls, first = anyio.run(
            wait_for_jobs,
            count,
            median,
            way == "in one go",
            backend="trio",
            backend_options={"clock": clock},
        )
    finally:
        gc.callbacks.remove(GC)
    wall = time.perf_counter() - started
    every = [d for durations in timed.durations.values() for d in durations]
    return Run(
        way,
        count,
        polls,
        wall,
        {name: 1e3 * max(ds, default=0.0) for name, ds in timed.durations.items()},
        1e3 * max(timed.whole, default=0.0),
        sum(1 for d in every if d > 1e-3),  # own time
        sum(1 for d in every if d > TARGET_MS / 1e3),
        len(every),
        first,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1,500 jobs of median 30 s, 1 run")
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--median", type=float, default=None, help="median job duration, s")
    parser.add_argument("--rounds", type=int, default=None, help="A B rounds (default 2)")
    parser.add_argument("--check", action="store_true", help="exit 1 if the target is missed")
    args = parser.parse_args(argv)
    count = args.jobs or (1_500 if args.quick else 10_000)
    median = args.median or (30.0 if args.quick else 300.0)
    rounds = args.rounds or (1 if args.quick else 2)
    print(
        f"{count:,} jobs, log-normal median {median:g} s, sigma {SIGMA:g}, one created every "
        f"{median / ARRIVALS_PER_MEDIAN:g} s, one JobWaiter with LearningPollPolicy(), virtual "
        f"time; ms per policy call; {rounds} round(s) of A B"
    )
    print(
        f"  {'refits':<10} {'longest own: next_delay':>23} {'observe':>8} {'error_delay':>11} "
        f"{'wall':>8} {'own > 1 ms':>10} {f'> {TARGET_MS:g} ms':>7} {'calls':>8} "
        f"{'polls/job':>9} {'first poll':>10} {'wall s':>7}"
    )
    runs: list[Run] = []
    for _ in range(rounds):
        for way in WAYS:
            run = measure(way, count, median)
            runs.append(run)
            own = run.longest_ms
            print(
                f"  {way:<10} {own['next_delay']:>23.2f} {own['observe']:>8.2f} "
                f"{own['error_delay']:>11.2f} {run.longest_wall_ms:>8.2f} "
                f"{run.over_1ms:>10} {run.over_target:>7} "
                f"{run.calls:>8} {run.polls / run.jobs:>9.2f} {run.fitted_first:>9.1f}s "
                f"{run.wall:>7.1f}",
                flush=True,
            )

    def longest_own(way: str) -> float:
        return statistics.median(max(r.longest_ms.values()) for r in runs if r.way == way)

    def longest_wall(way: str) -> float:
        return statistics.median(r.longest_wall_ms for r in runs if r.way == way)

    stepped, one_go = longest_own(WAYS[0]), longest_own(WAYS[1])
    ok = stepped <= TARGET_MS
    print(
        f"longest policy call, median over rounds: in steps {stepped:.2f} ms own "
        f"({longest_wall(WAYS[0]):.2f} ms wall), in one go {one_go:.2f} ms own "
        f"({longest_wall(WAYS[1]):.2f} ms wall)"
    )
    print(
        f"{'PASS' if ok else 'FAIL'}  target: no policy call (no stall it causes) over "
        f"{TARGET_MS:g} ms with refits in steps ({stepped:.2f} ms)"
    )
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
