"""``WatchBook``: the watched jobs of a ``MemoryStore``, their due times and tags. Pure.

Watched jobs sit in one ``DueQueue`` by next poll time. A claim pops due
jobs and notes each lease in a queue of its own, in the order leases end; a
lease still held when it ends puts its job back in the ``DueQueue``, so a
job whose worker was cancelled mid-poll comes due again by itself. (Leases
all last about as long, so that queue is a deque, cheaper than a second heap
entry per poll.) Every time is an argument.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable, Sequence
from typing import Any

from ._queue import DueQueue
from ._recent import Recent
from ._store import (
    Claim,
    ClaimBatch,
    Claimed,
    News,
    PendingJob,
    Reschedule,
    Settle,
    Settlement,
    Update,
    Watch,
)
from ._tags import list_is_worth_it

__all__ = ["EARLY_NEWS", "EARLY_NEWS_AGE", "RECENT_OUTCOMES", "WatchBook"]

RECENT_OUTCOMES = 10_000
"""Outcomes kept after a job settles, so a wait that comes late still gets it at once."""
EARLY_NEWS = 10_000
EARLY_NEWS_AGE = 900.0
"""News for jobs not watched yet is kept for the last 10,000 ids, 15 minutes each."""


class _Record:
    """One watched job, kept small (100,000 of these must fit in well under 100 MB)."""

    __slots__ = (
        "failures",
        "fence",
        "job",
        "job_id",
        "key",
        "kind",
        "lease_until",
        "notified",
        "parked",
        "polls",
        "seq",
        "started",
        "state",
        "tag",
    )

    def __init__(self, watch: Watch, now: float) -> None:
        self.seq = 0
        self.job_id = watch.job_id
        self.tag = watch.tag
        self.kind = watch.kind
        self.state = watch.state
        self.key = watch.key
        self.job = watch.job
        self.polls = 0
        self.failures = 0
        self.started = now
        self.fence = 0
        self.lease_until = -math.inf
        self.notified = False
        self.parked = False


class _Tag:
    __slots__ = ("fence", "lease_until", "listed", "members")

    def __init__(self) -> None:
        self.members: dict[str, _Record] = {}
        self.listed = 0
        self.fence = 0
        self.lease_until = -math.inf


class WatchBook:
    """Watched jobs by id, due time and tag; recent outcomes; early news; the pause.

    ``on_settled`` is told of every settlement, once.
    """

    def __init__(
        self, on_settled: Callable[[Settlement], None], recent_outcomes: int = RECENT_OUTCOMES
    ) -> None:
        self._on_settled = on_settled
        self._records: dict[str, _Record] = {}
        self._queue: DueQueue[_Record] = DueQueue()
        self._leases: collections.deque[tuple[float, int, _Record]] = collections.deque()
        self._tags: dict[str, _Tag] = {}
        self._outcomes: Recent[str, Settlement] = Recent(recent_outcomes)
        self._news: Recent[str, News] = Recent(EARLY_NEWS, EARLY_NEWS_AGE)
        self._paused_until = -math.inf

    def __len__(self) -> int:
        return len(self._records)

    @property
    def due(self) -> int:
        """Jobs queued for a poll (the others are being polled, or parked)."""
        return len(self._queue)

    def restore(self, job: PendingJob, now: float) -> None:
        """Take up a job from saved state: due at once, with its poll count."""
        watch = Watch(job.job_id, 0.0, job.tag, job.kind, job.state, job.key, job.job)
        self.watch(watch, now)
        self._records[job.job_id].polls = job.polls

    def watch(self, watch: Watch, now: float) -> Settlement | News | None:
        """Start watching a job; see ``PendingStore.watch``."""
        record = self._records.get(watch.job_id)
        if record is not None:
            if record.job is None:
                record.job = watch.job
            if record.parked:
                record.parked = False
                self._tag_add(record)
                self._queue.schedule(record, now if record.notified else now + watch.delay)
            return None
        settled = self._outcomes.get(watch.job_id, now)
        if settled is not None:
            return settled
        record = _Record(watch, now)
        self._records[record.job_id] = record
        self._tag_add(record)
        news = self._news.pop(record.job_id, now)
        record.notified = news is not None and not news.settles
        self._queue.schedule(record, now if record.notified else now + watch.delay)
        return news

    def claim(self, limit: int, lease: float, now: float) -> ClaimBatch:
        """Take up to ``limit`` due jobs, leased for ``lease`` s; see ``PendingStore.claim``."""
        self._end_leases(now)
        if self._paused_until > now:
            return ClaimBatch((), self._next_due(now), self._paused_until - now)
        claims: list[Claim] = []
        queue = self._queue
        while len(claims) < limit:
            record = queue.pop_due(now)
            if record is None:
                break
            tag = self._tags.get(record.tag) if record.tag is not None else None
            if (
                record.notified
                or tag is None
                or not list_is_worth_it(len(tag.members), tag.listed)
                # Being listed without it (watched since): that answer does not reschedule
                # it, so ask by id; it joins the tag's next round.
                or tag.lease_until > now
            ):
                claims.append(Claim((self._lease(record, now, lease),)))
            else:
                tag.fence += 1
                tag.lease_until = now + lease
                members = [
                    self._lease(member, now, lease)
                    for member in tag.members.values()
                    if member is record or member.lease_until <= now
                ]
                claims.append(Claim(members, record.tag, tag.fence))
        return ClaimBatch(claims, self._next_due(now))

    def _lease(self, record: _Record, now: float, lease: float) -> Claimed:
        record.fence += 1
        record.lease_until = until = now + lease
        notified, record.notified = record.notified, False
        leases = self._leases
        if leases and until < leases[-1][0]:
            self._queue.schedule(record, until)  # a shorter lease than the last: out of order
        else:
            if record.seq:
                self._queue.remove(record)  # a tag's member queued for later
            leases.append((until, record.fence, record))
        return Claimed(
            record.job_id,
            record.fence,
            record.polls,
            record.failures,
            record.state,
            record.kind,
            record.tag,
            now - record.started,
            notified,
            record.key,
        )

    def _end_leases(self, now: float) -> None:
        """Jobs whose lease ended unanswered come due (at the lease's end)."""
        leases = self._leases
        while leases:
            until, fence, record = leases[0]
            if record.fence == fence and record.lease_until == until:  # held, unanswered
                if until > now:
                    return
                if not record.parked and record.job_id in self._records:
                    self._queue.schedule(record, until)
            leases.popleft()

    def _next_due(self, now: float) -> float | None:
        due = self._queue.next_due()
        leases = self._leases
        while leases:  # the first lease still held may end sooner
            until, fence, record = leases[0]
            if record.fence == fence and record.lease_until == until:
                due = min(due, until)
                break
            leases.popleft()
        return None if due == math.inf else max(0.0, due - now)

    def apply(self, update: Update, now: float) -> bool:
        """Apply one outcome of a claim; whether it was accepted (``PendingStore.apply``)."""
        if isinstance(update, Reschedule):
            record = self._records.get(update.job_id)
            if record is None or record.fence != update.fence or now > record.lease_until:
                return False  # not held (any more)
            record.state = update.state
            record.polls = update.polls
            record.failures = update.failures
            if record.job is None:
                record.job = update.job
            if record.kind is None:
                record.kind = update.kind
            if record.tag is None and update.tag is not None:
                record.tag = update.tag
                self._tag_add(record)
            record.lease_until = -math.inf
            if record.notified:
                self._queue.schedule(record, now)  # news came while it was being polled
            else:
                record.notified = update.alone
                self._queue.schedule(record, now + update.delay)
            return True
        if isinstance(update, Settle):
            if update.fence is None:
                record = self._records.get(update.job_id)
                if record is None:
                    if self._outcomes.get(update.job_id, now) is not None:
                        return False  # settled already: once only
                    self._record_outcome(Settlement(update.job_id, update.job, update.error), now)
                    return True
            else:
                record = self._held(update.job_id, update.fence, now)
                if record is None:
                    return False
            self._settle(record, update.job, update.error, now)
            return True
        tag = self._tags.get(update.tag)
        if tag is None or tag.fence != update.fence:
            return False
        tag.listed = update.listed
        tag.lease_until = -math.inf
        return True

    def _held(self, job_id: str, fence: int, now: float) -> _Record | None:
        record = self._records.get(job_id)
        if record is None or record.fence != fence or now > record.lease_until:
            return None
        return record

    def _settle(
        self, record: _Record, job: Any, error: BaseException | None, now: float
    ) -> Settlement:
        del self._records[record.job_id]
        record.lease_until = -math.inf
        self._queue.remove(record)
        self._tag_remove(record)
        settlement = Settlement(record.job_id, job, error, record.key)
        self._record_outcome(settlement, now)
        return settlement

    def _record_outcome(self, settlement: Settlement, now: float) -> None:
        self._outcomes.put(settlement.job_id, settlement, now)
        self._on_settled(settlement)

    def _tag_add(self, record: _Record) -> None:
        if record.tag is not None:
            tag = self._tags.get(record.tag)
            if tag is None:
                tag = self._tags[record.tag] = _Tag()
            tag.members[record.job_id] = record

    def _tag_remove(self, record: _Record) -> None:
        if record.tag is not None:
            tag = self._tags.get(record.tag)
            if tag is not None:
                tag.members.pop(record.job_id, None)
                if not tag.members:
                    del self._tags[record.tag]

    def unwatch(self, job_ids: Sequence[str]) -> None:
        """Stop polling jobs nobody waits for; see ``PendingStore.unwatch``."""
        for job_id in job_ids:
            record = self._records.get(job_id)
            if record is not None and not record.parked:
                record.parked = True
                self._queue.remove(record)
                self._tag_remove(record)

    def notify(self, news: News, now: float) -> bool:
        """Apply news; whether its job is watched (``PendingStore.notify``)."""
        record = self._records.get(news.job_id)
        if record is None:
            if self._outcomes.get(news.job_id, now) is None:
                self._news.put(news.job_id, news, now)
            return False
        if news.settles:
            return True
        record.notified = True
        if not record.parked and record.lease_until <= now:
            self._queue.schedule(record, now)
        # Being polled: the answer may predate the news, so it is polled again at once.
        return True

    def outcome(self, job_id: str, now: float) -> Settlement | None:
        """The recent outcome of ``job_id``, if it settled."""
        return self._outcomes.get(job_id, now)

    def pending(self) -> list[PendingJob]:
        """Every watched job not yet settled."""
        return [
            PendingJob(r.job_id, r.tag, r.kind, r.state, r.polls, r.key, r.job, not r.parked)
            for r in self._records.values()
        ]

    def pause(self, seconds: float, now: float) -> None:
        """Pause every claim for ``seconds``."""
        self._paused_until = max(self._paused_until, now + seconds)
