"""The fake as an ASGI app and over real HTTP on loopback (uvicorn), and the emulator."""

from __future__ import annotations

import json
import signal
import socket
import sys
import time
from collections.abc import MutableMapping
from typing import Any

import anyio
import httpx
import pytest
from processes import SAFETY, child

from mediax_async import ConfigurationError
from mediax_async._enums import State
from mediax_async.testing import (
    DEFAULT_SECRET_ID,
    DEFAULT_SECRET_KEY,
    FakeMediaX,
    Fault,
    InjectedDisconnect,
    Schedule,
    serve_app,
)

pytestmark = pytest.mark.anyio
asyncio_only = pytest.mark.parametrize("anyio_backend", ["asyncio"])


def body(action: str, request: dict[str, Any], **credentials: str) -> dict[str, Any]:
    key = action[0].lower() + action[1:]
    return {
        "action": action,
        "secretId": credentials.get("secret_id", DEFAULT_SECRET_ID),
        "secretKey": credentials.get("secret_key", DEFAULT_SECRET_KEY),
        f"{key}Request": request,
    }


def create_body(**extra: Any) -> dict[str, Any]:
    descriptor = {"musicSeperate": {"method": 2}}
    output = {"contentId": "repo", "inputSelectors": [0], "smartContentDescriptor": descriptor}
    request = {"inputs": [{"url": "https://example.com/a.mp3"}], "outputs": [output], **extra}
    return body("CreateJob", request)


class Receiver:
    """An ASGI callback receiver that keeps each body."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        message = await receive()
        self.bodies.append(json.loads(message["body"]))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


# -- ASGI, in-process ------------------------------------------------------------------


async def test_asgi_app_answers_like_the_transport() -> None:
    """Through httpx.ASGITransport the ASGI app creates and returns jobs in wire JSON."""
    fake = FakeMediaX(schedule=Schedule.instant())
    transport = httpx.ASGITransport(app=fake.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as http:
        created = await http.post("/release/job", json=create_body())
        job = created.json()["createJobResponse"]["job"]
        got = await http.post("/job", json=body("GetJob", {"id": job["id"]}))
    assert created.headers["content-length"] == str(len(created.content))
    assert got.json()["getJobResponse"]["job"]["state"] == State.COMPLETED


@pytest.mark.parametrize("fault", [Fault.DROP, Fault.ANSWER_LOST])
async def test_asgi_drops_raise_an_httpx_protocol_error(fault: Fault) -> None:
    """Dropped connections reach an ASGITransport client as httpx.RemoteProtocolError."""
    fake = FakeMediaX()
    fake.faults.inject(fault)
    transport = httpx.ASGITransport(app=fake.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as http:
        with pytest.raises(httpx.RemoteProtocolError) as caught:
            await http.post("/job", json=create_body())
    assert isinstance(caught.value, InjectedDisconnect)
    assert len(fake.jobs) == (fault == Fault.ANSWER_LOST)


async def test_asgi_app_speaks_lifespan() -> None:
    """The app completes the ASGI lifespan handshake, so any server can host it."""
    incoming = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(incoming)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await FakeMediaX().app({"type": "lifespan"}, receive, send)
    assert [message["type"] for message in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


# -- real HTTP -------------------------------------------------------------------------


@asyncio_only
async def test_served_fake_answers_on_a_real_port() -> None:
    """serve() listens on 127.0.0.1 with a free port and answers the wire protocol."""
    fake = FakeMediaX(schedule=Schedule.instant())
    async with fake.serve() as base_url, httpx.AsyncClient(base_url=base_url) as http:
        assert base_url.startswith("http://127.0.0.1:")
        assert int(base_url.rsplit(":", 1)[1]) > 0
        job = (await http.post("/job", json=create_body())).json()["createJobResponse"]["job"]
        got = await http.post("/job", json=body("GetJob", {"id": job["id"]}))
        stems = got.json()["getJobResponse"]["job"]["outputs"][0]["smartContentResult"]
        assert [stem["tone"] for stem in stems["musicSeperate"]] == [1, 2, 3, 5]
        missing = await http.post("/job", json=body("GetJob", {"id": "nope"}))
        assert missing.status_code == 404
        wrong = await http.post("/job", json=body("GetJob", {"id": "x"}, secret_key="bad"))
        assert wrong.status_code == 401


@asyncio_only
async def test_served_faults_look_like_a_real_network() -> None:
    """Over HTTP: 429 carries Retry-After, and drops are protocol errors the client sees."""
    fake = FakeMediaX()
    async with fake.serve() as base_url, httpx.AsyncClient(base_url=base_url) as http:
        fake.faults.inject(Fault.RATE_LIMITED)
        limited = await http.post("/job", json=create_body())
        assert (limited.status_code, limited.headers["retry-after"]) == (429, "1")
        fake.faults.inject(Fault.DROP)
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post("/job", json=create_body())
        fake.faults.inject(Fault.ANSWER_LOST)
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post("/job", json=create_body(customId="lost"))
        listed = await http.post("/job", json=body("ListJobs", {"customId": "lost"}))
        assert listed.json()["listJobsResponse"]["total"] == 1
    assert fake.faults.injected() == 3


@asyncio_only
async def test_callbacks_over_real_http() -> None:
    """The fake POSTs a finished job to a real HTTP receiver on loopback and records the answer."""
    receiver = Receiver()
    fake = FakeMediaX(schedule=Schedule.instant())
    async with serve_app(receiver) as receiver_url, fake.running():
        job = await fake.exchange(
            "POST", "/job", json.dumps(create_body(callback=f"{receiver_url}/hook")).encode()
        )
        job_id = json.loads(job.body)["createJobResponse"]["job"]["id"]
        with anyio.fail_after(5):
            await fake.wait_for_callbacks(1)
    assert receiver.bodies == [fake.job(job_id)]
    record = fake.callbacks[0]
    assert (record.url, record.job_id, record.status_code) == (f"{receiver_url}/hook", job_id, 204)


@asyncio_only
async def test_unreachable_callback_is_recorded() -> None:
    """A callback to a closed port is recorded with its error; the fake carries on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    fake = FakeMediaX(schedule=Schedule.instant())
    hook = f"http://127.0.0.1:{closed_port}/hook"
    async with fake.running():
        await fake.exchange("POST", "/job", json.dumps(create_body(callback=hook)).encode())
        with anyio.fail_after(5):
            await fake.wait_for_callbacks(1)
    assert fake.callbacks[0].status_code is None
    assert fake.callbacks[0].error is not None
    assert fake.callbacks[0].error.startswith("ConnectError")


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_serving_on_trio_explains_itself() -> None:
    """Serving needs asyncio (uvicorn); on trio the error says so."""
    with pytest.raises(ConfigurationError, match="asyncio"):
        async with FakeMediaX().serve():
            pass  # pragma: no cover


