"""Callbacks over real HTTP on loopback: the fake POSTs to a receiver served by uvicorn.

asyncio only (uvicorn). Nothing sleeps: each test waits for an event, under
``anyio.fail_after`` as a safety net, and the waiters' fallback polls are
minutes away, so only callbacks can end their jobs in time.
"""

from __future__ import annotations

import io
import json
import logging
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import attrs
import httpx
import pytest
from processes import SAFETY as CHILD_SAFETY
from processes import child, mediax

from mediax_async import Job, MediaXClient, State, separation_request
from mediax_async._callbacks import CALLBACK_POLL_POLICY, CallbackReceiver
from mediax_async.cli import Runtime, main
from mediax_async.testing import FakeMediaX, FixedDuration, Profile, Schedule

pytest.importorskip("uvicorn")
asyncio_only = pytest.mark.parametrize("anyio_backend", ["asyncio"])

TOKEN = "served-test-token-0123456789abc"
SAFETY = 20.0
"""Seconds a test may take before it fails rather than hangs (never slept)."""
QUICK = Schedule(default=Profile(queue=FixedDuration(0.5), processing=FixedDuration(20)))
ENDLESS = Schedule(default=Profile(queue=FixedDuration(0), processing=FixedDuration(1e9)))


@attrs.define
class Served:
    fake: FakeMediaX
    client: MediaXClient
    receiver: CallbackReceiver
    base_url: str
    http: httpx.AsyncClient

    @property
    def url(self) -> str:
        return self.receiver.callback_url(self.base_url)

    async def submit(self, count: int = 1) -> list[Job]:
        return [
            await self.client.create_job(
                separation_request(f"https://x/{n}.mp3", content_id="r", callback=self.url)
            )
            for n in range(count)
        ]


@asynccontextmanager
async def served(schedule: Schedule, **options: Any) -> AsyncIterator[Served]:
    """A fake (1,000x time) sending real HTTP callbacks to a receiver uvicorn serves."""
    fake = FakeMediaX(schedule=schedule, speed=1000)
    receiver = CallbackReceiver(token=TOKEN, **options)
    with anyio.fail_after(SAFETY):
        async with (
            receiver.serve("127.0.0.1", 0) as base_url,
            fake.running(),
            fake.client() as client,
            httpx.AsyncClient(trust_env=False) as http,
        ):
            assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base_url)
            yield Served(fake, client, receiver, base_url, http)


@pytest.mark.anyio
@asyncio_only
async def test_real_http_callbacks_settle_jobs() -> None:
    """Jobs end through the service's real HTTP callbacks, one confirming GetJob each."""
    async with served(QUICK) as s:
        jobs = await s.submit(5)
        async with s.client.waiter(policy=CALLBACK_POLL_POLICY) as waiter:
            s.receiver.attach(waiter)
            done = await waiter.wait_all(jobs)
    assert {job.state for job in done} == {State.COMPLETED}
    assert waiter.stats.notified == 5
    assert s.fake.request_counts["GetJob"] == 5
    assert [r.status_code for r in s.fake.callbacks] == [204] * 5
    assert s.receiver.stats.accepted == 5


@pytest.mark.anyio
@asyncio_only
async def test_a_forged_completion_over_http_is_checked_with_the_service() -> None:
    """A forged COMPLETED POST settles nothing: the waiter asks, sees PROCESSING, keeps waiting."""
    asked = anyio.Event()

    def on_state_change(job: Job, old: State | None, new: State) -> None:
        if new == State.PROCESSING:
            asked.set()

    async with served(ENDLESS) as s:
        (job,) = await s.submit()
        waiter = s.client.waiter(policy=CALLBACK_POLL_POLICY, on_state_change=on_state_change)
        async with waiter, waiter.as_completed([job]) as stream:
            s.receiver.attach(waiter)
            wire = {**s.fake.job(job.id), "state": int(State.COMPLETED)}
            assert (await s.http.post(s.url, json=wire)).status_code == 204
            await asked.wait()  # the confirming GetJob came back PROCESSING
            assert waiter.stats.settled == 0
            s.fake.force_state(job.id, State.COMPLETED)  # the real end, and its callback
            done = [job async for job in stream]
    assert done[0].state == State.COMPLETED
    assert done[0].output_files()
    assert s.fake.request_counts["GetJob"] == 2


