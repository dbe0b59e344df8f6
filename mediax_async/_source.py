"""What a ``JobWaiter`` polls through: a ``JobSource``, and how its failures are classified.

``MediaXClient`` is one. A test, a cache or a proxy can be another: anything
with these methods. The waiter calls them with ``retry=False`` (one attempt:
the waiter itself decides when to ask again) and hands every exception they
raise to ``classify_failure``, so it never needs to know a transport's errors.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import attrs

if TYPE_CHECKING:
    from ._models import CreateJobRequest, Job

__all__ = ["Failure", "FailureKind", "JobSource", "JobSubmitter"]


class FailureKind(enum.Enum):
    """What a failed poll means for the waiter."""

    RETRY = "retry"
    """Transient (no answer, 5xx, an answer that cannot be understood): ask again later."""
    RATE_LIMITED = "rate_limited"
    """Too many requests: ask again later, and slow every poll down."""
    END_JOB = "end_job"
    """About this job only (unknown job, a request refused): its wait ends with the error."""
    END_ALL = "end_all"
    """About every job (credentials rejected): every wait ends with the error."""


@attrs.frozen
class Failure:
    """A classified failure: its ``kind``, and the delay the service asked for, if any."""

    kind: FailureKind
    retry_after: float | None = None
    """Seconds the service asked to wait (``Retry-After``), or None."""


@runtime_checkable
class JobSource(Protocol):
    """Answers for a waiter: a job by id, the jobs of a custom id, and what a failure means."""

    async def get_job(self, job_id: str, *, retry: bool = True) -> Job:
        """The job ``job_id`` as the service knows it now."""
        ...

    async def list_jobs(self, custom_id: str, *, retry: bool = True) -> Sequence[Job]:
        """Every job created with ``custom_id``.

        A result with a ``total`` above its length (``JobList``) is incomplete:
        a job missing from it may still exist.
        """
        ...

    def classify_failure(self, error: Exception) -> Failure:
        """What ``error``, raised by ``get_job`` or ``list_jobs``, means for the waiter."""
        ...


@runtime_checkable
class JobSubmitter(JobSource, Protocol):
    """A ``JobSource`` that can also create jobs (``JobWaiter.submit`` needs one)."""

    async def create_job(self, request: CreateJobRequest, *, exclude: Collection[str] = ()) -> Job:
        """Create the job ``request`` describes; never two.

        ``exclude`` names jobs already known to be other requests' (same
        custom id), never to be taken for this one when reconciling.
        """
        ...
