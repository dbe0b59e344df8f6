"""MediaXClient's httpx path against HTTP routes stubbed with respx.

Status codes, headers, bodies and dropped connections, as the service or a
gateway in front of it gives them. The client makes its own pooled
``httpx.AsyncClient`` (no ``http_client`` is passed): respx replaces only the
network under httpx's connection pool, so the headers, pool and deadlines the
library sets up are the ones under test. The service is told apart by action
(``json__action``), as every action but ListModels posts to ``/job``.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest
import respx
from client_helpers import virtual_time
from seeds import PLACEHOLDERS, SECRET_ID, SECRET_KEY, answer, job_answer

from mediax_async import (
    APIError,
    AuthenticationError,
    CreateJobRequest,
    MediaXClient,
    NotFoundError,
    PollPolicy,
    RateLimitError,
    ResponseError,
    RetryPolicy,
    ServerError,
    State,
    TransportError,
    separation_request,
)

pytestmark = pytest.mark.anyio

BASE = "https://mediax.test"
JOB_URL = f"{BASE}/job"
MODEL_URL = f"{BASE}/music_model"
NO_WAIT = RetryPolicy(initial_delay=0)
"""The default three retries, without waiting between them."""

PROCESSING = {"id": "j", "state": 2}


def new_client(**options: Any) -> MediaXClient:
    """A client with its own httpx pool, sending to ``BASE``; retries do not wait."""
    options.setdefault("retry_policy", NO_WAIT)
    return MediaXClient(SECRET_ID, SECRET_KEY, base_url=BASE, **options)


def action(router: respx.MockRouter, name: str) -> respx.Route:
    """The route of one action (its URL and the ``action`` in its body)."""
    return router.post(MODEL_URL if name == "ListModels" else JOB_URL, json__action=name)


def error(status: int, code: str = "E", **headers: str) -> httpx.Response:
    return answer(status, {"error": {"code": code, "message": "refused"}}, **headers)


def sent(route: respx.Route, index: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(route.calls[index].request.content)
    return body


def separation() -> CreateJobRequest:
    return separation_request(PLACEHOLDERS["url"], content_id=PLACEHOLDERS["contentId"])


def created(request: httpx.Request, job_id: str = "job-1") -> dict[str, Any]:
    """The job the service makes for the CreateJob ``request``."""
    wanted = json.loads(request.content)["createJobRequest"]
    return {
        "id": job_id,
        "state": 1,
        "customId": wanted["customId"],
        "inputs": wanted["inputs"],
        "outputs": wanted["outputs"],
    }


def listed(*jobs: dict[str, Any]) -> httpx.Response:
    body = {"requestId": "req-list", "listJobsResponse": {"jobs": list(jobs), "total": len(jobs)}}
    return answer(200, body)


# -- requests --------------------------------------------------------------------------------


async def test_requests_from_the_clients_own_pool_carry_json_headers(
    respx_mock: respx.MockRouter,
) -> None:
    """The pool the client makes sends JSON with its User-Agent and the vendor's body shape."""
    route = action(respx_mock, "GetJob").mock(return_value=job_answer("GetJob", PROCESSING))
    async with new_client() as client:
        await client.get_job("j")
    request = route.calls.last.request
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    assert request.headers["user-agent"] == "mediax-async"
    assert sent(route) == {
        "action": "GetJob",
        "secretId": SECRET_ID,
        "secretKey": SECRET_KEY,
        "getJobRequest": {"id": "j"},
    }


# -- status codes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, APIError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, NotFoundError),
        (409, APIError),
        (422, APIError),
    ],
)
async def test_client_errors_raise_their_type_after_one_request(
    respx_mock: respx.MockRouter, status: int, expected: type[APIError]
) -> None:
    """A 4xx other than 429 raises its typed error at once: one request, no retry."""
    route = action(respx_mock, "ListJobs").mock(return_value=error(status, "Nope"))
    async with new_client() as client:
        with pytest.raises(expected) as info:
            await client.list_jobs("c")
        assert client.transport.retries == 0
    assert type(info.value) is expected
    assert (info.value.status_code, info.value.code, info.value.action) == (
        status,
        "Nope",
        "ListJobs",
    )
    assert route.call_count == 1


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_rate_limits_and_server_errors_are_retried(
    respx_mock: respx.MockRouter, status: int
) -> None:
    """429 and 5xx answers are sent again; the answer after them is returned."""
    failure = error(status)
    route = action(respx_mock, "GetJob").mock(
        side_effect=[failure, failure, job_answer("GetJob", PROCESSING)]
    )
    async with new_client() as client:
        job = await client.get_job("j")
        assert client.transport.retries == 2
    assert job.state == State.PROCESSING
    assert route.call_count == 3


