"""The wire protocol: bodies equal the vendor's examples; answers parse or raise typed errors."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from seeds import PLACEHOLDERS, SECRET_KEY, SeedExample, example, examples

from mediax_async import (
    APIError,
    AuthenticationError,
    CreateJobRequest,
    ImageBgmGeneration,
    Input,
    Job,
    JobList,
    MediaXError,
    ModelPage,
    MusicComposerHumming,
    MusicSeparate,
    MusicSeparateMethod,
    NotFoundError,
    Output,
    RateLimitError,
    RequestValidationError,
    ResponseError,
    ServerError,
    SingingCloning,
    SingingCloningType,
    SmartContentDescriptor,
    converter,
    humming_request,
    image_to_music_request,
    separation_request,
    singing_request,
    singing_training_request,
)
from mediax_async._protocol import (
    ACTION_PATHS,
    Answer,
    Credentials,
    encode_body,
    get_job_payload,
    list_jobs_payload,
    list_models_payload,
    parse_job_answer,
    parse_jobs_answer,
    parse_model_page_answer,
    parse_payload,
    parse_retry_after,
    request_body,
)
from mediax_async._redact import Redactor

P = PLACEHOLDERS
CREDENTIALS = Credentials(P["secretId"], P["secretKey"])
REDACTOR = Redactor([SECRET_KEY])


def assert_same_json(actual: Any, expected: Any, path: str = "$") -> None:
    """``actual`` equals ``expected`` key for key, with plain JSON types (no enums, no tuples)."""
    assert type(actual) is type(expected), f"{path}: {type(actual).__name__} != {expected!r}"
    if isinstance(expected, dict):
        assert sorted(actual) == sorted(expected), f"{path}: keys differ"
        for key in expected:
            assert_same_json(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), f"{path}: lengths differ"
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same_json(a, e, f"{path}[{index}]")
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def ids(item: SeedExample) -> str:
    return item.id


# -- requests ---------------------------------------------------------------------

# Each CreateJob example built from model classes, as a user who wants every knob would.
MODEL_BUILT: dict[tuple[str, str | None], Callable[[], CreateJobRequest]] = {
    ("000", None): lambda: CreateJobRequest(
        custom_id=P["customId"],
        callback=P["callback"],
        inputs=[Input(url=P["url"])],
        outputs=[
            Output(
                content_id=P["contentId"],
                destination="/output",
                input_selectors=[0],
                smart_content_descriptor=SmartContentDescriptor(
                    output_prefix=P["outputPrefix"],
                    image_bgm_generation=ImageBgmGeneration(song_quantity=1),
                ),
            )
        ],
    ),
    ("001", None): lambda: CreateJobRequest(
        custom_id=P["customId"],
        callback=P["callback"],
        inputs=[Input(url=P["url"])],
        outputs=[
            Output(
                content_id=P["contentId"],
                destination="/output",
                input_selectors=[0],
                smart_content_descriptor=SmartContentDescriptor.of(
                    MusicComposerHumming(song_quantity=1), output_prefix=P["outputPrefix"]
                ),
            )
        ],
    ),
    ("002", "generate"): lambda: CreateJobRequest(
        custom_id=P["customId"],
        callback=P["callback"],
        inputs=[Input(url=P["url"])],
        outputs=[
            Output(
                content_id=P["contentId"],
                destination="/output",
                input_selectors=[0],
                smart_content_descriptor=SmartContentDescriptor(
                    output_prefix=P["outputPrefix"],
                    singing_cloning=SingingCloning(
                        type=SingingCloningType.GENERATE_AUDIO, model_name="default"
                    ),
                ),
            )
        ],
    ),
    ("002", "train"): lambda: CreateJobRequest(
        custom_id=P["customId"],
        callback=P["callback"],
        inputs=[Input(url=P["url"])],
        outputs=[
            Output(
                input_selectors=[0],
                smart_content_descriptor=SmartContentDescriptor(
                    singing_cloning=SingingCloning(
                        type=SingingCloningType.TRAIN_MODEL, model_name="demo"
                    )
                ),
            )
        ],
    ),
    ("004", None): lambda: CreateJobRequest(
        custom_id=P["customId"],
        callback=P["callback"],
        inputs=[Input.from_value(P["url"])],
        outputs=[
            Output(
                content_id=P["contentId"],
                destination=P["destination"],
                smart_content_descriptor=SmartContentDescriptor.of(
                    MusicSeparate(method=MusicSeparateMethod.TWO_STEMS)
                ),
            )
        ],
    ),
}
MODEL_BUILT["003", None] = MODEL_BUILT["001", None]

# The same examples from the one-call builders.
COMMON: dict[str, Any] = {"custom_id": P["customId"], "callback": P["callback"]}
BUILDER_BUILT: dict[tuple[str, str | None], Callable[[], CreateJobRequest]] = {
    ("000", None): lambda: image_to_music_request(
        P["url"],
        content_id=P["contentId"],
        destination="/output",
        output_prefix=P["outputPrefix"],
        **COMMON,
    ),
    ("001", None): lambda: humming_request(
        P["url"],
        content_id=P["contentId"],
        destination="/output",
        output_prefix=P["outputPrefix"],
        **COMMON,
    ),
    ("002", "generate"): lambda: singing_request(
        P["url"],
        content_id=P["contentId"],
        destination="/output",
        output_prefix=P["outputPrefix"],
        **COMMON,
    ),
    ("002", "train"): lambda: singing_training_request(P["url"], model_name="demo", **COMMON),
    ("004", None): lambda: separation_request(
        P["url"], content_id=P["contentId"], destination=P["destination"], **COMMON
    ),
}
BUILDER_BUILT["003", None] = BUILDER_BUILT["001", None]

CREATE_REQUESTS = examples("request", "CreateJob")


def test_every_capability_has_a_create_job_example() -> None:
    """The vendor's CreateJob examples cover all four capabilities and both singing types."""
    keys = {
        next(iter(e.payload["outputs"][0]["smartContentDescriptor"].keys() - {"outputPrefix"}))
        for e in CREATE_REQUESTS
    }
    assert keys == {"imageBgmGeneration", "musicComposerHumming", "singingCloning", "musicSeperate"}
    assert len(CREATE_REQUESTS) == 6
    assert {(e.seed[:3], e.variant) for e in CREATE_REQUESTS} == set(MODEL_BUILT)


