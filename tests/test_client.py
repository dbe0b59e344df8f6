"""MediaXClient against a scripted fake service: actions, configuration, retries, reconciliation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest
from seeds import (
    PLACEHOLDERS,
    SECRET_ID,
    SECRET_KEY,
    Ambiguous,
    ScriptedService,
    Slow,
    answer,
    client_for,
    example,
    examples,
)
from wire import Wire, over_every_backend

from mediax_async import (
    DEFAULT_BASE_URL,
    LEGACY_BASE_URL,
    APIError,
    AuthenticationError,
    ConfigurationError,
    CreateJobRequest,
    Job,
    JobList,
    MediaXClient,
    MusicSeparateMethod,
    MusicSeparateTone,
    NotFoundError,
    RateLimitError,
    RequestValidationError,
    ResponseError,
    RetryPolicy,
    ServerError,
    SongEmotion,
    State,
    TransportError,
    converter,
    humming_request,
    image_to_music_request,
    separation_request,
    singing_request,
    singing_training_request,
)

pytestmark = pytest.mark.anyio

P = PLACEHOLDERS
URL = P["url"]
REPO = P["contentId"]


def separation(**options: Any) -> CreateJobRequest:
    return separation_request(URL, content_id=REPO, **options)


# -- the four actions ---------------------------------------------------------------------


async def test_create_job_sends_the_vendor_body_and_returns_the_job() -> None:
    """``create_job`` posts the vendor's CreateJob body to ``/job`` and returns the new job."""
    service = ScriptedService()
    seed = example("000", "CreateJob request")
    built = image_to_music_request(
        URL,
        content_id=REPO,
        destination="/output",
        output_prefix=P["outputPrefix"],
        custom_id=P["customId"],
        callback=P["callback"],
    )
    async with client_for(service) as client:
        job = await client.create_job(built)
    (sent,) = service.sent
    assert sent.body == seed.data
    assert str(sent.url) == f"{DEFAULT_BASE_URL}/job"
    assert sent.headers["content-type"] == "application/json"
    assert isinstance(job, Job)
    assert job.id == "job-0001"
    assert job.state == State.SUBMITTED
    assert job.custom_id == P["customId"]


@pytest.mark.parametrize(
    ("action", "call"),
    [
        ("GetJob", lambda c: c.get_job(P["id"])),
        ("ListJobs", lambda c: c.list_jobs(P["customId"])),
        ("ListModels", lambda c: c.list_models(offset=0, limit=10)),
    ],
)
async def test_query_actions_send_the_vendor_bodies(
    action: str, call: Callable[[MediaXClient], Any]
) -> None:
    """``get_job``, ``list_jobs`` and ``list_models`` send exactly the vendor's example bodies."""
    service = ScriptedService()
    service.add_job({"id": P["id"], "state": 2, "customId": P["customId"]})
    async with client_for(service) as client:
        await call(client)
    (sent,) = service.sent
    for seed in examples("request", action):
        assert sent.body == seed.data
    path = "/music_model" if action == "ListModels" else "/job"
    assert str(sent.url) == DEFAULT_BASE_URL + path


async def test_get_job_returns_the_job() -> None:
    """``get_job`` returns the job as the service reports it."""
    service = ScriptedService()
    seed_job = example("004", "GetJob response").payload["job"]
    service.add_job(seed_job)
    async with client_for(service) as client:
        job = await client.get_job(seed_job["id"])
    assert job.state == State.COMPLETED
    assert converter.unstructure(job) == seed_job


async def test_list_jobs_returns_every_job_with_the_custom_id() -> None:
    """``list_jobs`` returns all jobs sharing a custom id (the service does not keep it unique)."""
    service = ScriptedService()
    for number in range(3):
        service.add_job({"id": f"j{number}", "state": 1, "customId": "shared"})
    service.add_job({"id": "other", "state": 1, "customId": "different"})
    async with client_for(service) as client:
        jobs = await client.list_jobs("shared")
        none = await client.list_jobs("nobody")
    assert [j.id for j in jobs] == ["j0", "j1", "j2"]
    assert none == []