async def test_server_errors_past_the_retries_raise_the_last_one(
    respx_mock: respx.MockRouter,
) -> None:
    """When every attempt gets a 5xx, ``max_retries + 1`` requests end in ServerError."""
    route = action(respx_mock, "ListModels").mock(return_value=error(503, "Busy"))
    policy = RetryPolicy(max_retries=2, initial_delay=0)
    async with new_client(retry_policy=policy) as client:
        with pytest.raises(ServerError) as info:
            await client.list_models()
    assert (info.value.status_code, info.value.code) == (503, "Busy")
    assert route.call_count == 3


# -- headers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["X-Request-Id", "X-Api-RequestId", "X-TC-RequestId"])
async def test_request_id_comes_from_a_header_when_the_body_has_none(
    respx_mock: respx.MockRouter, header: str
) -> None:
    """An error answer's request id is read from the gateway's header when the body has none."""
    action(respx_mock, "GetJob").mock(return_value=error(404, "JobNotFound", **{header: "hdr-7"}))
    async with new_client() as client:
        with pytest.raises(NotFoundError) as info:
            await client.get_job("j")
    assert info.value.request_id == "hdr-7"
    assert "request_id=hdr-7" in str(info.value)


async def test_request_id_in_the_body_wins_over_the_header(respx_mock: respx.MockRouter) -> None:
    """The service's own ``requestId`` is kept over a gateway's request id header."""
    body = {"requestId": "body-1", "error": {"code": "InvalidParameter", "message": "bad"}}
    action(respx_mock, "ListJobs").mock(
        return_value=answer(400, body, **{"X-Request-Id": "gateway-1"})
    )
    async with new_client() as client:
        with pytest.raises(APIError) as info:
            await client.list_jobs("c")
    assert info.value.request_id == "body-1"


RETRY_AFTER = [
    pytest.param({"Retry-After": "10"}, 10, id="seconds"),
    pytest.param(
        {"Date": "Wed, 21 Oct 2015 07:28:00 GMT", "Retry-After": "Wed, 21 Oct 2015 07:28:20 GMT"},
        20,
        id="http-date",
    ),
]


@virtual_time()
@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize(("headers", "seconds"), RETRY_AFTER)
async def test_retry_after_is_honoured(
    respx_mock: respx.MockRouter, status: int, headers: dict[str, str], seconds: float
) -> None:
    """A 429 or 503 with Retry-After (seconds, or a date from the answer's Date) waits that long.

    Backoff alone would wait 0.01 s; the retry comes only once the service's delay has passed.
    """
    route = action(respx_mock, "GetJob").mock(
        side_effect=[error(status, **headers), job_answer("GetJob", PROCESSING)]
    )
    async with new_client(retry_policy=RetryPolicy(initial_delay=0.01)) as client:
        start = anyio.current_time()
        await client.get_job("j")
        elapsed = anyio.current_time() - start
    assert route.call_count == 2
    assert seconds <= elapsed < seconds + 0.1


@virtual_time()
@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        pytest.param({"Retry-After": "7200"}, 7200, id="seconds"),
        pytest.param(
            {
                "Date": "Wed, 21 Oct 2015 07:28:00 GMT",
                "Retry-After": "Wed, 21 Oct 2015 09:00:00 GMT",
            },
            92 * 60,
            id="http-date",
        ),
    ],
)
async def test_retry_after_beyond_the_limit_is_raised_at_once(
    respx_mock: respx.MockRouter, status: int, headers: dict[str, str], seconds: float
) -> None:
    """A Retry-After beyond ``max_retry_after`` (default 120 s) raises at once, sending once."""
    route = action(respx_mock, "GetJob").mock(return_value=error(status, **headers))
    async with new_client(retry_policy=RetryPolicy()) as client:
        start = anyio.current_time()
        with pytest.raises((RateLimitError, ServerError)) as info:
            await client.get_job("j")
        assert anyio.current_time() == start
    assert info.value.status_code == status
    assert info.value.retry_after == seconds
    assert route.call_count == 1


# -- bodies -----------------------------------------------------------------------------------

GATEWAY_PAGE = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"

BODIES = [
    pytest.param(502, GATEWAY_PAGE, "text/html", ServerError, "502 Bad Gateway",
                 id="html-gateway-502"),
    pytest.param(200, b"<html>maintenance</html>", "text/html", ResponseError, "maintenance",
                 id="html-200"),
    pytest.param(503, b"", None, ServerError, "", id="empty-503"),
    pytest.param(200, b"", "application/json", ResponseError, "", id="empty-200"),
    pytest.param(200, b'{"requestId": "r-9", "getJobRe', "application/json", ResponseError,
                 '"requestId": "r-9"', id="malformed-json"),
    pytest.param(500, b"{not json", "application/json", ServerError, "{not json",
                 id="malformed-json-500"),
]  # fmt: skip
"""Status, body, Content-Type, the error it is, and what the error's body excerpt shows."""


