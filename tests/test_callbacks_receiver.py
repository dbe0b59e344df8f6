"""The callback receiver as an ASGI app, in-process through httpx.ASGITransport (asyncio, trio)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any, cast

import attrs
import httpx
import pytest

from mediax_async import JobWaiter, PollPolicy, State, separation_request
from mediax_async._callbacks import CallbackReceiver
from mediax_async.testing import FakeMediaX, FixedDuration, Profile, Schedule

pytestmark = pytest.mark.anyio

TOKEN = "receiver-test-token-0123456789"
PATH = f"/callbacks/{TOKEN}"
NEVER = PollPolicy(first_delay=1e9, initial_interval=1e9, max_interval=1e9, jitter="none")
"""A waiter that only polls when a callback tells it to."""


@attrs.define
class Setup:
    fake: FakeMediaX
    waiter: JobWaiter
    receiver: CallbackReceiver
    http: httpx.AsyncClient
    job: dict[str, Any]

    def body(self, **changes: Any) -> bytes:
        return json.dumps({**self.job, **changes}).encode()


@asynccontextmanager
async def receiving(*, trust: bool = False, **options: Any) -> AsyncIterator[Setup]:
    """A fake with one running job, a waiter watching it, and a receiver feeding the waiter."""
    schedule = Schedule(default=Profile(queue=FixedDuration(0), processing=FixedDuration(1e9)))
    fake = FakeMediaX(schedule=schedule)
    async with fake.client() as client:
        job = await client.create_job(separation_request("https://x/a.mp3", content_id="r"))
        async with client.waiter(policy=NEVER, trust_callbacks=trust) as waiter:
            await waiter.add(job)
            receiver = CallbackReceiver(waiter, token=TOKEN, **options)
            transport = httpx.ASGITransport(app=receiver)
            async with httpx.AsyncClient(transport=transport, base_url="http://recv") as http:
                yield Setup(fake, waiter, receiver, http, fake.job(job.id))


async def test_an_authenticated_job_is_accepted_and_the_waiter_told() -> None:
    """A POST of the job to the callback URL is answered 204 and reaches JobWaiter.notify."""
    async with receiving() as s:
        response = await s.http.post(PATH, content=s.body())
        assert (response.status_code, response.content) == (204, b"")
        assert s.waiter.stats.notified == 1
        assert (s.receiver.stats.accepted, s.receiver.stats.unknown) == (1, 0)
        query = await s.http.post("/callbacks", params={"token": TOKEN}, content=s.body())
        assert query.status_code == 204


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "reason"),
    [
        ("POST", f"/elsewhere/{TOKEN}", b"{}", 404, "not_found"),
        ("POST", "/callbacks", b"{}", 401, "bad_token"),
        ("POST", "/callbacks/wrong-token-0123456789", b"{}", 401, "bad_token"),
        ("POST", "/callbacks?token=wrong-token-0123456789", b"{}", 401, "bad_token"),
        ("GET", PATH, b"", 405, "method_not_allowed"),
        ("PUT", PATH, b"{}", 405, "method_not_allowed"),
        ("POST", PATH, b"{not json", 400, "malformed"),
        ("POST", PATH, b'{"hello": "world"}', 400, "not_a_job"),
        ("POST", PATH, b"[" * 50_000, 400, "malformed"),
    ],
)
async def test_refusals_have_fitting_statuses_and_are_counted(
    method: str, path: str, body: bytes, status: int, reason: str
) -> None:
    """Wrong path 404, wrong or missing token 401, non-POST 405, not JSON or not a job 400."""
    async with receiving() as s:
        response = await s.http.request(method, path, content=body)
        assert response.status_code == status
        assert response.json() == {"error": reason}
        assert s.receiver.stats.rejections()[reason] == 1
        assert s.receiver.stats.rejected == 1
        assert s.receiver.stats.accepted == 0
        assert s.waiter.stats.notified == 0
        if status == 405:
            assert response.headers["allow"] == "POST"


async def test_an_oversized_body_is_refused_by_its_declared_length() -> None:
    """A Content-Length over the limit is answered 413 before the body is read."""
    async with receiving(max_body_size=1000) as s:
        response = await s.http.post(PATH, content=s.body(padding="x" * 2000))
        assert response.status_code == 413
        assert s.receiver.stats.too_large == 1
        assert s.waiter.stats.notified == 0


async def test_a_body_at_the_limit_is_accepted() -> None:
    """The limit is inclusive: a body of exactly max_body_size bytes is taken."""
    async with receiving() as s:
        body = s.body()
        s.receiver = CallbackReceiver(s.waiter, token=TOKEN, max_body_size=len(body))
        transport = httpx.ASGITransport(app=s.receiver)
        async with httpx.AsyncClient(transport=transport, base_url="http://recv") as http:
            assert (await http.post(PATH, content=body)).status_code == 204


async def test_a_job_nobody_watches_is_accepted_and_counted() -> None:
    """A callback for a job no waiter watches is still 204 (no retries), counted as unknown."""
    async with receiving() as s:
        response = await s.http.post(PATH, content=s.body(id="someone-elses-job"))
        assert response.status_code == 204
        assert (s.receiver.stats.accepted, s.receiver.stats.unknown) == (1, 1)
        assert s.waiter.stats.notified == 0


async def test_duplicate_and_late_callbacks_are_harmless() -> None:
    """The same callback twice settles its job once; the second is 204 and counted unknown."""
    async with receiving(trust=True) as s:
        body = s.body(state=int(State.COMPLETED))
        first = await s.http.post(PATH, content=body)
        second = await s.http.post(PATH, content=body)
        assert (first.status_code, second.status_code) == (204, 204)
        assert s.waiter.stats.settled == 1
        assert (s.receiver.stats.accepted, s.receiver.stats.unknown) == (2, 1)


async def test_every_attached_waiter_is_told() -> None:
    """One receiver feeds several waiters; a detached waiter hears nothing more."""
    async with receiving() as s:
        other = cast(Any, Recorder())
        s.receiver.attach(other)
        assert (await s.http.post(PATH, content=s.body())).status_code == 204
        s.receiver.detach(other)
        with s.receiver.watching(other):
            assert s.receiver.waiters == (s.waiter, other)
            await s.http.post(PATH, content=s.body())
        assert s.receiver.waiters == (s.waiter,)
        await s.http.post(PATH, content=s.body())
        assert [job.id for job in other.jobs] == [s.job["id"]] * 2
        assert s.waiter.stats.notified == 3


class Recorder:
    """A stand-in waiter that records what it is told."""

    def __init__(self, fail: bool = False) -> None:
        self.jobs: list[Any] = []
        self.fail = fail

    async def notify(self, job: Any) -> bool:
        if self.fail:
            raise RuntimeError("broken waiter")
        self.jobs.append(job)
        return True


async def test_a_waiter_that_raises_is_a_500_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A bug in a waiter answers 500 (the sender may retry) and is logged, never raised."""
    receiver = CallbackReceiver(cast(Any, Recorder(fail=True)), token=TOKEN)
    transport = httpx.ASGITransport(app=receiver)
    async with httpx.AsyncClient(transport=transport, base_url="http://recv") as http:
        response = await http.post(PATH, json={"id": "j", "state": 3})
    assert response.status_code == 500
    assert receiver.stats.errors == 1
    assert "broken waiter" in caplog.text


