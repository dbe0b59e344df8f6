"""``FakeMediaX``: the fake service, whichever way it is reached.

``exchange`` is the one entry point: the httpx transport, the ASGI app and the
uvicorn server all hand it (method, path, body) and carry its ``Reply`` back.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import json
import random
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final

import anyio
import attrs
import httpx
from anyio.abc import TaskGroup

from .._enums import State
from .._tasks import background_tasks
from ._actions import ACTIONS
from ._callbacks import CallbackRecord, CallbackRunner
from ._faults import Fault, FaultPlan, gateway_reply
from ._schedule import Schedule
from ._state import MediaXState
from ._wire import (
    ACTION_PATHS,
    DEFAULT_EPOCH_OFFSET_MS,
    JSON_HEADERS,
    Disconnect,
    Reply,
    ServiceError,
    error_reply,
    missing,
    random_uuid,
)

if TYPE_CHECKING:
    from .._client import MediaXClient
    from ._asgi import MediaXApp
    from ._transport import FakeTransport

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_SECRET_ID",
    "DEFAULT_SECRET_KEY",
    "FakeMediaX",
    "RecordedRequest",
]

DEFAULT_SECRET_ID: Final = "AKIDfakeMediaX0000000000"
DEFAULT_SECRET_KEY: Final = "fake-mediax-secret-key-0000"
#: The in-process fake's base URL (``.test`` is a reserved, never-resolving domain).
DEFAULT_BASE_URL: Final = "https://mediax.test"
CALLBACK_TIMEOUT: Final = 10.0
_ENDPOINTS: Final = frozenset(ACTION_PATHS.values())


@attrs.frozen
class RecordedRequest:
    """A request the fake received; ``body`` is the decoded JSON without any secretKey."""

    action: str
    """The body's ``action`` ("" when it has none)."""
    path: str
    body: Any
    """The decoded body with every ``secretKey`` removed; None if it was not JSON."""
    at: float
    """When it arrived, on the fake's clock."""


def _without_secret_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_secret_keys(v) for k, v in value.items() if k != "secretKey"}
    if isinstance(value, list):
        return [_without_secret_keys(item) for item in value]
    return value


def _anyio_clock(speed: float) -> Callable[[], float]:
    if speed == 1:
        return anyio.current_time
    return lambda: anyio.current_time() * speed


def _cancel(tasks: TaskGroup) -> None:
    tasks.cancel_scope.cancel()


