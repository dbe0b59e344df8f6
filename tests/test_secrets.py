"""The secret key never shows: not in exceptions, log records, reprs or tracebacks."""

from __future__ import annotations

import json
import logging
import socket
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

import attrs
import httpx
import pytest
from seeds import SECRET_ID, SECRET_KEY, ScriptedService, answer, client_for
from wire import Wire, over_every_backend

from mediax_async import (
    ConfigurationError,
    CreateJobRequest,
    Input,
    MediaXClient,
    MediaXError,
    MusicSeparate,
    MusicSeparateMethod,
    Output,
    RetryPolicy,
    SmartContentDescriptor,
    converter,
    parse_job,
    separation_request,
)
from mediax_async._protocol import Credentials
from mediax_async._redact import REDACTED, Redactor, Secret

pytestmark = pytest.mark.anyio


def echo_request(status: int, **extra: Any) -> Callable[[Any], httpx.Response]:
    """A step whose answer echoes the whole request body, secret key included."""

    def step(sent: Any) -> httpx.Response:
        return answer(status, {"requestId": "r-echo", "received": sent.body, **extra})

    return step


BIG_PADDING = "x" * (64 * 1024 - 40)

# (action, steps, call): each ends in an error after retries.
SCENARIOS: list[tuple[str, list[Any], Callable[[MediaXClient], Awaitable[Any]]]] = [
    (
        "GetJob",
        [answer(400, {"error": {"code": "InvalidParameter", "message": f"bad key {SECRET_KEY}"}})],
        lambda c: c.get_job("j"),
    ),
    (
        "ListJobs",
        [
            answer(
                401,
                {"Error": {"Code": f"AuthFailure.{SECRET_KEY}", "Message": f"{SECRET_KEY}?"}},
                **{"X-Request-Id": "hdr-401"},
            )
        ],
        lambda c: c.list_jobs("c"),
    ),
    ("GetJob", [echo_request(200)] * 2, lambda c: c.get_job("j")),
    ("GetJob", [echo_request(400, error={"code": "Bad"})], lambda c: c.get_job("j")),
    ("ListModels", [echo_request(503)] * 2, lambda c: c.list_models()),
    (
        "GetJob",
        [answer(502, f"<html><title>Bad gateway for {SECRET_KEY}</title></html>")] * 2,
        lambda c: c.get_job("j"),
    ),
    (
        "GetJob",
        [answer(429, f"slow down, {SECRET_KEY}", **{"Retry-After": "0"})] * 2,
        lambda c: c.get_job("j"),
    ),
    ("GetJob", [answer(500, b"")] * 2, lambda c: c.get_job("j")),
    ("GetJob", [httpx.ConnectError("connection refused")] * 2, lambda c: c.get_job("j")),
    ("GetJob", [httpx.ReadTimeout("timed out")] * 2, lambda c: c.get_job("j")),
    (
        "GetJob",
        [answer(200, {"getJobResponse": {"job": {"id": "j", "state": SECRET_KEY}}})] * 2,
        lambda c: c.get_job("j"),
    ),
    (
        "ListModels",
        [answer(200, {"listModelsResponse": {"models": SECRET_KEY, "total": SECRET_KEY}})] * 2,
        lambda c: c.list_models(),
    ),
    (
        "GetJob",
        [answer(200, (BIG_PADDING + SECRET_KEY * 3).encode())] * 2,
        lambda c: c.get_job("j"),
    ),
    (
        "GetJob",
        [answer(403, '{"SecretKey" : "' + SECRET_KEY[::-1] + '", "note": "what you sent"}')],
        lambda c: c.get_job("j"),
    ),
    (
        "CreateJob",
        [echo_request(500), echo_request(500)],
        lambda c: c.submit_separation("https://cdn.example.com/a.wav", content_id="r"),
    ),
]


def texts_of(error: BaseException) -> list[str]:
    """Everything a user may print of an exception: str, repr, args and attributes."""
    found = [str(error), repr(error), repr(error.args)]
    found.extend(repr(value) for value in vars(error).values())
    return found


