"""``PendingStore``: everything a ``JobWaiter`` knows, behind one protocol.

A waiter keeps no state of its own beyond who is waiting in this process. The
store holds which jobs are watched and when each is next polled, which share
a batch tag, which are still being submitted, early news, the shared pause
after a 429, and what has settled (recent outcomes and a results stream).

Every operation is batched (many jobs per call) and every claim is a lease:
claiming pushes a job's due time forward by the lease, so a job whose worker
died simply comes due again, and each claim carries a *fence* that the
store checks on the write that follows: a worker whose lease ran out (or
whose job was claimed again since) has its write refused. Times are always
relative (seconds from now): the store keeps its own clock, so processes on
different machines never compare theirs.

``MemoryStore`` is the default (one process); ``RedisStore`` (extra
``redis``) shares one set of pending jobs between processes. Any store passes
the same protocol tests (``tests/store_contract.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .._enums import State
    from .._models import Job

__all__ = [
    "Claim",
    "ClaimBatch",
    "Claimed",
    "News",
    "PendingJob",
    "PendingStore",
    "Reschedule",
    "ResultEntry",
    "Settle",
    "Settlement",
    "Submission",
    "SubmissionTicket",
    "TagDone",
    "TicketStatus",
    "Update",
    "Watch",
]


# -- what goes in --------------------------------------------------------------------


class Watch(NamedTuple):
    """A job to start watching: first poll after ``delay`` seconds."""

    job_id: str
    delay: float
    tag: str | None = None
    """The batch tag (a custom id several watched jobs share), or None."""
    kind: str | None = None
    """The job's capability (its wire key), for the poll policy."""
    state: State | None = None
    """The state last seen (None: unknown, as for a bare id)."""
    key: str | None = None
    """The submission key, when the job was submitted through a waiter."""
    job: Job | None = None
    """The job as last seen; a store may keep only the fields above."""


class News(NamedTuple):
    """News of a job from a callback (or ``notify``).

    Untrusted news only makes the job due at once; ``trusted`` news of a
    terminal ``job`` settles it. News of a job not watched yet is kept for a
    while and applied when the job is watched.
    """

    job_id: str
    job: Job | None = None
    trusted: bool = False

    @property
    def settles(self) -> bool:
        """Whether this news is enough to settle its job (trusted, and the job ended).

        A store leaves such a job's due time as it is: the caller settles it
        with ``apply``, and nobody polls it meanwhile.
        """
        return self.trusted and self.job is not None and self.job.state.is_terminal


class Reschedule(NamedTuple):
    """A claimed job polled and still running: poll it again after ``delay`` seconds."""

    job_id: str
    fence: int
    delay: float
    state: State | None
    polls: int
    failures: int
    job: Job | None = None
    """The job as just seen (a store may keep only its state)."""
    kind: str | None = None
    """The job's kind, once an answer told it (a job watched by bare id had none)."""
    tag: str | None = None
    """The job's batch tag, once an answer told it."""
    alone: bool = False
    """Ask for this job by id next time, not through its tag (ListJobs left it out)."""


class Settle(NamedTuple):
    """A job's wait ends: with its terminal ``job``, or with ``error``.

    ``fence`` is the claim's; None for a settlement that follows no claim (a
    job handed in already terminal, trusted news, rejected credentials).
    """

    job_id: str
    fence: int | None
    job: Job | None = None
    error: BaseException | None = None


class TagDone(NamedTuple):
    """A batch tag's ListJobs is over: release its lease; ``listed`` jobs came back."""

    tag: str
    fence: int
    listed: int


Update = Reschedule | Settle | TagDone
"""What ``PendingStore.apply`` takes."""


class Submission(NamedTuple):
    """The intent to create a job, recorded before CreateJob is sent.

    ``key`` is unique per submission (several submissions may share one
    ``custom_id``, a batch tag); ``request`` is the ``createJobRequest`` JSON.
    """

    key: str
    custom_id: str
    request: Mapping[str, Any]


