"""The 1,000-job fault test over real loopback HTTP, on each HTTP backend.

``test_waiter_virtual_time.py`` runs it in virtual time through the in-process
transport, under every policy. Here the fake is served by uvicorn and the
client talks to it over 127.0.0.1 through httpx and through aiohttp: dropped
connections are real ones, and a poll really suspends. Time is real, so the
fake runs 1,000 times faster than the clock and the policy is scaled down alike;
nothing here asserts how long anything took.
"""

from __future__ import annotations

import anyio
import pytest
import thousand_jobs

from mediax_async import (
    CreateJobRequest,
    Job,
    MediaXClient,
    PollPolicy,
    separation_request,
)
from mediax_async.testing import FakeMediaX
from mediax_async.testing import Fault as F

pytestmark = pytest.mark.anyio

SPEED = 1000.0
"""Fake seconds per real second: jobs of median 5 s queued and 60 s processing take 65 ms."""

SCALED = PollPolicy(
    first_delay=4.75 / SPEED,
    initial_interval=5.0 / SPEED,
    max_interval=19.75 / SPEED,
    error_initial_delay=1.0 / SPEED,
    error_max_delay=60.0 / SPEED,
)
"""The default policy, 1,000 times faster."""


async def create_all(client: MediaXClient, requests: list[CreateJobRequest]) -> list[Job]:
    """CreateJob for each request, 32 at a time (before any fault is injected)."""
    jobs: list[Job | None] = [None] * len(requests)
    limit = anyio.CapacityLimiter(32)

    async def create(index: int) -> None:
        async with limit:
            jobs[index] = await client.create_job(requests[index])

    async with anyio.create_task_group() as tasks:
        for index in range(len(requests)):
            tasks.start_soon(create, index)
    return [job for job in jobs if job is not None]


@pytest.fixture
def anyio_backend() -> str:
    """The served fake (uvicorn) and aiohttp need asyncio."""
    return "asyncio"


@pytest.mark.parametrize(
    ("backend", "tag"),
    [
        pytest.param("httpx", None, id="httpx-by-id"),
        pytest.param("aiohttp", None, id="aiohttp-by-id"),
        # ListJobs takes the same path above either backend; aiohttp is the quicker.
        pytest.param("aiohttp", "one-batch", id="aiohttp-batch-polling"),
    ],
)
async def test_thousand_jobs_with_faults_over_loopback_each_end_once(
    backend: str, tag: str | None
) -> None:
    """1,000 jobs, 10% faults (dropped connections among them): none lost, none twice."""
    pytest.importorskip(backend)
    fake = FakeMediaX(seed=7, schedule=thousand_jobs.SCHEDULE, record_requests=False, speed=SPEED)
    fake.faults.retry_after = 0  # a 429 still halves the waiter's pace, without a 1 s pause
    with anyio.fail_after(120):  # about 5-15 s; a bound, not a timing assertion
        async with (
            fake.serve() as base_url,
            MediaXClient(
                fake.secret_id,
                fake.secret_key,
                base_url=base_url,
                http_backend=backend,
                max_connections=32,
            ) as client,
        ):
            requests = [
                separation_request(f"https://songs.test/{n}.mp3", content_id="repo", custom_id=tag)
                for n in range(thousand_jobs.JOBS)
            ]
            jobs = await create_all(client, requests)
            thousand_jobs.inject_faults(fake)
            seen, stats = await thousand_jobs.wait_for_each(client, fake, jobs, SCALED)
    thousand_jobs.check_each_ended_once(fake, jobs, seen, stats, batch_polling=tag is not None)
    assert fake.faults.injected(fault=F.DROP) > 0  # real connections, really dropped