@over_every_backend()
async def test_no_secret_in_errors_logs_or_reprs(
    wire: Wire, caplog: pytest.LogCaptureFixture
) -> None:
    """Across every error scenario, no exception, log record or repr contains the secret key."""
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    errors = 0
    policy = RetryPolicy(max_retries=1, initial_delay=0)
    for action, steps, call in SCENARIOS:
        service = ScriptedService().then(action, *steps)
        async with wire.client(service, retry_policy=policy) as client:
            with pytest.raises(MediaXError) as info:
                await call(client)
            errors += 1
            seen.extend(texts_of(info.value))
            seen.extend(
                [
                    repr(client),
                    str(client),
                    repr(client.transport),
                    repr(client.redactor),
                    repr(vars(client)),
                    repr(vars(client.transport)),
                ]
            )
        assert service.sent[0].body["secretKey"] == SECRET_KEY  # the key was really sent
    job = parse_job({"id": "j", "state": 4, "customId": "c"})
    seen.extend([repr(job), str(job), repr(Credentials(SECRET_ID, SECRET_KEY))])
    seen.extend(caplog.messages)
    seen.extend(repr(vars(record)) for record in caplog.records)
    assert errors == len(SCENARIOS)
    assert any(r.name == "mediax_async" and r.levelno == logging.DEBUG for r in caplog.records)
    leaks = [text for text in seen if SECRET_KEY in text or SECRET_KEY[::-1] in text]
    assert leaks == []


async def test_traceback_of_a_transport_error_shows_no_secret() -> None:
    """A printed traceback (with its chained causes) of a failed call does not show the key."""
    # An HTTP/1.1 parser error quotes the bytes it could not parse; here they echo the key.
    quoted = httpx.RemoteProtocolError(f"illegal header line: bytearray(b'X-Echo: {SECRET_KEY}')")
    service = ScriptedService().then("GetJob", quoted)
    async with client_for(service, retry_policy=RetryPolicy(max_retries=0)) as client:
        with pytest.raises(MediaXError) as info:
            await client.get_job("j")
    assert SECRET_KEY not in str(info.value)
    printed = "".join(traceback.format_exception(info.value))
    assert SECRET_KEY not in printed


def test_configuration_errors_do_not_show_the_key() -> None:
    """A client refused for missing or bad settings does not quote the key it was given."""
    for options in (
        {"secret_key": SECRET_KEY},
        {"secret_id": SECRET_ID, "secret_key": SECRET_KEY, "base_url": "nowhere"},
        {"secret_id": SECRET_ID, "secret_key": SECRET_KEY, "timeout": -1},
    ):
        with pytest.raises(ConfigurationError) as info:
            MediaXClient(**options)
        assert SECRET_KEY not in str(info.value)
        assert SECRET_KEY not in repr(info.value)


@over_every_backend()
async def test_request_logs_name_the_exchange_not_the_body(
    wire: Wire, caplog: pytest.LogCaptureFixture
) -> None:
    """DEBUG logs say which action went where with what status, never the body."""
    caplog.set_level(logging.DEBUG, logger="mediax_async")
    service = ScriptedService()
    async with wire.client(service) as client:
        job = await client.create_job(
            separation_request("https://cdn.example.com/a.wav", content_id="r")
        )
    (record,) = [r for r in caplog.records if r.name == "mediax_async"]
    assert record.levelno == logging.DEBUG
    message = record.getMessage()
    assert "CreateJob" in message
    assert "200" in message
    assert f"POST {client.base_url}/job -> 200" in message
    assert (vars(record)["mediax_action"], vars(record)["mediax_status"]) == ("CreateJob", 200)
    assert SECRET_KEY not in message
    assert SECRET_ID not in message
    assert json.dumps(converter.unstructure(job)) not in message


# -- the redactor --------------------------------------------------------------------------------