# -- what comes out ------------------------------------------------------------------


class Claimed(NamedTuple):
    """One job handed to a worker, with what its poll policy needs."""

    job_id: str
    fence: int
    polls: int
    failures: int
    state: State | None
    kind: str | None
    tag: str | None
    elapsed: float
    """Seconds since the job was first watched."""
    notified: bool
    """News came in: ask for this job by id, now."""
    key: str | None = None


class Claim(NamedTuple):
    """One unit of polling: a single job (GetJob), or a batch tag's members (ListJobs)."""

    jobs: Sequence[Claimed]
    tag: str | None = None
    """Set when every job here is to be refreshed by one ListJobs of this tag."""
    fence: int = 0
    """The tag's lease fence (for ``TagDone``)."""


class ClaimBatch(NamedTuple):
    """What ``claim`` gives: claims, and when to ask again."""

    claims: Sequence[Claim]
    next_due: float | None
    """Seconds until the next job comes due (None: nothing is watched)."""
    paused: float = 0.0
    """Seconds left of a shared pause (a 429 somewhere); nothing is claimed meanwhile."""


class Settlement(NamedTuple):
    """A job's end as a store records it: its terminal job, or the error that ended its wait."""

    job_id: str
    job: Job | None = None
    error: BaseException | None = None
    key: str | None = None
    """The submission key, when the job was submitted through a waiter."""

    @property
    def outcome(self) -> Job | BaseException:
        """The terminal job, or the error."""
        if self.job is not None:
            return self.job
        assert self.error is not None  # a settlement has one or the other
        return self.error


class ResultEntry(NamedTuple):
    """One entry of the results stream: its id in the stream, and the settlement."""

    entry_id: str
    settlement: Settlement


class PendingJob(NamedTuple):
    """A watched job not yet settled, as ``pending()`` lists it."""

    job_id: str
    tag: str | None
    kind: str | None
    state: State | None
    polls: int
    key: str | None = None
    job: Job | None = None
    polled: bool = True
    """False once nobody waits for it any more (``unwatch``)."""


class TicketStatus:
    """What ``begin_submission`` / ``claim_submissions`` say about a submission."""

    SEND = "send"
    """New: the caller holds its lease and sends CreateJob."""
    RECONCILE = "reconcile"
    """An orphan (its sender's lease ran out): the caller holds it and must look it up first."""
    CREATED = "created"
    """Already created: ``job_id`` is its job."""
    BUSY = "busy"
    """Another sender holds a live lease on it."""


class SubmissionTicket(NamedTuple):
    """A submission and what its caller may do with it."""

    submission: Submission
    status: str
    fence: int = 0
    job_id: str | None = None
    attempts: int = 0
    """How many times a sender has taken it up before."""


# -- the protocol --------------------------------------------------------------------


