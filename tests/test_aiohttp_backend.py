"""The client over ``http_backend="aiohttp"`` against the fake served on loopback (asyncio only)."""

from __future__ import annotations

import asyncio
import re
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Literal

import anyio
import anyio.abc
import pytest

from mediax_async import (
    ConfigurationError,
    CreateJobRequest,
    Job,
    MediaXClient,
    NotFoundError,
    PollPolicy,
    RetryPolicy,
    State,
    TransportError,
    humming_request,
    separation_request,
)
from mediax_async.testing import FakeMediaX, Fault, FixedDuration, Profile, Schedule

pytestmark = pytest.mark.anyio

FAST_RETRY = RetryPolicy(max_retries=4, initial_delay=0.001, max_delay=0.01)
FAST_POLL = PollPolicy(
    first_delay=0,
    initial_interval=0.005,
    max_interval=0.02,
    submitted_factor=1,
    jitter="none",
    error_initial_delay=0.005,
    error_max_delay=0.02,
)
GATEWAY_FAULTS = [
    Fault.RATE_LIMITED,
    Fault.SERVER_ERROR,
    Fault.BAD_GATEWAY,
    Fault.UNAVAILABLE,
    Fault.DROP,
    Fault.MALFORMED_JSON,
]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Only asyncio: aiohttp and uvicorn need it (module scope: the served fake is shared)."""
    return "asyncio"


@pytest.fixture(scope="module")
async def served() -> AsyncIterator[tuple[FakeMediaX, str]]:
    """One fake served by uvicorn on 127.0.0.1 for the module (starting one costs ~0.3 s).

    Jobs end at once: separations COMPLETED, humming jobs ERROR 25% and CANCELED 15%
    of the time. A 429 asks for no wait, so retries stay fast.
    """
    schedule = Schedule(
        default=Profile(queue=FixedDuration(0), processing=FixedDuration(0)),
        by_capability={
            "musicComposerHumming": Profile(
                queue=FixedDuration(0),
                processing=FixedDuration(0),
                error_rate=0.25,
                cancel_rate=0.15,
            )
        },
    )
    fake = FakeMediaX(schedule=schedule, seed=11, record_requests=False)
    fake.faults.retry_after = 0
    fake.add_model("alto_1")
    async with fake.serve() as base_url:
        yield fake, base_url


@pytest.fixture
def fake(served: tuple[FakeMediaX, str]) -> Iterator[FakeMediaX]:
    """The shared fake, with no faults and its counters at zero for this test."""
    fake = served[0]
    fake.faults.clear()
    fake.faults.counts.clear()
    fake.request_counts.clear()
    yield fake
    fake.faults.clear()


@pytest.fixture
async def client(served: tuple[FakeMediaX, str], fake: FakeMediaX) -> AsyncIterator[MediaXClient]:
    """A client of the served fake sending through aiohttp, retrying fast."""
    client = MediaXClient(
        fake.secret_id,
        fake.secret_key,
        base_url=served[1],
        http_backend="aiohttp",
        retry_policy=FAST_RETRY,
    )
    async with client:
        yield client


async def submit(
    client: MediaXClient, count: int, make: Callable[..., CreateJobRequest] = separation_request
) -> list[Job]:
    """Create ``count`` jobs at once (each on its own connection), in order."""
    jobs: list[Job | None] = [None] * count

    async def create(n: int) -> None:
        jobs[n] = await client.create_job(make(f"https://songs.test/{n}.mp3", content_id="r"))

    async with anyio.create_task_group() as tasks:
        for n in range(count):
            tasks.start_soon(create, n)
    return [job for job in jobs if job is not None]


def jobs_tagged(fake: FakeMediaX, custom_id: str) -> list[str]:
    return [wire["id"] for wire in fake.jobs if wire["customId"] == custom_id]


# -- the four actions --------------------------------------------------------------------


async def test_create_get_and_list_over_aiohttp(fake: FakeMediaX, client: MediaXClient) -> None:
    """CreateJob, GetJob, ListJobs and ListModels work over real HTTP through aiohttp."""
    assert client.transport.http_client is None  # no httpx underneath
    created = await client.create_job(
        separation_request("https://songs.test/a.mp3", content_id="r", custom_id="create-get-list")
    )
    assert created.state == State.SUBMITTED
    got = await client.get_job(created.id)
    assert got.state == State.COMPLETED
    assert got.output_files()
    assert [job.id for job in await client.list_jobs("create-get-list")] == [created.id]
    assert await client.list_jobs("no-such-tag") == []
    page = await client.list_models()
    assert [model.name for model in page.models] == ["alto_1"]
    with pytest.raises(NotFoundError):
        await client.get_job("no-such-job")
    assert fake.request_counts == Counter(
        {"CreateJob": 1, "GetJob": 2, "ListJobs": 2, "ListModels": 1}
    )


async def test_waiter_runs_to_completion_over_aiohttp(client: MediaXClient) -> None:
    """A waiter polls a batch of jobs over aiohttp until each has ended, in the order given."""
    jobs = await submit(client, 12)
    async with client.waiter(policy=FAST_POLL, max_concurrency=4) as waiter:
        done = await waiter.wait_all(jobs)
    assert [job.id for job in done] == [job.id for job in jobs]
    assert {job.state for job in done} == {State.COMPLETED}
    assert waiter.stats.settled == 12


# -- faults --------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", GATEWAY_FAULTS, ids=lambda fault: fault.value)
async def test_get_job_retries_each_fault_over_aiohttp(
    fault: Fault, fake: FakeMediaX, client: MediaXClient
) -> None:
    """429, 500, 502, 503, a dropped connection and cut-off JSON are retried to the job."""
    (job,) = await submit(client, 1)
    fake.faults.inject(fault, action="GetJob", times=2)
    got = await client.get_job(job.id)
    assert (got.id, got.state) == (job.id, State.COMPLETED)
    assert client.transport.retries == 2
    assert fake.faults.injected(action="GetJob", fault=fault) == 2
    assert fake.request_counts["GetJob"] == 3


async def test_waiter_jobs_end_right_despite_every_fault_over_aiohttp(
    fake: FakeMediaX, client: MediaXClient
) -> None:
    """Under scripted and random faults each job is reported once, with the fake's final state."""
    jobs = await submit(client, 40, humming_request)
    for fault in GATEWAY_FAULTS:
        fake.faults.inject(fault, action="GetJob", times=2)
        fake.faults.set_rate(fault, 0.03, action="GetJob")
    seen: Counter[str] = Counter()
    async with client.waiter(policy=FAST_POLL, max_concurrency=8) as waiter:
        async for job in waiter.as_completed(jobs):
            seen[job.id] += 1
            assert job.state.is_terminal
            assert job.state == fake.job(job.id)["state"]
    stats = waiter.stats
    assert seen == Counter({job.id: 1 for job in jobs})
    states = Counter(fake.job(job.id)["state"] for job in jobs)
    assert states[State.COMPLETED] > 0
    assert states[State.ERROR] > 0
    assert states[State.CANCELED] > 0
    assert stats.completed + stats.failed + stats.canceled == stats.settled == 40
    assert stats.retries == fake.faults.injected(action="GetJob") >= 2 * len(GATEWAY_FAULTS)
    assert stats.rate_limited == fake.faults.injected(action="GetJob", fault=Fault.RATE_LIMITED)