def test_emulator_prints_its_url_and_serves_until_interrupted() -> None:
    """run_emulator prints `export` lines for its URL and credentials, serves, stops on SIGINT.

    At speed 1 the jobs' timestamps are the wall clock's, however long the
    child took to start; the child is stopped under a time bound whatever happens.
    """
    code = "from mediax_async.testing import run_emulator; run_emulator(port=0, seed=1)"
    with child([sys.executable, "-c", code]) as emulator:
        base_url, id_line, key_line = (emulator.line() for _ in range(3))
        assert base_url.startswith("export MEDIAX_BASE_URL=http://127.0.0.1:")
        assert not base_url.endswith(":0")
        assert id_line == f"export MEDIAX_SECRET_ID={DEFAULT_SECRET_ID}"
        assert key_line == f"export MEDIAX_SECRET_KEY={DEFAULT_SECRET_KEY}"
        url = base_url.split("=", 1)[1]
        with httpx.Client(base_url=url, trust_env=False, timeout=SAFETY) as http:
            before = time.time()
            created = http.post("/job", json=create_body())
            after = time.time()
            models = http.post("/music_model", json=body("ListModels", {"type": 2}))
        assert models.json()["listModelsResponse"] == {"total": 0, "models": []}
        created_at = int(created.json()["createJobResponse"]["job"]["timing"]["createdAt"])
        assert before - 1 <= created_at / 1000 <= after + 1  # the wall clock, not fake time
        returncode, _, _ = emulator.finish(signal.SIGINT)
    assert returncode == 0


@asyncio_only
async def test_leaving_a_served_block_never_waits_on_a_stuck_request() -> None:
    """A request that never ends does not hold the server open: it is cancelled after a grace."""
    from mediax_async._serving import serve_asgi

    started = anyio.Event()

    async def stuck(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        started.set()
        await anyio.sleep_forever()

    ended: list[object] = []

    async def call(url: str) -> None:
        try:
            async with httpx.AsyncClient(trust_env=False, timeout=SAFETY) as http:
                ended.append((await http.get(url)).status_code)
        except httpx.HTTPError as exc:
            ended.append(type(exc))

    with anyio.fail_after(SAFETY):
        async with (
            anyio.create_task_group() as tasks,
            serve_asgi(stuck, "127.0.0.1", 0, purpose="a test", shutdown_grace=0.2) as url,
        ):
            tasks.start_soon(call, url)
            await started.wait()
    assert ended in ([500], [httpx.RemoteProtocolError])  # the request was cut off, not kept