async def test_list_jobs_says_when_the_service_listed_only_part() -> None:
    """``list_jobs`` gives a ``JobList``: not ``complete`` when ``total`` is above its length."""
    listed = {"jobs": [{"id": "j1", "state": 1, "customId": "tag"}], "total": 250}
    service = ScriptedService()
    service.add_job({"id": "j0", "state": 1, "customId": "tag"})
    service.then("ListJobs", answer(200, {"listJobsResponse": listed}))
    async with client_for(service) as client:
        partial = await client.list_jobs("tag")
        whole = await client.list_jobs("tag")
    assert isinstance(partial, JobList)
    assert [j.id for j in partial] == ["j1"]
    assert (partial.total, partial.complete) == (250, False)
    assert isinstance(whole, JobList)
    assert (len(whole), whole.total, whole.complete) == (1, 1, True)


async def test_get_job_of_an_unknown_id_raises_not_found() -> None:
    """Asking for a job the service does not know raises NotFoundError, without retrying."""
    service = ScriptedService()
    async with client_for(service) as client:
        with pytest.raises(NotFoundError) as info:
            await client.get_job("missing")
    assert info.value.code == "JobNotFound"
    assert service.actions() == ["GetJob"]


async def test_list_models_returns_a_page() -> None:
    """``list_models`` returns the page's models and the total."""
    service = ScriptedService(models=[example("002", "ListModels response").payload["models"][0]])
    async with client_for(service) as client:
        page = await client.list_models()
    assert [m.name for m in page.models] == ["demo"]
    assert page.total == 1


async def test_iter_models_walks_every_page() -> None:
    """``iter_models`` yields every model, page after page, until the total is reached."""
    models = [{"name": f"voice_{n:03d}", "createdAt": str(1610513575000 + n)} for n in range(250)]
    service = ScriptedService(models=models)
    async with client_for(service) as client:
        names = [m.name async for m in client.iter_models()]
        pages = [len(p.models) async for p in client.iter_model_pages(page_size=90)]
    assert names == [m["name"] for m in models]
    offsets = [(s.payload["offset"], s.payload["limit"]) for s in service.sent]
    assert offsets[:3] == [(0, 100), (100, 100), (200, 100)]
    assert pages == [90, 90, 70]
    assert offsets[3:] == [(0, 90), (90, 90), (180, 90)]


async def test_iter_models_with_no_models_asks_once() -> None:
    """With no models, ``iter_models`` yields nothing after one request."""
    service = ScriptedService()
    async with client_for(service) as client:
        assert [m async for m in client.iter_models()] == []
    assert service.actions() == ["ListModels"]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.list_models(limit=0), "limit"),
        (lambda c: c.list_models(limit=101), "limit"),
        (lambda c: c.list_models(offset=-1), "offset"),
        (lambda c: c.iter_models(page_size=101).__anext__(), "limit"),
        (lambda c: c.get_job(""), "job_id"),
        (lambda c: c.list_jobs(""), "custom_id"),
    ],
    ids=["limit-0", "limit-101", "offset-negative", "iter-page-101", "job-id", "custom-id"],
)
async def test_bad_arguments_are_refused_before_sending(
    call: Callable[[MediaXClient], Any], field: str
) -> None:
    """Bad arguments raise RequestValidationError naming the field, and nothing is sent."""
    service = ScriptedService()
    async with client_for(service) as client:
        with pytest.raises(RequestValidationError) as info:
            await call(client)
    assert info.value.field == field
    assert field in str(info.value)
    assert service.sent == []


SUBMITTERS = [
    (
        "submit_image_to_music",
        image_to_music_request,
        {"content_id": REPO, "emotion": SongEmotion.HAPPY, "song_quantity": 2},
        "imageBgmGeneration",
    ),
    (
        "submit_humming",
        humming_request,
        {"content_id": REPO, "use_sieve": True},
        "musicComposerHumming",
    ),
    ("submit_singing", singing_request, {"content_id": REPO, "model_name": "v1"}, "singingCloning"),
    (
        "submit_singing_training",
        singing_training_request,
        {"model_name": "v2", "total_epoch": 40},
        "singingCloning",
    ),
    (
        "submit_separation",
        separation_request,
        {"content_id": REPO, "method": MusicSeparateMethod.FIVE_STEMS},
        "musicSeperate",
    ),
]