async def test_the_on_job_hook_sees_each_job_and_cannot_break_the_receiver(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """on_job(job, watched) is called for each accepted job; its exceptions are only logged."""
    seen: list[tuple[str, bool]] = []

    def hook(job: Any, watched: bool) -> None:
        seen.append((job.id, watched))
        raise ValueError("hook bug")

    receiver = CallbackReceiver(token=TOKEN, on_job=hook)
    transport = httpx.ASGITransport(app=receiver)
    async with httpx.AsyncClient(transport=transport, base_url="http://recv") as http:
        response = await http.post(PATH, json={"id": "j", "state": 4})
    assert response.status_code == 204
    assert seen == [("j", False)]
    assert "hook bug" in caplog.text


async def test_the_token_never_shows(caplog: pytest.LogCaptureFixture) -> None:
    """Neither reprs, log records (DEBUG included) nor answers ever contain the token."""
    caplog.set_level(logging.DEBUG)
    async with receiving() as s:
        answers = [
            await s.http.post(PATH, content=s.body()),
            await s.http.post("/callbacks/wrong-token-0123456789", content=s.body()),
            await s.http.post("/callbacks", params={"token": TOKEN + "x"}, content=b"{}"),
            await s.http.get(PATH),
            await s.http.post(PATH, content=b"nope"),
            await s.http.post(f"/x{PATH}", content=b"{}"),
        ]
        # The library's own records (the sender's, httpx's, are the sender's business).
        ours = [r.getMessage() for r in caplog.records if r.name.startswith("mediax_async")]
        assert any("refused" in line for line in ours)
        shown = [repr(s.receiver), str(s.receiver), repr(s.receiver.stats), *ours]
        shown += [a.text + str(a.headers) for a in answers]
        for text in shown:
            assert TOKEN not in text
        assert s.receiver.redact(f"at {PATH}") == "at /callbacks/***"
        assert s.receiver.callback_url("https://h").endswith(PATH)


def test_the_log_filter_hides_the_token_in_access_log_records() -> None:
    """receiver.log_filter() scrubs uvicorn.access records whose arguments hold the path."""
    receiver = CallbackReceiver(token=TOKEN)
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s" %d',
        ("1.2.3.4", "POST", PATH, 204),
        None,
    )
    assert receiver.log_filter().filter(record)
    assert TOKEN not in record.getMessage()
    assert "/callbacks/***" in record.getMessage()
    named = logging.LogRecord("x", logging.INFO, __file__, 1, "%(p)s", None, None)
    named.args = {"p": PATH}
    receiver.log_filter().filter(named)
    assert TOKEN not in named.getMessage()


