"""``SubmissionBook``: submissions recorded before sending, leased, attributed once. Pure.

Each submission has a unique key; several may share a custom id (a batch
tag). A sender holds a lease on its submission; when the lease runs out
before the job is known (its process died, or the answer was lost), anyone
may take the submission over and must look its job up before sending again.
A job id is attributed to one submission of a custom id only.
"""

from __future__ import annotations

import collections
import math
from typing import Any

from ._queue import DueQueue
from ._store import Submission, SubmissionTicket, TicketStatus

__all__ = ["KEEP_CREATED", "SubmissionBook"]

KEEP_CREATED = 100_000
"""Created submissions kept once their job settled (a submission whose job runs is always kept)."""


class _Intent:
    __slots__ = ("attempts", "custom_id", "fence", "job_id", "key", "lease_until", "request", "seq")

    def __init__(self, submission: Submission) -> None:
        self.seq = 0
        self.key = submission.key
        self.custom_id = submission.custom_id
        self.request: Any = submission.request
        self.job_id: str | None = None
        self.fence = 0
        self.lease_until = 0.0
        self.attempts = 0

    def submission(self) -> Submission:
        return Submission(self.key, self.custom_id, self.request or {})


class SubmissionBook:
    """Every submission not yet created or whose job runs, and the last ``keep_created`` settled."""

    def __init__(self, keep_created: int = KEEP_CREATED) -> None:
        self._intents: dict[str, _Intent] = {}
        self._orphans: DueQueue[_Intent] = DueQueue()  # unresolved, by lease end
        self._created: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._attributed: dict[str, set[str]] = {}
        self._keep_created = keep_created

    def begin(self, submission: Submission, lease: float, now: float) -> SubmissionTicket:
        """Record ``submission`` (or find it again): send, look up, already created, or busy."""
        intent = self._intents.get(submission.key)
        if intent is None:
            intent = _Intent(submission)
            self._intents[intent.key] = intent
            return self._lease(intent, lease, now, TicketStatus.SEND)
        if intent.job_id is not None:
            return SubmissionTicket(intent.submission(), TicketStatus.CREATED, 0, intent.job_id)
        if intent.lease_until > now:
            return SubmissionTicket(
                intent.submission(), TicketStatus.BUSY, 0, None, intent.attempts
            )
        return self._lease(intent, lease, now, TicketStatus.RECONCILE)

    def claim_orphans(self, limit: int, lease: float, now: float) -> list[SubmissionTicket]:
        """Take over up to ``limit`` unresolved submissions whose lease ran out."""
        tickets: list[SubmissionTicket] = []
        while len(tickets) < limit:
            intent = self._orphans.pop_due(now)
            if intent is None:
                break
            tickets.append(self._lease(intent, lease, now, TicketStatus.RECONCILE))
        return tickets

    def finish(self, key: str, fence: int, job_id: str, now: float) -> bool:
        """Attribute ``job_id`` to submission ``key``; refused on a stale fence or a taken id."""
        intent = self._held(key, fence, now)
        if intent is None:
            return False
        taken = self._attributed.setdefault(intent.custom_id, set())
        if job_id in taken:
            return False
        taken.add(job_id)
        intent.job_id = job_id
        intent.request = None  # not needed once created
        self._orphans.remove(intent)
        return True

    def settled(self, key: str) -> None:
        """Submission ``key``'s job settled: from now on it counts among the ``keep_created``.

        Until then it is kept whatever the count: forgotten while its job runs,
        it would be sent again by whoever begins it next (a second job).
        """
        intent = self._intents.get(key)
        if intent is None or intent.job_id is None:
            return
        self._created[key] = None
        self._created.move_to_end(key)
        while len(self._created) > self._keep_created:
            old, _ = self._created.popitem(last=False)
            self._forget(old)

    def release(self, key: str, fence: int, retry_in: float, now: float) -> bool:
        """Leave submission ``key`` unresolved; anyone may take it up after ``retry_in``."""
        intent = self._held(key, fence, now)
        if intent is None:
            return False
        intent.lease_until = now + retry_in
        self._orphans.schedule(intent, intent.lease_until)
        return True

    def drop(self, key: str, fence: int, now: float) -> bool:
        """Forget submission ``key``: it was refused and created nothing."""
        if self._held(key, fence, now) is None:
            return False
        self._forget(key)
        return True

    def attributed(self, custom_id: str) -> set[str]:
        """Job ids attributed to submissions of ``custom_id``."""
        return set(self._attributed.get(custom_id, ()))

    def job_ids(self) -> dict[str, str | None]:
        """Every submission's key and job id (None: not created yet)."""
        return {key: intent.job_id for key, intent in self._intents.items()}

    def created(self) -> list[tuple[str, str, str]]:
        """``(key, custom_id, job_id)`` of every submission whose job is known."""
        return [
            (intent.key, intent.custom_id, intent.job_id)
            for intent in self._intents.values()
            if intent.job_id is not None
        ]

    def restore_created(self, key: str, custom_id: str, job_id: str, *, settled: bool) -> None:
        """Take up a created submission from saved state (``settled``: its job has ended)."""
        intent = _Intent(Submission(key, custom_id, {}))
        intent.job_id = job_id
        intent.request = None
        self._intents[key] = intent
        self._attributed.setdefault(custom_id, set()).add(job_id)
        if settled:
            self.settled(key)

    def restore_unresolved(self, submission: Submission) -> None:
        """Take up an unresolved submission from saved state: an orphan, to look up first."""
        intent = _Intent(submission)
        intent.attempts = 1  # it was sent, or may have been
        self._intents[intent.key] = intent
        self._orphans.schedule(intent, -math.inf)

    def unresolved(self) -> list[Submission]:
        """The submissions whose job is not known yet."""
        return [i.submission() for i in self._intents.values() if i.job_id is None]

    def _held(self, key: str, fence: int, now: float) -> _Intent | None:
        intent = self._intents.get(key)
        if intent is None or intent.job_id is not None or intent.fence != fence:
            return None
        return intent if now <= intent.lease_until else None

    def _lease(self, intent: _Intent, lease: float, now: float, status: str) -> SubmissionTicket:
        attempts = intent.attempts
        intent.attempts += 1
        intent.fence += 1
        intent.lease_until = now + lease
        self._orphans.schedule(intent, intent.lease_until)
        return SubmissionTicket(intent.submission(), status, intent.fence, None, attempts)

    def _forget(self, key: str) -> None:
        intent = self._intents.pop(key, None)
        if intent is None:
            return
        self._orphans.remove(intent)
        if intent.job_id is not None:
            taken = self._attributed.get(intent.custom_id)
            if taken is not None:
                taken.discard(intent.job_id)
                if not taken:
                    del self._attributed[intent.custom_id]
