"""Callback delivery: POST each job that ends COMPLETED or ERROR to its callback URL.

The state machine decides when a callback is due; ``CallbackRunner`` sleeps on
anyio's clock until then (so trio's MockClock runs it in virtual time), applies
the due transitions and sends what they produced.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import anyio
import attrs
import httpx

from .._enums import State
from ._state import MediaXState, PendingCallback

__all__ = ["CallbackRecord", "CallbackRunner"]


@attrs.frozen
class CallbackRecord:
    """One callback the fake sent, and how it went."""

    url: str
    job_id: str
    state: State
    status_code: int | None
    """The receiver's HTTP status, or None when the delivery failed."""
    error: str | None
    """Why the delivery failed (exception type and message), or None."""
    ended_at: float
    """When the job ended, on the fake's clock."""
    sent_at: float
    """When the callback was sent, on the fake's clock."""


class CallbackRunner:
    """Delivers callbacks as they fall due; ``poke`` when requests may have changed them.

    ``speed`` is fake seconds per second of anyio's clock: a callback due in
    ``d`` fake seconds is waited for ``d / speed`` seconds.
    """

    def __init__(
        self,
        state: MediaXState,
        clock: Callable[[], float],
        speed: float,
        client: httpx.AsyncClient,
        records: list[CallbackRecord],
        *,
        max_concurrency: int = 32,
    ) -> None:
        self._state = state
        self._clock = clock
        self._speed = speed
        self._client = client
        self._records = records
        self._limiter = anyio.CapacityLimiter(max_concurrency)
        self._wake = anyio.Event()
        self._seen_revision = -1
        self._recorded = anyio.Event()

    def poke(self) -> None:
        """Wake the runner if the callback schedule changed since it last looked."""
        if self._state.callback_revision != self._seen_revision:
            self._wake.set()

    async def wait_for_records(self, count: int) -> None:
        """Wait until at least ``count`` callbacks have been recorded."""
        while len(self._records) < count:
            await self._recorded.wait()

    async def run(self) -> None:
        """Deliver callbacks until cancelled."""
        reached = -math.inf  # a due time the runner slept until, in case the clock lags it
        async with anyio.create_task_group() as deliveries:
            while True:
                self._seen_revision = self._state.callback_revision
                self._wake = anyio.Event()
                now = max(self._clock(), reached)
                self._state.advance(now)
                for pending in self._state.take_callbacks():
                    deliveries.start_soon(self._deliver, pending)
                due = self._state.next_callback_due()
                if due is None:
                    await self._wake.wait()
                    continue
                with anyio.move_on_after(max(due - now, 0) / self._speed) as timer:
                    await self._wake.wait()
                if timer.cancelled_caught:
                    reached = due

    async def _deliver(self, pending: PendingCallback) -> None:
        async with self._limiter:
            sent_at = self._clock()
            status: int | None = None
            error: str | None = None
            try:
                response = await self._client.post(
                    pending.url, content=pending.body, headers={"content-type": "application/json"}
                )
                status = response.status_code
            except Exception as exc:  # a receiver's failure is recorded, never raised
                error = f"{type(exc).__name__}: {exc}"
            record = CallbackRecord(
                pending.url, pending.job_id, pending.state, status, error, pending.due, sent_at
            )
            self._records.append(record)
            self._recorded.set()
            self._recorded = anyio.Event()