@pytest.mark.parametrize(("status", "content", "media_type", "expected", "shown"), BODIES)
async def test_unreadable_bodies_are_typed_errors_with_an_excerpt(
    respx_mock: respx.MockRouter,
    status: int,
    content: bytes,
    media_type: str | None,
    expected: type[Exception],
    shown: str,
) -> None:
    """HTML gateway pages, empty bodies and broken JSON end in a typed error, never a crash."""
    headers = {"Content-Type": media_type} if media_type else {}
    action(respx_mock, "GetJob").mock(
        return_value=httpx.Response(status, content=content, headers=headers)
    )
    async with new_client(retry_policy=RetryPolicy(max_retries=0)) as client:
        with pytest.raises(expected) as info:
            await client.get_job("j")
    error = info.value
    assert isinstance(error, (ServerError, ResponseError))
    assert error.status_code == status
    assert shown in error.body_excerpt
    assert bool(error.body_excerpt) == bool(content)


@pytest.mark.parametrize(("status", "content", "media_type", "expected", "shown"), BODIES)
async def test_unreadable_bodies_are_retried(
    respx_mock: respx.MockRouter,
    status: int,
    content: bytes,
    media_type: str | None,
    expected: type[Exception],
    shown: str,
) -> None:
    """An unreadable answer to a query is sent again; a good answer after it is returned."""
    headers = {"Content-Type": media_type} if media_type else {}
    route = action(respx_mock, "GetJob").mock(
        side_effect=[
            httpx.Response(status, content=content, headers=headers),
            job_answer("GetJob", PROCESSING),
        ]
    )
    async with new_client() as client:
        job = await client.get_job("j")
    assert job.state == State.PROCESSING
    assert route.call_count == 2


async def test_a_bad_create_answer_is_looked_up_before_sending_again(
    respx_mock: respx.MockRouter,
) -> None:
    """A CreateJob answered by a gateway page may have made the job: ListJobs finds it."""
    create = action(respx_mock, "CreateJob").mock(
        return_value=httpx.Response(502, content=GATEWAY_PAGE)
    )
    lookup = action(respx_mock, "ListJobs").mock(
        side_effect=lambda request: listed(created(create.calls.last.request))
    )
    async with new_client() as client:
        job = await client.create_job(separation())
    assert (create.call_count, lookup.call_count) == (1, 1)
    assert job.id == "job-1"
    assert sent(lookup)["listJobsRequest"] == {"customId": job.custom_id}


# -- dropped connections ------------------------------------------------------------------------

DROPS = [
    pytest.param(httpx.ConnectError("connection refused"), False, id="connect"),
    pytest.param(httpx.ConnectTimeout("connect timed out"), False, id="connect-timeout"),
    pytest.param(httpx.ReadError("connection reset by peer"), True, id="read"),
    pytest.param(httpx.ReadTimeout("read timed out"), True, id="read-timeout"),
    pytest.param(httpx.RemoteProtocolError("server disconnected"), True, id="disconnected"),
]


@pytest.mark.parametrize(("drop", "sent_"), DROPS)
async def test_a_dropped_get_job_is_retried(
    respx_mock: respx.MockRouter, drop: Exception, sent_: bool
) -> None:
    """GetJob changes nothing: after a dropped connection it is simply sent again."""
    route = action(respx_mock, "GetJob").mock(
        side_effect=[drop, drop, job_answer("GetJob", PROCESSING)]
    )
    async with new_client() as client:
        job = await client.get_job("j")
        assert client.transport.retries == 2
    assert job.state == State.PROCESSING
    assert route.call_count == 3


@pytest.mark.parametrize(("drop", "sent_"), DROPS)
async def test_a_get_job_dropped_every_time_says_whether_it_was_sent(
    respx_mock: respx.MockRouter, drop: Exception, sent_: bool
) -> None:
    """Out of retries, a TransportError names the action and whether the request left."""
    route = action(respx_mock, "GetJob").mock(side_effect=drop)
    async with new_client() as client:
        with pytest.raises(TransportError) as info:
            await client.get_job("j")
    assert (info.value.action, info.value.sent) == ("GetJob", sent_)
    assert type(drop).__name__ in str(info.value)
    assert SECRET_KEY not in str(info.value)
    assert route.call_count == 4


