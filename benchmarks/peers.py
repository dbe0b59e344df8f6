"""Polling over real loopback HTTP: naive loops and our waiter, on the same jobs, in one run.

The fake service is served by uvicorn in a child process on 127.0.0.1, as five
fakes of the same seed (one per way of waiting, so each gets the very same job
durations, in the same order): log-normal, sigma 1, median 1 s and then 5 s, no
queueing. Five threads of this process, each with its own event loop and its
own ``MediaXClient``, create their jobs at the same steady pace, at the same
time, and wait for them:

- create only: no polling (the CPU a CreateJob costs, to subtract);
- fixed 5 s: one task per job, ``sleep(5)`` then GetJob, until it has ended;
- Google LRO: one task per job, sleeping as Google's long-running-operation
  default does (``LRO_BACKOFF``: 1 s, x1.5, capped at 20 s, no jitter);
- our ``JobWaiter`` with the default ``PollPolicy()``, each job added as soon as
  CreateJob answers;
- for reference, the same waiter with the defaults ``PollPolicy`` had before
  (first poll after 4.5 s, then 6 s growing x1.25 to 19.25 s), so that one run
  compares the two defaults on the very same jobs.

For each it reports GetJob requests per job (counted by the fake), CPU per job
(the thread's own CPU time, CreateJob included, and beyond create only), and
the detection delay, mean and p95: from the job's end on the fake (its
``completedAt``, on the wall clock) to the moment the answer that shows it ended
reaches the client. Every request loop is bounded (a poll cap per job and a
deadline for the run); the server is stopped in a ``finally``.

    python benchmarks/peers.py            # 2,000 jobs per way and workload, about 5 minutes
    python benchmarks/peers.py --quick    # 60 jobs, durations truncated at 2x the median,
                                          # both workloads at once: about 20 s
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import anyio
import attrs
from _child_server import child_server

from mediax_async import (
    LRO_BACKOFF,
    Job,
    MediaXClient,
    PollContext,
    PollPolicy,
    State,
    separation_request,
)
from mediax_async.testing import (
    DEFAULT_SECRET_KEY,
    FakeMediaX,
    FixedDuration,
    Profile,
    Schedule,
)

SIGMA = 1.0
MEDIANS = (1.0, 5.0)
CREATE_RATE = 40.0
"""Jobs created per second by each way of waiting (five at once: 200 CreateJob/s in all)."""
MAX_POLLS = 10_000
"""GetJob calls per job at most, for the naive loops."""
STRATEGIES = (
    "create only",
    "fixed 5 s",
    "Google LRO (1 s, x1.5, 20 s)",
    "JobWaiter, PollPolicy()",
    "JobWaiter, previous default",
)
CREATE_ONLY, FIXED, GOOGLE, WAITER, PREVIOUS = STRATEGIES
PREVIOUS_DEFAULT = PollPolicy(
    first_delay=4.5, initial_interval=6.0, multiplier=1.25, max_interval=19.25
)
"""``PollPolicy()`` before its first two polls came just before the fixed loop's (5 s and 10 s)."""


@attrs.frozen
class CappedLogNormal:
    """Log-normal seconds, at most ``cap`` (a ``Duration`` for the fake's schedule).

    A draw over ``cap`` is drawn again (the distribution is truncated), rather
    than cut to ``cap``: cutting put a quarter of the quick run's 5 s jobs at
    exactly 10 s, the fixed loop's second poll, which favoured that loop.
    """

    median: float
    sigma: float
    cap: float = math.inf

    def sample(self, rng: Any) -> float:
        """One draw, as ``LogNormalDuration`` makes it, drawn again while over ``cap``."""
        while True:
            seconds = float(rng.lognormvariate(math.log(self.median), self.sigma))
            if seconds <= self.cap:
                return seconds


@attrs.frozen
class Outcome:
    """How one way of waiting did on one workload."""

    name: str
    jobs: int
    delays: tuple[float, ...]
    cpu_seconds: float
    get_jobs: int = 0
    errors: int = 0


# -- the server (child process) -------------------------------------------------------