class FakeMediaX:
    """An in-process fake of the MediaX music API, speaking its wire format.

    Reach it through ``transport`` (an httpx transport, fastest), ``app`` (an
    ASGI app) or ``serve()`` (real HTTP on loopback). Its clock defaults to
    anyio's, times ``speed``, read at each request, so under trio's MockClock
    hour-long jobs finish at once. Jobs move on a ``schedule`` drawn from
    ``seed``; ``faults`` injects failures; callbacks are delivered while
    ``running()`` (or ``serve()``) is active.

    The fake holds one account to begin with (``secret_id``, ``secret_key``;
    the key is kept for ``client()`` and shown by no repr); ``add_account``
    adds more. It serves one event loop at a time.
    """

    def __init__(
        self,
        *,
        secret_id: str = DEFAULT_SECRET_ID,
        secret_key: str = DEFAULT_SECRET_KEY,
        seed: int | None = 0,
        schedule: Schedule | None = None,
        clock: Callable[[], float] | None = None,
        speed: float = 1.0,
        epoch_offset_ms: int = DEFAULT_EPOCH_OFFSET_MS,
        record_requests: bool = True,
        base_url: str = DEFAULT_BASE_URL,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, not {speed!r}")
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.base_url = base_url
        self.speed = speed
        #: Whether to keep every request in ``requests`` (turn off for benchmarks).
        self.record_requests = record_requests
        self.state = MediaXState(seed=seed, schedule=schedule, epoch_offset_ms=epoch_offset_ms)
        self.state.add_account(secret_id, secret_key)
        self.faults = FaultPlan(seed=seed)
        #: The requests received, oldest first, when ``record_requests`` is on.
        self.requests: list[RecordedRequest] = []
        #: How many requests arrived, by action ("" for a body without one).
        self.request_counts: collections.Counter[str] = collections.Counter()
        #: The callbacks sent, in the order they were answered.
        self.callbacks: list[CallbackRecord] = []
        self._clock = clock if clock is not None else _anyio_clock(speed)
        self._last_now = 0.0
        self._request_ids = random.Random(None if seed is None else f"{seed}/request-ids")
        self._runner: CallbackRunner | None = None
        self._transport: FakeTransport | None = None
        self._app: MediaXApp | None = None

    def __repr__(self) -> str:
        return f"<FakeMediaX base_url={self.base_url!r} secret_id={self.secret_id!r}>"

    # -- ways in ---------------------------------------------------------------

    @property
    def transport(self) -> FakeTransport:
        """An ``httpx.AsyncBaseTransport`` that calls the fake directly."""
        if self._transport is None:
            from ._transport import FakeTransport

            self._transport = FakeTransport(self)
        return self._transport

    @property
    def app(self) -> MediaXApp:
        """The fake as an ASGI application."""
        if self._app is None:
            from ._asgi import MediaXApp

            self._app = MediaXApp(self)
        return self._app

    def http_client(self, **kwargs: Any) -> httpx.AsyncClient:
        """Return an ``httpx.AsyncClient`` on ``transport`` with ``base_url`` set."""
        kwargs.setdefault("base_url", self.base_url)
        return httpx.AsyncClient(transport=self.transport, **kwargs)

    def client(self, **kwargs: Any) -> MediaXClient:
        """Return a ``mediax_async.MediaXClient`` connected in-process to this fake.

        Keyword arguments go to ``MediaXClient`` (e.g. ``max_retries``).
        """
        # Imported here: the fake never depends on the client's code to work.
        from .._client import MediaXClient

        kwargs.setdefault("base_url", self.base_url)
        if "http_client" not in kwargs:
            kwargs["http_client"] = self.http_client(base_url=kwargs["base_url"])
        return MediaXClient(self.secret_id, self.secret_key, **kwargs)

    @asynccontextmanager
    async def running(
        self, *, callback_transport: httpx.AsyncBaseTransport | None = None
    ) -> AsyncIterator[FakeMediaX]:
        """Deliver callbacks while the block runs, each when its job ends.

        Callbacks go over real HTTP unless ``callback_transport`` is given, e.g.
        ``httpx.ASGITransport(app=receiver)`` to deliver to an ASGI app in-process.
        Callbacks that fall due while nothing runs wait for the next ``running()``.
        """
        if self._runner is not None:
            raise RuntimeError("this fake is already running")
        client = httpx.AsyncClient(
            transport=callback_transport, timeout=CALLBACK_TIMEOUT, trust_env=False
        )
        async with client, background_tasks(stop=_cancel) as tasks:
            self._runner = CallbackRunner(
                self.state, self._clock, self.speed, client, self.callbacks
            )
            tasks.start_soon(self._runner.run)
            try:
                yield self
            finally:
                self._runner = None

    async def wait_for_callbacks(self, count: int = 1) -> list[CallbackRecord]:
        """Wait, while ``running()``, until ``count`` callbacks in all have been sent.

        Returns the records so far. Handy when time is real (a served fake);
        under a mock clock, sleeping past the jobs' ends is enough.
        """
        if self._runner is None:
            raise RuntimeError("callbacks are only sent inside `async with fake.running()`")
        await self._runner.wait_for_records(count)
        return list(self.callbacks)

    @asynccontextmanager
    async def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        callback_transport: httpx.AsyncBaseTransport | None = None,
    ) -> AsyncIterator[str]:
        """Serve over HTTP with uvicorn (asyncio only) and deliver callbacks; yield the base URL.

        ``port=0`` picks a free port. Needs uvicorn (the ``cli`` or ``test`` extra).
        """
        from ._server import serve_app

        async with (
            self.running(callback_transport=callback_transport),
            serve_app(self.app, host, port) as base_url,
        ):
            yield base_url

    # -- the exchange ----------------------------------------------------------

    async def exchange(self, method: str, path: str, body: bytes) -> Reply:
        """Answer one HTTP request: apply any injected fault, then the action."""
        request_id = random_uuid(self._request_ids)
        endpoint = path.rstrip("/").rpartition("/")[2]
        if endpoint not in _ENDPOINTS:
            return error_reply(request_id, 404, "ResourceNotFound", f"no API at {path}")
        if method != "POST":
            return error_reply(request_id, 405, "UnsupportedOperation", "use POST")
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        action = data.get("action") if isinstance(data, dict) else None
        action_name = action if isinstance(action, str) else ""
        self.request_counts[action_name] += 1
        if self.record_requests:
            recorded = _without_secret_keys(data)
            self.requests.append(RecordedRequest(action_name, path, recorded, self._clock()))

        fault = self.faults.decide(action_name)
        if fault is not None:
            if fault == Fault.DROP:
                return Reply(0, disconnect=Disconnect.BEFORE_PROCESSING)
            if fault == Fault.SLOW:
                await anyio.sleep(self.faults.slow_delay)
            elif fault not in (Fault.MALFORMED_JSON, Fault.ANSWER_LOST):
                return gateway_reply(fault, request_id, self.faults.retry_after)

        reply = self._answer(endpoint, data, action_name, request_id)
        if self._runner is not None:
            self._runner.poke()
        if fault == Fault.MALFORMED_JSON:
            return Reply(200, reply.body[: len(reply.body) // 2], JSON_HEADERS)
        if fault == Fault.ANSWER_LOST:
            return attrs.evolve(reply, disconnect=Disconnect.AFTER_PROCESSING)
        return reply

    def _answer(self, endpoint: str, data: Any, action_name: str, request_id: str) -> Reply:
        now = self._clock()
        self.state.advance(now)
        try:
            if not isinstance(data, dict):
                raise ServiceError(400, "InvalidParameter", "the body must be a JSON object")
            owner = self.state.authenticate(data.get("secretId"), data.get("secretKey"))
            if not action_name:
                raise missing("action is required")
            action = ACTIONS.get(action_name)
            if action is None:
                raise ServiceError(400, "InvalidAction", f"unknown action {action_name!r}")
            if ACTION_PATHS[action_name] != endpoint:
                message = f"{action_name} is served at /{ACTION_PATHS[action_name]}"
                raise ServiceError(404, "ResourceNotFound", message)
            payload = action.handle(self.state, owner, data.get(action.request_key), now)
        except ServiceError as error:
            return error_reply(request_id, error.status, error.code, error.message)
        head = b'{"requestId":"' + request_id.encode() + b'",'
        return Reply(200, head + action.response_key + payload + b"}")

    # -- inspection and control ----------------------------------------------

    def advance(self) -> None:
        """Apply every transition due by the fake's clock (requests do this themselves)."""
        self.state.advance(self._now())

    def _now(self) -> float:
        # Outside an event loop anyio's clock cannot be read: keep the last reading.
        with contextlib.suppress(RuntimeError):
            self._last_now = self._clock()
        return self._last_now

    @property
    def jobs(self) -> list[dict[str, Any]]:
        """Every job as the wire shows it (copies), oldest first, as of the fake's clock."""
        self.advance()
        return [copy.deepcopy(job.wire) for job in self.state.iter_jobs()]

    def job(self, job_id: str) -> dict[str, Any]:
        """Return one job as the wire shows it (a copy); ``KeyError`` if there is none."""
        self.advance()
        return copy.deepcopy(self.state.find_job(job_id).wire)

    def force_state(self, job_id: str, state: State | int) -> None:
        """Move a job to ``state`` now: PROCESSING, or COMPLETED (with results), ERROR, CANCELED.

        Its planned transitions are dropped; a forced COMPLETED or ERROR still calls back.
        """
        self.state.force_state(job_id, state, self._now())
        if self._runner is not None:
            self._runner.poke()

    def add_account(self, secret_id: str, secret_key: str) -> None:
        """Accept another pair of credentials, with its own jobs and models."""
        self.state.add_account(secret_id, secret_key)

    def add_model(self, name: str, *, secret_id: str | None = None) -> None:
        """Give an account (default: the fake's own) a trained singing model."""
        self.state.add_model(secret_id or self.secret_id, name, self._now())

    def models(self, *, secret_id: str | None = None) -> list[dict[str, str]]:
        """Return an account's trained models as ListModels shows them, oldest first."""
        self.advance()
        return self.state.list_models(secret_id or self.secret_id, 0, sys.maxsize)[1]
