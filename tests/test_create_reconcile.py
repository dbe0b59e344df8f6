"""create_job under faults that hit its own recovery: bounded cost, its own job or a typed error.

Against the in-process FakeMediaX with fault injection, in virtual time (trio's
MockClock): the fake's request counts and job records are the evidence.
"""

from __future__ import annotations

import random
from typing import Any

import anyio
import httpx
import pytest
import trio.testing

from mediax_async import (
    CreateJobRequest,
    Job,
    JobMayExistError,
    MediaXError,
    RetryPolicy,
    separation_request,
)
from mediax_async.testing import FakeMediaX, FakeTransport, FixedDuration, Profile, Schedule
from mediax_async.testing import Fault as F

pytestmark = pytest.mark.anyio

RETRIES = 3
SCHEDULE = Schedule(default=Profile(queue=FixedDuration(1), processing=FixedDuration(20)))


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Trio with a clock that jumps whenever all tasks sleep: backoff costs nothing."""
    return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})


def request(**options: Any) -> CreateJobRequest:
    return separation_request("https://s.test/same.mp3", content_id="repo", **options)


# -- 1. recovery that fails itself ------------------------------------------------------------


@pytest.mark.parametrize("lookup_fault", [F.SERVER_ERROR, F.DROP, F.BAD_GATEWAY])
async def test_a_lookup_that_keeps_failing_raises_job_may_exist_with_the_custom_id(
    lookup_fault: F,
) -> None:
    """The job was made, its answer lost, and ListJobs cannot answer: the error says so."""
    fake = FakeMediaX(schedule=SCHEDULE)
    fake.faults.inject(F.ANSWER_LOST, action="CreateJob")
    fake.faults.set_rate(lookup_fault, 1.0, action="ListJobs")
    async with fake.client(max_retries=RETRIES) as client:
        with pytest.raises(JobMayExistError) as info:
            await client.create_job(request(custom_id="tag-1"))
    assert info.value.custom_id == "tag-1"
    assert "may exist" in str(info.value)
    assert info.value.last_error is not None
    assert len(fake.jobs) == 1  # it does exist...
    assert fake.request_counts["CreateJob"] == 1  # ...so it was never sent again
    assert fake.request_counts["ListJobs"] <= 2 * (1 + RETRIES)


async def test_a_lookup_that_fails_then_answers_finds_the_job() -> None:
    """Recovery keeps trying: ListJobs failing twice, then answering, finds the one job."""
    fake = FakeMediaX(schedule=SCHEDULE)
    fake.faults.inject(F.ANSWER_LOST, action="CreateJob")
    fake.faults.inject(F.SERVER_ERROR, action="ListJobs", times=2)
    async with fake.client(max_retries=RETRIES) as client:
        job = await client.create_job(request())
    (only,) = fake.jobs
    assert job.id == only["id"]
    assert fake.request_counts["CreateJob"] == 1


@pytest.mark.parametrize("seed", range(40))
async def test_one_create_job_costs_at_most_1_plus_r_creates_and_twice_that_lookups(
    seed: int,
) -> None:
    """Whatever fails, one call sends <= 1+R CreateJob and <= 2(1+R) ListJobs, and says the truth.

    It returns the one job made, or raises JobMayExistError (at most one job made), or
    another error only when no job was made.
    """
    fake = FakeMediaX(seed=seed, schedule=SCHEDULE)
    for fault in (F.SERVER_ERROR, F.ANSWER_LOST, F.DROP):
        fake.faults.set_rate(fault, 0.3, action="CreateJob")
    fake.faults.set_rate(F.SERVER_ERROR, 0.3, action="ListJobs")
    fake.faults.set_rate(F.DROP, 0.3, action="ListJobs")
    async with fake.client(max_retries=RETRIES) as client:
        try:
            job = await client.create_job(request())
        except JobMayExistError:
            assert len(fake.jobs) <= 1
        except MediaXError:
            assert fake.jobs == []  # any other error: surely no job
        else:
            (only,) = fake.jobs
            assert job.id == only["id"]
    assert fake.request_counts["CreateJob"] <= 1 + RETRIES
    assert fake.request_counts["ListJobs"] <= 2 * (1 + RETRIES)


async def test_out_of_retries_with_every_lookup_saying_no_job_raises_the_create_error() -> None:
    """Every CreateJob a 500 (not processed), each look-up answering none: the 500 is raised.

    A look-up that failed once, then answered, counts as an answer: the call is sure.
    """
    fake = FakeMediaX(schedule=SCHEDULE)
    fake.faults.set_rate(F.SERVER_ERROR, 1.0, action="CreateJob")  # not processed
    async with fake.client(retry_policy=RetryPolicy(max_retries=1)) as client:
        fake.faults.inject(F.SERVER_ERROR, action="ListJobs", times=1)  # first look-up: retried
        with pytest.raises(MediaXError) as info:
            await client.create_job(request())
    # Every look-up that answered said "no job": the 500 itself is the honest error.
    assert not isinstance(info.value, JobMayExistError)
    assert fake.jobs == []
    assert fake.request_counts["CreateJob"] == 2


async def test_find_job_after_job_may_exist_reconciles_instead_of_resending() -> None:
    """The documented retry: find_job gives back the job that may exist; nothing sent twice."""
    fake = FakeMediaX(schedule=SCHEDULE)
    fake.faults.inject(F.ANSWER_LOST, action="CreateJob")
    fake.faults.set_rate(F.SERVER_ERROR, 1.0, action="ListJobs")
    async with fake.client(max_retries=RETRIES) as client:
        sent = request(custom_id="tag-2")
        with pytest.raises(JobMayExistError):
            await client.create_job(sent)
        fake.faults.clear()
        found = await client.find_job(sent)
        assert found is not None
        assert found.id == fake.jobs[0]["id"]
        assert await client.find_job(request(custom_id="tag-none")) is None
    assert fake.request_counts["CreateJob"] == 1


# -- 2. identical requests sharing one custom id -----------------------------------------------


async def test_a_later_identical_request_never_takes_an_earlier_callers_job() -> None:
    """Call 1 got job A; call 2's answer is lost: its look-up lists A and B, and takes B."""
    fake = FakeMediaX(schedule=SCHEDULE)
    async with fake.client(max_retries=RETRIES) as client:
        first = await client.create_job(request(custom_id="batch-1"))
        fake.faults.inject(F.ANSWER_LOST, action="CreateJob")
        second = await client.create_job(request(custom_id="batch-1"))
    assert first.id != second.id
    assert sorted(job["id"] for job in fake.jobs) == sorted([first.id, second.id])