@pytest.mark.parametrize("seed_example", CREATE_REQUESTS, ids=ids)
@pytest.mark.parametrize("built_with", [MODEL_BUILT, BUILDER_BUILT], ids=["models", "builders"])
def test_create_job_body_equals_vendor_example(
    seed_example: SeedExample,
    built_with: dict[tuple[str, str | None], Callable[[], CreateJobRequest]],
) -> None:
    """A CreateJob built with the public API sends exactly the vendor's example body."""
    request = built_with[seed_example.seed[:3], seed_example.variant]()
    body = request_body("CreateJob", CREDENTIALS, converter.unstructure(request))
    assert_same_json(dict(body), seed_example.data)
    assert_same_json(json.loads(encode_body(body)), seed_example.data)


@pytest.mark.parametrize(
    ("action", "payload"),
    [
        ("GetJob", lambda: get_job_payload(P["id"])),
        ("ListJobs", lambda: list_jobs_payload(P["customId"])),
        ("ListModels", lambda: list_models_payload(0, 10)),
    ],
)
def test_query_bodies_equal_vendor_examples(action: str, payload: Callable[[], Any]) -> None:
    """GetJob, ListJobs and ListModels bodies equal every vendor example of them."""
    found = examples("request", action)
    assert found
    for seed_example in found:
        assert_same_json(dict(request_body(action, CREDENTIALS, payload())), seed_example.data)


def test_actions_are_posted_to_their_paths() -> None:
    """Jobs go to ``job`` and models to ``music_model``, under the base URL."""
    assert dict(ACTION_PATHS) == {
        "CreateJob": "job",
        "GetJob": "job",
        "ListJobs": "job",
        "ListModels": "music_model",
    }


def test_encoded_body_is_compact_utf8_json() -> None:
    """Bodies are compact UTF-8 JSON, non-ASCII text unescaped."""
    encoded = encode_body({"action": "ListJobs", "listJobsRequest": {"customId": "歌"}})
    assert encoded == '{"action":"ListJobs","listJobsRequest":{"customId":"歌"}}'.encode()


