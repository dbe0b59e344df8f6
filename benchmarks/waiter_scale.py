"""How JobWaiter scales: 1k, 10k and 100k jobs waited at once on the in-process fake.

Each measurement runs in a subprocess of its own so that peak RSS belongs to it
alone, and every figure is printed beside its baseline from the same run:

- *take-up*: N jobs that never end are handed over; the run stops once every
  job has been polled once. Wall time, memory per pending job (tracemalloc,
  in a run of its own because tracing slows everything; what the in-process
  fake service allocates is left out, what the client and waiter allocate is
  counted) and peak RSS, for the waiter and for the naive baseline: one task
  per job, polling with the same policy.
- *throughput*: polling unthrottled (every delay 0) at concurrency C, polls
  per second of the waiter beside a bare loop of ``client.get_job`` calls on
  the same transport at the same concurrency. Both are alive at once in one
  process and take turns (A B A B) in 100 pairs of 500-poll segments, each
  variant polling through a gate; the figure is the median ratio over the
  pairs. A control run, a bare loop against a bare loop, shows what the
  instrument gives for equal work.

    python benchmarks/waiter_scale.py                 # 1k, 10k, 100k (a few minutes)
    python benchmarks/waiter_scale.py --quick         # a smoke run at 200 jobs
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from typing import Any

import anyio

from mediax_async import Failure, Job, JobWaiter, MediaXClient, PollPolicy, State, parse_job
from mediax_async.testing import FakeMediaX, FixedDuration, Profile, Schedule

POLICY = PollPolicy(first_delay=1.0, initial_interval=2.0, max_interval=30.0)
UNTHROTTLED = PollPolicy(
    first_delay=0, initial_interval=0, max_interval=0, submitted_factor=1, jitter="none"
)
NEVER_ENDS = Schedule(default=Profile(queue=FixedDuration(0), processing=FixedDuration(1e12)))


def current_rss_kib() -> int:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() // 1024


def make_jobs(fake: FakeMediaX, count: int) -> list[Job]:
    """Create jobs straight in the fake's state (setup, not measured) and parse them."""
    jobs = []
    for n in range(count):
        request = {
            "inputs": [{"url": f"https://songs.test/{n}.mp3"}],
            "outputs": [
                {
                    "contentId": "repo",
                    "destination": "/out",
                    "inputSelectors": [0],
                    "smartContentDescriptor": {"musicSeperate": {"method": 1}},
                }
            ],
        }
        created = fake.state.create_job(fake.secret_id, request, 0.0)
        jobs.append(parse_job(fake.state.encode(created)))
    return jobs


async def take_up_waiter(client: MediaXClient, jobs: list[Job], concurrency: int) -> dict[str, Any]:
    async with client.waiter(policy=POLICY, max_concurrency=concurrency) as waiter:
        started = time.perf_counter()
        for job in jobs:
            await waiter.add(job)
        while waiter.stats.polls < len(jobs):  # noqa: ASYNC110 - sampling a counter, no event exists
            await anyio.sleep(0.05)
        elapsed = time.perf_counter() - started
        measured = measure()
        polls = waiter.stats.polls
    return {"wall_s": elapsed, "polls": polls, **measured}


async def take_up_naive(client: MediaXClient, jobs: list[Job], concurrency: int) -> dict[str, Any]:
    """The usual SDK loop: a task per job, sleeping between polls with the same policy."""
    import random

    from mediax_async import PollContext

    polled = 0
    rng = random.Random(0)

    async def poll_one(job: Job) -> None:
        nonlocal polled
        polls = 0
        state: State | None = job.state
        while True:
            await anyio.sleep(
                POLICY.next_delay(PollContext(polls=polls, state=state), rng.random())
            )
            job = await client.get_job(job.id)
            polls += 1
            polled += 1
            state = job.state
            if state.is_terminal:
                return

    started = time.perf_counter()
    async with anyio.create_task_group() as tasks:
        for job in jobs:
            tasks.start_soon(poll_one, job)
        while polled < len(jobs):  # noqa: ASYNC110 - sampling a counter, no event exists
            await anyio.sleep(0.05)
        elapsed = time.perf_counter() - started
        measured = measure()
        tasks.cancel_scope.cancel()
    return {"wall_s": elapsed, "polls": polled, **measured}