@pytest.mark.parametrize(
    ("method", "builder", "options", "key"), SUBMITTERS, ids=[s[0] for s in SUBMITTERS]
)
async def test_submit_methods_send_what_their_builder_builds(
    method: str, builder: Callable[..., CreateJobRequest], options: dict[str, Any], key: str
) -> None:
    """Each ``submit_*`` method creates the job its request builder describes."""
    service = ScriptedService()
    async with client_for(service) as client:
        job = await getattr(client, method)(URL, **options)
    (sent,) = service.sent
    expected = converter.unstructure(builder(URL, custom_id=job.custom_id, **options))
    assert sent.payload == expected
    assert key in sent.payload["outputs"][0]["smartContentDescriptor"]
    assert job.kind == key


@pytest.mark.parametrize(
    ("name", "files"),
    [
        ("000 GetJob response", [("song.mp3", None)]),
        ("001 GetJob response", [("xxx", None)]),
        ("002 GetJob response (generate)", [("out.mp3", None)]),
        ("002 GetJob response (train)", []),
        ("003 GetJob response", [("xxx", None)]),
        ("004 GetJob response", [("xxx", MusicSeparateTone.VOCALS)]),
    ],
)
async def test_fetched_jobs_list_their_output_files(
    name: str, files: list[tuple[str, MusicSeparateTone | None]]
) -> None:
    """A finished job from ``get_job`` names each file's repository and full path."""
    seed_job = example(name[:3], name[4:]).payload["job"]
    service = ScriptedService()
    service.add_job(seed_job)
    async with client_for(service) as client:
        job = await client.get_job(seed_job["id"])
    found = job.output_files()
    assert [(f.name, f.tone) for f in found] == files
    assert [f.path for f in found] == [f"{P['destination']}/{n}" for n, _ in files]
    assert all(f.content_id == REPO for f in found)


# -- configuration -------------------------------------------------------------------------------


async def test_credentials_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without arguments, credentials come from MEDIAX_SECRET_ID and MEDIAX_SECRET_KEY."""
    monkeypatch.setenv("MEDIAX_SECRET_ID", "env-id")
    monkeypatch.setenv("MEDIAX_SECRET_KEY", "env-key-123456")
    service = ScriptedService()
    async with client_for(service, secret_id=None, secret_key=None) as client:
        await client.list_jobs("c")
    assert service.sent[0].body["secretId"] == "env-id"
    assert service.sent[0].body["secretKey"] == "env-key-123456"


async def test_argument_credentials_win_over_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Credentials passed as arguments are used even when the environment has others."""
    monkeypatch.setenv("MEDIAX_SECRET_ID", "env-id")
    monkeypatch.setenv("MEDIAX_SECRET_KEY", "env-key-123456")
    service = ScriptedService()
    async with client_for(service) as client:
        await client.list_jobs("c")
    assert (service.sent[0].body["secretId"], service.sent[0].body["secretKey"]) == (
        SECRET_ID,
        SECRET_KEY,
    )