def test_request_bodies_do_not_show_the_key() -> None:
    """A body, as a dict or encoded, shows no key in ``repr`` or ``str`` (error reporters)."""
    body = request_body("GetJob", CREDENTIALS, get_job_payload("j"))
    encoded = encode_body(body)
    assert body["secretKey"] == P["secretKey"]
    assert json.loads(encoded)["secretKey"] == P["secretKey"]
    for text in (repr(body), str(body), repr(encoded), str(encoded), f"{encoded!r}", f"{body}"):
        assert P["secretKey"] not in text
    assert "'secretId': 'AKIDexampleSecretId0001'" in repr(body)
    assert str(len(encoded)) in repr(encoded)


def test_credentials_repr_hides_the_key() -> None:
    """Printing credentials shows the id, never the key."""
    text = repr(CREDENTIALS)
    assert SECRET_KEY not in text
    assert P["secretId"] in text


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: get_job_payload(""), "job_id"),
        (lambda: list_jobs_payload(""), "custom_id"),
        (lambda: list_jobs_payload("x" * 64), "custom_id"),
        (lambda: list_models_payload(-1, 10), "offset"),
        (lambda: list_models_payload(0, 0), "limit"),
        (lambda: list_models_payload(0, 101), "limit"),
        (lambda: list_models_payload(0, True), "limit"),
    ],
)
def test_query_payloads_refuse_bad_values(call: Callable[[], Any], field: str) -> None:
    """Bad ids, custom ids, offsets and limits are refused, naming the field."""
    with pytest.raises(RequestValidationError) as info:
        call()
    assert info.value.field == field
    assert field in str(info.value)


def test_list_models_limit_bounds_are_inclusive() -> None:
    """ListModels accepts limits 1 and 100."""
    assert list_models_payload(0, 1)["limit"] == 1
    assert list_models_payload(5, 100) == {"offset": 5, "limit": 100, "type": 2}


# -- answers ------------------------------------------------------------------------

RESPONSES = examples("response")


def ok(document: Any, **headers: str) -> Answer:
    return Answer(200, headers, json.dumps(document).encode())


def test_there_is_a_response_example_per_action_and_capability() -> None:
    """The response examples cover every action and capability, both singing types."""
    assert {e.action for e in RESPONSES} == {"CreateJob", "GetJob", "ListJobs", "ListModels"}
    assert len(RESPONSES) == 19


@pytest.mark.parametrize(
    "seed_example", examples("response", "CreateJob") + examples("response", "GetJob"), ids=ids
)
def test_job_answers_parse_and_round_trip(seed_example: SeedExample) -> None:
    """CreateJob and GetJob answers give a Job that writes back exactly as received."""
    job, request_id = parse_job_answer(seed_example.action, ok(seed_example.data), REDACTOR)
    assert isinstance(job, Job)
    assert request_id == seed_example.data["requestId"]
    assert job.id == seed_example.payload["job"]["id"]
    assert_same_json(converter.unstructure(job), seed_example.payload["job"])


@pytest.mark.parametrize("seed_example", examples("response", "ListJobs"), ids=ids)
def test_list_jobs_answers_parse_and_round_trip(seed_example: SeedExample) -> None:
    """ListJobs answers give every job, each writing back exactly as received."""
    jobs, request_id = parse_jobs_answer(ok(seed_example.data), REDACTOR)
    assert request_id == seed_example.data["requestId"]
    assert len(jobs) == seed_example.payload["total"] == 1
    assert_same_json([converter.unstructure(j) for j in jobs], seed_example.payload["jobs"])


def test_list_models_answer_parses_and_round_trips() -> None:
    """A ListModels answer gives the models, their creation times and the total."""
    seed_example = example("002", "ListModels response")
    page, request_id = parse_model_page_answer(ok(seed_example.data), REDACTOR)
    assert isinstance(page, ModelPage)
    assert request_id == "c9845a99-34e3-4b0f-80f5-f0a2a0ee8896"
    assert page.total == 1
    assert [m.name for m in page.models] == ["demo"]
    assert page.models[0].created_at == dt.datetime(2021, 1, 13, 4, 52, 55, tzinfo=dt.timezone.utc)
    assert_same_json(converter.unstructure(page), seed_example.payload)


