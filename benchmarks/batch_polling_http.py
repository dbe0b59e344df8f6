"""Batch polling over real loopback HTTP: one ListJobs per batch tag per round.

The fake service is served by uvicorn in a child process on 127.0.0.1. Jobs
are created over HTTP as ``mediax batch`` creates them: every job of a batch
with the batch's tag as its custom id. They never end while measured (queued
0 s, then processing for days), so every round of polling refreshes every job.

Each cell is a fresh ``MediaXClient`` (httpx by default, or
``http_backend="aiohttp"``) and a real ``JobWaiter`` at ``max_concurrency``
1, 16 and 64, watching every batch of one size (100 and 1,000 jobs per tag)
with a fixed poll interval and no jitter, until every job has had 5 rounds
(2 with ``--quick``), and then stopped at a moment with no request in flight.
The waiter polls through a thin ``JobSource`` over the client that notes when
each job comes back in an answer; a job's answers less than half an interval
apart are one *round* of that job (at one ListJobs per tag, each answer is a
round of its own). Reported per cell:

- requests per job per round: the ListJobs and GetJob the fake answered
  during the cell, over the rounds of every job (ideal: 1 / batch size);
- observations per job per round: the polls the waiter counted for each job
  (``pending()``), over its rounds (ideal: 1), and the most answers any job
  had in one round;
- rounds per job, and the fewest any job had: a cell whose time ran out
  before every job had its rounds fails (a waiter that polls less would look
  cheap without being right).

Targets (issue 15): at most 0.012 requests per job per round at batch size
100 and 0.002 at 1,000, and each job observed once per round, at every
concurrency, on both transports. Every request loop is bounded (a cell
stops after 4x its rounds' time at most, and waits at most 10 s for quiet);
the server is stopped in a ``finally``.

    python benchmarks/batch_polling_http.py           # 2,000 and 4,000 jobs, 5 rounds: ~2 min
    python benchmarks/batch_polling_http.py --quick   # 300 and 1,000 jobs, 2 rounds: ~25 s
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Literal

import anyio
import attrs
from _child_server import child_server

from mediax_async import (
    Failure,
    Job,
    JobWaiter,
    MediaXClient,
    PollPolicy,
    separation_request,
)
from mediax_async.testing import (
    DEFAULT_SECRET_KEY,
    FakeMediaX,
    FixedDuration,
    Profile,
    Schedule,
)

Backend = Literal["httpx", "aiohttp"]
BACKENDS: tuple[Backend, ...] = ("httpx", "aiohttp")
CONCURRENCIES = (1, 16, 64)
TARGETS = {100: 0.012, 1000: 0.002}
"""Requests per job per round at most, by batch size."""
NEVER = 10 * 86_400.0
"""Seconds a job processes: it never ends while measured."""
CREATE_CONCURRENCY = 32
ROUNDS_BOUND = 4
"""A cell stops after this many times the rounds' time, had some job not had every round."""
QUIET_BOUND = 10.0
"""Seconds to wait at most, after measuring, for the requests in flight to be answered."""


# -- the server (child process) -------------------------------------------------------


async def _serve() -> None:
    schedule = Schedule(default=Profile(queue=FixedDuration(0), processing=FixedDuration(NEVER)))
    fake = FakeMediaX(seed=2025, schedule=schedule, record_requests=False)
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[str] = asyncio.Queue()

    def read_stdin() -> None:  # a daemon thread: stdin lines become commands, EOF "stop"
        for line in sys.stdin:
            loop.call_soon_threadsafe(commands.put_nowait, line.strip())
        loop.call_soon_threadsafe(commands.put_nowait, "stop")

    async with fake.serve() as url:
        threading.Thread(target=read_stdin, daemon=True).start()
        print(json.dumps({"url": url, "secret_id": fake.secret_id}), flush=True)
        while (command := await commands.get()) != "stop":
            if command == "report":
                print(json.dumps(dict(fake.request_counts)), flush=True)


@attrs.define
class Server:
    """The child process serving the fake, and how to reach it."""

    child: subprocess.Popen[str]
    url: str
    secret_id: str

    def request_counts(self) -> collections.Counter[str]:
        """Requests the fake has answered so far, by action."""
        assert self.child.stdin is not None
        assert self.child.stdout is not None
        self.child.stdin.write("report\n")
        self.child.stdin.flush()
        return collections.Counter(json.loads(self.child.stdout.readline()))


@contextlib.contextmanager
def loopback_fake() -> Iterator[Server]:
    """Start the fake in a child process; stop it when the block ends, killing it if it lingers."""
    with child_server([sys.executable, __file__, "--serve"], "fake service") as (child, info):
        yield Server(child, info["url"], info["secret_id"])


# -- creating the batches -------------------------------------------------------------


