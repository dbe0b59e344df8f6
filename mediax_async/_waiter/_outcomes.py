"""``Outcomes``: what a waiter does when a job settles, and when every wait must end.

A settlement this waiter made is counted, taught to the poll policy, handed
to every wait for the job and to every ``completed()`` reader, and reported
to ``on_settled``, once. A shared store's feed brings the settlements other
processes made, which end this process's waits too (counted there, not here).
The feed also repeats this waiter's own settlements, sometimes before the
store's answer to the write is back: whichever of the two comes first hands a
settlement on, and the other is dropped, so each reaches a reader once.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import anyio

from .._enums import State
from .._exceptions import WaitTimeoutError
from .._models import Job
from .._policies import PollStrategy
from ._health import Health, WaiterStats, describe, logger
from ._interest import Interest
from ._recent import Recent
from ._store import PendingStore, Settle, Settlement

__all__ = ["Outcomes"]

_OWN, _FED = "own", "fed"
_SEEN_SIZE = 100_000
_SEEN_AGE = 600.0


class Outcomes:
    """Settlements, hooks, and the errors that end every wait."""

    def __init__(
        self,
        *,
        interest: Interest,
        stats: WaiterStats,
        policy: PollStrategy,
        health: Health,
        shared: bool,
        on_state_change: Callable[..., Any] | None,
        on_settled: Callable[..., Any] | None,
    ) -> None:
        self._interest = interest
        self._stats = stats
        self._policy = policy
        self._health = health
        self._shared = shared
        self._on_state_change = on_state_change
        self._on_settled = on_settled
        # A shared store: settlements seen once, by which path (_OWN: reported here; _FED: from
        # the feed), so the other path's copy is dropped. Aged out: a job may settle again
        # much later (watched again after its outcome was forgotten).
        self._seen = Recent[str, str](_SEEN_SIZE, _SEEN_AGE)
        self._start_soon: Callable[..., Any] | None = None
        self.fatal: BaseException | None = None
        """What ended every wait for good (rejected credentials), if anything."""
        self.given_up: BaseException | None = None
        """The last error, once polls have failed for ``give_up_after`` seconds."""

    def start(self, start_soon: Callable[..., Any]) -> None:
        """Run async hooks with ``start_soon`` (the waiter's task group)."""
        self._start_soon = start_soon

    @property
    def stop_error(self) -> BaseException | None:
        """The error every new wait ends with at once, if any."""
        return self.fatal or self.given_up

    def state_changed(self, job: Job, old: State | None) -> None:
        """A poll saw ``job`` in a new state."""
        self._interest.saw(job)
        self._call_hook(self._on_state_change, job, old, job.state)

    def report(self, job_id: str, settle: Settle, key: str | None) -> None:
        """A settlement this waiter made: count it, learn from it, hand it to every wait."""
        outcome = settle.job if settle.job is not None else settle.error
        assert outcome is not None  # a Settle has one or the other
        self._count(outcome)
        if not self._shared or self._first_sight(job_id, _OWN):
            self._interest.deliver(job_id, outcome)
            self._interest.broadcast(Settlement(job_id, settle.job, settle.error, key))
        self._call_hook(self._on_settled, job_id, outcome)

    async def follow(self, store: PendingStore) -> None:
        """A shared store: jobs other processes settled end the waits of this one too."""
        cursor = None
        while True:
            entries, cursor = await store.follow_results(cursor, 256, 5.0)
            for entry in entries:
                settlement = entry.settlement
                if self._first_sight(settlement.job_id, _FED):
                    self._interest.deliver(settlement.job_id, settlement.outcome)
                    self._interest.broadcast(settlement)

    def _first_sight(self, job_id: str, path: str) -> bool:
        """Whether this is the first sight of ``job_id``'s settlement (then remembered)."""
        now = anyio.current_time()
        other = self._seen.pop(job_id, now)
        if other is not None and other != path:
            return False  # the other path handed it on already
        self._seen.put(job_id, path, now)
        return True

    def fail_everything(self, error: BaseException) -> None:
        """Rejected credentials: every wait ends with ``error``, now and from now on."""
        if self.fatal is None:
            self.fatal = error
            logger.error("credentials rejected; ending every wait: %s", error)
        self._interest.deliver_to_all(error)
        self._interest.fail_readers(error)

    def give_up(self, error: BaseException) -> None:
        """Polls have failed for too long: every wait ends with the last ``error``."""
        self.given_up = error
        logger.error(
            "no poll has succeeded for %g s; ending every wait: %s",
            self._health.give_up_after,
            error,
        )
        self._interest.deliver_to_all(error)
        self._interest.fail_readers(error)

    def answered(self) -> None:
        """A poll got an answer: waits may go on again after a give-up."""
        self.given_up = None

    def timeout_error(self, job_ids: list[str], seen: Job | None) -> WaitTimeoutError:
        """The error of a wait for ``job_ids`` that ran out of time."""
        if len(job_ids) == 1:
            message = f"job {job_ids[0]} did not end in time"
        else:
            shown = ", ".join(job_ids[:3]) + (", ..." if len(job_ids) > 3 else "")
            message = f"{len(job_ids)} jobs did not end in time ({shown})"
        health = self._health
        last_error = health.last_error if health.failures else None
        if last_error is not None:
            message += f"; the last {health.failures} polls failed: {describe(last_error)}"
        single = job_ids[0] if len(job_ids) == 1 else None
        return WaitTimeoutError(message, job=seen, job_id=single, last_error=last_error)

    def _count(self, outcome: Job | BaseException) -> None:
        stats = self._stats
        if not isinstance(outcome, Job):
            stats.errors += 1
            return
        stats.settled += 1
        self._policy.observe(outcome)
        if outcome.state == State.COMPLETED:
            stats.completed += 1
        elif outcome.state == State.ERROR:
            stats.failed += 1
        else:
            stats.canceled += 1

    def _call_hook(self, hook: Callable[..., Any] | None, *args: Any) -> None:
        if hook is None:
            return
        try:
            result = hook(*args)
        except Exception:
            self._stats.hook_errors += 1
            logger.exception("a waiter hook raised; the waiter goes on")
            return
        if inspect.isawaitable(result) and self._start_soon is not None:
            self._start_soon(self._await_hook, result)

    async def _await_hook(self, result: Any) -> None:
        try:
            await result
        except Exception:
            self._stats.hook_errors += 1
            logger.exception("a waiter hook raised; the waiter goes on")