def test_list_jobs_answer_without_jobs_is_empty() -> None:
    """A ListJobs answer without ``jobs`` means no job has that custom id."""
    jobs, _ = parse_jobs_answer(ok({"requestId": "r", "listJobsResponse": {"total": 0}}), REDACTOR)
    assert jobs == []


@pytest.mark.parametrize(
    ("total", "expected", "complete"),
    [(None, 1, True), (1, 1, True), (0, 1, True), (3, 3, False), ("3", 3, False)],
)
def test_list_jobs_answer_is_a_job_list_with_its_total(
    total: Any, expected: int, complete: bool
) -> None:
    """The jobs come as a ``JobList``: a ``total`` above the jobs listed makes it incomplete."""
    payload: dict[str, Any] = {"jobs": [{"id": "j1", "state": 1}]}
    if total is not None:
        payload["total"] = total
    jobs, _ = parse_jobs_answer(ok({"requestId": "r", "listJobsResponse": payload}), REDACTOR)
    assert isinstance(jobs, JobList)
    assert [job.id for job in jobs] == ["j1"]
    assert jobs.total == expected
    assert jobs.complete is complete


@pytest.mark.parametrize("total", [True, -1, 1.5, "many", [3]], ids=repr)
def test_list_jobs_answer_with_a_total_that_is_no_count_is_a_response_error(total: Any) -> None:
    """A ``total`` that is not a count cannot say whether the list is complete: ResponseError."""
    document = {"requestId": "r", "listJobsResponse": {"jobs": [], "total": total}}
    with pytest.raises(ResponseError, match="total"):
        parse_jobs_answer(ok(document), REDACTOR)


def test_list_jobs_answer_with_a_non_list_is_a_response_error() -> None:
    """``jobs`` that is not a list is a ResponseError keeping the request id."""
    with pytest.raises(ResponseError) as info:
        parse_jobs_answer(ok({"requestId": "r-9", "listJobsResponse": {"jobs": {}}}), REDACTOR)
    assert info.value.request_id == "r-9"


def test_job_answer_with_a_malformed_job_is_a_response_error() -> None:
    """A job that does not fit the model is a ResponseError naming the action and request id."""
    document = {"requestId": "r-7", "getJobResponse": {"job": {"id": "j", "state": "done"}}}
    with pytest.raises(ResponseError) as info:
        parse_job_answer("GetJob", ok(document), REDACTOR)
    assert info.value.request_id == "r-7"
    assert info.value.action == "GetJob"
    assert info.value.status_code == 200
    assert "GetJob" in str(info.value)


def test_job_answer_without_job_is_a_response_error() -> None:
    """``getJobResponse`` without ``job`` is a ResponseError."""
    with pytest.raises(ResponseError, match="no job"):
        parse_job_answer("GetJob", ok({"requestId": "r", "getJobResponse": {}}), REDACTOR)


# -- error answers ------------------------------------------------------------------------


def error_answer(status: int, body: bytes | str | dict[str, Any], **headers: str) -> Answer:
    if isinstance(body, dict):
        content = json.dumps(body).encode()
    elif isinstance(body, str):
        content = body.encode()
    else:
        content = body
    return Answer(status, {k.replace("_", "-"): v for k, v in headers.items()}, content)


def raised(answer: Answer, action: str = "GetJob") -> MediaXError:
    with pytest.raises(MediaXError) as info:
        parse_payload(action, answer, REDACTOR)
    return info.value


GATEWAY_PAGE = (
    "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
    "</h1></center><hr><center>nginx</center></body></html>"
)