def test_redactor_removes_known_secrets_and_secret_key_fields() -> None:
    """Known secrets and any ``secretKey`` field value are replaced by ``***``."""
    redact = Redactor([SECRET_KEY])
    assert redact(f"a {SECRET_KEY} b {SECRET_KEY}") == f"a {REDACTED} b {REDACTED}"
    assert redact('{"secretKey": "other-key"}') == '{"secretKey": "***"}'
    assert redact('{"SECRET_KEY" : "x\\"y"}') == '{"SECRET_KEY" : "***"}'
    assert redact('{"secretId": "id"}') == '{"secretId": "id"}'


def test_redactor_ignores_secrets_too_short_to_be_keys() -> None:
    """Strings under four characters are not treated as secrets (they would blank out text)."""
    assert Redactor(["ab"])("tab cab") == "tab cab"


def test_excerpt_does_not_show_a_secret_cut_by_the_scan_limit() -> None:
    """A secret cut in two by the excerpt's scan limit is still removed."""
    redact = Redactor([SECRET_KEY])
    body = ("<" + "p" * (64 * 1024 - 11) + " " + SECRET_KEY).encode()
    text = redact.excerpt(body, 100_000)
    assert SECRET_KEY[:8] not in text


def test_secret_wrapper_does_not_show_itself() -> None:
    """A ``Secret`` prints as ``***`` and reveals its value only when asked."""
    secret = Secret(SECRET_KEY)
    assert SECRET_KEY not in repr(secret)
    assert SECRET_KEY not in str(secret)
    assert SECRET_KEY not in f"{secret}"
    assert secret.reveal() == SECRET_KEY
    assert secret == Secret(SECRET_KEY)


# -- what an error reporter captures: every frame's locals ----------------------------------------


def captured_locals(error: BaseException) -> list[str]:
    """``name=repr`` of every local of every frame, as Sentry, rich or ``pytest -l`` capture them.

    The chain is followed as they (and ``traceback``) follow it: causes,
    contexts not suppressed by ``raise ... from``, groups; with each message.
    Frames of these tests are left out (the fake service keeps every body it
    received).
    """
    found: list[str] = []
    pending = [traceback.TracebackException.from_exception(error, capture_locals=True)]
    while pending:
        report = pending.pop()
        for frame in report.stack:
            if Path(frame.filename).parent == TESTS:
                continue
            found.extend(f"{frame.name}: {k}={v}" for k, v in (frame.locals or {}).items())
        found.extend(report.format_exception_only())
        context = None if report.__suppress_context__ else report.__context__
        pending.extend(x for x in (report.__cause__, context) if x is not None)
        pending.extend(report.exceptions or [])
    return found


TESTS = Path(__file__).parent


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


REQUEST = CreateJobRequest(
    inputs=(Input(url="https://cdn.example.com/a.wav"),),
    outputs=(
        Output(
            content_id="r",
            smart_content_descriptor=SmartContentDescriptor(
                music_separate=MusicSeparate(method=MusicSeparateMethod.TWO_STEMS)
            ),
        ),
    ),
)

ACTIONS: list[tuple[str, Callable[[MediaXClient], Awaitable[Any]]]] = [
    ("CreateJob", lambda c: c.create_job(REQUEST)),
    ("CreateJob", lambda c: c.submit_separation("https://cdn.example.com/a.wav", content_id="r")),
    ("GetJob", lambda c: c.get_job("job-a")),
    ("ListJobs", lambda c: c.list_jobs("tag")),
    ("ListModels", lambda c: c.list_models()),
    ("ListModels", lambda c: anext(aiter(c.iter_models()))),
]

FAILURES: list[tuple[str, Any]] = [
    ("connect", httpx.ConnectError("connection refused")),
    ("timeout", httpx.ReadTimeout("timed out")),
    ("not-json", answer(200, b"<html>gateway</html>")),
    ("not-a-job", answer(200, {"getJobResponse": {"job": {"id": 1}}, "listJobsResponse": 3})),
    ("too-deep", answer(200, b"[" * 100_000)),
    ("500", answer(500, {"error": {"code": "InternalError", "message": "boom"}})),
]