WARM_UP = 1_000
"""Polls before a throughput run starts its clocks: the jobs are handed over by then."""


async def throughput_waiter(
    client: MediaXClient, jobs: list[Job], concurrency: int, total: int
) -> dict[str, Any]:
    async with client.waiter(policy=UNTHROTTLED, max_concurrency=concurrency) as waiter:
        for job in jobs:
            await waiter.add(job)
        while waiter.stats.polls < WARM_UP:  # noqa: ASYNC110 - sampling a counter, no event exists
            await anyio.sleep(0.001)
        started, cpu_started, first = time.perf_counter(), time.process_time(), waiter.stats.polls
        while waiter.stats.polls < first + total:  # noqa: ASYNC110 - as above
            await anyio.sleep(0.01)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        polls = waiter.stats.polls - first
    return {"wall_s": elapsed, "polls": polls, "polls_per_s": polls / elapsed, "cpu_s": cpu}


async def throughput_bare(
    client: MediaXClient, jobs: list[Job], concurrency: int, total: int
) -> dict[str, Any]:
    """The floor: C tasks calling client.get_job in a loop, nothing else."""
    done = 0
    ids = [job.id for job in jobs]
    started = cpu_started = 0.0

    async def loop(offset: int) -> None:
        nonlocal done, started, cpu_started
        index = offset
        while done < WARM_UP + total:
            await client.get_job(ids[index % len(ids)])
            done += 1
            index += concurrency
            if done == WARM_UP:
                started, cpu_started = time.perf_counter(), time.process_time()

    async with anyio.create_task_group() as tasks:
        for offset in range(concurrency):
            tasks.start_soon(loop, offset)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    polls = done - WARM_UP
    return {"wall_s": elapsed, "polls": polls, "polls_per_s": polls / elapsed, "cpu_s": cpu}


class Gated:
    """A ``JobSource`` over the client that lets polls through only during its segment.

    The waiter and the bare loop each poll through one, both alive at once:
    a segment opens one gate for ``polls`` polls, then the other's. A burst of
    load from elsewhere, a slower core or a colder cache then hits both variants
    alike, which whole runs in turn do not (there a bare loop against itself
    varied by 20% from one run to the next on this machine).
    """

    def __init__(self, client: MediaXClient) -> None:
        self.client = client
        self.polls = 0
        self.is_open = False
        self._opened = anyio.Event()
        self._goal = 0
        self._over = anyio.Event()

    async def segment(self, polls: int) -> tuple[float, float, int]:
        """Let ``polls`` polls through: wall and CPU seconds they took, and how many there were."""
        first, started, cpu_started = self.polls, time.perf_counter(), time.process_time()
        self._goal, self._over, self.is_open = first + polls, anyio.Event(), True
        self._opened.set()
        await self._over.wait()
        return time.perf_counter() - started, time.process_time() - cpu_started, self.polls - first

    async def get_job(self, job_id: str, *, retry: bool = True) -> Job:
        """``client.get_job``, once the gate is open."""
        while not self.is_open:
            await self._opened.wait()
        job = await self.client.get_job(job_id, retry=retry)
        self.polls += 1
        if self.polls >= self._goal and self.is_open:
            # The segment is over: the next poll waits (and so suspends, which an
            # in-process fake's poll never does, letting the other variant run).
            self.is_open, self._opened = False, anyio.Event()
            self._over.set()
        return job

    async def list_jobs(self, custom_id: str, *, retry: bool = True) -> list[Job]:
        """``client.list_jobs`` (the throughput run polls by id only)."""
        return list(await self.client.list_jobs(custom_id, retry=retry))

    def classify_failure(self, error: Exception) -> Failure:
        """As the client classifies it."""
        return self.client.classify_failure(error)