@pytest.mark.parametrize(
    ("answer", "kind", "status", "code", "message", "request_id"),
    [
        pytest.param(
            error_answer(
                200,
                {"requestId": "r-1", "error": {"code": "InvalidParameter", "message": "bad id"}},
            ),
            APIError,
            200,
            "InvalidParameter",
            "bad id",
            "r-1",
            id="200-error-object",
        ),
        pytest.param(
            error_answer(
                400,
                {"RequestId": "r-2", "Error": {"Code": "InvalidParameter", "Message": "no"}},
            ),
            APIError,
            400,
            "InvalidParameter",
            "no",
            "r-2",
            id="400-Error-Code-Message",
        ),
        pytest.param(
            error_answer(200, {"requestId": "r-3", "code": 1001, "message": "quota used up"}),
            APIError,
            200,
            "1001",
            "quota used up",
            "r-3",
            id="200-top-level-code",
        ),
        pytest.param(
            error_answer(
                200,
                {"Error": {"Code": "AuthFailure.SecretIdNotFound", "Message": "who?"}},
                x_request_id="hdr-4",
            ),
            AuthenticationError,
            200,
            "AuthFailure.SecretIdNotFound",
            "who?",
            "hdr-4",
            id="200-auth-code",
        ),
        pytest.param(
            error_answer(401, {"message": "Unauthorized"}, x_request_id="hdr-5"),
            AuthenticationError,
            401,
            None,
            "Unauthorized",
            "hdr-5",
            id="401",
        ),
        pytest.param(
            error_answer(403, b"", x_request_id="hdr-6"),
            AuthenticationError,
            403,
            None,
            None,
            "hdr-6",
            id="403-empty",
        ),
        pytest.param(
            error_answer(404, {"requestId": "r-7", "error": {"code": "JobNotFound"}}),
            NotFoundError,
            404,
            "JobNotFound",
            None,
            "r-7",
            id="404",
        ),
        pytest.param(
            error_answer(429, {"error": {"code": "RequestLimitExceeded", "message": "slow"}}),
            RateLimitError,
            429,
            "RequestLimitExceeded",
            "slow",
            None,
            id="429",
        ),
        pytest.param(
            error_answer(500, {"requestId": "r-9", "error": {"code": "InternalError"}}),
            ServerError,
            500,
            "InternalError",
            None,
            "r-9",
            id="500-json",
        ),
        pytest.param(
            error_answer(502, GATEWAY_PAGE, x_request_id="gw-10"),
            ServerError,
            502,
            None,
            None,
            "gw-10",
            id="502-html",
        ),
        pytest.param(
            error_answer(503, b""),
            ServerError,
            503,
            None,
            None,
            None,
            id="503-empty",
        ),
        pytest.param(
            error_answer(504, "upstream timed out", x_tc_requestid="tc-12"),
            ServerError,
            504,
            None,
            None,
            "tc-12",
            id="504-text",
        ),
        pytest.param(
            error_answer(400, {"error": "something is off"}),
            APIError,
            400,
            None,
            "something is off",
            None,
            id="400-error-string",
        ),
    ],
)
def test_error_answers_raise_typed_errors(
    answer: Answer,
    kind: type[APIError],
    status: int,
    code: str | None,
    message: str | None,
    request_id: str | None,
) -> None:
    """Every error shape raises the error for its meaning, keeping status, code, message and id."""
    error = raised(answer)
    assert type(error) is kind
    assert isinstance(error, APIError)
    assert error.status_code == status
    assert error.code == code
    assert error.request_id == request_id
    assert error.action == "GetJob"
    if message is not None:
        assert error.message == message
    else:
        assert error.message  # a default message, never empty
    if request_id is not None:
        assert request_id in str(error)
    if code is not None:
        assert code in str(error)


def test_html_gateway_page_keeps_its_title_as_the_excerpt() -> None:
    """An HTML error page is summarised by its title, not its markup."""
    error = raised(error_answer(502, GATEWAY_PAGE))
    assert isinstance(error, ServerError)
    assert error.body_excerpt == "502 Bad Gateway"


def test_empty_body_has_an_empty_excerpt() -> None:
    """An empty 503 keeps the status and an empty excerpt."""
    error = raised(error_answer(503, b""))
    assert isinstance(error, ServerError)
    assert error.body_excerpt == ""
    assert "503" in str(error)


def test_body_excerpt_is_short_single_line_and_redacted() -> None:
    """The excerpt of a long body is one short line with the secret key removed."""
    body = json.dumps(
        {"error": {"code": "X", "message": "m"}, "echo": {"secretKey": SECRET_KEY}}
    ) + ("\n  filler " * 200)
    error = raised(error_answer(400, body.replace("filler", f"filler {SECRET_KEY}")))
    assert isinstance(error, APIError)
    assert len(error.body_excerpt) <= 200
    assert "\n" not in error.body_excerpt
    assert SECRET_KEY not in error.body_excerpt
    assert '"secretKey": "***"' in error.body_excerpt