@pytest.mark.parametrize(
    ("action", "call"), ACTIONS, ids=[f"{a}-{n}" for n, (a, _) in enumerate(ACTIONS)]
)
@pytest.mark.parametrize(("kind", "failure"), FAILURES, ids=[k for k, _ in FAILURES])
async def test_no_frame_of_a_failed_action_holds_the_key(
    action: str, call: Callable[[MediaXClient], Awaitable[Any]], kind: str, failure: Any
) -> None:
    """Whatever fails in whichever action, no captured frame local shows the secret key."""
    service = ScriptedService()
    for name in ("CreateJob", "GetJob", "ListJobs", "ListModels"):
        service.then(name, *[failure] * 10)
    async with client_for(service, retry_policy=RetryPolicy(max_retries=1, initial_delay=0)) as c:
        with pytest.raises(MediaXError) as info:
            await call(c)
    assert service.sent[0].body["secretKey"] == SECRET_KEY  # the key was really sent
    captured = captured_locals(info.value)
    assert any(text.startswith("send_once: content=") for text in captured)  # the body was seen
    assert [text for text in captured if SECRET_KEY in text] == []


@pytest.mark.parametrize(
    ("action", "call"), ACTIONS, ids=[f"{a}-{n}" for n, (a, _) in enumerate(ACTIONS)]
)
@pytest.mark.parametrize(
    ("anyio_backend", "backend"),
    [("asyncio", "httpx"), ("trio", "httpx"), ("asyncio", "aiohttp")],  # aiohttp: asyncio only
)
async def test_no_frame_of_a_real_connection_failure_holds_the_key(
    action: str,
    call: Callable[[MediaXClient], Awaitable[Any]],
    backend: Literal["httpx", "aiohttp"],
) -> None:
    """A request to a closed port on 127.0.0.1 fails without a frame showing the key."""
    base = f"http://127.0.0.1:{closed_port()}"
    policy = RetryPolicy(max_retries=1, initial_delay=0)
    async with MediaXClient(
        SECRET_ID, SECRET_KEY, base_url=base, retry_policy=policy, http_backend=backend
    ) as client:
        with pytest.raises(MediaXError) as info:
            await call(client)
    assert [text for text in captured_locals(info.value) if SECRET_KEY in text] == []


async def test_no_frame_of_a_body_that_cannot_be_encoded_holds_the_key() -> None:
    """A request the JSON encoder refuses (a user's ``extra``) fails without showing the key."""
    service = ScriptedService()
    request = attrs.evolve(REQUEST, extra={"note": {"a set"}})
    async with client_for(service) as client:
        with pytest.raises(TypeError) as info:
            await client.create_job(request)
    assert service.sent == []
    captured = captured_locals(info.value)
    assert any(text.startswith("encode_body: body=") for text in captured)
    assert [text for text in captured if SECRET_KEY in text] == []


@pytest.mark.parametrize(
    "options",
    [
        {"secret_key": SECRET_KEY},
        {"secret_id": SECRET_ID, "secret_key": SECRET_KEY, "base_url": "nowhere"},
        {"secret_id": SECRET_ID, "secret_key": SECRET_KEY, "base_url": "https://h:99999"},
        {"secret_id": SECRET_ID, "secret_key": SECRET_KEY, "timeout": -1},
        {"secret_id": SECRET_ID, "secret_key": SECRET_KEY, "http_backend": "curl"},
    ],
    ids=["no-id", "no-scheme", "port", "timeout", "backend"],
)
def test_no_frame_of_a_refused_configuration_holds_the_key(options: dict[str, Any]) -> None:
    """A client refused at construction leaves the key in no frame of its error."""
    with pytest.raises(ConfigurationError) as info:
        MediaXClient(**options)
    assert [text for text in captured_locals(info.value) if SECRET_KEY in text] == []


def test_no_frame_of_a_refused_configuration_from_the_environment_holds_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The key read from ``MEDIAX_SECRET_KEY`` is in no frame of a construction error."""
    monkeypatch.setenv("MEDIAX_SECRET_KEY", SECRET_KEY)
    for options in ({}, {"secret_id": SECRET_ID, "timeout": 0}):
        with pytest.raises(ConfigurationError) as info:
            MediaXClient(**options)
        assert [text for text in captured_locals(info.value) if SECRET_KEY in text] == []
