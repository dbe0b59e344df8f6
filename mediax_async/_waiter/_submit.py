"""``Submitter``: CreateJob through the store, so a job is never lost nor made twice.

The intent (its key, custom id and request) is recorded before sending.
Once the job is known the store attributes it to that one submission and
starts watching it, in one step. A submission whose sender's lease ran out
(its process died, or the answer was lost and the lookup failed) is taken
over by whoever claims it: it is looked up through ListJobs by custom id
first, and sent again only when a complete list holds no job for it.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, NoReturn

import anyio

from .._constants import CUSTOM_ID_PREFIX
from .._converter import structure, unstructure
from .._exceptions import (
    JobMayExistError,
    MediaXError,
    ResponseError,
    ServerError,
    TransportError,
)
from .._models import CreateJobRequest, Job, JobList
from .._protocol import echoes_request
from .._source import JobSubmitter
from .._tasks import background_tasks
from ._health import WaiterStats, describe, logger
from ._store import PendingStore, Submission, SubmissionTicket, TicketStatus, Watch

__all__ = ["Submitter"]

_RETRY_FIRST = 5.0
_RETRY_MAX = 300.0
"""An unresolved submission is looked up again after 5 s, doubling to 5 minutes."""
_BUSY_POLL = 0.5
_ORPHAN_BATCH = 8


class Submitter:
    """Submissions of one waiter, and the lookups of orphaned ones."""

    def __init__(
        self,
        *,
        store: PendingStore,
        source: JobSubmitter,
        lease: float,
        stats: WaiterStats,
        watch_for: Callable[[Job, str], Watch],
        on_watched: Callable[[Job, Watch], Any],
    ) -> None:
        self._store = store
        self._source = source
        self._lease = lease
        self._stats = stats
        self._watch_for = watch_for
        self._on_watched = on_watched

    async def submit(self, request: CreateJobRequest, key: str | None) -> Job:
        """Create ``request``'s job (or find it again by ``key``), recorded and watched."""
        if request.custom_id is None:
            request = request.with_custom_id(CUSTOM_ID_PREFIX + secrets.token_hex(12))
            key = key or request.custom_id
        custom_id = request.custom_id
        assert custom_id is not None  # set just above
        key = key or f"{custom_id}#{secrets.token_hex(8)}"
        submission = Submission(key, custom_id, unstructure(request))
        while True:
            ticket = await self._store.begin_submission(submission, self._lease)
            if ticket.status == TicketStatus.CREATED:
                assert ticket.job_id is not None  # a created submission names its job
                return await self._created_job(ticket.job_id)
            if ticket.status == TicketStatus.BUSY:
                await anyio.sleep(_BUSY_POLL)  # another sender holds it: wait for its answer
                continue
            job = await self.resolve(ticket, request)
            if job is not None:
                return job

    async def resolve(
        self, ticket: SubmissionTicket, request: CreateJobRequest | None = None
    ) -> Job | None:
        """Send or look up a held submission; its job, or None if the lease was lost.

        ``JobMayExistError`` when it cannot be told: the submission stays
        recorded and is looked up again later.
        """
        if request is None:
            request = structure(ticket.submission.request, CreateJobRequest)
        async with self._holding(ticket):
            if ticket.status == TicketStatus.RECONCILE:
                found = await self._look_up(ticket, request)
                if found is not None:
                    return await self._finish(ticket, found)
            # New, or a complete list holds no job for it: send it.
            job = await self._send(ticket, request)
            finished = await self._finish(ticket, job)
            if finished is not None:
                return finished
            # The job is another submission's already (a late answer for a job someone
            # else got first): this submission's own job is still to be found.
            found = await self._look_up(ticket, request)
            return await self._finish(ticket, found) if found is not None else None

    @contextlib.asynccontextmanager
    async def _holding(self, ticket: SubmissionTicket) -> AsyncIterator[None]:
        """Renew ``ticket``'s lease while the block runs, so no one takes it over meanwhile."""
        key, fence = ticket.submission.key, ticket.fence

        async def renew() -> None:
            while True:
                await anyio.sleep(self._lease / 3)
                if not await self._store.release_submission(key, fence, self._lease):
                    return  # lost (or resolved): nothing left to hold

        async with background_tasks(stop=lambda tasks: tasks.cancel_scope.cancel()) as tasks:
            tasks.start_soon(renew)
            yield

    async def _send(self, ticket: SubmissionTicket, request: CreateJobRequest) -> Job:
        submission = ticket.submission
        exclude = await self._store.attributed(submission.custom_id)
        try:
            return await self._source.create_job(request, exclude=exclude)
        except Exception as exc:
            if _refused(exc):
                await self._store.drop_submission(submission.key, ticket.fence)
                raise
            # It may exist: keep the submission, to be looked up again later.
            if isinstance(exc, JobMayExistError):
                await self._store.release_submission(
                    submission.key, ticket.fence, _retry_in(ticket.attempts)
                )
                raise
            await self._unresolved(ticket, exc)

    async def _look_up(self, ticket: SubmissionTicket, request: CreateJobRequest) -> Job | None:
        """The job made for a submission, None when a complete list has none."""
        submission = ticket.submission
        try:
            jobs = await self._source.list_jobs(submission.custom_id, retry=True)
        except MediaXError as exc:
            await self._unresolved(ticket, exc)
        taken = await self._store.attributed(submission.custom_id)
        found = _earliest(
            [job for job in jobs if job.id not in taken and echoes_request(job, request)]
        )
        if found is None and isinstance(jobs, JobList) and not jobs.complete:
            await self._unresolved(ticket, None)
        return found

    async def _unresolved(self, ticket: SubmissionTicket, cause: BaseException | None) -> NoReturn:
        submission = ticket.submission
        await self._store.release_submission(
            submission.key, ticket.fence, _retry_in(ticket.attempts)
        )
        reason = describe(cause) if cause is not None else "ListJobs listed only part of the jobs"
        error = JobMayExistError(
            f"cannot tell whether the job of submission {submission.key!r} exists ({reason}); "
            "it stays recorded and is looked up again",
            custom_id=submission.custom_id,
            last_error=cause,
        )
        raise error from cause

    async def _finish(self, ticket: SubmissionTicket, job: Job) -> Job | None:
        """Attribute ``job`` and watch it; None when the store refused (take it up again)."""
        key = ticket.submission.key
        watch = self._watch_for(job, key)
        if not await self._store.finish_submission(key, ticket.fence, watch):
            logger.info("submission %r: job %s not attributed; looking again", key, job.id)
            return None
        self._stats.submitted += 1
        await self._on_watched(job, watch)
        return job

    async def _created_job(self, job_id: str) -> Job:
        settled = (await self._store.outcomes([job_id])).get(job_id)
        if settled is not None and settled.job is not None:
            return settled.job
        return await self._source.get_job(job_id)

    async def take_over_orphans(self) -> int:
        """Look up the orphaned submissions due now; how many were taken up."""
        tickets = await self._store.claim_submissions(_ORPHAN_BATCH, self._lease)
        for ticket in tickets:
            try:
                await self.resolve(ticket)
            except JobMayExistError as exc:
                logger.info("%s", exc)
            except MediaXError as exc:
                logger.warning(
                    "submission %r could not be sent: %s", ticket.submission.key, describe(exc)
                )
        return len(tickets)


def _earliest(jobs: Sequence[Job]) -> Job | None:
    def created(job: Job) -> float:
        at = job.timing.created_at if job.timing is not None else None
        return at.timestamp() if at is not None else 0.0

    return min(jobs, key=created) if jobs else None


def _refused(exc: Exception) -> bool:
    """Whether a failed CreateJob surely made no job (it was refused, or never sent).

    A source should look up every ambiguous failure itself and raise
    ``JobMayExistError`` when it cannot tell; anything that may have reached
    the service (no answer after sending, 5xx, an answer not understood, an
    unexpected error) is kept as "may exist" all the same.
    """
    if isinstance(exc, JobMayExistError):
        return False
    if isinstance(exc, TransportError):
        return not exc.sent
    if isinstance(exc, (ServerError, ResponseError)):
        return False
    return isinstance(exc, MediaXError)


def _retry_in(attempts: int) -> float:
    return float(min(_RETRY_MAX, _RETRY_FIRST * 2 ** min(attempts, 16)))