def test_message_and_code_are_redacted() -> None:
    """An error message or code quoting the secret key is shown with the key removed."""
    body = {"error": {"code": f"Bad{SECRET_KEY}", "message": f"key {SECRET_KEY} is wrong"}}
    error = raised(error_answer(400, body))
    assert isinstance(error, APIError)
    assert SECRET_KEY not in str(error)
    assert error.message == "key *** is wrong"
    assert error.code == "Bad***"


def test_200_without_action_response_is_a_response_error() -> None:
    """HTTP 200 without ``<action>Response`` (and no error fields) is a ResponseError."""
    error = raised(error_answer(200, {"requestId": "r-13", "somethingElse": {}}))
    assert type(error) is ResponseError
    assert error.status_code == 200
    assert error.request_id == "r-13"
    assert "getJobResponse" in str(error)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"", b'"text"', b"\xff\xfe"], ids=repr)
def test_200_that_is_not_a_json_object_is_a_response_error(body: bytes) -> None:
    """A 200 whose body is not a JSON object is a ResponseError, never a crash."""
    error = raised(Answer(200, {"x-request-id": "h-1"}, body))
    assert type(error) is ResponseError
    assert error.request_id == "h-1"


def test_200_with_success_code_but_no_response_is_a_response_error() -> None:
    """``code: 0`` means success: without the response object it is a ResponseError."""
    error = raised(error_answer(200, {"code": 0, "message": "ok"}))
    assert type(error) is ResponseError


def test_unexpected_redirect_is_a_response_error() -> None:
    """A 3xx answer is a ResponseError with its status."""
    error = raised(error_answer(302, b"", location="https://elsewhere.example"))
    assert type(error) is ResponseError
    assert error.status_code == 302


def test_request_id_from_the_body_wins_over_headers() -> None:
    """The body's ``requestId`` is kept, and headers are the fallback."""
    answer = error_answer(500, {"requestId": "body-id"}, x_request_id="header-id")
    error = raised(answer)
    assert isinstance(error, ServerError)
    assert error.request_id == "body-id"


# -- Retry-After ----------------------------------------------------------------------------

SERVER_DATE = "Wed, 21 Oct 2015 07:28:00 GMT"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": " 2.5 "}, 2.5),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT", "date": SERVER_DATE}, 30.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:27:00 GMT", "date": SERVER_DATE}, 0.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT"}, None),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
    ids=["seconds", "fraction", "date", "date-past", "date-without-Date", "garbage", "absent"],
)
def test_rate_limit_keeps_retry_after(headers: dict[str, str], expected: float | None) -> None:
    """A 429's Retry-After (seconds, or an HTTP date measured from the answer's Date) is kept."""
    error = raised(Answer(429, headers, b'{"error": {"code": "TooManyRequests"}}'))
    assert isinstance(error, RateLimitError)
    assert error.retry_after == expected


def test_retry_after_date_with_a_minus_zero_date_header() -> None:
    """A Date header in the ``-0000`` form still measures an HTTP-date Retry-After."""
    headers = {"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT", "date": SERVER_DATE[:-3] + "-0000"}
    error = raised(Answer(429, headers, b""))
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 30.0


@pytest.mark.parametrize(
    ("value", "now", "expected"),
    [
        ("120", None, 120.0),
        ("-3", None, 0.0),
        ("nan", None, None),
        ("inf", None, None),
        (None, None, None),
        (
            "Wed, 21 Oct 2015 07:29:00 GMT",
            dt.datetime(2015, 10, 21, 7, 28, tzinfo=dt.timezone.utc),
            60.0,
        ),
        ("Wed, 21 Oct 2015 07:29:00 GMT", dt.datetime(2015, 10, 21, 7, 28), 60.0),
    ],
)
def test_parse_retry_after(
    value: str | None, now: dt.datetime | None, expected: float | None
) -> None:
    """Retry-After gives a non-negative finite delay, or None when it cannot be read."""
    assert parse_retry_after(value, now) == expected
