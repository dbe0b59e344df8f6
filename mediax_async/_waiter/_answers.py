"""What a poll's answer becomes: the update for the store, and what to report once it is accepted.

Pure: no I/O, no clock. ``Poller`` sends the updates and reports what the
store accepted.
"""

from __future__ import annotations

import random
from typing import Any

from .._enums import State
from .._models import Job
from .._policies import DelayFunction
from ._store import Claimed, Reschedule, Settle, Update
from ._tags import batch_tag

__all__ = ["Answers", "Written", "again"]

_TERMINAL = frozenset(state for state in State if state.is_terminal)


class Written:
    """What a waiter does once the store accepted an update: report a change or a settlement."""

    __slots__ = ("changed", "key", "old", "settle")

    def __init__(
        self, settle: Settle | None, changed: Job | None, old: Any, key: str | None
    ) -> None:
        self.settle = settle
        self.changed = changed
        self.old = old
        self.key = key


def again(
    claimed: Claimed, delay: float, *, alone: bool = False, failures: int | None = None
) -> Reschedule:
    """Poll ``claimed`` again after ``delay``, as it was, or with a new count of ``failures``.

    ``alone``: by id next time, not through its batch tag.
    """
    return Reschedule(
        claimed.job_id,
        claimed.fence,
        delay,
        claimed.state,
        claimed.polls,
        claimed.failures if failures is None else failures,
        alone=alone,
    )


class Answers:
    """Turns answers about claimed jobs into updates, with the waiter's policy and randomness."""

    def __init__(self, next_delay: DelayFunction, rng: random.Random, batch_polling: bool) -> None:
        self._next_delay = next_delay
        self._random = rng
        self._batch_polling = batch_polling

    def observed(self, claimed: Claimed, job: Job) -> tuple[Update, Written | None]:
        """The update for an answer about ``claimed``: settle it, or poll again later."""
        state = job.state
        changed = job if state != claimed.state else None
        if state in _TERMINAL:
            settle = Settle(claimed.job_id, claimed.fence, job)
            return settle, Written(settle, changed, claimed.state, claimed.key)
        polls = claimed.polls + 1
        kind = claimed.kind
        if kind is None:
            kind = job.kind
        tag = claimed.tag
        if tag is None and job.custom_id is not None:
            tag = batch_tag(job.custom_id, self._batch_polling)
        delay = self._next_delay(polls, state, claimed.elapsed, kind, self._random.random())
        update = Reschedule(claimed.job_id, claimed.fence, delay, state, polls, 0, job, kind, tag)
        return update, (Written(None, changed, claimed.state, claimed.key) if changed else None)

    @staticmethod
    def ended(update: Update, claimed: Claimed) -> Written | None:
        """What to report for a failed poll's update: its settlement, if it ends the wait."""
        if isinstance(update, Settle):
            return Written(update, None, None, claimed.key)
        return None