@pytest.mark.parametrize(
    ("arguments", "environment", "missing", "present"),
    [
        ({}, {}, ["secret_id", "MEDIAX_SECRET_ID", "secret_key", "MEDIAX_SECRET_KEY"], []),
        ({"secret_id": "id"}, {}, ["secret_key", "MEDIAX_SECRET_KEY"], ["MEDIAX_SECRET_ID"]),
        ({}, {"MEDIAX_SECRET_KEY": "k" * 10}, ["MEDIAX_SECRET_ID"], ["MEDIAX_SECRET_KEY"]),
        ({"secret_id": "", "secret_key": "k" * 10}, {}, ["MEDIAX_SECRET_ID"], ["secret key"]),
    ],
    ids=["nothing", "no-key", "no-id", "empty-id"],
)
def test_missing_credentials_are_a_configuration_error_naming_them(
    monkeypatch: pytest.MonkeyPatch,
    arguments: dict[str, Any],
    environment: dict[str, str],
    missing: list[str],
    present: list[str],
) -> None:
    """Missing credentials raise ConfigurationError naming the argument and variable to set."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as info:
        MediaXClient(**arguments)
    message = str(info.value)
    for name in missing:
        assert name in message
    for name in present:
        assert name not in message


async def test_base_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """MEDIAX_BASE_URL sets the host and path prefix of every action."""
    monkeypatch.setenv("MEDIAX_BASE_URL", "https://mediax.internal.example/api/")
    service = ScriptedService()
    async with client_for(service) as client:
        await client.list_jobs("c")
        await client.list_models()
    assert [str(s.url) for s in service.sent] == [
        "https://mediax.internal.example/api/job",
        "https://mediax.internal.example/api/music_model",
    ]
    assert client.base_url == "https://mediax.internal.example/api"


async def test_base_url_argument_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An explicit ``base_url`` is used even when MEDIAX_BASE_URL is set."""
    monkeypatch.setenv("MEDIAX_BASE_URL", "https://from-env.example")
    service = ScriptedService()
    async with client_for(service, base_url="https://from-arg.example") as client:
        await client.list_jobs("c")
    assert service.sent[0].url.host == "from-arg.example"


async def test_legacy_gateway_paths() -> None:
    """On the legacy gateway jobs go to ``/release/job`` and models to ``/release/music_model``."""
    service = ScriptedService()
    async with client_for(service, base_url=LEGACY_BASE_URL) as client:
        await client.list_jobs("c")
        await client.list_models()
    assert [s.url.path for s in service.sent] == ["/release/job", "/release/music_model"]
    assert {s.url.scheme for s in service.sent} == {"https"}
    assert service.sent[0].url.host == "service-mqk0mc83-1257411467.bj.apigw.tencentcs.com"


@pytest.mark.parametrize(
    "options",
    [
        {"base_url": "api.mediax.tencent.com"},
        {"base_url": "ftp://x.example"},
        {"base_url": "https://api.example:99999"},
        {"base_url": "https://api.example:0/release"},
        {"base_url": "https://api.example:port"},
        {"base_url": "https://:8080"},
        {"base_url": "https://api.example/a b"},
        {"timeout": 0},
    ],
    ids=["no-scheme", "ftp", "port-99999", "port-0", "port-name", "no-host", "space", "timeout-0"],
)
def test_bad_options_are_configuration_errors(options: dict[str, Any]) -> None:
    """A base URL without http(s), a host or a valid port, or a timeout <= 0 is refused at once."""
    with pytest.raises(ConfigurationError, match=r"base_url|timeout"):
        MediaXClient(SECRET_ID, SECRET_KEY, **options)


def test_a_base_url_port_out_of_range_from_the_environment_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``MEDIAX_BASE_URL`` with port 99999 is a ``ConfigurationError`` naming the variable."""
    monkeypatch.setenv("MEDIAX_BASE_URL", "http://127.0.0.1:99999")
    with pytest.raises(ConfigurationError, match=r"MEDIAX_BASE_URL.*port"):
        MediaXClient(SECRET_ID, SECRET_KEY)


@pytest.mark.parametrize(
    "base_url",
    ["https://api.example:65535", "http://127.0.0.1:1/x/", "https://[::1]:8443", "http://h"],
)
def test_good_base_urls_are_taken(base_url: str) -> None:
    """Any host with a port from 1 to 65535 (or none) is a base URL."""
    assert MediaXClient(SECRET_ID, SECRET_KEY, base_url=base_url).base_url == base_url.rstrip("/")


async def test_client_closes_only_the_http_client_it_made() -> None:
    """Leaving ``async with`` closes the client's own pool, never one passed in."""
    async with MediaXClient(SECRET_ID, SECRET_KEY) as own:
        pass
    assert own.transport.http_client.is_closed
    async with httpx.AsyncClient() as shared:
        async with MediaXClient(SECRET_ID, SECRET_KEY, http_client=shared):
            pass
        assert not shared.is_closed


# -- retries ---------------------------------------------------------------------------------------
# Every test from here on runs on each HTTP backend (``tests/wire.py``): httpx in process,
# and aiohttp over loopback HTTP to the same scripted service.