@pytest.mark.anyio
@asyncio_only
async def test_a_forged_completion_over_http_settles_a_trusting_waiter() -> None:
    """With trust_callbacks=True the POSTed payload is believed: a forger decides the outcome."""
    async with served(ENDLESS) as s:
        (job,) = await s.submit()
        waiter = s.client.waiter(policy=CALLBACK_POLL_POLICY, trust_callbacks=True)
        async with waiter, waiter.as_completed([job]) as stream:
            s.receiver.attach(waiter)
            wire = {**s.fake.job(job.id), "state": int(State.ERROR)}
            assert (await s.http.post(s.url, json=wire)).status_code == 204
            done = [job async for job in stream]
    assert done[0].state == State.ERROR
    assert s.fake.job(job.id)["state"] == State.PROCESSING
    assert s.fake.request_counts["GetJob"] == 0


@pytest.mark.anyio
@asyncio_only
async def test_bad_callbacks_over_http_are_refused(caplog: pytest.LogCaptureFixture) -> None:
    """Wrong token 401, path 404, GET 405, oversized 413, malformed 400; no log shows the token."""
    caplog.set_level(logging.DEBUG)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"x" * 1000

    async with served(ENDLESS, max_body_size=10_000) as s:
        (job,) = await s.submit()
        body = json.dumps(s.fake.job(job.id)).encode()
        base = s.base_url
        answers = [
            await s.http.post(f"{base}/callbacks/not-the-token-0123456789", content=body),
            await s.http.post(f"{base}/callbacks?token=not-the-token-0123456789", content=body),
            await s.http.post(f"{base}/callbacks", content=body),
            await s.http.post(f"{base}/elsewhere/{TOKEN}", content=body),
            await s.http.get(s.url),
            await s.http.post(s.url, content=b"x" * 20_000),
            await s.http.post(s.url, content=chunks()),
            await s.http.post(s.url, content=b"{nope"),
            await s.http.post(s.url, json={"not": "a job"}),
        ]
        stats = s.receiver.stats
    assert [a.status_code for a in answers] == [401, 401, 401, 404, 405, 413, 413, 400, 400]
    assert (stats.bad_token, stats.not_found, stats.method_not_allowed) == (3, 1, 1)
    assert (stats.too_large, stats.malformed, stats.not_a_job, stats.accepted) == (2, 1, 1, 0)
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith("httpx")]
    assert not [line for line in ours if TOKEN in line]


@pytest.mark.anyio
@asyncio_only
async def test_duplicate_callbacks_over_http_are_harmless() -> None:
    """The service's callback sent again, and late, is 204 and changes nothing."""
    async with served(QUICK) as s:
        (job,) = await s.submit()
        async with s.client.waiter(policy=CALLBACK_POLL_POLICY) as waiter:
            s.receiver.attach(waiter)
            done = await waiter.wait(job)
            again = [await s.http.post(s.url, json=s.fake.job(job.id)) for _ in range(3)]
    assert done.state == State.COMPLETED
    assert [a.status_code for a in again] == [204] * 3
    assert (waiter.stats.settled, waiter.stats.notified) == (1, 1)
    assert (s.receiver.stats.accepted, s.receiver.stats.unknown) == (4, 3)


# -- the command line --------------------------------------------------------------------


