"""A fake MediaX service for tests, benchmarks and demos, and its pytest fixtures.

It speaks the wire format (JSON with the vendor's camelCase keys) and shares
no code with the client, so a bug in one cannot hide a bug in the other::

    fake = FakeMediaX(schedule=Schedule.instant())
    async with fake.http_client() as http:          # in-process, through an httpx transport
        ...
    async with fake.running(callback_transport=httpx.ASGITransport(app=receiver)):
        ...                                         # callbacks are delivered meanwhile
    async with fake.serve() as base_url:            # real HTTP on loopback (uvicorn)
        ...
    fake.faults.inject(Fault.RATE_LIMITED, action="GetJob", times=2)

``mediax_async.testing.plugin`` provides the ``mediax_fake`` and
``mediax_client`` pytest fixtures.
"""

from __future__ import annotations

from ._asgi import InjectedDisconnect, MediaXApp
from ._callbacks import CallbackRecord
from ._faults import Fault, FaultPlan
from ._schedule import Duration, FixedDuration, LogNormalDuration, Profile, Schedule
from ._server import run_emulator, serve_app
from ._service import (
    DEFAULT_BASE_URL,
    DEFAULT_SECRET_ID,
    DEFAULT_SECRET_KEY,
    FakeMediaX,
    RecordedRequest,
)
from ._state import MediaXState
from ._transport import FakeTransport

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_SECRET_ID",
    "DEFAULT_SECRET_KEY",
    "CallbackRecord",
    "Duration",
    "FakeMediaX",
    "FakeTransport",
    "Fault",
    "FaultPlan",
    "FixedDuration",
    "InjectedDisconnect",
    "LogNormalDuration",
    "MediaXApp",
    "MediaXState",
    "Profile",
    "RecordedRequest",
    "Schedule",
    "run_emulator",
    "serve_app",
]