@over_every_backend(waits=True)
async def test_default_is_three_retries(wire: Wire) -> None:
    """By default a failing call is tried 4 times in all, then the last error is raised."""
    dropped = httpx.RemoteProtocolError("server disconnected without sending a response")
    service = ScriptedService().then("ListModels", *[dropped] * 10)
    default = RetryPolicy()
    delays = RetryPolicy(
        initial_delay=wire.seconds(default.initial_delay),
        max_delay=wire.seconds(default.max_delay),
    )
    assert delays.max_retries == default.max_retries
    async with wire.client(service, retry_policy=delays) as client:
        with pytest.raises(TransportError) as info:
            await client.list_models()
    assert info.value.sent is True
    assert info.value.action == "ListModels"
    assert service.actions() == ["ListModels"] * 4


@over_every_backend()
@pytest.mark.parametrize("max_retries", [0, 1, 5])
async def test_max_retries_sets_the_number_of_attempts(wire: Wire, max_retries: int) -> None:
    """``max_retries=n`` makes n + 1 attempts."""
    service = ScriptedService().then("GetJob", *[answer(503, b"")] * 10)
    policy = RetryPolicy(max_retries=max_retries, initial_delay=0)
    async with wire.client(service, retry_policy=policy) as client:
        with pytest.raises(ServerError):
            await client.get_job("j")
    assert len(service.sent) == max_retries + 1


@over_every_backend(waits=True)
async def test_backoff_delays_grow_exponentially(wire: Wire) -> None:
    """Retries wait ``initial * multiplier ** n`` seconds (without jitter): 1 + 2 + 4."""
    dropped = httpx.RemoteProtocolError("server disconnected without sending a response")
    service = ScriptedService().then("ListJobs", *[dropped] * 3)
    policy = RetryPolicy(initial_delay=wire.seconds(1), multiplier=2, jitter="none")
    async with wire.client(service, retry_policy=policy) as client:
        start = anyio.current_time()
        await client.list_jobs("c")
        elapsed = anyio.current_time() - start
    assert wire.took(elapsed, 7.0), elapsed
    assert len(service.sent) == 4


@over_every_backend(waits=True)
@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_is_waited_before_sending_again(wire: Wire, status: int) -> None:
    """A 429 or 503 with ``Retry-After`` is sent again only once that delay has passed."""
    busy = answer(status, {"error": {"code": "Busy"}}, **{"Retry-After": f"{wire.seconds(30):g}"})
    service = ScriptedService().then("GetJob", busy)
    service.add_job({"id": "j", "state": 3})
    async with wire.client(service) as client:
        start = anyio.current_time()
        job = await client.get_job("j")
        elapsed = anyio.current_time() - start
        assert client.transport.retries == 1
    assert job.state == State.COMPLETED
    assert wire.took(elapsed, 30.0), elapsed
    assert service.actions() == ["GetJob", "GetJob"]


@over_every_backend(waits=True)
async def test_a_slow_answer_is_cut_off_by_the_deadline(wire: Wire) -> None:
    """``timeout`` bounds each attempt in all: a server that never answers gives TransportError."""
    service = ScriptedService().then("GetJob", Slow(3600))
    policy = RetryPolicy(max_retries=0)
    timeout = wire.seconds(2.5)
    async with wire.client(service, timeout=timeout, retry_policy=policy) as client:
        start = anyio.current_time()
        with pytest.raises(TransportError) as info:
            await client.get_job("j")
        elapsed = anyio.current_time() - start
    assert wire.took(elapsed, 2.5), elapsed
    assert info.value.sent is True
    assert f"{timeout:g} s" in str(info.value)


@over_every_backend(waits=True)
async def test_a_slow_answer_is_retried_after_the_deadline(wire: Wire) -> None:
    """A query cut off by the deadline is sent again and can then succeed."""
    service = ScriptedService().then("GetJob", Slow(3600))
    service.add_job({"id": "j", "state": 3})
    async with wire.client(service, timeout=wire.seconds(5)) as client:
        start = anyio.current_time()
        job = await client.get_job("j")
        elapsed = anyio.current_time() - start
    assert job.state == State.COMPLETED
    assert wire.took(elapsed, 5, 6), elapsed
    assert service.actions() == ["GetJob", "GetJob"]


