"""Callbacks and fallback polling in virtual time (trio MockClock), delivered in-process.

The fake delivers each callback through ``httpx.ASGITransport`` to the
receiver (or to a stand-in that loses them), on anyio's clock, so hours of
job time take milliseconds and every time below is exact.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import attrs
import httpx
import pytest
import trio.testing

from mediax_async import (
    Job,
    JobWaiter,
    MediaXClient,
    PollPolicy,
    State,
    separation_request,
)
from mediax_async._callbacks import (
    CALLBACK_POLL_POLICY,
    CallbackReceiver,
    callback_poll_policy,
)
from mediax_async.testing import (
    FakeMediaX,
    FixedDuration,
    LogNormalDuration,
    Profile,
    Schedule,
)

pytestmark = pytest.mark.anyio

PUBLIC = "http://receiver.test"
LONG = Schedule(default=Profile(queue=FixedDuration(0), processing=FixedDuration(1000)))
VARIED = Schedule(
    default=Profile(
        queue=LogNormalDuration(median=5, sigma=1),
        processing=LogNormalDuration(median=60, sigma=1),
        error_rate=0.1,
    )
)


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Every test here runs on trio with a clock that jumps whenever all tasks sleep."""
    return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})


Message = MutableMapping[str, Any]


async def lost(scope: Message, receive: Any, send: Any) -> None:
    """A callback endpoint behind a broken proxy: every callback is answered 502 and lost."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 502, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@attrs.define
class Run:
    fake: FakeMediaX
    client: MediaXClient
    receiver: CallbackReceiver
    http: httpx.AsyncClient
    settled_at: dict[str, float] = attrs.Factory(dict)

    def on_settled(self, job_id: str, outcome: Job | BaseException) -> None:
        self.settled_at[job_id] = anyio.current_time()

    async def submit(self, count: int = 1, callback: bool = True) -> list[Job]:
        url = self.receiver.callback_url(PUBLIC) if callback else None
        return [
            await self.client.create_job(
                separation_request(f"https://x/{n}.mp3", content_id="r", callback=url)
            )
            for n in range(count)
        ]

    def ended_at(self, job_id: str) -> float:
        completed = int(self.fake.job(job_id)["timing"]["completedAt"])
        return (completed - self.fake.state.epoch_offset_ms) / 1000

    def lag(self, job_id: str) -> float:
        """How long after its end the waiter knew a job had ended."""
        return self.settled_at[job_id] - self.ended_at(job_id)


@asynccontextmanager
async def callbacks(
    schedule: Schedule, *, seed: int = 0, endpoint: Any = None
) -> AsyncIterator[Run]:
    """A fake delivering callbacks in-process to a receiver (or to ``endpoint`` instead)."""
    fake = FakeMediaX(seed=seed, schedule=schedule, record_requests=False)
    receiver = CallbackReceiver()
    transport = httpx.ASGITransport(app=endpoint or receiver)
    async with (
        fake.running(callback_transport=httpx.ASGITransport(app=endpoint or receiver)),
        fake.client() as client,
        httpx.AsyncClient(transport=transport, base_url=PUBLIC) as http,
    ):
        yield Run(fake, client, receiver, http)


def waiter(run: Run, policy: PollPolicy = CALLBACK_POLL_POLICY, **options: Any) -> JobWaiter:
    return run.client.waiter(policy=policy, on_settled=run.on_settled, **options)


async def test_callbacks_settle_jobs_at_once_for_about_one_get_job_each() -> None:
    """With a receiver, each job is known the moment it ends, for about one GetJob per job."""
    async with callbacks(VARIED, seed=3) as run:
        jobs = await run.submit(200)
        async with waiter(run, max_concurrency=16) as w:
            run.receiver.attach(w)
            done = await w.wait_all(jobs)
    assert all(job.state in (State.COMPLETED, State.ERROR) for job in done)
    assert w.stats.notified == run.receiver.stats.accepted == 200
    assert max(run.lag(job.id) for job in jobs) == pytest.approx(0, abs=1e-3)  # timing is in ms
    assert run.fake.request_counts["GetJob"] / 200 <= 1.2


async def test_when_callbacks_never_come_polling_finishes_every_job() -> None:
    """Every callback lost: the slow fallback polls still end every job, within max_interval."""
    async with callbacks(VARIED, seed=4, endpoint=lost) as run:
        jobs = await run.submit(100)
        async with waiter(run, max_concurrency=16) as w:
            run.receiver.attach(w)
            done = await w.wait_all(jobs)
    assert {job.id for job in done} == {job.id for job in jobs}
    assert all(job.state.is_terminal for job in done)
    assert w.stats.notified == 0
    assert {r.status_code for r in run.fake.callbacks} == {502}
    assert max(run.lag(job.id) for job in jobs) <= 900


async def test_when_callbacks_stop_midway_polling_finishes_the_rest() -> None:
    """Callbacks that stop arriving halfway through leave no job unfinished."""
    async with callbacks(VARIED, seed=5) as run:
        jobs = await run.submit(100)
        async with waiter(run, max_concurrency=16) as w:
            run.receiver.attach(w)
            finished = 0
            async for _job in w.as_completed(jobs):
                finished += 1
                if finished == 50:
                    run.receiver.detach(w)  # from now on, no callback reaches the waiter
    assert finished == 100
    assert w.stats.notified == 50
    assert run.receiver.stats.unknown == 50
    late = sorted(run.lag(job.id) for job in jobs)
    assert late[49] == pytest.approx(0, abs=1e-3)  # timing is in ms
    assert 0 < late[-1] <= 900


async def test_canceled_jobs_which_never_call_back_are_found_by_polling() -> None:
    """CANCELED jobs send no callback; the fallback polls still find them."""
    schedule = Schedule(
        default=Profile(queue=FixedDuration(1), processing=FixedDuration(30), cancel_rate=1.0)
    )
    async with callbacks(schedule) as run:
        jobs = await run.submit(5)
        async with waiter(run) as w:
            run.receiver.attach(w)
            done = await w.wait_all(jobs)
    assert {job.state for job in done} == {State.CANCELED}
    assert run.fake.callbacks == []
    assert w.stats.notified == 0


def forged(job: Job, fake: FakeMediaX) -> bytes:
    """The job as the service shows it now, claimed COMPLETED with a file of the forger's."""
    wire = fake.job(job.id)
    wire["state"] = int(State.COMPLETED)
    wire["outputs"][0]["smartContentResult"] = {
        "musicSeperate": [{"tone": 1, "fileName": "forged.mp3"}]
    }
    return json.dumps(wire).encode()


