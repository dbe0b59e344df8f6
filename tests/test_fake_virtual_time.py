"""The fake on anyio's clock under trio's MockClock: long schedules and callbacks run instantly."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

import anyio
import httpx
import pytest
from trio.testing import MockClock

from mediax_async._enums import State
from mediax_async.testing import (
    DEFAULT_SECRET_ID,
    DEFAULT_SECRET_KEY,
    FakeMediaX,
    Fault,
    FixedDuration,
    Profile,
    Schedule,
)

pytestmark = pytest.mark.anyio

HOOK = "https://hooks.test/done"


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Trio with a clock that jumps ahead whenever every task sleeps."""
    return ("trio", {"clock": MockClock(autojump_threshold=0)})


class Receiver:
    """A tiny ASGI app that records each callback and when (on anyio's clock) it came."""

    def __init__(self, status: int = 200, *, fail: bool = False) -> None:
        self.status = status
        self.fail = fail
        self.received: list[tuple[str, float, dict[str, Any]]] = []

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        self.received.append((scope["path"], anyio.current_time(), json.loads(body)))
        if self.fail:
            raise RuntimeError("receiver crashed")
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def make_fake(queue: float = 1, processing: float = 30, **options: Any) -> FakeMediaX:
    profile = Profile(queue=FixedDuration(queue), processing=FixedDuration(processing))
    return FakeMediaX(schedule=Schedule(default=profile), **options)