async def create_batches(url: str, secret_id: str, size: int, tags: int) -> list[Job]:
    """``tags`` batches of ``size`` jobs, each batch's jobs under one custom id."""
    created: list[Job] = []
    todo = [(f"mxb-bench-{size}-{t}", n) for t in range(tags) for n in range(size)]
    async with MediaXClient(secret_id, DEFAULT_SECRET_KEY, base_url=url) as client:

        async def creator() -> None:
            while todo:
                tag, n = todo.pop()
                song = f"https://songs.test/{tag}/{n}.mp3"
                request = separation_request(song, content_id="repo", custom_id=tag)
                created.append(await client.create_job(request))

        async with anyio.create_task_group() as tasks:
            for _ in range(CREATE_CONCURRENCY):
                tasks.start_soon(creator)
    return created


# -- one cell -------------------------------------------------------------------------


class Recorder:
    """A ``JobSource`` over the client: counts each watched job's answers, round by round.

    An answer about a job less than ``gap`` seconds after its previous one is
    in the same round; ``enough`` is set once every job has had ``wanted`` rounds.
    """

    def __init__(self, client: MediaXClient, job_ids: Sequence[str], gap: float, wanted: int):
        self._client = client
        self._gap = gap
        self._wanted = wanted
        self.rounds = dict.fromkeys(job_ids, 0)
        self._last: dict[str, float] = {}
        self._in_round: dict[str, int] = {}
        self.most_in_a_round = 0
        self._short = len(self.rounds)
        self.enough = anyio.Event()
        self.calls: collections.Counter[str] = collections.Counter()
        self.in_flight = 0
        self._quiet: anyio.Event | None = None

    async def until_quiet(self) -> None:
        """Return once no request is in flight."""
        while self.in_flight:
            self._quiet = anyio.Event()
            await self._quiet.wait()

    def _answered(self) -> None:
        self.in_flight -= 1
        if not self.in_flight and self._quiet is not None:
            self._quiet.set()

    def _seen(self, job_id: str, now: float) -> None:
        if job_id not in self.rounds:
            return
        if now - self._last.get(job_id, -math.inf) >= self._gap:
            self.rounds[job_id] += 1
            self._in_round[job_id] = 1
            if self.rounds[job_id] == self._wanted:
                self._short -= 1
                if not self._short:
                    self.enough.set()
        else:
            self._in_round[job_id] += 1
        self.most_in_a_round = max(self.most_in_a_round, self._in_round[job_id])
        self._last[job_id] = now

    async def get_job(self, job_id: str, *, retry: bool = True) -> Job:
        """GetJob through the client, noted."""
        self.in_flight += 1
        try:
            job = await self._client.get_job(job_id, retry=retry)
        finally:
            self._answered()
        self.calls["GetJob"] += 1
        self._seen(job.id, anyio.current_time())
        return job

    async def list_jobs(self, custom_id: str, *, retry: bool = True) -> Sequence[Job]:
        """ListJobs through the client, noted."""
        self.in_flight += 1
        try:
            jobs = await self._client.list_jobs(custom_id, retry=retry)
        finally:
            self._answered()
        self.calls["ListJobs"] += 1
        now = anyio.current_time()
        for job in jobs:
            self._seen(job.id, now)
        return jobs

    def classify_failure(self, error: Exception) -> Failure:
        """As the client classifies it."""
        return self._client.classify_failure(error)


@attrs.frozen
class Cell:
    """What one waiter did on one batch size, transport and concurrency."""

    size: int
    backend: Backend
    concurrency: int
    jobs: int
    rounds: int
    """Rounds of every job, summed."""
    min_rounds: int
    """The fewest rounds any job had."""
    observations: int
    """Polls the waiter counted, summed over the jobs."""
    most_in_a_round: int
    """The most answers about one job within one round."""
    list_jobs: int
    get_jobs: int
    client_requests: int
    """Requests the waiter sent, as its source counted them (a cross-check)."""
    errors: int
    wall: float


async def watch_batches(
    server_url: str,
    secret_id: str,
    backend: Backend,
    concurrency: int,
    jobs: Sequence[Job],
    interval: float,
    rounds: int,
) -> tuple[Recorder, dict[str, int], int]:
    """Watch ``jobs`` until each had ``rounds`` rounds; the recorder, each job's polls, errors."""
    policy = PollPolicy(
        first_delay=interval,
        initial_interval=interval,
        multiplier=1.0,
        max_interval=interval,
        submitted_factor=1.0,
    )
    async with MediaXClient(
        secret_id,
        DEFAULT_SECRET_KEY,
        base_url=server_url,
        http_backend=backend,
        max_connections=concurrency,
    ) as client:
        recorder = Recorder(client, [job.id for job in jobs], interval / 2, rounds)
        waiter = JobWaiter(recorder, policy=policy, max_concurrency=concurrency)
        async with waiter:
            for job in jobs:
                await waiter.add(job)
            with anyio.move_on_after(ROUNDS_BOUND * interval * rounds + QUIET_BOUND):
                await recorder.enough.wait()
            # Stop between requests, so that each one the fake counted was answered.
            with anyio.move_on_after(QUIET_BOUND):
                await recorder.until_quiet()
        polls = {job["id"]: int(job["polls"]) for job in await waiter.pending()}
        errors = waiter.stats.errors
    return recorder, polls, errors