async def _serve(median: float, cap: float, seed: int, count: int) -> None:
    schedule = Schedule(
        default=Profile(queue=FixedDuration(0), processing=CappedLogNormal(median, SIGMA, cap))
    )
    # asyncio's clock is time.monotonic(): line its zero up with the wall clock,
    # so that a job's completedAt says when it ended, in the client's time.time().
    offset = round((time.time() - time.monotonic()) * 1000)
    fakes = [
        FakeMediaX(seed=seed, schedule=schedule, record_requests=False, epoch_offset_ms=offset)
        for _ in range(count)
    ]
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[str] = asyncio.Queue()

    def read_stdin() -> None:  # a daemon thread: stdin lines become commands, EOF "stop"
        for line in sys.stdin:
            loop.call_soon_threadsafe(commands.put_nowait, line.strip())
        loop.call_soon_threadsafe(commands.put_nowait, "stop")

    async with contextlib.AsyncExitStack() as stack:
        urls = [await stack.enter_async_context(fake.serve()) for fake in fakes]
        threading.Thread(target=read_stdin, daemon=True).start()
        print(json.dumps({"urls": urls, "secret_id": fakes[0].secret_id}), flush=True)
        while (command := await commands.get()) != "stop":
            if command == "report":
                counts = [dict(fake.request_counts) for fake in fakes]
                print(json.dumps(counts), flush=True)


def serve(median: float, cap: float, seed: int, count: int) -> None:
    """The child's entry point: serve ``count`` fakes until stdin closes."""
    asyncio.run(_serve(median, cap, seed, count))


@attrs.define
class Server:
    """The child process serving the fakes, and how to reach them."""

    child: subprocess.Popen[str]
    urls: list[str]
    secret_id: str

    def request_counts(self) -> list[dict[str, int]]:
        """Requests each fake has answered so far, by action."""
        assert self.child.stdin is not None
        assert self.child.stdout is not None
        self.child.stdin.write("report\n")
        self.child.stdin.flush()
        counts: list[dict[str, int]] = json.loads(self.child.stdout.readline())
        return counts


@contextlib.contextmanager
def loopback_fakes(median: float, cap: float, seed: int, count: int) -> Iterator[Server]:
    """Start the fakes in a child process; stop it when the block ends, killing it if it lingers."""
    command = [sys.executable, __file__, "--serve", str(median), str(cap), str(seed), str(count)]
    with child_server(command, "fake service") as (child, info):
        yield Server(child, info["urls"], info["secret_id"])


# -- the clients (threads of this process) ---------------------------------------------


def detection_delay(job: Job) -> float:
    """Seconds from the job's end on the fake (wall clock) until now."""
    assert job.timing is not None
    assert job.timing.completed_at is not None
    return time.time() - job.timing.completed_at.timestamp()


async def fixed_loop(client: MediaXClient, job: Job, seen: Callable[[Job], None]) -> None:
    """The naive loop: sleep 5 s, ask, until the job has ended (at most ``MAX_POLLS`` asks)."""
    for _ in range(MAX_POLLS):
        await anyio.sleep(5.0)
        job = await client.get_job(job.id)
        if job.state.is_terminal:
            seen(job)
            return


async def google_loop(client: MediaXClient, job: Job, seen: Callable[[Job], None]) -> None:
    """One task per job sleeping as Google's LRO default does, until the job has ended."""
    for polls in range(MAX_POLLS):
        context = PollContext(polls=polls, state=State.PROCESSING)
        await anyio.sleep(LRO_BACKOFF.next_delay(context, 0.5))
        job = await client.get_job(job.id)
        if job.state.is_terminal:
            seen(job)
            return


