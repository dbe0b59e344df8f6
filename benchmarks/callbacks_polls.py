"""GetJob calls per job: callbacks with polling as the fallback, against polling alone.

The same workload runs twice in one process, each run in virtual time (trio's
MockClock, so hours of job time take a few seconds): N jobs with log-normal
queue and processing times, 5% ending ERROR and 1% CANCELED (a canceled job
sends no callback: only polling finds it), created at once on the in-process
fake and waited for by one JobWaiter.

- *polling alone*: the default ``PollPolicy``, no callback URL.
- *callbacks*: each job carries the URL of a ``CallbackReceiver``; the fake
  delivers its callbacks in-process (``httpx.ASGITransport``); the waiter
  uses ``CALLBACK_POLL_POLICY`` and does not trust callbacks, so each one
  costs the GetJob that confirms it.
- *callbacks, trusted* (for reference): ``trust_callbacks=True``; a callback
  settles its job with no GetJob at all.

Printed: GetJob calls per job for each, the ratio, and how long after its
end each job was known (mean and worst, virtual seconds).

    python benchmarks/callbacks_polls.py             # 1,000 jobs
    python benchmarks/callbacks_polls.py --quick     # a smoke run at 100 jobs
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from typing import Any

import anyio
import httpx
import trio.testing

from mediax_async import Job, PollPolicy, State, separation_request
from mediax_async._callbacks import (
    CALLBACK_POLL_POLICY,
    CallbackReceiver,
)
from mediax_async.testing import FakeMediaX, LogNormalDuration, Profile, Schedule

PUBLIC_URL = "http://receiver.test"
WORKLOAD = Schedule(
    default=Profile(
        queue=LogNormalDuration(median=5, sigma=1),
        processing=LogNormalDuration(median=60, sigma=1),
        error_rate=0.05,
        cancel_rate=0.01,
    )
)


async def run(jobs: int, seed: int, mode: str) -> dict[str, Any]:
    """One run: create ``jobs`` jobs at time 0 and wait for them all; count the requests."""
    fake = FakeMediaX(seed=seed, schedule=WORKLOAD, record_requests=False)
    receiver = CallbackReceiver()
    callback = receiver.callback_url(PUBLIC_URL) if mode != "polling" else None
    policy = PollPolicy() if mode == "polling" else CALLBACK_POLL_POLICY
    settled_at: dict[str, float] = {}

    def on_settled(job_id: str, outcome: Job | BaseException) -> None:
        settled_at[job_id] = anyio.current_time()

    transport = httpx.ASGITransport(app=receiver)
    async with fake.running(callback_transport=transport), fake.client() as client:
        created = [
            await client.create_job(
                separation_request(f"https://songs.test/{n}.mp3", content_id="r", callback=callback)
            )
            for n in range(jobs)
        ]
        started = anyio.current_time()
        waiter = client.waiter(
            policy=policy,
            max_concurrency=32,
            trust_callbacks=mode == "trusted",
            on_settled=on_settled,
            rng=random.Random(seed),  # the same jitter draws every run
        )
        async with waiter:
            receiver.attach(waiter)
            outcomes = await waiter.wait_all(created)
    assert all(job.state.is_terminal for job in outcomes)
    lags, called_back = [], []
    for job in outcomes:
        ended_ms = int(fake.job(job.id)["timing"]["completedAt"]) - fake.state.epoch_offset_ms
        lag = settled_at[job.id] - ended_ms / 1000
        lags.append(lag)
        if job.state != State.CANCELED:
            called_back.append(lag)
    return {
        "get_job": fake.request_counts["GetJob"],
        "list_jobs": fake.request_counts["ListJobs"],
        "callbacks": receiver.stats.accepted,
        "lag_mean": statistics.fmean(lags),
        "lag_max": max(lags),
        "lag_max_called_back": max(called_back),
        "virtual_s": anyio.current_time() - started,
    }


def measure(jobs: int, seed: int, mode: str) -> dict[str, Any]:
    clock = trio.testing.MockClock(autojump_threshold=0)
    started = time.perf_counter()
    result: dict[str, Any] = anyio.run(
        run, jobs, seed, mode, backend="trio", backend_options={"clock": clock}
    )
    result["wall_s"] = time.perf_counter() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run at 100 jobs")
    parser.add_argument("--jobs", type=int, help="jobs per run (default 1000)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    jobs = args.jobs or (100 if args.quick else 1000)
    print(
        f"{jobs} jobs, log-normal queue (median 5 s) and processing (median 60 s), "
        f"seed {args.seed}; GetJob calls per job:"
    )
    rows = {}
    for mode, label in (
        ("polling", "polling alone"),
        ("callbacks", "callbacks + fallback polling"),
        ("trusted", "callbacks, trusted"),
    ):
        r = measure(jobs, args.seed, mode)
        rows[mode] = r
        print(
            f"  {label:<30} {r['get_job'] / jobs:6.2f} GetJob/job  "
            f"({r['get_job']} GetJob, {r['list_jobs']} ListJobs, {r['callbacks']} callbacks); "
            f"known {r['lag_mean']:.1f} s after the end on average, {r['lag_max']:.0f} s at worst "
            f"({r['lag_max_called_back']:.1f} s for jobs that call back); "
            f"{r['wall_s']:.1f} s wall"
        )
    ratio = rows["polling"]["get_job"] / max(rows["callbacks"]["get_job"], 1)
    per_job = rows["callbacks"]["get_job"] / jobs
    print(f"polling alone makes {ratio:.1f}x the GetJob calls of callbacks")
    target = "met" if per_job <= 1.2 else "MISSED"
    print(f"target <= 1.2 GetJob/job with callbacks: {target} ({per_job:.2f})")
    if per_job > 1.2:
        sys.exit(1)


if __name__ == "__main__":
    main()
