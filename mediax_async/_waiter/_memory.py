"""``MemoryStore``: a waiter's state in this process (the default store).

The glue over three pure parts: ``WatchBook`` (watched jobs, due times,
tags, recent outcomes, early news), ``SubmissionBook`` (submissions) and
``ResultLog`` (the results stream). Nothing here suspends but the blocking
reads of the results stream; the clock is anyio's, read cheaply
(``fast_clock``; trio's MockClock drives it in tests), unless one is given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import anyio

from .._clock import fast_clock
from ._book import KEEP_CREATED, SubmissionBook
from ._results_log import ResultLog
from ._snapshot import dump_state, load_state
from ._store import (
    ClaimBatch,
    News,
    PendingJob,
    ResultEntry,
    Settlement,
    Submission,
    SubmissionTicket,
    Update,
    Watch,
)
from ._watchbook import RECENT_OUTCOMES, WatchBook

__all__ = ["MemoryStore"]


class MemoryStore:
    """The waiter's state in this process: fast, and gone with the process.

    ``dump()`` gives it as JSON-able data and ``MemoryStore.load(data)`` takes
    it up again, submissions still in flight included: a waiter on the
    loaded store looks those up before sending anything again.
    """

    shared = False
    """Only this process uses it."""
    write_batch = 1
    """Nothing to gain from gathering updates: each is applied at once."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] | None = None,
        recent_outcomes: int = RECENT_OUTCOMES,
        claim_idle: float = 60.0,
        keep_created: int = KEEP_CREATED,
    ) -> None:
        self._clock = clock or self._first_clock
        self._watches = WatchBook(self._settled, recent_outcomes)
        self._book = SubmissionBook(keep_created)
        self._results = ResultLog(claim_idle=claim_idle)
        self._appended: anyio.Event | None = None

    def __repr__(self) -> str:
        return f"MemoryStore(watched={len(self._watches)}, due={self._watches.due})"

    def _first_clock(self) -> float:
        # Resolved on the first read, inside the event loop that uses the store.
        clock = fast_clock()
        now = clock()  # outside an event loop this raises, and nothing is kept
        self._clock = clock
        return now

    def _settled(self, settlement: Settlement) -> None:
        if settlement.key is not None:
            self._book.settled(settlement.key)
        self._results.append(settlement)
        if self._appended is not None:
            self._appended.set()
            self._appended = None

    # -- watched jobs --------------------------------------------------------------

    async def watch(self, watches: Sequence[Watch]) -> list[Settlement | News | None]:
        """Start watching jobs; see ``PendingStore.watch``."""
        now = self._clock()
        return [self._watches.watch(watch, now) for watch in watches]

    async def claim(self, limit: int, lease: float) -> ClaimBatch:
        """Take up to ``limit`` due jobs; see ``PendingStore.claim``."""
        return self._watches.claim(limit, lease, self._clock())

    async def apply(self, updates: Sequence[Update]) -> list[bool]:
        """Apply the outcome of claims; see ``PendingStore.apply``."""
        now = self._clock()
        return [self._watches.apply(update, now) for update in updates]

    async def unwatch(self, job_ids: Sequence[str]) -> None:
        """Stop polling jobs nobody waits for; see ``PendingStore.unwatch``."""
        self._watches.unwatch(job_ids)

    async def notify(self, news: Sequence[News]) -> list[bool]:
        """Apply news; see ``PendingStore.notify``."""
        now = self._clock()
        return [self._watches.notify(item, now) for item in news]

    async def outcomes(self, job_ids: Sequence[str]) -> dict[str, Settlement]:
        """Recent outcomes; see ``PendingStore.outcomes``."""
        now = self._clock()
        found = {}
        for job_id in job_ids:
            settled = self._watches.outcome(job_id, now)
            if settled is not None:
                found[job_id] = settled
        return found

    async def pending(self) -> list[PendingJob]:
        """Every watched job not yet settled."""
        return self._watches.pending()

    async def pause(self, seconds: float) -> None:
        """Pause every claim for ``seconds``."""
        self._watches.pause(seconds, self._clock())

    # -- submissions -------------------------------------------------------------------

    async def begin_submission(self, submission: Submission, lease: float) -> SubmissionTicket:
        """Record a submission before sending; see ``PendingStore.begin_submission``."""
        return self._book.begin(submission, lease, self._clock())

    async def finish_submission(self, key: str, fence: int, watch: Watch) -> bool:
        """Attribute the job and watch it; see ``PendingStore.finish_submission``."""
        now = self._clock()
        if not self._book.finish(key, fence, watch.job_id, now):
            return False
        if isinstance(self._watches.watch(watch._replace(key=key), now), Settlement):
            self._book.settled(key)  # its job had already settled
        return True

    async def release_submission(self, key: str, fence: int, retry_in: float) -> bool:
        """Leave a submission unresolved for now; see ``PendingStore.release_submission``."""
        return self._book.release(key, fence, retry_in, self._clock())

    async def drop_submission(self, key: str, fence: int) -> bool:
        """Forget a submission that created nothing; see ``PendingStore.drop_submission``."""
        return self._book.drop(key, fence, self._clock())

    async def claim_submissions(self, limit: int, lease: float) -> list[SubmissionTicket]:
        """Take over orphaned submissions; see ``PendingStore.claim_submissions``."""
        return self._book.claim_orphans(limit, lease, self._clock())

    async def attributed(self, custom_id: str) -> set[str]:
        """Job ids attributed to submissions of ``custom_id``."""
        return self._book.attributed(custom_id)

    async def submissions(self) -> dict[str, str | None]:
        """Every recorded submission and its job id."""
        return self._book.job_ids()

    # -- results -----------------------------------------------------------------------

    async def read_results(
        self, group: str, consumer: str, count: int, block: float
    ) -> list[ResultEntry]:
        """Settlements for a group's consumer; see ``PendingStore.read_results``."""
        log = self._results
        with anyio.move_on_after(block):
            while True:
                found = log.read(group, consumer, count, self._clock())
                if found:
                    return found
                wait = log.next_redelivery(group, self._clock())
                with anyio.move_on_after(wait):
                    await self._appended_event().wait()
        return []

    async def follow_results(
        self, after: str | None, count: int, block: float
    ) -> tuple[list[ResultEntry], str]:
        """Settlements after a cursor; see ``PendingStore.follow_results``."""
        log = self._results
        position = log.end if after is None else int(after)
        with anyio.move_on_after(block):
            while True:
                found = log.follow(position, count)
                if found:
                    return found, found[-1].entry_id
                await self._appended_event().wait()
        return [], str(position)

    async def ack_results(self, group: str, entry_ids: Sequence[str]) -> None:
        """Acknowledge a group's entries."""
        self._results.ack(group, list(entry_ids))

    def _appended_event(self) -> anyio.Event:
        if self._appended is None:
            self._appended = anyio.Event()
        return self._appended

    async def aclose(self) -> None:
        """Nothing to release: the state stays readable (``pending``, ``dump``)."""

    # -- saving and loading ------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        """The watched jobs and unresolved submissions, as JSON-able data for ``load``."""
        return dump_state(self._watches.pending(), self._book.unresolved(), self._book.created())

    @classmethod
    def load(cls, data: dict[str, Any], **options: Any) -> MemoryStore:
        """A store holding what ``dump()`` gave: jobs due at once, submissions to look up."""
        store = cls(**options)
        pending, unresolved, created = load_state(data)
        now = store._clock()
        for job in pending:
            store._watches.restore(job, now)
        running = {job.job_id for job in pending}
        for key, custom_id, job_id in created:
            store._book.restore_created(key, custom_id, job_id, settled=job_id not in running)
        for submission in unresolved:
            store._book.restore_unresolved(submission)
        return store