async def run_strategy(
    name: str, url: str, secret_id: str, count: int, start_at: float, bound: float
) -> tuple[list[float], int]:
    """Create ``count`` jobs at the shared pace from ``start_at`` and wait for them as ``name``.

    Returns the detection delays and the number of jobs that ended in an error.
    """
    delays: list[float] = []
    errors = 0
    all_seen = anyio.Event()

    def seen(job: Job) -> None:
        delays.append(detection_delay(job))
        if len(delays) + errors == count:
            all_seen.set()

    def settled(job_id: str, outcome: Job | BaseException) -> None:
        nonlocal errors
        if isinstance(outcome, Job):
            seen(outcome)
        else:
            errors += 1
            if len(delays) + errors == count:
                all_seen.set()

    async def create_all(take: Callable[[Job], Awaitable[object]]) -> None:
        for n in range(count):
            await anyio.sleep(max(0.0, start_at + n / CREATE_RATE - anyio.current_time()))
            request = separation_request(f"https://songs.test/{n}.mp3", content_id="repo")
            await take(await client.create_job(request))

    async def ignore(job: Job) -> None:
        pass

    async with MediaXClient(secret_id, DEFAULT_SECRET_KEY, base_url=url) as client:
        with anyio.move_on_after(bound):
            if name in (WAITER, PREVIOUS):
                policy = PREVIOUS_DEFAULT if name == PREVIOUS else None
                async with client.waiter(policy=policy, on_settled=settled) as waiter:
                    await create_all(waiter.add)
                    await all_seen.wait()
            elif name == CREATE_ONLY:
                await create_all(ignore)
            else:
                loop = fixed_loop if name == FIXED else google_loop
                async with anyio.create_task_group() as tasks:

                    async def start_loop(job: Job) -> None:
                        tasks.start_soon(loop, client, job, seen)

                    await create_all(start_loop)
    return delays, errors


def run_in_thread(
    name: str, url: str, secret_id: str, count: int, start_at: float, bound: float
) -> Outcome:
    """One way of waiting on its own event loop in this thread; CPU is this thread's."""
    cpu = time.thread_time()
    delays, errors = anyio.run(
        run_strategy, name, url, secret_id, count, start_at, bound, backend="asyncio"
    )
    return Outcome(name, count, tuple(delays), time.thread_time() - cpu, errors=errors)


def run_workload(median: float, count: int, cap: float, seed: int) -> list[Outcome]:
    """Every way of waiting at once, each on its own fake (same seed: the same jobs)."""
    longest = cap if math.isfinite(cap) else median * math.exp(4.6 * SIGMA)
    bound = count / CREATE_RATE + longest + 60.0
    with loopback_fakes(median, cap, seed, len(STRATEGIES)) as server:
        start_at = time.monotonic() + 0.5  # asyncio's clock, shared by the threads
        with concurrent.futures.ThreadPoolExecutor(len(STRATEGIES)) as pool:
            futures = [
                pool.submit(run_in_thread, name, url, server.secret_id, count, start_at, bound)
                for name, url in zip(STRATEGIES, server.urls, strict=True)
            ]
            outcomes = [future.result() for future in futures]
        counts = server.request_counts()
    return [
        attrs.evolve(outcome, get_jobs=served.get("GetJob", 0))
        for outcome, served in zip(outcomes, counts, strict=True)
    ]


# -- the report -----------------------------------------------------------------------


