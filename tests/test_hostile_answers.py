"""Hostile or broken answers are typed errors, bounded: never a wrong job, a crash or a loop."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from seeds import (
    PLACEHOLDERS,
    SECRET_KEY,
    Ambiguous,
    ScriptedService,
    answer,
    client_for,
    example,
    job_answer,
)

from mediax_async import (
    MediaXClient,
    MediaXError,
    ResponseError,
    RetryPolicy,
    ServerError,
    parse_job,
    separation_request,
)
from mediax_async._protocol import (
    Answer,
    parse_job_answer,
    parse_jobs_answer,
    parse_model_page_answer,
)
from mediax_async._redact import Redactor

pytestmark = pytest.mark.anyio

REDACTOR = Redactor([SECRET_KEY])
NO_RETRIES = RetryPolicy(max_retries=0)


def a_job(job_id: str = "job-a", **changes: Any) -> dict[str, Any]:
    """A wire job: the vendor's GetJob example with another id."""
    job: dict[str, Any] = example("004", "GetJob response").payload["job"]
    job.update(id=job_id, **changes)
    return job


def deep(depth: int = 100_000) -> bytes:
    """A JSON array nested ``depth`` levels: more than ``json.loads`` can recurse into."""
    return b"[" * depth + b"]" * depth


# -- 11: a GetJob answer for another job ---------------------------------------------


def test_a_get_job_answer_for_another_job_is_a_response_error() -> None:
    """A GetJob answer naming another job id than asked is refused, never taken for it."""
    body = json.dumps({"requestId": "r-1", "getJobResponse": {"job": a_job("job-b")}}).encode()
    with pytest.raises(ResponseError, match="job-b") as caught:
        parse_job_answer("GetJob", Answer(200, {}, body), REDACTOR, job_id="job-a")
    assert caught.value.request_id == "r-1"
    job, _ = parse_job_answer("GetJob", Answer(200, {}, body), REDACTOR, job_id="job-b")
    assert job.id == "job-b"


async def test_get_job_never_returns_another_job() -> None:
    """``get_job("job-a")`` answered with job-b raises ``ResponseError`` after its retries."""
    service = ScriptedService()
    service.then("GetJob", *[job_answer("GetJob", a_job("job-b"))] * 4)
    async with client_for(service) as client:
        with pytest.raises(ResponseError, match="job-a"):
            await client.get_job("job-a")
    assert service.actions() == ["GetJob"] * 4


async def test_get_job_takes_the_right_answer_after_a_wrong_one() -> None:
    """A wrong answer is retried like any unreadable one; the right job then comes back."""
    service = ScriptedService()
    service.add_job(a_job("job-a"))
    service.then("GetJob", job_answer("GetJob", a_job("job-b")))
    async with client_for(service) as client:
        job = await client.get_job("job-a")
    assert job.id == "job-a"
    assert service.actions() == ["GetJob", "GetJob"]


# -- 12: JSON nested too deep ---------------------------------------------------------

ACTIONS: list[tuple[str, Callable[[MediaXClient], Awaitable[Any]]]] = [
    ("GetJob", lambda c: c.get_job("job-a")),
    ("ListJobs", lambda c: c.list_jobs("tag")),
    ("ListModels", lambda c: c.list_models()),
]


@pytest.mark.parametrize(
    "parse",
    [
        lambda a: parse_job_answer("GetJob", a, REDACTOR),
        lambda a: parse_job_answer("CreateJob", a, REDACTOR),
        lambda a: parse_jobs_answer(a, REDACTOR),
        lambda a: parse_model_page_answer(a, REDACTOR),
    ],
    ids=["GetJob", "CreateJob", "ListJobs", "ListModels"],
)
@pytest.mark.parametrize(
    "body",
    [deep(), b'{"getJobResponse": {"job": ' + deep() + b"}}"],
    ids=["array", "in-job"],
)
def test_json_nested_too_deep_is_a_response_error(
    parse: Callable[[Answer], Any], body: bytes
) -> None:
    """An answer nested past the recursion limit is a ``ResponseError``, not a RecursionError."""
    with pytest.raises(ResponseError, match="not JSON"):
        parse(Answer(200, {}, body))


def test_an_error_answer_nested_too_deep_keeps_its_status() -> None:
    """A 503 whose body is nested too deep is still the ``ServerError`` its status says."""
    with pytest.raises(ServerError):
        parse_job_answer("GetJob", Answer(503, {}, deep()), REDACTOR)


def test_parse_job_of_json_nested_too_deep_is_a_response_error() -> None:
    """``parse_job`` (callback bodies, stored jobs) refuses deep JSON as not a job."""
    with pytest.raises(ResponseError, match="not a job"):
        parse_job(deep())


@pytest.mark.parametrize(("action", "call"), ACTIONS, ids=[a for a, _ in ACTIONS])
async def test_every_action_answered_too_deep_raises_a_response_error(
    action: str, call: Callable[[MediaXClient], Awaitable[Any]]
) -> None:
    """Each action answered with JSON nested too deep ends in ``ResponseError``."""
    service = ScriptedService()
    service.then(action, answer(200, deep()))
    async with client_for(service, retry_policy=NO_RETRIES) as client:
        with pytest.raises(ResponseError):
            await call(client)


async def test_create_job_answered_too_deep_every_time_ends_in_a_typed_error() -> None:
    """CreateJob and its recovery both answered too deep: a ``MediaXError``, after looking."""
    service = ScriptedService()
    service.then("CreateJob", *[answer(200, deep())] * 20)
    service.then("ListJobs", *[answer(200, deep())] * 50)
    request = separation_request(PLACEHOLDERS["url"], content_id="repo")
    async with client_for(service, retry_policy=NO_RETRIES) as client:
        with pytest.raises(MediaXError):
            await client.create_job(request)
    assert service.actions()[:2] == ["CreateJob", "ListJobs"]


async def test_create_job_answered_too_deep_is_recovered_through_list_jobs() -> None:
    """A CreateJob whose answer is nested too deep counts as ambiguous: the job is found, once."""
    service = ScriptedService()
    service.then("CreateJob", Ambiguous(answer(200, b'{"createJobResponse": ' + deep() + b"}")))
    request = separation_request(PLACEHOLDERS["url"], content_id="repo")
    async with client_for(service) as client:
        job = await client.create_job(request)
    assert service.actions() == ["CreateJob", "ListJobs"]
    assert list(service.jobs) == [job.id]