@pytest.mark.anyio
@asyncio_only
async def test_batch_listen_takes_callbacks(tmp_path: Path) -> None:
    """`mediax batch --listen` serves a receiver, gives jobs its URL, and ends on callbacks."""
    line = '{"kind": "separation", "song": "https://x/%d.mp3", "content_id": "repo"}\n'
    source = tmp_path / "jobs.jsonl"
    source.write_text("".join(line % n for n in range(4)))
    fake = FakeMediaX(schedule=QUICK, speed=1000)
    out, err = io.StringIO(), io.StringIO()
    with anyio.fail_after(SAFETY):
        async with fake.serve() as base_url:

            def client(settings: Any) -> MediaXClient:
                return MediaXClient(fake.secret_id, fake.secret_key, base_url=base_url)

            runtime = Runtime(client_factory=client, stdout=out, stderr=err, terminal=False)
            argv = ["--json", "batch", str(source), "--listen", "127.0.0.1:0", "--token", TOKEN]
            code = await anyio.to_thread.run_sync(lambda: main(argv, runtime=runtime))
    summary = json.loads(out.getvalue())
    assert code == 0, err.getvalue()
    assert summary["completed"] == 4
    assert summary["callbacks"]["accepted"] == 4
    assert summary["stats"]["notified"] == 4
    callback = re.compile(rf"http://127\.0\.0\.1:\d+/callbacks/{TOKEN}")
    assert all(callback.fullmatch(job["callback"]) for job in fake.jobs)
    assert TOKEN not in out.getvalue() + err.getvalue()
    assert "/callbacks/***" in err.getvalue()


def test_listen_prints_the_callback_url_then_each_job() -> None:
    """`mediax listen` prints the URL to use once, then one line per job; bad tokens get 401."""
    env = {"MEDIAX_CALLBACK_TOKEN": TOKEN}
    with child(mediax("listen", "--port", "0"), env=env) as process:
        url = process.line()
        assert re.fullmatch(rf"http://127\.0\.0\.1:\d+/callbacks/{TOKEN}", url)
        job = {"id": "job-1", "state": 3, "callback": url, "outputs": []}
        with httpx.Client(trust_env=False, timeout=CHILD_SAFETY) as http:
            assert http.post(url, json=job).status_code == 204
            assert http.post(url.replace(TOKEN, "x" * 20), json=job).status_code == 401
        assert process.line().split() == ["job-1", "?", "COMPLETED", "-"]
        returncode, _, stderr = process.finish(signal.SIGINT)
    assert returncode == 130
    assert TOKEN not in stderr
    assert "1 callback(s) taken, 1 refused" in stderr


# -- reachable under a flood of slow connections -------------------------------------------

FLOODED_SERVER = """
import resource, sys
import anyio
resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
from mediax_async import CallbackReceiver

async def main():
    receiver = CallbackReceiver(token=sys.argv[1])
    async with receiver.serve("127.0.0.1", 0, header_timeout=float(sys.argv[2])) as url:
        print(receiver.callback_url(url), flush=True)
        await anyio.sleep_forever()

try:
    anyio.run(main)
except KeyboardInterrupt:
    pass
"""


def _trickle(url: str, count: int) -> list[socket.socket]:
    """``count`` connections that send half a request head and then nothing."""
    address = httpx.URL(url)
    opened = []
    for _ in range(count):
        sock = socket.create_connection((address.host, address.port), timeout=CHILD_SAFETY)
        sock.sendall(b"POST " + address.raw_path + b" HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        opened.append(sock)
    return opened


@pytest.mark.parametrize("header_timeout", [3600.0, 0.5])
def test_slow_connections_do_not_lock_real_callbacks_out(header_timeout: float) -> None:
    """300 trickling connections against a 256-descriptor server: a real callback still gets in.

    With an hour's header timeout only the connection cap saves it (the slowest
    are shed); with half a second the trickling ones are also cut off on time.
    """
    code = [sys.executable, "-c", FLOODED_SERVER, TOKEN, str(header_timeout)]
    slow: list[socket.socket] = []
    with child(code) as server:
        try:
            url = server.line()
            slow = _trickle(url, 300)
            job = {"id": "job-1", "state": 3, "callback": url, "outputs": []}
            with httpx.Client(trust_env=False, timeout=CHILD_SAFETY) as http:
                assert http.post(url, json=job).status_code == 204
            if header_timeout < 1:  # the last slow one, never shed, is cut off by its timeout
                slow[-1].settimeout(CHILD_SAFETY)
                assert slow[-1].recv(1) == b""
        finally:
            for sock in slow:
                sock.close()
        _, _, stderr = server.finish(signal.SIGINT)
    assert "Too many open files" not in stderr
    assert "Traceback" not in stderr