def p95(values: Sequence[float]) -> float:
    if len(values) < 2:
        return values[0] if values else math.nan
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def worse_axis(polls: float, fixed_polls: float, p95_delay: float, fixed_p95: float) -> str:
    """How far behind the fixed loop a way of waiting is on its worse axis (none: it dominates)."""
    behind = max(polls / fixed_polls - 1, p95_delay / fixed_p95 - 1)
    if behind <= 0:
        return "none (not worse on either axis)"
    axis = "GetJob/job" if polls / fixed_polls >= p95_delay / fixed_p95 else "p95"
    return f"{axis}, {behind:+.1%}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(median: float, count: int, cap: float, outcomes: list[Outcome]) -> list[bool]:
    """Print one workload's table and checks; return the checks' results."""
    capped = f", truncated at {cap:g} s" if math.isfinite(cap) else ""
    print(
        f"\nmedian {median:g} s, sigma {SIGMA:g}{capped}: {count:,} jobs per way of waiting, "
        f"{CREATE_RATE:g} created per second by each, all at the same time"
    )
    print(
        f"  {'way of waiting':<30} {'GetJob/job':>10} {'CPU ms/job':>10} {'beyond create':>13}"
        f" {'delay mean':>10} {'p95':>7} {'missed':>6}"
    )
    base = outcomes[0].cpu_seconds / outcomes[0].jobs
    for outcome in outcomes:
        cpu = outcome.cpu_seconds / outcome.jobs
        missed = outcome.jobs - len(outcome.delays)
        if outcome.name == CREATE_ONLY:
            print(f"  {outcome.name:<30} {0:>10.3f} {cpu * 1e3:>10.3f} {'-':>13}")
            continue
        mean = statistics.fmean(outcome.delays) if outcome.delays else math.nan
        print(
            f"  {outcome.name:<30} {outcome.get_jobs / outcome.jobs:>10.3f} "
            f"{cpu * 1e3:>10.3f} {(cpu - base) * 1e3:>13.3f} {mean:>9.2f}s "
            f"{p95(outcome.delays):>6.2f}s {missed:>6}"
        )
    polls = {o.name: o.get_jobs / o.jobs for o in outcomes}
    late = {o.name: p95(o.delays) for o in outcomes}
    fewer = polls[WAITER] < polls[FIXED]
    sooner = late[WAITER] < late[FIXED]
    wins = " and ".join(a for a, won in (("fewer polls", fewer), ("lower p95", sooner)) if won)
    checks = [
        (
            f"target: the waiter's default not beaten by fixed 5 s on both polls and p95 "
            f"({polls[WAITER]:.3f} vs {polls[FIXED]:.3f} GetJob/job, p95 {late[WAITER]:.2f} vs "
            f"{late[FIXED]:.2f} s: {wins or 'loses on both'})",
            fewer or sooner,
        ),
        (
            f"every job seen ended ({sum(o.jobs - len(o.delays) for o in outcomes[1:])} missed)",
            all(len(o.delays) == o.jobs for o in outcomes[1:]),
        ),
    ]
    print(
        f"  (diag) waiter against Google LRO: {polls[WAITER] / polls[GOOGLE]:.3f} x the GetJob, "
        f"p95 {late[WAITER] / late[GOOGLE]:.3f} x; the previous default against fixed 5 s: "
        f"{polls[PREVIOUS]:.3f} vs {polls[FIXED]:.3f} GetJob/job, p95 {late[PREVIOUS]:.2f} vs "
        f"{late[FIXED]:.2f} s"
    )
    for name in (WAITER, PREVIOUS):
        print(
            f"  (diag) {name} against fixed 5 s, the worse axis: "
            f"{worse_axis(polls[name], polls[FIXED], late[name], late[FIXED])}"
        )
    for label, ok in checks:
        print(f"  {verdict(ok)}  {label}")
    return [ok for _, ok in checks]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="60 jobs, durations truncated at 2x")
    parser.add_argument("--jobs", type=int, default=None, help="jobs per way of waiting")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if a target is missed (quick runs only smoke)"
    )
    parser.add_argument("--serve", nargs=4, metavar=("MEDIAN", "CAP", "SEED", "FAKES"))
    args = parser.parse_args(argv)
    if args.serve:
        median, cap, seed, fakes = args.serve
        serve(float(median), float(cap), int(seed), int(fakes))
        return 0
    count = args.jobs or (60 if args.quick else 2_000)
    started = time.perf_counter()
    results: list[bool] = []
    caps = [2 * median if args.quick else math.inf for median in MEDIANS]
    counts = [count] * len(MEDIANS)
    seeds = [args.seed + n for n in range(len(MEDIANS))]
    if args.quick:  # both workloads at once, to keep the smoke run short
        with concurrent.futures.ThreadPoolExecutor(len(MEDIANS)) as pool:
            runs = list(pool.map(run_workload, MEDIANS, counts, caps, seeds))
    else:
        runs = list(map(run_workload, MEDIANS, counts, caps, seeds))
    for median, cap, outcomes in zip(MEDIANS, caps, runs, strict=True):
        results += report(median, count, cap, outcomes)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    print(
        f"\n{sum(results)}/{len(results)} checks passed in {time.perf_counter() - started:.0f} s "
        f"(seed {args.seed}; load average at the end: {load})"
    )
    return 1 if args.check and not all(results) else 0


if __name__ == "__main__":
    sys.exit(main())
