"""``MediaXClient``: the four actions, the per-kind builders, and waiting."""

from __future__ import annotations

import os
import random
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from types import TracebackType
from typing import TYPE_CHECKING, Concatenate, Literal, ParamSpec

import httpx

from . import _constants as C
from ._builders import (
    humming_request,
    image_to_music_request,
    separation_request,
    singing_request,
    singing_training_request,
)
from ._calls import Caller
from ._exceptions import ConfigurationError, RequestValidationError
from ._http_common import Backend
from ._http_httpx import HttpxBackend, new_httpx_client
from ._models import CreateJobRequest, Job, JobList, ModelPage, SingingModel
from ._policies import RetryPolicy
from ._protocol import Credentials, list_models_payload
from ._redact import Redactor, Secret
from ._source import Failure
from ._transport import Transport, classify_failure, logger
from ._validation import http_url

if TYPE_CHECKING:
    from ._policies import PollStrategy
    from ._waiter import JobWaiter, PendingStore, SettledHook, StateHook

__all__ = ["MediaXClient", "new_custom_id"]

P = ParamSpec("P")


def new_custom_id() -> str:
    """A fresh custom id (the client gives one to every CreateJob that has none)."""
    return C.CUSTOM_ID_PREFIX + secrets.token_hex(12)


def _submitter(
    build: Callable[P, CreateJobRequest],
) -> Callable[Concatenate[MediaXClient, P], Awaitable[Job]]:
    """A client method that builds a request with ``build`` and creates the job."""

    async def submit(self: MediaXClient, /, *args: P.args, **kwargs: P.kwargs) -> Job:
        return await self.create_job(build(*args, **kwargs))

    submit.__name__ = build.__name__.replace("_request", "")
    submit.__doc__ = f"Create the job that ``{build.__name__}`` describes.\n\n{build.__doc__}"
    return submit