@over_every_backend()
@pytest.mark.parametrize(
    ("action", "call"),
    [
        ("GetJob", lambda c: c.get_job("j")),
        ("ListJobs", lambda c: c.list_jobs("c")),
        ("ListModels", lambda c: c.list_models()),
    ],
)
async def test_queries_are_resent_after_ambiguous_failures(
    wire: Wire, action: str, call: Callable[[MediaXClient], Any]
) -> None:
    """Queries change nothing, so after a read timeout they are simply sent again."""
    service = ScriptedService().then(action, Ambiguous(httpx.ReadTimeout("slow")), answer(502, b""))
    service.add_job({"id": "j", "state": 1, "customId": "c"})
    async with wire.client(service) as client:
        await call(client)
    assert service.actions() == [action] * 3


ERRORS = [
    (400, "InvalidParameter", APIError, 1),
    (401, "AuthFailure", AuthenticationError, 1),
    (403, "AuthFailure", AuthenticationError, 1),
    (404, "JobNotFound", NotFoundError, 1),
    (429, "LimitExceeded", RateLimitError, 4),
    (500, "InternalError", ServerError, 4),
    (503, "Unavailable", ServerError, 4),
]


@over_every_backend()
@pytest.mark.parametrize(("status", "code", "expected", "sends"), ERRORS)
async def test_error_answers_raise_their_type_and_only_5xx_and_429_are_retried(
    wire: Wire, status: int, code: str, expected: type[APIError], sends: int
) -> None:
    """A 4xx raises its typed error after one request; 429 and 5xx after the retries."""
    body = {"requestId": "r-err", "error": {"code": code, "message": "refused"}}
    service = ScriptedService().then("GetJob", *[answer(status, body)] * 4)
    async with wire.client(service) as client:
        with pytest.raises(APIError) as info:
            await client.get_job("j")
        assert client.transport.retries == sends - 1
    assert type(info.value) is expected
    assert (info.value.status_code, info.value.code, info.value.request_id) == (
        status,
        code,
        "r-err",
    )
    assert info.value.action == "GetJob"
    assert service.actions() == ["GetJob"] * sends


@over_every_backend(loopback_httpx=True)
async def test_max_connections_caps_the_connections_open_at_once(wire: Wire) -> None:
    """``max_connections=3``: 12 calls at once never hold more than 3 connections."""
    # Real seconds: this test runs over loopback only.
    service = ScriptedService().then("GetJob", *[Slow(0.05)] * 12)
    service.add_job({"id": "j", "state": 3})
    async with wire.connect(service, max_connections=3) as (client, served):
        assert served is not None
        async with anyio.create_task_group() as tasks:
            for _ in range(12):
                tasks.start_soon(client.get_job, "j")
    assert served.peak == 3
    assert served.connections == 3  # kept alive and reused
    assert service.actions() == ["GetJob"] * 12


# -- CreateJob: never two jobs ------------------------------------------------------------------


@over_every_backend()
async def test_create_job_gets_a_custom_id_when_it_has_none(wire: Wire) -> None:
    """A CreateJob without a custom id is sent with a fresh one, different for each job."""
    service = ScriptedService()
    async with wire.client(service) as client:
        first = await client.create_job(separation())
        second = await client.submit_separation(URL, content_id=REPO)
    ids = [s.payload["customId"] for s in service.sent]
    assert all(isinstance(i, str) and 0 < len(i) < 64 for i in ids)
    assert ids[0] != ids[1]
    assert [first.custom_id, second.custom_id] == ids


@over_every_backend()
async def test_create_job_keeps_the_users_custom_id(wire: Wire) -> None:
    """A custom id given by the user is sent unchanged."""
    service = ScriptedService()
    async with wire.client(service) as client:
        job = await client.create_job(separation(custom_id="mine-1"))
    assert service.sent[0].payload["customId"] == "mine-1"
    assert job.custom_id == "mine-1"