async def throughput_interleaved(
    client: MediaXClient, jobs: list[Job], concurrency: int, args: argparse.Namespace
) -> dict[str, Any]:
    """The waiter (A) and a bare loop (B) polling the same jobs, alternated A B A B in segments.

    With ``args.control`` A is a second bare loop: the ratio the instrument
    gives for equal work, to read the waiter's against.
    """
    ids = [job.id for job in jobs]
    first, second = Gated(client), Gated(client)

    async def bare(offset: int, gate: Gated) -> None:
        index = offset
        while True:
            await gate.get_job(ids[index % len(ids)])
            index += concurrency

    segments = []
    async with (
        JobWaiter(first, policy=UNTHROTTLED, max_concurrency=concurrency) as waiter,
        anyio.create_task_group() as tasks,
    ):
        for offset in range(concurrency):
            tasks.start_soon(bare, offset, second)
            if args.control:
                tasks.start_soon(bare, offset, first)
        if not args.control:
            for job in jobs:
                await waiter.add(job)
        await first.segment(WARM_UP)  # the jobs are handed over by then
        await second.segment(WARM_UP)
        for _ in range(args.segments):
            segments.append(
                {
                    "waiter": await first.segment(args.polls),
                    "bare": await second.segment(args.polls),
                }
            )
        tasks.cancel_scope.cancel()
    return {"segments": segments}


_baseline: dict[str, int] = {}