@runtime_checkable
class PendingStore(Protocol):
    """Where a ``JobWaiter``'s state lives; ``MemoryStore`` and ``RedisStore`` implement it.

    Every method may be called from several tasks (and, for a shared store,
    processes) at once. Writes that carry a fence are refused (``False``)
    once that fence is stale: the lease ran out, or the job was claimed,
    settled or re-watched since.
    """

    shared: bool
    """Whether other processes may use the same state (then they settle jobs too)."""
    write_batch: int
    """How many updates a waiter may gather into one ``apply`` (1: apply each at once)."""

    # -- watched jobs

    async def watch(self, watches: Sequence[Watch]) -> list[Settlement | News | None]:
        """Start watching jobs (a job already watched is left as it is).

        For each: None; its ``Settlement`` when the job settled recently (it is
        not watched again); or the early ``News`` kept for it, now applied (the
        job is due at once, unless the news ``settles`` it: that is the
        caller's to do, with ``apply``).
        """
        ...

    async def claim(self, limit: int, lease: float) -> ClaimBatch:
        """Take up to ``limit`` due jobs, each leased for ``lease`` seconds.

        A due job whose batch tag is worth one ListJobs comes with every other
        member of its tag in one ``Claim`` (the tag is leased too, so no one
        else lists it meanwhile). A job with news comes alone, and so does a
        member that comes due while its tag is being listed without it
        (watched since the tag was claimed): that answer does not cover it.
        """
        ...

    async def apply(self, updates: Sequence[Update]) -> list[bool]:
        """Apply the outcome of claims; for each update, whether it was accepted.

        An accepted ``Settle`` ends the job's watch, keeps its outcome among the
        recent ones and appends one entry to the results stream; a job settles
        once (a second ``Settle`` is refused).
        """
        ...

    async def unwatch(self, job_ids: Sequence[str]) -> None:
        """Stop polling jobs nobody waits for any more (``pending`` still lists them)."""
        ...

    async def notify(self, news: Sequence[News]) -> list[bool]:
        """Make watched jobs due at once; for each, whether its job was watched.

        News that ``settles`` its job leaves the job's due time as it is (the
        caller settles it next, and no one is to poll it in between).

        News of a job not watched is kept (the last 10,000 ids, 15 minutes
        each) and handed back by ``watch``. Settling from trusted news is the
        caller's, with ``apply``.
        """
        ...

    async def outcomes(self, job_ids: Sequence[str]) -> dict[str, Settlement]:
        """The recent outcomes of those of ``job_ids`` that settled."""
        ...

    async def pending(self) -> list[PendingJob]:
        """Every watched job not yet settled."""
        ...

    async def pause(self, seconds: float) -> None:
        """Pause every claim for ``seconds`` (a 429), unless a longer pause is already set."""
        ...

    # -- submissions

    async def begin_submission(self, submission: Submission, lease: float) -> SubmissionTicket:
        """Record the intent before sending; the ticket says whether to send, look up or wait."""
        ...

    async def finish_submission(self, key: str, fence: int, watch: Watch) -> bool:
        """The submission's job is known: attribute it, end the submission, watch the job.

        Refused when the fence is stale or the job is already attributed to
        another submission of the same custom id (look it up again).
        """
        ...

    async def release_submission(self, key: str, fence: int, retry_in: float) -> bool:
        """Keep the submission unresolved; anyone may take it up after ``retry_in`` seconds."""
        ...

    async def drop_submission(self, key: str, fence: int) -> bool:
        """Forget a submission the service refused outright: it created nothing."""
        ...

    async def claim_submissions(self, limit: int, lease: float) -> list[SubmissionTicket]:
        """Take up to ``limit`` submissions whose sender's lease ran out (``RECONCILE`` tickets)."""
        ...

    async def attributed(self, custom_id: str) -> set[str]:
        """The job ids already attributed to submissions of ``custom_id``."""
        ...

    async def submissions(self) -> dict[str, str | None]:
        """Every recorded submission: its key and its job id (None: not created yet)."""
        ...

    # -- results

    async def read_results(
        self, group: str, consumer: str, count: int, block: float
    ) -> list[ResultEntry]:
        """Up to ``count`` settlements for ``consumer`` of ``group``, waiting up to ``block`` s.

        Entries are shared among a group's consumers: each is delivered to one
        of them, and delivered again (to any consumer of the group) when it
        is not acknowledged in time. A new group starts at the oldest entry
        the store still keeps.
        """
        ...

    async def follow_results(
        self, after: str | None, count: int, block: float
    ) -> tuple[list[ResultEntry], str]:
        """Up to ``count`` settlements after entry ``after``, waiting up to ``block`` s.

        The same entries for every reader. ``after=None`` starts at the end
        (what settles from now on). Returns the entries and the cursor to pass
        as ``after`` next time.
        """
        ...

    async def ack_results(self, group: str, entry_ids: Sequence[str]) -> None:
        """Acknowledge entries a group's consumer has handled."""
        ...

    async def aclose(self) -> None:
        """Release the store's connections (state stays, for a shared store)."""
        ...
