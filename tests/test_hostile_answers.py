"""Hostile or broken answers are typed errors, bounded: never a wrong job, a crash or a loop."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import cattrs
import httpx
import pytest
from seeds import (
    PLACEHOLDERS,
    SECRET_KEY,
    Ambiguous,
    ScriptedService,
    Sent,
    answer,
    client_for,
    example,
    job_answer,
)

from mediax_async import (
    Job,
    MediaXClient,
    MediaXError,
    ResponseError,
    RetryPolicy,
    ServerError,
    State,
    converter,
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


# -- 14: iter_models against a lying total ----------------------------------------------


def models(names: range) -> list[dict[str, Any]]:
    return [{"name": f"voice_{n:03d}", "createdAt": str(1610513575000 + n)} for n in names]


def model_answer(page: list[dict[str, Any]], total: int) -> httpx.Response:
    return answer(200, {"listModelsResponse": {"models": page, "total": total}})


def paging(
    pages: Callable[[int, int], tuple[list[dict[str, Any]], int]],
) -> ScriptedService:
    """A service whose ListModels answers ``pages(offset, limit) -> (models, total)``."""

    def step(sent: Sent) -> httpx.Response:
        page, total = pages(sent.payload["offset"], sent.payload["limit"])
        return model_answer(page, total)

    service = ScriptedService()
    service.then("ListModels", *[step] * 50)
    return service


async def test_iter_models_stops_on_a_page_that_repeats() -> None:
    """A service that ignores ``offset`` and claims a huge total gives its page once."""
    service = paging(lambda offset, limit: (models(range(3)), 1_000_000))
    async with client_for(service) as client:
        names = [m.name async for m in client.iter_models(page_size=3)]
    assert names == ["voice_000", "voice_001", "voice_002"]
    assert service.actions() == ["ListModels"] * 2


async def test_iter_models_stops_on_pages_that_cycle() -> None:
    """Pages A, B, A, B... stop at the first page with nothing new."""
    service = paging(lambda offset, limit: (models(range(offset % 4, offset % 4 + 2)), 10**9))
    async with client_for(service) as client:
        names = [m.name async for m in client.iter_models(page_size=2)]
    assert names == [f"voice_{n:03d}" for n in range(4)]
    assert len(service.sent) == 3


async def test_iter_models_skips_models_seen_on_an_earlier_page() -> None:
    """A list that shifted between pages does not give a model twice, and goes on."""
    pages = {0: models(range(3)), 3: models(range(2, 5)), 6: models(range(5, 6))}
    service = paging(lambda offset, limit: (pages.get(offset, []), 7))
    async with client_for(service) as client:
        names = [m.name async for m in client.iter_models(page_size=3)]
    assert names == [f"voice_{n:03d}" for n in range(6)]


async def test_iter_models_stops_on_an_empty_page() -> None:
    """An empty page ends the walk whatever total it claims."""
    service = paging(lambda offset, limit: (models(range(2)) if offset == 0 else [], 10**9))
    async with client_for(service) as client:
        names = [m.name async for m in client.iter_models(page_size=2)]
    assert names == ["voice_000", "voice_001"]
    assert len(service.sent) == 2


async def test_iter_models_stops_past_the_first_total_even_if_it_grows() -> None:
    """A total that grows with every page does not lead the walk on for ever."""
    service = paging(lambda offset, limit: (models(range(offset, offset + limit)), offset + 10))
    async with client_for(service) as client:
        names = [m.name async for m in client.iter_models(page_size=4)]
    assert names == [f"voice_{n:03d}" for n in range(12)]
    assert [s.payload["offset"] for s in service.sent] == [0, 4, 8]


# -- 15: a boolean is not an integer ---------------------------------------------------


BOOLEAN_PLACES = [
    lambda job, v: job.update(state=v),
    lambda job, v: job["outputs"][0]["smartContentDescriptor"]["musicSeperate"].update(method=v),
    lambda job, v: job.update(timeout=v),
    lambda job, v: job["outputs"][0].update(inputSelectors=[v]),
]


@pytest.mark.parametrize("value", [True, False])
@pytest.mark.parametrize("change", BOOLEAN_PLACES, ids=["state", "nested-enum", "int", "ints"])
def test_a_boolean_is_never_an_integer(value: bool, change: Callable[[Any, bool], None]) -> None:
    """``"state": true`` (or any enum or integer field set to a boolean) is not a job."""
    job = a_job(state=3)
    change(job, value)
    with pytest.raises(ResponseError, match="not a job"):
        parse_job(job)
    with pytest.raises(cattrs.ClassValidationError):
        converter.structure(job, Job)


@pytest.mark.parametrize("value", [True, False])
def test_an_enum_hook_refuses_a_boolean(value: bool) -> None:
    """The converter's hook for every wire enum refuses a boolean: it is not a state."""
    with pytest.raises(TypeError):
        converter.structure(value, State)
    assert converter.structure(3, State) is State.COMPLETED
    assert converter.structure(6, State).name == "UNKNOWN_6"


@pytest.mark.parametrize("change", BOOLEAN_PLACES, ids=["state", "nested-enum", "int", "ints"])
def test_the_fast_decoder_refuses_a_boolean_integer(change: Callable[[Any, bool], None]) -> None:
    """The generated decoder does not take ``true`` for an integer or enum either."""
    from mediax_async._converter import _decoders
    from mediax_async._fastdecode import Mismatch

    decode = _decoders.decoder(Job)
    assert decode is not None
    assert decode(a_job(state=1)).state is State.SUBMITTED
    job = a_job()
    change(job, True)
    with pytest.raises(Mismatch):
        decode(job)
