"""The errors mediax-async raises. A user never needs to catch an httpx error.

::

    MediaXError
    ├── ConfigurationError          missing credentials, bad base URL or option
    ├── RequestValidationError      bad input, caught before anything is sent (also a ValueError)
    ├── TransportError              the request did not get an answer (connect, timeout, drop)
    ├── JobMayExistError            CreateJob's outcome is unknown: the job may exist
    ├── APIError                    the service answered with an error
    │   ├── AuthenticationError     credentials rejected (401, 403, or an auth error code)
    │   ├── NotFoundError           the job or path is not known (404)
    │   ├── RateLimitError          too many requests (429); ``retry_after`` in seconds
    │   └── ServerError             the service failed (5xx); ``retry_after`` when it sent one
    ├── ResponseError               an answer that cannot be understood (not JSON, wrong shape)
    ├── JobError                    a job ended without a result
    │   ├── JobFailedError          it ended ERROR
    │   └── JobCanceledError        it ended CANCELED
    ├── WaitTimeoutError            a wait ran out of time (also a TimeoutError)
    └── WaiterClosedError           the waiter was closed while a wait was pending

Every error that comes from an exchange with the service keeps the
``request_id`` when the service sent one, and a short excerpt of the body with
every credential removed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._models import Job

__all__ = [
    "APIError",
    "AuthenticationError",
    "ConfigurationError",
    "JobCanceledError",
    "JobError",
    "JobFailedError",
    "JobMayExistError",
    "MediaXError",
    "NotFoundError",
    "RateLimitError",
    "RequestValidationError",
    "ResponseError",
    "ServerError",
    "TransportError",
    "WaitTimeoutError",
    "WaiterClosedError",
]


class MediaXError(Exception):
    """The root of every error mediax-async raises.

    ``job_id`` names the job an error is about, when a waiter raised it for one job.
    """

    job_id: str | None = None


class ConfigurationError(MediaXError):
    """The client is not set up to run: missing credentials, a bad base URL, a bad option."""


class RequestValidationError(MediaXError, ValueError):
    """A request the service would refuse, caught before it is sent.

    ``field`` names the offending field as a path (``outputs[0].smart_content_descriptor``).
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.field, self.message))


class TransportError(MediaXError):
    """The request got no answer: the connection failed, timed out or was dropped.

    ``sent`` tells whether the request may have reached the service (a read
    timeout or a dropped connection), which matters for CreateJob.
    """

    def __init__(self, message: str, *, action: str | None = None, sent: bool = False) -> None:
        super().__init__(message)
        self.action = action
        self.sent = sent


class JobMayExistError(MediaXError):
    """CreateJob failed in a way that leaves open whether the service created the job.

    Raised only after looking the job up by ``custom_id`` (ListJobs) failed
    too, within the client's budget. The job may exist: do not send the
    request again under a new custom id. ``custom_id`` names the job to look
    for; ``last_error`` is the failure that left it unknown.
    """

    def __init__(
        self, message: str, *, custom_id: str, last_error: BaseException | None = None
    ) -> None:
        super().__init__(message)
        self.custom_id = custom_id
        self.last_error = last_error

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_job_may_exist, (str(self), self.custom_id))


def _rebuild_job_may_exist(message: str, custom_id: str) -> JobMayExistError:
    return JobMayExistError(message, custom_id=custom_id)


class _ExchangeError(MediaXError):
    """Shared fields of errors that describe one answer from the service."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        request_id: str | None = None,
        body_excerpt: str = "",
        action: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.request_id = request_id
        self.body_excerpt = body_excerpt
        self.action = action

    def __str__(self) -> str:
        parts = [self.message]
        details = []
        if self.action:
            details.append(f"action={self.action}")
        if self.status_code is not None:
            details.append(f"status={self.status_code}")
        if self.request_id:
            details.append(f"request_id={self.request_id}")
        if details:
            parts.append(f"({', '.join(details)})")
        if self.body_excerpt:
            parts.append(f"body: {self.body_excerpt}")
        return " ".join(parts)


class APIError(_ExchangeError):
    """The service answered with an error: HTTP status, error code and message."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        body_excerpt: str = "",
        action: str | None = None,
    ) -> None:
        super().__init__(
            message,
            status_code=status_code,
            request_id=request_id,
            body_excerpt=body_excerpt,
            action=action,
        )
        self.code = code

    def __str__(self) -> str:
        text = super().__str__()
        return f"[{self.code}] {text}" if self.code else text


class AuthenticationError(APIError):
    """The service rejected the credentials."""


class NotFoundError(APIError):
    """The service does not know the job (or the path)."""


class _RetryAfterError(APIError):
    """An error answer that may say when to try again (``retry_after``, seconds, or None)."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status_code: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        body_excerpt: str = "",
        action: str | None = None,
    ) -> None:
        super().__init__(
            message,
            status_code=status_code,
            code=code,
            request_id=request_id,
            body_excerpt=body_excerpt,
            action=action,
        )
        self.retry_after = retry_after


class RateLimitError(_RetryAfterError):
    """Too many requests. ``retry_after`` is the delay the service asked for, in seconds."""


class ServerError(_RetryAfterError):
    """The service failed to handle the request (HTTP 5xx).

    ``retry_after`` is the delay a ``Retry-After`` header asked for (a 503
    while the service is down for maintenance), in seconds, or None.
    """


class ResponseError(_ExchangeError):
    """An answer that cannot be understood: not JSON, or not the shape of the action."""


class JobError(MediaXError):
    """A job ended without a result; ``job`` is the terminal job."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.id} ended {job.state.name}")
        self.job = job

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.job,))


class JobFailedError(JobError):
    """A job ended in state ERROR."""


class JobCanceledError(JobError):
    """A job ended in state CANCELED."""


class WaitTimeoutError(MediaXError, TimeoutError):
    """A wait ran out of time; ``job`` is the last state seen (None if never seen).

    ``last_error`` is the failure of the last poll when polls were failing
    at the time (a service that does not answer), else None.
    """

    def __init__(
        self,
        message: str,
        *,
        job: Job | None = None,
        job_id: str | None = None,
        last_error: BaseException | None = None,
    ) -> None:
        super().__init__(message)
        self.job = job
        self.job_id = job_id if job_id is not None else (job.id if job is not None else None)
        self.last_error = last_error


class WaiterClosedError(MediaXError):
    """The waiter was closed (its ``async with`` ended) while this wait was pending."""