async def call(fake: FakeMediaX, action: str, request: dict[str, Any]) -> dict[str, Any]:
    key = action[0].lower() + action[1:]
    body = {
        "action": action,
        "secretId": DEFAULT_SECRET_ID,
        "secretKey": DEFAULT_SECRET_KEY,
        f"{key}Request": request,
    }
    async with fake.http_client() as http:
        response = await http.post("/job", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()[f"{key}Response"]
    return answer


async def create(fake: FakeMediaX, **extra: Any) -> dict[str, Any]:
    request = {
        "inputs": [{"url": "https://example.com/a.png"}],
        "outputs": [
            {
                "contentId": "repo",
                "inputSelectors": [0],
                "smartContentDescriptor": {"imageBgmGeneration": {"songQuantity": 1}},
            }
        ],
        **extra,
    }
    job: dict[str, Any] = (await call(fake, "CreateJob", request))["job"]
    return job


async def test_an_hour_long_job_finishes_instantly() -> None:
    """Under MockClock, sleeping an hour makes an hour-long job COMPLETED without waiting."""
    fake = make_fake(queue=60, processing=3600)
    job = await create(fake)
    await anyio.sleep(3600)
    assert (await call(fake, "GetJob", {"id": job["id"]}))["job"]["state"] == State.PROCESSING
    await anyio.sleep(60)
    done = (await call(fake, "GetJob", {"id": job["id"]}))["job"]
    assert done["state"] == State.COMPLETED
    assert int(done["timing"]["completedAt"]) - int(done["timing"]["createdAt"]) == 3_660_000


async def test_inspection_sees_time_pass_without_requests() -> None:
    """fake.jobs applies the transitions due by the clock, even when nobody polled."""
    fake = make_fake()
    await create(fake)
    await anyio.sleep(31)
    assert [job["state"] for job in fake.jobs] == [State.COMPLETED]


async def test_speed_makes_fake_time_run_faster() -> None:
    """With speed=10, a 31-second job is done after 3.1 seconds of anyio's clock."""
    fake = make_fake(speed=10)
    job = await create(fake)
    await anyio.sleep(3.0)
    assert fake.job(job["id"])["state"] == State.PROCESSING
    await anyio.sleep(0.11)
    assert fake.job(job["id"])["state"] == State.COMPLETED


async def test_slow_fault_answers_after_the_delay() -> None:
    """A SLOW fault delays the answer by slow_delay seconds, then processes the request."""
    fake = make_fake()
    fake.faults.slow_delay = 45
    fake.faults.inject(Fault.SLOW, action="CreateJob")
    before = anyio.current_time()
    job = await create(fake)
    assert anyio.current_time() - before == pytest.approx(45)
    assert job["timing"]["createdAt"] == str(1_700_000_000_000 + round(before * 1000) + 45_000)
    assert fake.faults.counts == {("CreateJob", Fault.SLOW): 1}


async def test_callbacks_arrive_when_jobs_end() -> None:
    """Callbacks POST the whole job when it ends COMPLETED or ERROR; CANCELED jobs stay silent."""
    fake = make_fake(queue=1, processing=30)
    receiver = Receiver()
    start = anyio.current_time()
    async with fake.running(callback_transport=httpx.ASGITransport(app=receiver)):
        completed = await create(fake, callback=HOOK)
        failed = await create(fake, callback=HOOK, timeout=10)
        canceled = await create(fake, callback=HOOK)
        fake.force_state(canceled["id"], State.CANCELED)
        await anyio.sleep(100)
    assert [path for path, _, _ in receiver.received] == ["/done", "/done"]
    assert [when - start for _, when, _ in receiver.received] == pytest.approx([10, 31])
    bodies = [body for _, _, body in receiver.received]
    assert bodies == [fake.job(failed["id"]), fake.job(completed["id"])]
    assert [body["state"] for body in bodies] == [State.ERROR, State.COMPLETED]
    assert [(r.job_id, r.state, r.status_code, r.error) for r in fake.callbacks] == [
        (failed["id"], State.ERROR, 200, None),
        (completed["id"], State.COMPLETED, 200, None),
    ]
    assert fake.callbacks[0].sent_at == pytest.approx(fake.callbacks[0].ended_at)


async def test_forced_completion_calls_back_at_once() -> None:
    """force_state(COMPLETED) on a job with a callback delivers it right away."""
    fake = make_fake(queue=1000, processing=1000)
    receiver = Receiver()
    async with fake.running(callback_transport=httpx.ASGITransport(app=receiver)):
        job = await create(fake, callback=HOOK)
        await anyio.sleep(5)
        fake.force_state(job["id"], State.COMPLETED)
        await anyio.sleep(0.001)
        assert len(receiver.received) == 1
        assert receiver.received[0][2]["outputs"][0]["smartContentResult"]


async def test_failed_deliveries_are_recorded_and_not_fatal() -> None:
    """A receiver answering 500 or crashing is recorded; later callbacks are still sent."""
    fake = make_fake(queue=0, processing=10)
    failing = Receiver(500)
    async with fake.running(callback_transport=httpx.ASGITransport(app=failing)):
        await create(fake, callback=HOOK)
        await anyio.sleep(20)
    crashing = Receiver(fail=True)
    async with fake.running(callback_transport=httpx.ASGITransport(app=crashing)):
        await create(fake, callback=HOOK)
        await anyio.sleep(20)
        await create(fake, callback=HOOK)
        await anyio.sleep(20)
    assert [(r.status_code, r.error) for r in fake.callbacks] == [
        (500, None),
        (None, "RuntimeError: receiver crashed"),
        (None, "RuntimeError: receiver crashed"),
    ]


async def test_callbacks_due_while_not_running_are_sent_on_start() -> None:
    """Callbacks of jobs that ended while no runner ran go out as soon as running() starts."""
    fake = make_fake(queue=0, processing=10)
    job = await create(fake, callback=HOOK)
    await anyio.sleep(50)
    receiver = Receiver()
    async with fake.running(callback_transport=httpx.ASGITransport(app=receiver)):
        await anyio.sleep(0.001)
    assert [body["id"] for _, _, body in receiver.received] == [job["id"]]
    assert fake.callbacks[0].sent_at - fake.callbacks[0].ended_at == pytest.approx(40, abs=0.01)


async def test_running_twice_at_once_is_refused() -> None:
    """One fake has one callback runner at a time."""
    fake = make_fake()
    async with fake.running():
        with pytest.raises(RuntimeError, match="already running"):
            async with fake.running():
                pass  # pragma: no cover


async def test_waiting_for_callbacks_needs_a_runner() -> None:
    """wait_for_callbacks explains that callbacks are only sent inside running()."""
    with pytest.raises(RuntimeError, match="running"):
        await make_fake().wait_for_callbacks()