async def test_create_job_whose_answer_is_lost_is_found_not_sent_again(
    fake: FakeMediaX, client: MediaXClient
) -> None:
    """A CreateJob processed before its connection dropped is recovered through ListJobs."""
    fake.faults.inject(Fault.ANSWER_LOST, action="CreateJob")
    job = await client.create_job(
        separation_request("https://songs.test/a.mp3", content_id="r", custom_id="lost-answer")
    )
    assert jobs_tagged(fake, "lost-answer") == [job.id]
    assert fake.request_counts["CreateJob"] == 1
    assert fake.request_counts["ListJobs"] >= 1


# A server that closes the connection without a byte once the fake has taken the request
# (a crash or a proxy's idle-timeout race): uvicorn cannot do this, it always answers.


@asynccontextmanager
async def served_with_silent_drops(fake: FakeMediaX) -> AsyncIterator[str]:
    """Serve ``fake`` over minimal HTTP/1.1; a lost answer closes the connection silently."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
                body = await reader.readexactly(int(match.group(1)) if match else 0)
                path = head.split(b" ", 2)[1].decode()
                reply = await fake.exchange("POST", path, body)
                if reply.disconnect is not None:
                    return
                headers = "".join(f"{name}: {value}\r\n" for name, value in reply.headers)
                writer.write(
                    f"HTTP/1.1 {reply.status} -\r\n{headers}"
                    f"content-length: {len(reply.body)}\r\n\r\n".encode()
                    + reply.body
                )
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        host, port = server.sockets[0].getsockname()[:2]
        yield f"http://{host}:{port}"


@pytest.mark.parametrize("backend", ["httpx", "aiohttp"])
async def test_create_job_dropped_silently_after_sending_is_not_created_twice(
    backend: Literal["httpx", "aiohttp"],
) -> None:
    """A connection closed without an answer after the request was sent never duplicates a job."""
    fake = FakeMediaX(schedule=Schedule.instant())
    fake.faults.inject(Fault.ANSWER_LOST, action="CreateJob")
    async with served_with_silent_drops(fake) as base_url:
        client = MediaXClient(
            fake.secret_id,
            fake.secret_key,
            base_url=base_url,
            http_backend=backend,
            retry_policy=FAST_RETRY,
        )
        async with client:
            job = await client.create_job(
                separation_request("https://s.test/a.mp3", content_id="r", custom_id="silent-drop")
            )
    assert [wire["id"] for wire in fake.jobs] == [job.id]


# -- configuration -------------------------------------------------------------------------


def test_an_unknown_backend_is_a_configuration_error() -> None:
    """A misspelt http_backend names itself and the choices."""
    with pytest.raises(ConfigurationError) as caught:
        MediaXClient("id", "key", http_backend="aiohtp")  # type: ignore[arg-type]  # misspelt on purpose
    assert str(caught.value) == "http_backend must be 'httpx' or 'aiohttp', got 'aiohtp'"


def test_aiohttp_backend_without_the_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without aiohttp installed, the error names the extra to install."""
    monkeypatch.setitem(sys.modules, "aiohttp", None)
    with pytest.raises(ConfigurationError, match=re.escape("pip install 'mediax-async[aiohttp]'")):
        MediaXClient("id", "key", http_backend="aiohttp")


async def test_aiohttp_backend_needs_no_httpx_aiohttp(
    served: tuple[FakeMediaX, str], fake: FakeMediaX, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The aiohttp backend sends through aiohttp itself: httpx-aiohttp need not be installed."""
    monkeypatch.setitem(sys.modules, "httpx_aiohttp", None)
    async with MediaXClient(
        fake.secret_id, fake.secret_key, base_url=served[1], http_backend="aiohttp"
    ) as client:
        assert await client.list_jobs("no-such-tag") == []


@pytest.mark.parametrize("backend", ["httpx", "aiohttp"])
async def test_a_refused_connection_is_known_unsent(backend: Literal["httpx", "aiohttp"]) -> None:
    """A connection refused means the request never left: ``sent`` is False on both backends."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()  # nothing listens there now
    client = MediaXClient(
        "id",
        "key",
        base_url=f"http://127.0.0.1:{port}",
        http_backend=backend,
        retry_policy=RetryPolicy(max_retries=0),
    )
    async with client:
        with pytest.raises(TransportError) as caught:
            await client.get_job("j")
    assert caught.value.sent is False
    assert "could not connect" in str(caught.value)