async def test_mounted_in_starlette() -> None:
    """Mounted under a prefix in Starlette, the receiver answers below that prefix only."""
    pytest.importorskip("starlette")
    from starlette.applications import Starlette
    from starlette.routing import Mount

    receiver = CallbackReceiver(token=TOKEN)
    app = Starlette(routes=[Mount("/hooks", app=receiver)])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://recv"
    ) as http:
        ok = await http.post(f"/hooks{PATH}", json={"id": "j", "state": 3})
        wrong = await http.post(f"/hooks/callbacks/{'z' * 20}", json={"id": "j", "state": 3})
        missing = await http.post(PATH, json={"id": "j", "state": 3})
    assert (ok.status_code, wrong.status_code, missing.status_code) == (204, 401, 404)
    assert receiver.callback_url("https://h/hooks") == f"https://h/hooks{PATH}"


async def test_a_receiver_at_its_mount_root() -> None:
    """With path="" the callback URL is the public URL plus the token."""
    receiver = CallbackReceiver(token=TOKEN, path="")
    assert receiver.callback_url("https://h/mx/") == f"https://h/mx/{TOKEN}"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=receiver), base_url="http://recv"
    ) as http:
        assert (await http.post(f"/{TOKEN}", json={"id": "j", "state": 3})).status_code == 204


Message = MutableMapping[str, Any]


async def call(
    receiver: CallbackReceiver, scope: Message, incoming: list[Message]
) -> list[Message]:
    """Call the ASGI app directly; ``incoming`` are the messages receive() gives, in order."""
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await receiver(scope, receive, send)
    return sent


def http_scope(path: str = PATH, **extra: Any) -> Message:
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "query_string": b"",
        "headers": [],
        **extra,
    }


async def test_the_lifespan_protocol_is_acknowledged() -> None:
    """Served alone (uvicorn's default lifespan="auto"), startup and shutdown complete."""
    sent = await call(
        CallbackReceiver(token=TOKEN),
        {"type": "lifespan"},
        [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}],
    )
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_websockets_are_closed() -> None:
    """A websocket connection is closed at once."""
    sent = await call(CallbackReceiver(token=TOKEN), {"type": "websocket", "path": PATH}, [])
    assert sent == [{"type": "websocket.close", "code": 1008}]


async def test_a_declared_oversized_body_is_never_read() -> None:
    """413 on the declared length comes before any receive()."""
    receiver = CallbackReceiver(token=TOKEN, max_body_size=10)
    scope = http_scope(headers=[(b"content-length", b"11")])
    sent = await call(receiver, scope, [])  # receive() would fail: nothing to pop
    assert sent[0]["status"] == 413


async def test_an_oversized_streamed_body_is_refused_as_it_streams() -> None:
    """A body without Content-Length is counted as it arrives and refused once over the limit."""
    receiver = CallbackReceiver(token=TOKEN, max_body_size=1000)
    incoming: list[Message] = [
        {"type": "http.request", "body": b"x" * 600, "more_body": True},
        {"type": "http.request", "body": b"x" * 600, "more_body": True},
    ]  # nothing more: reading on would fail
    sent = await call(receiver, http_scope(), incoming)
    assert sent[0]["status"] == 413
    assert receiver.stats.too_large == 1


async def test_a_chunked_body_within_the_limit_is_accepted() -> None:
    """A body in several chunks is joined before it is parsed."""
    receiver = CallbackReceiver(token=TOKEN)
    incoming: list[Message] = [
        {"type": "http.request", "body": b'{"id": "j",', "more_body": True},
        {"type": "http.request", "body": b' "state": 3}', "more_body": False},
    ]
    sent = await call(receiver, http_scope(), incoming)
    assert sent[0]["status"] == 204
    assert receiver.stats.accepted == 1


async def test_a_sender_that_hangs_up_gets_no_answer() -> None:
    """A disconnect before the body ends is counted; nothing is sent."""
    receiver = CallbackReceiver(token=TOKEN)
    incoming: list[Message] = [
        {"type": "http.request", "body": b'{"id":', "more_body": True},
        {"type": "http.disconnect"},
    ]
    assert await call(receiver, http_scope(), incoming) == []
    assert receiver.stats.disconnected == 1


def test_options_are_checked() -> None:
    """A zero body limit, a zero timeout or a weak token is a ValueError at construction."""
    with pytest.raises(ValueError, match="max_body_size"):
        CallbackReceiver(max_body_size=0)
    with pytest.raises(ValueError, match="body_timeout"):
        CallbackReceiver(body_timeout=0)
    with pytest.raises(ValueError, match="callback token"):
        CallbackReceiver(token="weak")
    receiver = CallbackReceiver()
    assert receiver.path == "/callbacks"
    assert receiver.max_body_size == 1024 * 1024