class MediaXClient:
    """An async client for the MediaX music API; use it as an async context manager.

    Credentials come from the arguments, else from ``MEDIAX_SECRET_ID`` and
    ``MEDIAX_SECRET_KEY``; the base URL from ``base_url``, else
    ``MEDIAX_BASE_URL``, else the current host. ``timeout`` bounds each
    attempt in all (seconds); connection errors, timeouts, 429 and 5xx are
    retried up to ``max_retries`` times with exponential backoff and full
    jitter. Pass ``http_client`` to share your own ``httpx.AsyncClient``
    (it is not closed by this client), or ``http_backend="aiohttp"`` to send
    through aiohttp (the ``aiohttp`` extra), several times faster under load.
    ``max_connections`` sizes the pool; keep it at least the concurrency of the
    waiters that use this client so no poll waits for a connection.
    ``max_response_bytes`` bounds an answer once decompressed (32 MiB): a
    longer one is a ``ResponseError``, and is never held whole.
    """

    def __init__(
        self,
        secret_id: str | None = None,
        secret_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = C.DEFAULT_TIMEOUT,
        max_retries: int = C.DEFAULT_MAX_RETRIES,
        retry_policy: RetryPolicy | None = None,
        http_client: httpx.AsyncClient | None = None,
        http_backend: Literal["httpx", "aiohttp"] = "httpx",
        max_connections: int = C.DEFAULT_MAX_CONNECTIONS,
        max_response_bytes: int = C.DEFAULT_MAX_RESPONSE_BYTES,
        rng: random.Random | None = None,
    ) -> None:
        # From here on the key is only in a Secret: an error raised below must not show
        # it among this frame's locals (error reporters capture them).
        key = _secret(secret_key, C.ENV_SECRET_KEY)
        del secret_key
        secret_id = secret_id if secret_id is not None else os.environ.get(C.ENV_SECRET_ID)
        missing = [
            f"{name} (argument {arg} or environment variable {env})"
            for name, arg, env, value in (
                ("secret id", "secret_id", C.ENV_SECRET_ID, secret_id),
                ("secret key", "secret_key", C.ENV_SECRET_KEY, key),
            )
            if not value
        ]
        if missing:
            raise ConfigurationError("missing " + " and ".join(missing))
        assert secret_id is not None  # for mypy: checked above
        assert key is not None
        from_environment = not base_url and bool(os.environ.get(C.ENV_BASE_URL))
        base = base_url or os.environ.get(C.ENV_BASE_URL) or C.DEFAULT_BASE_URL
        problem = http_url(base)
        if problem is not None:
            where = f"environment variable {C.ENV_BASE_URL}" if from_environment else "base_url"
            raise ConfigurationError(f"{where} {problem}")
        if not timeout > 0:
            raise ConfigurationError(f"timeout must be > 0 seconds, got {timeout!r}")
        if (
            isinstance(max_response_bytes, bool)
            or not isinstance(max_response_bytes, int)
            or max_response_bytes < 1
        ):
            raise ConfigurationError(
                f"max_response_bytes must be a whole number of bytes >= 1, "
                f"got {max_response_bytes!r}"
            )
        if retry_policy is None:
            retry_policy = RetryPolicy(max_retries=max_retries)
        owns_http = http_client is None
        # The pool size, when this client sizes its own pool.
        self._max_connections: int | None = max_connections if owns_http else None
        self._credentials = Credentials(secret_id, key.reveal())
        redactor = Redactor([self._credentials.secret_key])
        backend = _new_backend(
            http_backend,
            http_client,
            base_url=base.rstrip("/"),
            timeout=timeout,
            max_connections=max_connections,
            redactor=redactor,
            max_response_bytes=max_response_bytes,
        )
        self._transport = Transport(
            base_url=base, redactor=redactor, backend=backend, timeout=timeout
        )
        self._calls = Caller(self._transport, self._credentials, retry=retry_policy, rng=rng)

    # -- lifecycle --------------------------------------------------------------

    async def __aenter__(self) -> MediaXClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (unless it was passed in as ``http_client``)."""
        await self._transport.aclose()

    @property
    def base_url(self) -> str:
        """The base URL requests go to."""
        return self._transport.base_url

    @property
    def secret_id(self) -> str:
        """The secret id in use (the key is never exposed)."""
        return self._credentials.secret_id

    @property
    def redactor(self) -> Redactor:
        """Removes this client's secret key from text (for your own logs)."""
        return self._transport.redactor

    @property
    def transport(self) -> Transport:
        """The sending layer (retry counts, the httpx client)."""
        return self._transport

    def __repr__(self) -> str:
        if not hasattr(self, "_transport"):  # still in __init__: an error reporter reprs it too
            return "MediaXClient(<not configured>)"
        return f"MediaXClient(base_url={self.base_url!r}, secret_id={self.secret_id!r})"

    # -- the four actions ---------------------------------------------------------

    async def create_job(self, request: CreateJobRequest, *, exclude: Collection[str] = ()) -> Job:
        """Create a job; never creates two, and never hands one job to two calls.

        A request without ``custom_id`` is given one. When a failure leaves it
        unknown whether the service took the job (a timeout or dropped
        connection after sending, a 5xx, an answer not understood), the client
        asks ListJobs for that custom id before sending again, and returns the
        job it finds: one whose inputs and outputs echo the request's and that
        no other call of this client holds. Several requests may share one
        custom id on purpose (a batch tag): each call gets its own job, and
        ``exclude`` names further ids known to be other requests' jobs (from
        another process, say), never to be taken for this one.

        With ``R`` retries (``max_retries``), one call sends at most ``1 + R``
        CreateJob and ``2 * (1 + R)`` ListJobs. When the look-up cannot tell
        within that (ListJobs failing, or listing only part of the jobs), it
        raises ``JobMayExistError`` with the custom id: the job may exist, so
        look it up with ``find_job`` before sending the request again.
        """
        generated = request.custom_id is None
        if request.custom_id is None:
            request = request.with_custom_id(new_custom_id())
        return await self._calls.create_job(request, exclude, shared=not generated)

    async def find_job(
        self, request: CreateJobRequest, *, exclude: Collection[str] = ()
    ) -> Job | None:
        """The job ``request`` made, if any: how to retry after ``JobMayExistError``.

        Looks ``request.custom_id`` up through ListJobs (with the usual
        retries) and returns a job that echoes the request and that no other
        call of this client holds (nor ``exclude`` names); it is then held for
        this call. None when a complete list holds no such job: then it is
        safe to ``create_job(request)``. ``JobMayExistError`` when it still
        cannot tell.
        """
        if request.custom_id is None:
            raise RequestValidationError("custom_id", "find_job needs the request's custom id")
        return await self._calls.find_job(request, exclude)

    async def get_job(self, job_id: str, *, retry: bool = True) -> Job:
        """The job ``job_id`` as the service knows it now (``retry=False``: one attempt)."""
        return await self._calls.get_job(job_id, retry=retry)

    async def list_jobs(self, custom_id: str, *, retry: bool = True) -> JobList:
        """Every job created with ``custom_id`` (the service does not keep it unique).

        A ``JobList``: a list of jobs with the ``total`` the service says it
        holds. When ``complete`` is False (``total`` above the jobs listed),
        the answer is partial, and a job missing from it may still exist.
        """
        return await self._calls.list_jobs(custom_id, retry=retry)

    def classify_failure(self, error: Exception) -> Failure:
        """What a failed ``get_job`` / ``list_jobs`` means for a waiter (``JobSource``)."""
        return classify_failure(error)

    async def list_models(self, offset: int = 0, limit: int = 10) -> ModelPage:
        """One page of singing voice models (``limit`` from 1 to 100)."""
        return await self._calls.list_models(offset, limit)

    async def iter_model_pages(
        self, page_size: int = C.LIST_MODELS_MAX_LIMIT
    ) -> AsyncIterator[ModelPage]:
        """Every page of ListModels, in order, until ``total`` models have been seen.

        A service that does not page as it says cannot keep the walk going for
        ever: it ends at an empty page, at a page with no model that an earlier
        page did not already give (a service that ignores ``offset``), and once
        the offset reaches the smallest ``total`` answered so far (a total
        that grows with every page is not followed).
        """
        async for page, _ in self._walk_model_pages(page_size):
            yield page

    async def iter_models(
        self, page_size: int = C.LIST_MODELS_MAX_LIMIT
    ) -> AsyncIterator[SingingModel]:
        """Every singing voice model, page after page, each once.

        A model that a later page repeats (a list that shifted while it was
        walked) is not given again; the walk ends as ``iter_model_pages`` does.
        """
        async for _, fresh in self._walk_model_pages(page_size):
            for model in fresh:
                yield model

    async def _walk_model_pages(
        self, page_size: int
    ) -> AsyncIterator[tuple[ModelPage, list[SingingModel]]]:
        """Each page, with the models on it that no earlier page gave."""
        list_models_payload(0, page_size)  # check page_size before the first request
        offset = 0
        total: int | None = None
        seen: set[tuple[str, object]] = set()
        while True:
            page = await self.list_models(offset=offset, limit=page_size)
            fresh = []
            for model in page.models:
                key = (model.name, model.created_at)
                if key not in seen:
                    seen.add(key)
                    fresh.append(model)
            if offset and not fresh:
                return  # an empty page, or one that repeats what was seen
            yield page, fresh
            offset += len(page.models)
            total = page.total if total is None else min(total, page.total)
            if not page.models or offset >= total:
                return

    # -- one call per kind of job ---------------------------------------------------

    submit_image_to_music = _submitter(image_to_music_request)
    submit_humming = _submitter(humming_request)
    submit_singing = _submitter(singing_request)
    submit_singing_training = _submitter(singing_training_request)
    submit_separation = _submitter(separation_request)

    # -- waiting ----------------------------------------------------------------------

    def waiter(
        self,
        *,
        policy: PollStrategy | None = None,
        max_concurrency: int | None = None,
        max_rate: float | None = None,
        deadline: float | None = None,
        raise_on_failure: bool = False,
        trust_callbacks: bool = False,
        batch_polling: bool = True,
        on_state_change: StateHook | None = None,
        on_settled: SettledHook | None = None,
        rng: random.Random | None = None,
        store: PendingStore | None = None,
        lease: float | None = None,
        give_up_after: float | None = None,
    ) -> JobWaiter:
        """A ``JobWaiter`` polling through this client; use it with ``async with``.

        ``max_concurrency`` defaults to 16, or the pool size if that is smaller;
        more than the pool holds would only make polls queue for a connection.
        The other options are ``JobWaiter``'s.
        """
        from ._waiter import JobWaiter

        pool = self._max_connections
        if max_concurrency is None:
            max_concurrency = min(
                C.DEFAULT_WAITER_CONCURRENCY, pool or C.DEFAULT_WAITER_CONCURRENCY
            )
        elif pool is not None and max_concurrency > pool:
            logger.warning(
                "waiter max_concurrency=%d exceeds the client's %d pooled connections: "
                "polls will queue for a connection (raise MediaXClient(max_connections=...))",
                max_concurrency,
                pool,
            )
        return JobWaiter(
            self,
            policy=policy,
            max_concurrency=max_concurrency,
            max_rate=max_rate,
            deadline=deadline,
            raise_on_failure=raise_on_failure,
            trust_callbacks=trust_callbacks,
            batch_polling=batch_polling,
            on_state_change=on_state_change,
            on_settled=on_settled,
            rng=rng,
            store=store,
            give_up_after=give_up_after,
            **({"lease": lease} if lease is not None else {}),
        )

    async def wait(
        self, job: Job | str, timeout: float | None = None, *, policy: PollStrategy | None = None
    ) -> Job:
        """Wait for one job to end and return it (COMPLETED, ERROR or CANCELED)."""
        async with self.waiter(policy=policy, max_concurrency=1) as waiter:
            return await waiter.wait(job, timeout=timeout)