@pytest.mark.parametrize(
    "drop", [httpx.ReadError("reset"), httpx.RemoteProtocolError("server disconnected")]
)
async def test_a_create_job_dropped_after_sending_finds_the_job_it_made(
    respx_mock: respx.MockRouter, drop: Exception
) -> None:
    """Sent or not? ListJobs by custom id finds the job, and CreateJob is not sent again."""
    create = action(respx_mock, "CreateJob").mock(side_effect=drop)
    lookup = action(respx_mock, "ListJobs").mock(
        side_effect=lambda request: listed(created(create.calls.last.request))
    )
    async with new_client() as client:
        job = await client.create_job(separation())
    assert (create.call_count, lookup.call_count) == (1, 1)
    assert job.id == "job-1"
    assert sent(lookup)["listJobsRequest"] == {
        "customId": sent(create)["createJobRequest"]["customId"]
    }


async def test_a_create_job_dropped_before_the_service_acted_is_sent_again_once(
    respx_mock: respx.MockRouter,
) -> None:
    """When ListJobs shows no such job, the same CreateJob body is sent once more."""
    create = action(respx_mock, "CreateJob").mock(
        side_effect=[
            httpx.ReadError("reset"),
            lambda request: job_answer("CreateJob", created(request, "job-2")),
        ]
    )
    lookup = action(respx_mock, "ListJobs").mock(return_value=listed())
    async with new_client() as client:
        job = await client.create_job(separation())
    assert (create.call_count, lookup.call_count) == (2, 1)
    assert sent(create, 0) == sent(create, 1)
    assert job.id == "job-2"


async def test_someone_elses_job_under_the_same_custom_id_is_not_taken(
    respx_mock: respx.MockRouter,
) -> None:
    """A listed job whose inputs differ from the request's is another's: CreateJob is resent."""

    def someone_else(request: httpx.Request) -> httpx.Response:
        job = created(create.calls.last.request, "other")
        job["inputs"] = [{"url": "https://cdn.example.com/other.wav"}]
        return listed(job)

    create = action(respx_mock, "CreateJob").mock(
        side_effect=[
            httpx.ReadError("reset"),
            lambda request: job_answer("CreateJob", created(request, "mine")),
        ]
    )
    action(respx_mock, "ListJobs").mock(side_effect=someone_else)
    async with new_client() as client:
        job = await client.create_job(separation())
    assert job.id == "mine"
    assert create.call_count == 2


@pytest.mark.respx(assert_all_called=False)
@pytest.mark.parametrize(
    "drop", [httpx.ConnectError("connection refused"), httpx.ConnectTimeout("connect timed out")]
)
async def test_a_create_job_that_never_connected_is_resent_without_a_look_up(
    respx_mock: respx.MockRouter, drop: Exception
) -> None:
    """A connect error from httpx comes before writing: the request never left, no ListJobs."""
    create = action(respx_mock, "CreateJob").mock(
        side_effect=[drop, lambda request: job_answer("CreateJob", created(request))]
    )
    lookup = action(respx_mock, "ListJobs").mock(return_value=listed())
    async with new_client() as client:
        job = await client.create_job(separation())
    assert job.id == "job-1"
    assert create.call_count == 2
    assert not lookup.called


@virtual_time()
async def test_a_waiter_polls_again_only_after_a_503s_retry_after(
    respx_mock: respx.MockRouter,
) -> None:
    """A poll answered 503 with ``Retry-After: 30`` is not repeated before 30 s have passed."""
    polled_at: list[float] = []
    answers = iter(
        [error(503, **{"Retry-After": "30"}), job_answer("GetJob", {"id": "j", "state": 3})]
    )

    def poll(request: httpx.Request) -> httpx.Response:
        polled_at.append(anyio.current_time())
        return next(answers)

    action(respx_mock, "GetJob").mock(side_effect=poll)
    async with new_client() as client:
        job = await client.wait("j", timeout=600, policy=PollPolicy(first_delay=0))
    assert job.state == State.COMPLETED
    first, second = polled_at
    assert 30 <= second - first < 31


@virtual_time()
async def test_a_create_job_answered_503_with_retry_after_is_sent_again_after_it(
    respx_mock: respx.MockRouter,
) -> None:
    """CreateJob's own retries honour a 503's Retry-After too, after looking the job up."""
    created_at: list[float] = []

    def create_now(request: httpx.Request) -> httpx.Response:
        created_at.append(anyio.current_time())
        return job_answer("CreateJob", created(request))

    create = action(respx_mock, "CreateJob").mock(
        side_effect=[error(503, **{"Retry-After": "10"}), create_now]
    )
    lookup = action(respx_mock, "ListJobs").mock(return_value=listed())
    async with new_client(retry_policy=RetryPolicy(initial_delay=0.01)) as client:
        start = anyio.current_time()
        job = await client.create_job(separation())
    assert job.id == "job-1"
    assert create.call_count == 2
    assert lookup.called
    assert 10 <= created_at[0] - start < 10.1
