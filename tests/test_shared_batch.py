"""Several processes share one batch through Redis, under faults, kills and a Redis restart.

Real processes throughout: a fake MediaX served over loopback HTTP with
faults of every kind (``tests/fault_emulator.py``), a real ``redis-server``
with its append-only file on, ``mediax batch --store`` and ``mediax worker``
processes. Each process is stopped in a ``finally`` under a time bound;
waits are on the results file and the children, never on the clock alone.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from processes import SAFETY, Child, child, mediax
from redis_server import RedisServer

pytest.importorskip("uvicorn")

HERE = Path(__file__).parent
LINES = 3_000
RUN_BOUND = 240.0
"""Seconds the whole batch may take before the test fails (it takes far less)."""


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path, Child]]:
    """The faulty fake over HTTP: its environment, where its report goes, the child."""
    report = tmp_path / "fake-report.json"
    argv = [sys.executable, str(HERE / "fault_emulator.py"), "--report", str(report)]
    with child(argv, stop_signal=signal.SIGINT) as process:
        yield json.loads(process.line()), report, process


def write_batch(path: Path, lines: int) -> None:
    with path.open("w") as out:
        for n in range(lines):
            line = {
                "kind": "separation",
                "song": f"https://example.com/songs/{n}.mp3",
                "content_id": "repo",
            }
            out.write(json.dumps(line) + "\n")


def records(path: Path) -> list[dict[str, Any]]:
    """The line records of a results file (its header left out)."""
    if not path.exists():
        return []
    found = []
    for text in path.read_text().splitlines():
        if not text.endswith("}"):
            continue  # a record being written
        data = json.loads(text)
        if "line" in data:
            found.append(data)
    return found


def wait_for(condition: Any, what: str, bound: float = RUN_BOUND) -> None:
    """Until ``condition()`` holds; fails after ``bound`` seconds (the event, not the time)."""
    started = time.monotonic()
    deadline = started + bound
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {bound} s"
        time.sleep(0.1)
    print(f"{what}: after {time.monotonic() - started:.1f} s")


def test_four_processes_share_a_batch_through_kills_and_a_redis_restart(
    emulator: tuple[dict[str, str], Path, Child], tmp_path: Path
) -> None:
    """3,000 jobs, 15% faults, 2 workers killed, 1 started, Redis restarted: each settles once."""
    env, report_path, fake = emulator
    rng = random.Random(7)
    source = tmp_path / "jobs.jsonl"
    results = tmp_path / "jobs.results.jsonl"
    write_batch(source, LINES)
    logs = tmp_path / "logs"
    logs.mkdir()
    with RedisServer(tmp_path / "redis", appendonly=True) as redis:
        store = ["--store", redis.url, "--namespace", "shared-test", "--lease", "10"]

        def log(name: str) -> int:
            return os.open(logs / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND)

        batch_argv = mediax("--json", "batch", str(source), "--concurrency", "32", *store)
        with child(batch_argv, env=env, stdout=log("batch.out"), stderr=log("batch.err")) as batch:
            workers = {}
            try:
                for name in ("w1", "w2", "w3"):
                    workers[name] = subprocess.Popen(
                        mediax("--json", "worker", *store),
                        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
                        stdout=log(f"{name}.out"),
                        stderr=log(f"{name}.err"),
                        stdin=subprocess.DEVNULL,
                    )
                done = lambda share: lambda: len(records(results)) >= share * LINES  # noqa: E731
                wait_for(done(rng.uniform(0.05, 0.2)), "the first records")
                workers["w1"].kill()  # SIGKILL: its claims and submissions are orphaned
                wait_for(done(rng.uniform(0.25, 0.4)), "records after one kill")
                workers["w2"].kill()
                workers["w4"] = subprocess.Popen(
                    mediax("--json", "worker", *store),
                    env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
                    stdout=log("w4.out"),
                    stderr=log("w4.err"),
                    stdin=subprocess.DEVNULL,
                )
                wait_for(done(rng.uniform(0.45, 0.6)), "records after two kills")
                redis.restart()  # every process reconnects, with backoff
                code = batch.process.wait(timeout=RUN_BOUND)
            finally:
                for process in workers.values():
                    if process.poll() is None:
                        process.send_signal(signal.SIGINT)
                for process in workers.values():
                    try:
                        process.wait(timeout=SAFETY)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait(timeout=SAFETY)
        entries = anyio.run(_stream_entries, redis.url, "shared-test")
    fake.process.send_signal(signal.SIGINT)
    fake.process.wait(timeout=SAFETY)
    report = json.loads(report_path.read_text())
    err = (logs / "batch.err").read_text()

    settled_by = {name: len((logs / f"{name}.out").read_text().splitlines()) for name in workers}
    print(f"settled by each worker: {settled_by}; faults injected: {report['faults']}")
    assert code in (0, 1), err[-2000:]
    recorded = records(results)
    by_line = Counter(r["line"] for r in recorded)
    assert sorted(by_line) == list(range(1, LINES + 1)), "every line recorded"
    assert max(by_line.values()) == 1, "each line recorded once"
    jobs = {job["id"]: job for job in report["jobs"]}
    assert len(jobs) == LINES, f"{len(jobs) - LINES} duplicate (or missing) CreateJob"
    assert {r["job_id"] for r in recorded} == set(jobs), "every job created belongs to a line"
    for record in recorded:
        assert record["state"] == _state_name(jobs[record["job_id"]]["state"]), record
    settled = Counter(job_id for job_id, _ in entries)
    assert set(settled) == set(jobs), "every job settled in the store"
    assert max(settled.values()) == 1, "each job settled exactly once"
    faults = Counter()
    for key, count in report["faults"].items():
        faults[key.split(":", 1)[1]] += count
    assert faults["answer_lost"] > 0, report["faults"]
    assert faults["drop"] > 0, report["faults"]


def _state_name(state: int) -> str:
    from mediax_async import State

    return State(state).name


async def _stream_entries(url: str, namespace: str) -> list[tuple[str, int | None]]:
    from mediax_async.redis import RedisStore

    async with RedisStore.from_url(url, namespace=namespace) as store:
        found: list[tuple[str, int | None]] = []
        cursor = "0"
        while True:
            entries, cursor = await store.follow_results(cursor, 1_000, 0.0)
            for entry in entries:
                job = entry.settlement.job
                found.append((entry.settlement.job_id, int(job.state) if job else None))
            if len(entries) < 1_000:
                return found


def test_a_batch_whose_every_process_died_resumes_on_a_rerun(
    emulator: tuple[dict[str, str], Path, Child], tmp_path: Path
) -> None:
    """SIGKILL the only process mid-batch; the same command again re-creates and loses nothing."""
    env, report_path, fake = emulator
    lines = 300
    source = tmp_path / "jobs.jsonl"
    results = tmp_path / "jobs.results.jsonl"
    write_batch(source, lines)
    with RedisServer(tmp_path / "redis") as redis:
        store = ["--store", redis.url, "--namespace", "rerun", "--lease", "5"]
        argv = mediax("--json", "batch", str(source), "--concurrency", "16", *store)
        out = os.open(tmp_path / "first.out", os.O_WRONLY | os.O_CREAT)
        with child(argv, env=env, stdout=out, stderr=out) as first:
            wait_for(lambda: len(records(results)) >= lines // 5, "the first records")
            first.process.kill()
            first.process.wait(timeout=SAFETY)
        os.close(out)
        before = len(records(results))
        with child(argv, env=env) as rerun:
            code, summary_text, err = rerun.finish(timeout=RUN_BOUND)
        with child(mediax("--json", "status", *store[:4]), env=env) as status:
            status_code, status_text, _ = status.finish()
    fake.process.send_signal(signal.SIGINT)
    fake.process.wait(timeout=SAFETY)
    report = json.loads(report_path.read_text())

    assert code in (0, 1), err[-2000:]
    summary = json.loads(summary_text)
    assert summary["skipped"] == before
    recorded = records(results)
    assert sorted(Counter(r["line"] for r in recorded).items()) == [
        (n, 1) for n in range(1, lines + 1)
    ]
    jobs = {job["id"]: job for job in report["jobs"]}
    assert len(jobs) == lines, f"{len(jobs) - lines} jobs created twice"
    assert {r["job_id"] for r in recorded} == set(jobs)
    assert status_code == 0
    counts = json.loads(status_text)
    assert counts["submitting"] == 0
    assert counts["watched"] == {}
    assert sum(counts["settled"].values()) == lines
