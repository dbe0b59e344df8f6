"""CreateJob without doubles or orphans: the claim registry and the reconciling loop.

A CreateJob that fails after it may have reached the service (no answer, a
5xx, an answer not understood) is looked up by custom id through ListJobs
before it is sent again. Several requests may share one custom id (a batch
tag), so every job id handed to a caller is *claimed* in the client's
registry: a look-up takes only unclaimed jobs, and an answer naming a job
another call already took (it came late) sends its call back to look up.

One ``create_job`` sends at most ``1 + R`` CreateJob and ``2 * (1 + R)``
ListJobs for ``R`` retries; a look-up that cannot tell within that budget
ends in ``JobMayExistError``.
"""

from __future__ import annotations

import collections
from collections.abc import Collection, Sequence
from typing import Protocol

from ._exceptions import JobMayExistError, MediaXError
from ._models import CreateJobRequest, Job, JobList
from ._protocol import echoes_request
from ._transport import is_ambiguous, is_transient, logger

__all__ = ["Attempts", "ClaimRegistry", "CreateBudget", "Creator"]


class ClaimRegistry:
    """The job ids already handed to a caller, by custom id; one per client.

    Only the ``max_custom_ids`` custom ids used last are remembered (a
    long-running process must not grow without bound): a batch tag unused
    for that long loses its protection against a later look-up.
    """

    def __init__(self, max_custom_ids: int = 65_536) -> None:
        self._max = max_custom_ids
        self._claims: collections.OrderedDict[str, set[str]] = collections.OrderedDict()

    def claimed(self, custom_id: str) -> Collection[str]:
        """The job ids of ``custom_id`` that callers hold."""
        return self._claims.get(custom_id, ())

    def claim(self, custom_id: str, job_id: str) -> bool:
        """Give ``job_id`` to the caller asking; False if someone holds it already."""
        ids = self._claims.get(custom_id)
        if ids is None:
            ids = self._claims[custom_id] = set()
            if len(self._claims) > self._max:
                self._claims.popitem(last=False)
        else:
            self._claims.move_to_end(custom_id)
        if job_id in ids:
            return False
        ids.add(job_id)
        return True


class CreateBudget:
    """How many CreateJob and ListJobs one ``create_job`` may still send."""

    def __init__(self, retries: int) -> None:
        self.creates = 1 + retries
        self.lists = 2 * (1 + retries)


class Attempts(Protocol):
    """What a ``Creator`` sends through: single attempts, and the wait between them."""

    async def create_once(self, request: CreateJobRequest) -> Job:
        """One CreateJob attempt, not retried."""
        ...

    async def list_once(self, custom_id: str) -> Sequence[Job]:
        """One ListJobs attempt for ``custom_id``, not retried."""
        ...

    async def backoff(self, action: str, attempt: int, exc: MediaXError) -> bool:
        """Wait before retrying ``action`` after failed ``attempt``; False: no retry is left."""
        ...


class Creator:
    """One ``create_job``: send, and reconcile whenever the outcome is not known."""

    def __init__(
        self,
        request: CreateJobRequest,
        attempts: Attempts,
        *,
        claims: ClaimRegistry | None,
        exclude: Collection[str],
        retries: int,
    ) -> None:
        assert request.custom_id is not None  # the client gives every request one
        self._request = request
        self._custom_id = request.custom_id
        self._attempts = attempts
        self._claims = claims
        self._exclude = exclude
        self._budget = CreateBudget(retries)

    async def create(self) -> Job:
        """The job made for the request: its own, never one another caller holds."""
        attempt = 0
        while True:
            attempt += 1
            self._budget.creates -= 1
            try:
                job = await self._attempts.create_once(self._request)
            except MediaXError as exc:
                if not is_transient(exc):
                    raise
                retry = await self._attempts.backoff("CreateJob", attempt, exc)
                if is_ambiguous(exc):
                    found = await self.find(cause=exc)
                    if found is not None:
                        return found
                    # A complete list holds no job for it: it was not made.
                if not retry or self._budget.creates <= 0:
                    raise
                continue
            if self._take(job.id):
                return job
            # A late answer: the job it names went to another call's look-up, so this
            # call's own job (if any) is among the unclaimed ones.
            logger.info(
                "CreateJob answered job %s, which another call with custom id %r holds: "
                "looking up this call's own",
                job.id,
                self._custom_id,
            )
            found = await self.find(cause=None)
            if found is not None:
                return found
            if self._budget.creates <= 0:
                raise JobMayExistError(
                    f"CreateJob for custom id {self._custom_id!r}: the job made went to "
                    "another call with the same request, and no attempt is left to make "
                    "another; look it up with find_job before sending it again",
                    custom_id=self._custom_id,
                )

    async def find(self, *, cause: MediaXError | None) -> Job | None:
        """The unclaimed job the request made, claimed; None when a complete list has none.

        ``JobMayExistError`` when ListJobs cannot tell within the budget.
        """
        attempt = 0
        while True:
            if self._budget.lists <= 0:
                raise self._unsure(cause, "no look-up is left")
            attempt += 1
            self._budget.lists -= 1
            try:
                jobs = await self._attempts.list_once(self._custom_id)
            except MediaXError as exc:
                if not is_transient(exc) or not await self._attempts.backoff(
                    "ListJobs", attempt, exc
                ):
                    raise self._unsure(exc, "ListJobs failed") from exc
                cause = exc
                continue
            for job in _oldest_first(jobs):
                if echoes_request(job, self._request) and self._take(job.id):
                    return job
            if isinstance(jobs, JobList) and not jobs.complete:
                raise self._unsure(cause, "ListJobs listed only part of the jobs")
            return None

    def _take(self, job_id: str) -> bool:
        if job_id in self._exclude:
            return False
        return self._claims is None or self._claims.claim(self._custom_id, job_id)

    def _unsure(self, cause: BaseException | None, why: str) -> JobMayExistError:
        detail = f": {type(cause).__name__}: {cause}" if cause is not None else ""
        return JobMayExistError(
            f"cannot tell whether the job with custom id {self._custom_id!r} was created "
            f"({why}{detail}); it may exist: look it up (find_job) before sending it again",
            custom_id=self._custom_id,
            last_error=cause,
        )


def _oldest_first(jobs: Sequence[Job]) -> list[Job]:
    def created(job: Job) -> float:
        at = job.timing.created_at if job.timing is not None else None
        return at.timestamp() if at is not None else 0.0

    return sorted(jobs, key=created)