@over_every_backend()
@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("server disconnected without sending a response"),
        httpx.WriteError("connection reset"),
        answer(500, {"error": {"code": "InternalError"}}),
        answer(502, "<html><title>502 Bad Gateway</title></html>"),
        answer(504, b""),
        answer(200, b"{truncated"),
    ],
    ids=["read-timeout", "dropped", "write-error", "500", "502", "504", "garbled"],
)
async def test_ambiguous_failure_after_the_job_was_created_finds_it(
    wire: Wire, failure: Any
) -> None:
    """When the job was created despite the failure, the client finds it and does not resend."""
    service = ScriptedService().then("CreateJob", Ambiguous(failure))
    async with wire.client(service) as client:
        job = await client.create_job(separation())
    assert service.actions() == ["CreateJob", "ListJobs"]
    assert len(service.jobs) == 1
    (created,) = service.jobs.values()
    assert job.id == created["id"]
    assert service.sent[1].payload == {"customId": service.sent[0].payload["customId"]}


@over_every_backend()
@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("server disconnected"),
        answer(503, b""),
    ],
    ids=["read-timeout", "dropped", "503"],
)
async def test_ambiguous_failure_without_a_job_resends_once(wire: Wire, failure: Any) -> None:
    """When no job was created, the client checks ListJobs and sends the same CreateJob again."""
    service = ScriptedService().then("CreateJob", failure)
    async with wire.client(service) as client:
        job = await client.create_job(separation())
    assert service.actions() == ["CreateJob", "ListJobs", "CreateJob"]
    assert len(service.jobs) == 1
    assert service.sent[0].body == service.sent[2].body
    assert job.id == next(iter(service.jobs))


@over_every_backend()
async def test_rate_limited_create_job_is_resent_without_listing_jobs(wire: Wire) -> None:
    """A 429 means the job was not taken: CreateJob is resent without asking ListJobs."""
    service = ScriptedService().then("CreateJob", answer(429, {"error": {"code": "LimitExceeded"}}))
    async with wire.client(service) as client:
        await client.create_job(separation())
    assert service.actions() == ["CreateJob", "CreateJob"]


@over_every_backend(waits=True)
async def test_create_job_cut_off_by_the_deadline_is_reconciled(wire: Wire) -> None:
    """A CreateJob that times out is checked with ListJobs before it is sent again."""
    service = ScriptedService().then("CreateJob", Slow(3600))
    async with wire.client(service, timeout=wire.seconds(10)) as client:
        job = await client.create_job(separation())
    assert service.actions() == ["CreateJob", "ListJobs", "CreateJob"]
    assert len(service.jobs) == 1
    assert job.id in service.jobs


@over_every_backend()
async def test_create_job_rejected_by_the_service_is_not_resent(wire: Wire) -> None:
    """A CreateJob refused with a 4xx is raised after a single request."""
    service = ScriptedService().then(
        "CreateJob", answer(400, {"error": {"code": "InvalidParameter", "message": "bad url"}})
    )
    async with wire.client(service) as client:
        with pytest.raises(APIError, match="bad url"):
            await client.create_job(separation())
    assert service.actions() == ["CreateJob"]


@over_every_backend()
async def test_unreadable_create_answers_end_in_response_error(wire: Wire) -> None:
    """Answers that never parse end in ResponseError after the retries, with one job at most."""
    junk = answer(200, {"requestId": "r-junk", "unexpected": True})
    service = ScriptedService().then("CreateJob", *[junk] * 4)
    async with wire.client(service) as client:
        with pytest.raises(ResponseError) as info:
            await client.create_job(separation())
    assert info.value.request_id == "r-junk"
    assert service.actions().count("CreateJob") == 4
    assert service.jobs == {}


@over_every_backend()
async def test_the_attempt_deadline_works_on_every_loop(wire: Wire) -> None:
    """The per-attempt deadline cuts a hung answer on asyncio (its own timeout) and trio alike."""
    service = ScriptedService().then("GetJob", Slow(3600))
    policy = RetryPolicy(max_retries=0)
    async with wire.client(service, timeout=1e-6, retry_policy=policy) as client:
        with pytest.raises(TransportError) as info:
            await client.get_job("j")
    assert info.value.sent is True
    assert "no answer within" in str(info.value)
