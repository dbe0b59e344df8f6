"""What sharing a waiter's state through Redis costs, and how polling scales with processes.

Polls go through an in-process ``JobSource`` that answers at once (a job that
never ends), so the figures are the waiter's and the store's, not a
service's. A ``redis-server`` is started on 127.0.0.1 (a free port, a
temporary directory) and stopped at the end.

- *store cost*: one process, the same jobs and source, polling unthrottled:
  CPU per poll with ``RedisStore`` against ``MemoryStore``, alternated
  A B A B, medians. The Redis server's own CPU (``INFO cpu``) is given
  beside it, per poll.
- *scaling*: 1, 2 and 4 processes on one Redis namespace sharing the same
  jobs: polls per second of all of them together (median of the runs).
- *memory*: ``INFO memory`` before and after 100,000 jobs are watched (in
  batch tags of 1,000, as ``mediax batch`` makes them, and untagged).

    python benchmarks/distributed.py            # about 2 minutes
    python benchmarks/distributed.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import anyio

from mediax_async import Job, JobWaiter, MemoryStore, PollPolicy, State, parse_job
from mediax_async.stores import Watch
from mediax_async.testing import FakeMediaX  # noqa: F401 - keeps the testing extra importable

UNTHROTTLED = PollPolicy(
    first_delay=0, initial_interval=0, max_interval=0, submitted_factor=1, jitter="none"
)


class InstantSource:
    """A ``JobSource`` whose jobs never end: each poll answers at once (and is counted)."""

    def __init__(self, jobs: dict[str, Job]) -> None:
        self.jobs = jobs
        self.polls = 0

    async def get_job(self, job_id: str, *, retry: bool = True) -> Job:
        self.polls += 1
        return self.jobs[job_id]

    async def list_jobs(self, custom_id: str, *, retry: bool = True) -> Sequence[Job]:
        self.polls += 1
        return [job for job in self.jobs.values() if job.custom_id == custom_id]

    def classify_failure(self, error: Exception) -> Any:
        raise error


def make_jobs(count: int) -> dict[str, Job]:
    return {
        f"job-{n:07d}": parse_job({"id": f"job-{n:07d}", "state": int(State.PROCESSING)})
        for n in range(count)
    }


# -- a child: one process polling for ``seconds`` -----------------------------------------


async def child(args: argparse.Namespace) -> dict[str, float]:
    jobs = make_jobs(args.jobs)
    source = InstantSource(jobs)
    if args.store == "memory":
        store: Any = MemoryStore()
        return await _poll(source, store, jobs, args)
    from mediax_async.redis import RedisStore

    async with RedisStore.from_url(args.url, namespace=args.namespace) as redis:
        return await _poll(source, redis, jobs, args)


async def _poll(
    source: InstantSource, store: Any, jobs: dict[str, Job], args: argparse.Namespace
) -> dict[str, float]:
    waiter = JobWaiter(source, store=store, policy=UNTHROTTLED, max_concurrency=args.concurrency)
    async with waiter:
        for job in jobs.values():
            await waiter.add(job)
        await anyio.sleep(args.warmup)
        polls, cpu, wall = source.polls, time.process_time(), time.perf_counter()
        await anyio.sleep(args.seconds)
        polls = source.polls - polls
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        waiter_polls = waiter.stats.polls
    return {"polls": polls, "cpu": cpu, "wall": wall, "waiter_polls": waiter_polls}


# -- the parent ------------------------------------------------------------------------


class Redis:
    """A redis-server child on a free port in a temporary directory."""

    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            raise SystemExit("redis-server is not installed (apt-get install redis-server)")
        self.dir = tempfile.mkdtemp(prefix="mediax-bench-redis-")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", self.dir,
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while not self.ping():
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise SystemExit("redis-server did not start")
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def info(self, section: str) -> dict[str, Any]:
        return anyio.run(_info, self.url, section)

    def cpu(self) -> float:
        info = self.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def run_children(
    count: int, store: str, url: str, namespace: str, opts: argparse.Namespace
) -> list[dict[str, float]]:
    argv = [
        sys.executable, __file__, "--child", "--store", store, "--url", url,
        "--namespace", namespace, "--jobs", str(opts.jobs), "--seconds", str(opts.seconds),
        "--warmup", str(opts.warmup), "--concurrency", str(opts.concurrency),
    ]  # fmt: skip
    processes = [subprocess.Popen(argv, stdout=subprocess.PIPE) for _ in range(count)]
    results = []
    for process in processes:
        out, _ = process.communicate(timeout=opts.seconds * 4 + 120)
        if process.returncode != 0:
            raise SystemExit(f"a child failed ({process.returncode})")
        results.append(json.loads(out))
    return results


async def _info(url: str, section: str) -> dict[str, Any]:
    import coredis

    async with coredis.Redis.from_url(url, decode_responses=True) as client:
        return dict(await client.info(section))


async def watch_many(url: str, namespace: str, count: int, tag_size: int | None) -> None:
    from mediax_async.redis import RedisStore

    async with RedisStore.from_url(url, namespace=namespace) as store:
        for start in range(0, count, 1000):
            await store.watch(
                [
                    Watch(
                        f"3f2b8c1e-4d5a-4b6c-9e7f-{n:012d}",
                        60.0,
                        f"batch-7f3a9c{n // tag_size:06d}" if tag_size else None,
                        "musicSeperate",
                        State.PROCESSING,
                        f"batch-7f3a9c:{n}" if tag_size else None,
                    )
                    for n in range(start, min(start + 1000, count))
                ]
            )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--store", default="redis")
    parser.add_argument("--url", default="")
    parser.add_argument("--namespace", default="bench")
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory-jobs", type=int, default=100_000)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(anyio.run(child, args)))
        return 0
    if args.quick:
        args.jobs, args.seconds, args.warmup, args.rounds, args.memory_jobs = 200, 1.0, 0.3, 1, 2000
    redis = Redis()
    checks = []
    try:
        print(
            f"{args.jobs} jobs that never end, polled unthrottled at concurrency "
            f"{args.concurrency}, {args.seconds:g} s per run after {args.warmup:g} s"
        )
        memory_us, redis_us, server_us = [], [], []
        for n in range(args.rounds):  # A B A B
            (mem,) = run_children(1, "memory", redis.url, f"m{n}", args)
            before = redis.cpu()
            (red,) = run_children(1, "redis", redis.url, f"cost{n}", args)
            server = redis.cpu() - before
            memory_us.append(mem["cpu"] / mem["polls"] * 1e6)
            redis_us.append(red["cpu"] / red["polls"] * 1e6)
            server_us.append(server / red["polls"] * 1e6)
            print(f"  round {n + 1}: MemoryStore {memory_us[-1]:6.1f} us/poll "
                  f"({mem['polls'] / mem['wall']:7.0f} polls/s); RedisStore {redis_us[-1]:6.1f} "
                  f"us/poll ({red['polls'] / red['wall']:7.0f} polls/s), redis-server "
                  f"{server_us[-1]:5.1f} us/poll")  # fmt: skip
        extra = statistics.median(redis_us) - statistics.median(memory_us)
        print(f"store cost, medians: MemoryStore {statistics.median(memory_us):.1f} us/poll, "
              f"RedisStore {statistics.median(redis_us):.1f} us/poll in the process (+{extra:.1f}),"
              f" redis-server {statistics.median(server_us):.1f} us/poll")  # fmt: skip
        checks.append(("RedisStore costs at most 60 us more CPU per poll", extra <= 60))

        rates: dict[int, float] = {}
        for count in (1, 2, 4):
            runs = []
            for n in range(args.rounds):
                results = run_children(count, "redis", redis.url, f"scale{count}-{n}", args)
                runs.append(sum(r["polls"] / r["wall"] for r in results))
            rates[count] = statistics.median(runs)
            print(f"scaling: {count} process(es) on one namespace: {rates[count]:8.0f} polls/s "
                  f"({rates[count] / rates[1]:.2f}x one)")  # fmt: skip
        checks.append(("2 processes poll at least 1.3x one", rates[2] >= 1.3 * rates[1]))

        for tag_size, label in ((1000, "in batch tags of 1,000"), (None, "untagged")):
            namespace = f"mem-{tag_size}"
            before = int(redis.info("memory")["used_memory"])
            anyio.run(watch_many, redis.url, namespace, args.memory_jobs, tag_size)
            after = int(redis.info("memory")["used_memory"])
            per_job = (after - before) / args.memory_jobs
            print(f"memory: {args.memory_jobs} pending jobs {label}: "
                  f"{(after - before) / 1e6:.1f} MB, {per_job:.0f} bytes per job")  # fmt: skip
            checks.append((f"at most 600 bytes per pending job ({label})", per_job <= 600))
    finally:
        redis.stop()
    for what, ok in checks:
        print(f"{'PASS' if ok else 'MISS'}  target: {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