def run_cell(
    server: Server,
    backend: Backend,
    concurrency: int,
    size: int,
    jobs: Sequence[Job],
    interval: float,
    rounds: int,
) -> Cell:
    """One waiter on ``jobs``, with the fake's request counts taken before and after."""
    before = server.request_counts()
    started = time.perf_counter()
    recorder, polls, errors = anyio.run(
        watch_batches,
        server.url,
        server.secret_id,
        backend,
        concurrency,
        jobs,
        interval,
        rounds,
        backend="asyncio",
    )
    wall = time.perf_counter() - started
    served = server.request_counts() - before
    return Cell(
        size=size,
        backend=backend,
        concurrency=concurrency,
        jobs=len(jobs),
        rounds=sum(recorder.rounds.values()),
        min_rounds=min(recorder.rounds.values()),
        observations=sum(polls.get(job.id, 0) for job in jobs),
        most_in_a_round=recorder.most_in_a_round,
        list_jobs=served["ListJobs"],
        get_jobs=served["GetJob"],
        client_requests=sum(recorder.calls.values()),
        errors=errors,
        wall=wall,
    )


# -- the report -----------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(cells: Sequence[Cell], rounds: int, interval: float) -> list[bool]:
    """Print the table and the checks; return the checks' results."""
    print(
        f"\n{'batch':>5} {'transport':>9} {'conc':>4} {'jobs':>5} {'ListJobs':>8} {'GetJob':>6} "
        f"{'req/job/round':>13} {'obs/job/round':>13} {'most/round':>10} {'rounds/job':>10} "
        f"{'min':>3} {'errors':>6} {'wall s':>6}"
    )
    results = []
    for cell in cells:
        requests = cell.list_jobs + cell.get_jobs
        per_round = requests / cell.rounds if cell.rounds else math.inf
        observed = cell.observations / cell.rounds if cell.rounds else math.inf
        print(
            f"{cell.size:>5} {cell.backend:>9} {cell.concurrency:>4} {cell.jobs:>5} "
            f"{cell.list_jobs:>8} {cell.get_jobs:>6} {per_round:>13.4f} {observed:>13.3f} "
            f"{cell.most_in_a_round:>10} {cell.rounds / cell.jobs:>10.2f} {cell.min_rounds:>3} "
            f"{cell.errors:>6} {cell.wall:>6.1f}"
        )
        target = TARGETS[cell.size]
        once = cell.observations == cell.rounds and cell.most_in_a_round == 1
        ok = (
            per_round <= target
            and once
            and cell.min_rounds >= rounds
            and cell.client_requests == requests
        )
        results.append(ok)
        if not ok:
            print(
                f"      FAIL  target <= {target} req/job/round, each job observed once per round, "
                f"at least {rounds} rounds each, the source's {cell.client_requests} requests "
                f"= the fake's {requests}"
            )
    print()
    for size, target in TARGETS.items():
        chosen = [c for c in cells if c.size == size]
        if not chosen:
            continue
        worst = max((c.list_jobs + c.get_jobs) / max(c.rounds, 1) for c in chosen)
        once = all(c.observations == c.rounds and c.most_in_a_round == 1 for c in chosen)
        ok = all(r for c, r in zip(cells, results, strict=True) if c.size == size)
        print(
            f"{verdict(ok)}  batch size {size:,}: at most {target} requests per job per round "
            f"(worst {worst:.4f}; ideal {1 / size:.4f}), each job observed once per round "
            f"({'yes' if once else 'no'}), {len(chosen)} cells"
        )
    print(f"(rounds of {interval:g} s, {rounds} per cell)")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer jobs and rounds (CI smoke)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(_serve())
        return 0
    # (batch size, tags): quick keeps a few tags of 100 and one of 1,000.
    batches = [(100, 3), (1000, 1)] if args.quick else [(100, 20), (1000, 4)]
    rounds = 2 if args.quick else 5
    interval = 0.5 if args.quick else 1.0
    started = time.perf_counter()
    cells: list[Cell] = []
    with loopback_fake() as server:
        for size, tags in batches:
            jobs = anyio.run(
                create_batches, server.url, server.secret_id, size, tags, backend="asyncio"
            )
            for backend in BACKENDS:
                for concurrency in CONCURRENCIES:
                    cell = run_cell(server, backend, concurrency, size, jobs, interval, rounds)
                    cells.append(cell)
    results = report(cells, rounds, interval)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    print(
        f"{sum(results)}/{len(results)} cells passed in {time.perf_counter() - started:.0f} s "
        f"(load average at the end: {load})"
    )
    return 1 if args.check and not all(results) else 0


if __name__ == "__main__":
    sys.exit(main())