class LateAnswers(httpx.AsyncBaseTransport):
    """The fake's transport, with some answers delivered late (after processing)."""

    def __init__(self, fake: FakeMediaX, *, rate: float, delay: float, seed: int) -> None:
        self._inner = FakeTransport(fake)
        self._rate = rate
        self._delay = delay
        self._random = random.Random(seed)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if self._random.random() < self._rate:
            await anyio.sleep(self._delay * self._random.random())
        return response


@pytest.mark.parametrize("seed", range(6))
async def test_concurrent_identical_requests_each_get_a_distinct_job_and_none_is_orphaned(
    seed: int,
) -> None:
    """40 identical calls on one batch tag, answers lost or late: every job has one caller."""
    fake = FakeMediaX(seed=seed, schedule=SCHEDULE)
    fake.faults.set_rate(F.ANSWER_LOST, 0.3, action="CreateJob")
    fake.faults.set_rate(F.DROP, 0.1, action="CreateJob")
    transport = LateAnswers(fake, rate=0.4, delay=20.0, seed=seed)
    http = httpx.AsyncClient(transport=transport, base_url=fake.base_url)
    results: list[Job | BaseException] = []

    async def one() -> None:
        try:
            results.append(await client.create_job(request(custom_id="batch-tag")))
        except MediaXError as exc:
            results.append(exc)

    async with http, fake.client(http_client=http, max_retries=8) as client:
        with anyio.fail_after(3600):
            async with anyio.create_task_group() as tasks:
                for _ in range(40):
                    tasks.start_soon(one)
    jobs = [r for r in results if isinstance(r, Job)]
    errors = [r for r in results if not isinstance(r, Job)]
    assert errors == []
    returned = [job.id for job in jobs]
    assert len(returned) == len(set(returned)) == 40  # each call its own job
    assert sorted(returned) == sorted(job["id"] for job in fake.jobs)  # no job without a caller