async def test_a_forged_completion_settles_nothing_by_default() -> None:
    """A COMPLETED callback for a running job only makes the waiter ask; the service decides."""
    async with callbacks(LONG) as run:
        (job,) = await run.submit()
        no_fallback = callback_poll_policy(first_delay=5000, jitter="none")
        async with waiter(run, policy=no_fallback) as w, w.as_completed([job]) as stream:
            run.receiver.attach(w)
            await anyio.sleep(10)
            path = run.receiver.callback_url(PUBLIC).removeprefix(PUBLIC)
            answer = await run.http.post(path, content=forged(job, run.fake))
            assert answer.status_code == 204
            await anyio.sleep(1)
            assert w.stats.notified == 1
            assert run.fake.request_counts["GetJob"] == 1  # polled at once, to confirm
            assert w.stats.settled == 0
            done = [job async for job in stream]
    assert run.settled_at[job.id] == pytest.approx(1000)  # the real callback, at the real end
    assert done[0].state == State.COMPLETED
    assert "/forged.mp3" not in [f.path for f in done[0].output_files()]
    assert run.fake.request_counts["GetJob"] == 2


async def test_a_forged_completion_settles_a_trusting_waiter() -> None:
    """With trust_callbacks=True a callback payload is taken as the truth, forged or not."""
    async with callbacks(LONG) as run:
        (job,) = await run.submit()
        async with waiter(run, trust_callbacks=True) as w, w.as_completed([job]) as stream:
            run.receiver.attach(w)
            await anyio.sleep(10)
            path = run.receiver.callback_url(PUBLIC).removeprefix(PUBLIC)
            assert (await run.http.post(path, content=forged(job, run.fake))).status_code == 204
            done = [job async for job in stream]
    assert run.settled_at[job.id] == pytest.approx(10)
    assert done[0].state == State.COMPLETED
    assert [f.path for f in done[0].output_files()] == ["/forged.mp3"]
    assert run.fake.job(job.id)["state"] == State.PROCESSING
    assert run.fake.request_counts["GetJob"] == 0


async def test_a_trusting_waiter_settles_real_callbacks_without_polling() -> None:
    """Trusted, genuine callbacks end jobs with no GetJob at all."""
    async with callbacks(VARIED, seed=6) as run:
        jobs = await run.submit(50)
        async with waiter(run, trust_callbacks=True) as w:
            run.receiver.attach(w)
            done = await w.wait_all(jobs)
    assert all(job.state.is_terminal for job in done)
    assert w.stats.notified == 50
    assert run.fake.request_counts["GetJob"] <= 5  # only the rare job outliving its first poll


async def test_a_callback_for_a_job_not_yet_watched_is_not_lost() -> None:
    """A callback that arrives before the waiter takes the job up is counted; polling ends it."""
    schedule = Schedule(default=Profile(queue=FixedDuration(0), processing=FixedDuration(5)))
    async with callbacks(schedule) as run:
        (job,) = await run.submit()
        await anyio.sleep(10)  # the callback comes and goes while no waiter runs
        assert run.receiver.stats.unknown == 1
        async with waiter(run, policy=callback_poll_policy(first_delay=60, jitter="none")) as w:
            run.receiver.attach(w)
            done = await w.wait(job)
    assert done.state == State.COMPLETED
    assert run.settled_at[job.id] == pytest.approx(70)


async def test_a_slow_sender_is_cut_off() -> None:
    """A body that never finishes arriving is answered 400 after body_timeout seconds."""
    receiver = CallbackReceiver(token="slow-sender-token-0123456789", body_timeout=30)
    sent: list[Message] = []

    async def receive() -> Message:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/callbacks/slow-sender-token-0123456789",
        "query_string": b"",
        "headers": [],
    }
    started = anyio.current_time()
    await receiver(scope, receive, send)
    assert anyio.current_time() - started == pytest.approx(30)
    assert sent[0]["status"] == 400
    assert receiver.stats.malformed == 1