def measure() -> dict[str, Any]:
    gc.collect()
    result: dict[str, Any] = {"rss_peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
    result["rss_growth_kib"] = result["rss_peak_kib"] - _baseline["rss_kib"]
    if tracemalloc.is_tracing():
        result["traced_bytes"] = traced_outside_the_fake() - _baseline["traced"]
    return result


def traced_outside_the_fake() -> int:
    """Bytes traced now, less what the fake service itself holds (its jobs' JSON, ...)."""
    fake_files = tracemalloc.Filter(False, "*/mediax_async/testing/*")
    snapshot = tracemalloc.take_snapshot().filter_traces([fake_files])
    return sum(stat.size for stat in snapshot.statistics("filename"))


def child(args: argparse.Namespace) -> None:
    """Run one measurement and print its result as JSON."""
    fake = FakeMediaX(schedule=NEVER_ENDS, record_requests=False, seed=1)
    jobs = make_jobs(fake, args.jobs)
    gc.collect()
    _baseline["rss_kib"] = current_rss_kib()
    if args.trace:
        tracemalloc.start()
        _baseline["traced"] = traced_outside_the_fake()

    async def main() -> dict[str, Any]:
        async with fake.client(max_connections=args.concurrency) as client:
            if args.variant == "waiter":
                return await take_up_waiter(client, jobs, args.concurrency)
            if args.variant == "naive":
                return await take_up_naive(client, jobs, args.concurrency)
            if args.variant == "throughput":
                return await throughput_interleaved(client, jobs, args.concurrency, args)
            if args.variant == "waiter-unthrottled":
                return await throughput_waiter(client, jobs, args.concurrency, args.polls)
            return await throughput_bare(client, jobs, args.concurrency, args.polls)

    result = anyio.run(main)
    result["per_job_bytes"] = result.get("traced_bytes", 0) / args.jobs
    print(json.dumps(result))


def run_child(
    variant: str,
    jobs: int,
    *,
    trace: bool = False,
    concurrency: int = 32,
    polls: int = 0,
    segments: int = 1,
    control: bool = False,
) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--child",
        variant,
        "--jobs",
        str(jobs),
        "--concurrency",
        str(concurrency),
        "--polls",
        str(polls),
        "--segments",
        str(segments),
    ]
    if trace:
        command.append("--trace")
    if control:
        command.append("--control")
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    figures: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="*",
        default=[1_000, 10_000, 100_000],
        help="none: throughput only",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run at 200 jobs")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--polls", type=int, default=500, help="polls per throughput segment")
    parser.add_argument(
        "--segments", type=int, default=100, help="A B pairs of segments in the throughput run"
    )
    parser.add_argument(
        "--control", action="store_true", help="(child) poll through a second bare loop as A"
    )
    parser.add_argument(
        "--child", choices=["waiter", "naive", "waiter-unthrottled", "bare", "throughput"]
    )
    parser.add_argument("--jobs", type=int, default=0)
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args()
    if args.child:
        args.variant = args.child
        child(args)
        return
    sizes = [200] if args.quick else args.sizes
    polls = 1_000 if args.quick else args.polls

    print(
        f"take-up: N jobs handed over, until each is polled once (concurrency {args.concurrency})"
    )
    header = ("jobs", "variant", "wall s", "polls/s", "bytes/job", "peak RSS MiB", "RSS growth MiB")
    print("{:>8} {:>8} {:>8} {:>9} {:>10} {:>13} {:>15}".format(*header))
    for size in sizes:
        rows = {}
        for variant in ("waiter", "naive"):
            timed = run_child(variant, size, concurrency=args.concurrency)
            traced = run_child(variant, size, trace=True, concurrency=args.concurrency)
            rows[variant] = (timed, traced)
            print(
                f"{size:>8} {variant:>8} {timed['wall_s']:>8.2f} "
                f"{timed['polls'] / timed['wall_s']:>9.0f} {traced['per_job_bytes']:>10.0f} "
                f"{timed['rss_peak_kib'] / 1024:>13.1f} {timed['rss_growth_kib'] / 1024:>15.1f}"
            )
        (waiter_timed, waiter_traced), (naive_timed, naive_traced) = rows["waiter"], rows["naive"]
        memory_ratio = waiter_traced["per_job_bytes"] / max(naive_traced["per_job_bytes"], 1)
        rss_ratio = waiter_timed["rss_peak_kib"] / naive_timed["rss_peak_kib"]
        print(
            f"{size:>8}    ratio  memory/job waiter/naive {memory_ratio:.2f}, "
            f"peak RSS waiter/naive {rss_ratio:.2f}, "
            f"wall waiter/naive {waiter_timed['wall_s'] / naive_timed['wall_s']:.2f}"
        )

    segments = 5 if args.quick else args.segments
    print(
        "\nthroughput: unthrottled polling of 1,000 jobs at concurrency "
        f"{args.concurrency}, the waiter (A) and a bare loop (B) alive at once in one process, "
        f"alternated A B A B in {segments} pairs of {polls}-poll segments"
    )
    for control in (False, True):
        result = run_child(
            "throughput",
            1_000,
            concurrency=args.concurrency,
            polls=polls,
            segments=segments,
            control=control,
        )
        report_throughput(result["segments"], control=control)


def report_throughput(segments: list[dict[str, list[float]]], *, control: bool) -> None:
    """Print the median ratio A/B of polls per second (and of CPU time per poll) over segments."""
    ratios, cpu_ratios, extra_us = [], [], []
    for pair in segments:
        (a_wall, a_cpu, a_polls), (b_wall, b_cpu, b_polls) = pair["waiter"], pair["bare"]
        ratios.append((a_polls / a_wall) / (b_polls / b_wall))
        a_us, b_us = a_cpu / a_polls * 1e6, b_cpu / b_polls * 1e6
        cpu_ratios.append(b_us / a_us)
        extra_us.append(a_us - b_us)
    median = statistics.median(ratios)
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [median] * 3
    spread = f"quartiles {quartiles[0]:.3f}-{quartiles[2]:.3f}"
    cpu = f"by CPU time per poll {statistics.median(cpu_ratios):.3f}"
    if control:
        print(
            f"  control, bare loop against bare loop: median ratio {median:.3f} ({spread}; {cpu})"
        )
        return
    verdict = "PASS" if median >= 0.90 else "MISS"
    print(f"  {verdict}  median ratio waiter/bare {median:.3f} (target >= 0.90; {spread})")
    print(f"  {cpu}; the waiter's own cost {statistics.median(extra_us):.1f} us per poll")


if __name__ == "__main__":
    main()
