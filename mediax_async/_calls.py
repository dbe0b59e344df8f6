"""The four actions above the transport: bodies go down, answers come up, retries here.

A call encodes its body (``_protocol``, pure), hands the bytes to the
``Transport`` for one attempt (a deadline around a backend that only moves
bytes), and parses the ``Answer`` that comes back (``_protocol`` again) into
a model or a typed error. Here, and only here, a transient error is retried
with backoff and ``Retry-After``, each exchange is logged, and a CreateJob
whose outcome is unknown is reconciled through ListJobs (``_create``).
Nothing below this layer parses, and nothing below it retries.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

import anyio

from ._create import ClaimRegistry, Creator
from ._exceptions import MediaXError, RateLimitError, ServerError
from ._models import CreateJobRequest, Job, JobList, ModelPage
from ._policies import RetryPolicy
from ._protocol import (
    Answer,
    Credentials,
    EncodedBody,
    create_job_payload,
    encode_body,
    get_job_payload,
    list_jobs_payload,
    list_models_payload,
    parse_job_answer,
    parse_jobs_answer,
    parse_model_page_answer,
    request_body,
)
from ._redact import Redactor
from ._transport import Transport, is_transient, logger

__all__ = ["Caller"]

T = TypeVar("T")

Parse = Callable[[str, Answer, Redactor, str | None], tuple[T, str | None]]
"""Turn ``(action, answer, redactor, job_id)`` into a model and the request id (protocol)."""

_GET_JOB_BODIES = 16_384
"""GetJob bodies kept encoded (about 300 bytes each)."""


def _job(
    action: str, answer: Answer, redactor: Redactor, job_id: str | None
) -> tuple[Job, str | None]:
    return parse_job_answer(action, answer, redactor, job_id=job_id)


def _jobs(
    action: str, answer: Answer, redactor: Redactor, job_id: str | None
) -> tuple[JobList, str | None]:
    return parse_jobs_answer(answer, redactor)


def _models(
    action: str, answer: Answer, redactor: Redactor, job_id: str | None
) -> tuple[ModelPage, str | None]:
    return parse_model_page_answer(answer, redactor)


class Caller:
    """Sends the actions through ``transport``: encodes, parses, retries, reconciles."""

    def __init__(
        self,
        transport: Transport,
        credentials: Credentials,
        *,
        retry: RetryPolicy,
        rng: random.Random | None = None,
    ) -> None:
        self._transport = transport
        self._credentials = credentials
        self._retry = retry
        self._random = rng or random.Random()
        self._redactor = transport.redactor
        # GetJob bodies by job id, oldest first: a waiter polls each job many times.
        self._get_job_bodies: dict[str, EncodedBody] = {}
        self._claims = ClaimRegistry()

    def __repr__(self) -> str:
        return f"Caller({self._transport!r})"

    # -- the actions --------------------------------------------------------------

    async def get_job(self, job_id: str, *, retry: bool) -> Job:
        """GetJob ``job_id``; an answer about another job is a ``ResponseError``."""
        body = self._get_job_bodies.get(job_id)
        if body is None:
            body = self._encode("GetJob", get_job_payload(job_id))
            if len(self._get_job_bodies) >= _GET_JOB_BODIES:
                del self._get_job_bodies[next(iter(self._get_job_bodies))]
            self._get_job_bodies[job_id] = body
        return await self._call("GetJob", body, _job, retry=retry, job_id=job_id)

    async def list_jobs(self, custom_id: str, *, retry: bool) -> JobList:
        """ListJobs for ``custom_id``."""
        body = self._encode("ListJobs", list_jobs_payload(custom_id))
        return await self._call("ListJobs", body, _jobs, retry=retry)

    async def list_models(self, offset: int, limit: int) -> ModelPage:
        """One page of ListModels."""
        body = self._encode("ListModels", list_models_payload(offset, limit))
        return await self._call("ListModels", body, _models, retry=True)

    async def create_job(
        self, request: CreateJobRequest, exclude: Collection[str], *, shared: bool
    ) -> Job:
        """CreateJob ``request`` (it has a custom id), reconciled as ``_create`` says.

        ``shared``: the custom id may be other requests' too (the user gave it).
        """
        return await self._creator(request, exclude, shared=shared).create()

    async def find_job(self, request: CreateJobRequest, exclude: Collection[str]) -> Job | None:
        """The unclaimed job ``request`` made, looked up through ListJobs (see ``_create``)."""
        return await self._creator(request, exclude, shared=True).find(cause=None)

    def _creator(
        self, request: CreateJobRequest, exclude: Collection[str], *, shared: bool
    ) -> Creator:
        return Creator(
            request,
            self,
            # A custom id the client made up is this call's alone: nothing to share.
            claims=self._claims if shared else None,
            exclude=exclude,
            retries=self._retry.max_retries,
        )

    # -- what a Creator sends through (``_create.Attempts``) ------------------------

    async def create_once(self, request: CreateJobRequest) -> Job:
        """One CreateJob attempt, not retried: a Creator decides what comes next."""
        body = self._encode("CreateJob", create_job_payload(request))
        return await self._call("CreateJob", body, _job, retry=False)

    async def list_once(self, custom_id: str) -> JobList:
        """One ListJobs attempt, not retried."""
        return await self.list_jobs(custom_id, retry=False)

    async def backoff(self, action: str, attempt: int, exc: MediaXError) -> bool:
        """Wait before retrying ``action`` after failed ``attempt``; False: no retry left."""
        delay = self._retry_delay(attempt, exc)
        if delay is None:
            return False
        self._log_retry(action, exc, attempt, delay)
        await anyio.sleep(delay)
        return True

    # -- one call: attempts, retries, logging -----------------------------------------

    def _encode(self, action: str, payload: Mapping[str, Any]) -> EncodedBody:
        return encode_body(request_body(action, self._credentials, payload))

    async def _call(
        self,
        action: str,
        content: EncodedBody,
        parse: Parse[T],
        *,
        retry: bool,
        job_id: str | None = None,
    ) -> T:
        """Send ``content`` and parse its answer, retrying transient failures if ``retry``.

        Every retry sends the same request again: only for actions safe to
        repeat (CreateJob is sent with ``retry=False``; a Creator reconciles).
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self.send_once(action, content, parse, attempt=attempt, job_id=job_id)
            except MediaXError as exc:
                if not retry:
                    raise
                delay = self._retry_delay(attempt, exc)
                if delay is None:
                    raise
                self._log_retry(action, exc, attempt, delay)
                await anyio.sleep(delay)

    async def send_once(
        self,
        action: str,
        content: EncodedBody,
        parse: Parse[T],
        *,
        attempt: int = 1,
        job_id: str | None = None,
    ) -> T:
        """One attempt: the bytes go down, the answer comes up and is parsed; logged."""
        started = time.perf_counter()
        status: int | None = None
        request_id: str | None = None
        try:
            answer = await self._transport.post(action, content)
            status = answer.status
            value, request_id = parse(action, answer, self._redactor, job_id)
        except MediaXError as exc:
            request_id = getattr(exc, "request_id", None)
            self._log(action, status, started, attempt, request_id, exc)
            raise
        self._log(action, status, started, attempt, request_id, None)
        return value

    def _retry_delay(self, attempt: int, exc: MediaXError) -> float | None:
        """Seconds to wait after failed ``attempt`` (from 1); None: give up (or not transient)."""
        if not is_transient(exc):
            return None
        # A 503 may say when the service is back, as a 429 says when to send again.
        retry_after = exc.retry_after if isinstance(exc, (RateLimitError, ServerError)) else None
        return self._retry.delay(attempt, retry_after=retry_after, draw=self._random.random())

    def _log_retry(self, action: str, exc: BaseException, attempt: int, delay: float) -> None:
        logger.info(
            "%s failed (%s), retry %d in %.2f s",
            action,
            type(exc).__name__,
            attempt,
            delay,
            extra={"mediax_action": action, "mediax_attempt": attempt},
        )
        self._transport.count_retry()

    def _log(
        self,
        action: str,
        status: int | None,
        started: float,
        attempt: int,
        request_id: str | None,
        error: BaseException | None,
    ) -> None:
        if not logger.isEnabledFor(logging.DEBUG):
            return
        elapsed_ms = (time.perf_counter() - started) * 1000
        url = self._transport.url(action)
        outcome = status if status is not None else "no answer"
        logger.debug(
            "%s POST %s -> %s in %.1f ms (attempt %d, request_id=%s)%s",
            action,
            url,
            outcome,
            elapsed_ms,
            attempt,
            request_id,
            f" {type(error).__name__}" if error is not None else "",
            extra={
                "mediax_action": action,
                "mediax_path": url,
                "mediax_status": status,
                "mediax_duration_ms": elapsed_ms,
                "mediax_attempt": attempt,
                "mediax_request_id": request_id,
            },
        )