def _secret(value: str | None, variable: str) -> Secret | None:
    """``value``, else the environment variable's, as a ``Secret``; None when empty."""
    value = value if value is not None else os.environ.get(variable)
    return Secret(value) if value else None


def _new_backend(
    kind: str,
    http_client: httpx.AsyncClient | None,
    *,
    base_url: str,
    timeout: float,
    max_connections: int,
    redactor: Redactor,
    max_response_bytes: int,
) -> Backend:
    """The backend for ``http_backend``; a user's ``http_client`` always goes through httpx."""
    if http_client is not None or kind == "httpx":
        transport = None
        if http_client is None:
            http_client, transport = new_httpx_client(timeout, max_connections)
        return HttpxBackend(
            http_client,
            base_url=base_url,
            owned=transport is not None,
            redactor=redactor,
            max_response_bytes=max_response_bytes,
            connect_errors_are_unsent=not _reports_drops_as_connect_errors(http_client),
            transport=transport,
        )
    if kind == "aiohttp":
        try:
            import aiohttp  # noqa: F401 - asks whether aiohttp is installed (._http_aiohttp may be loaded)

            from ._http_aiohttp import AiohttpBackend
        except ImportError:
            raise ConfigurationError(
                "http_backend='aiohttp' needs the aiohttp extra: "
                "pip install 'mediax-async[aiohttp]'"
            ) from None
        return AiohttpBackend(
            base_url=base_url,
            timeout=timeout,
            max_connections=max_connections,
            redactor=redactor,
            max_response_bytes=max_response_bytes,
        )
    raise ConfigurationError(f"http_backend must be 'httpx' or 'aiohttp', got {kind!r}")


def _reports_drops_as_connect_errors(http_client: httpx.AsyncClient) -> bool:
    """Whether the client's transport is httpx-aiohttp's.

    It maps an answer dropped after sending to ``ConnectTimeout``, so there a
    connect error does not prove that the request was never sent.
    """
    transport = getattr(http_client, "_transport", None)  # httpx keeps no public accessor
    return any(
        type(part).__module__.startswith("httpx_aiohttp") for part in (http_client, transport)
    )
