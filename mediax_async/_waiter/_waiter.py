"""``JobWaiter``: watch many jobs at once until each is COMPLETED, ERROR or CANCELED.

A thin facade. The state lives in a ``PendingStore`` (``MemoryStore`` by
default); workers (``Poller``) claim what is due and poll it through a
``JobSource`` (the client); submissions go through ``Submitter``; who waits
for what in this process is ``Interest``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, overload

import anyio
from anyio.abc import TaskGroup

from .._constants import DEFAULT_WAITER_CONCURRENCY, DEFAULT_WAITER_LEASE
from .._enums import State
from .._exceptions import MediaXError
from .._models import CreateJobRequest, Job
from .._policies import PollPolicy, PollStrategy
from .._source import JobSource, JobSubmitter
from .._throttle import Throttle
from ._health import Health, WaiterStats
from ._interest import Interest, SingleWait, fresh
from ._memory import MemoryStore
from ._outcomes import Outcomes
from ._polling import Poller
from ._store import News, PendingStore
from ._streams import CompletionStream, ResultStream, job_error
from ._submit import Submitter
from ._watching import JobRef, Watching, closed_error, pending_record, ref_of

__all__ = ["JobRef", "JobWaiter", "SettledHook", "StateHook"]

StateHook = Callable[[Job, "State | None", State], Any]
"""``on_state_change(job, old_state, new_state)``: plain or async."""
SettledHook = Callable[[str, "Job | BaseException"], Any]
"""``on_settled(job_id, job_or_error)``: plain or async."""

DEFAULT_LEASE = DEFAULT_WAITER_LEASE
_ORPHAN_CHECK = 5.0


class JobWaiter:
    """Watches jobs until each ends; use it as ``async with client.waiter() as w``.

    - ``await w.wait(job, timeout=None)`` returns the terminal job.
    - ``async for job in w.as_completed(jobs)`` yields each as soon as it ends.
    - ``await w.wait_all(jobs)`` returns them in the order given.
    - ``await w.submit(request)`` creates a job through the waiter (recorded
      first, so a lost answer never leads to a second job) and watches it.
    - ``w.completed()`` streams every job the waiter settles.

    A job ending ERROR or CANCELED is returned as a job, unless
    ``raise_on_failure`` turns it into ``JobFailedError`` / ``JobCanceledError``.
    ``max_concurrency`` bounds polls in flight, ``max_rate`` (requests per
    second) paces them, ``deadline`` (seconds) bounds the whole waiter, and
    ``give_up_after`` (seconds of nothing but failed polls) ends the waits
    with the last error rather than retrying a dead service for ever.
    ``on_state_change(job, old, new)`` and ``on_settled(job_id, job_or_error)``
    may be plain or async; their exceptions are logged, not raised.

    ``source`` is what is polled (a ``MediaXClient``, or any ``JobSource``);
    ``store`` holds the state (``MemoryStore()`` unless given; a
    ``RedisStore`` shares it between processes). Jobs that share a custom id
    (a batch tag) are refreshed together with one ListJobs (``batch_polling``).
    """

    def __init__(
        self,
        source: JobSource,
        *,
        store: PendingStore | None = None,
        policy: PollStrategy | None = None,
        max_concurrency: int = DEFAULT_WAITER_CONCURRENCY,
        max_rate: float | None = None,
        deadline: float | None = None,
        raise_on_failure: bool = False,
        trust_callbacks: bool = False,
        batch_polling: bool = True,
        on_state_change: StateHook | None = None,
        on_settled: SettledHook | None = None,
        rng: random.Random | None = None,
        lease: float = DEFAULT_LEASE,
        give_up_after: float | None = None,
    ) -> None:
        if deadline is not None and not deadline > 0:
            raise ValueError(f"deadline must be > 0 seconds, got {deadline!r}")
        if not lease > 0:
            raise ValueError(f"lease must be > 0 seconds, got {lease!r}")
        self._source = source
        self._store: PendingStore = store if store is not None else MemoryStore()
        self._policy: PollStrategy = policy or PollPolicy()
        self._throttle = Throttle(max_concurrency=max_concurrency, max_rate=max_rate)
        self._deadline = deadline
        self._deadline_at = math.inf
        self._raise_on_failure = raise_on_failure
        self._trust_callbacks = trust_callbacks
        self._batch_polling = batch_polling
        self._on_state_change = on_state_change
        self._on_settled = on_settled
        self._random = rng or random.Random()
        self._lease = lease
        self._health = Health(give_up_after)
        self._interest = Interest()
        self.stats = WaiterStats()
        """Counts of polls, retries, errors, 429s and settled jobs."""
        self._outcomes = Outcomes(
            interest=self._interest,
            stats=self.stats,
            policy=self._policy,
            health=self._health,
            shared=self._store.shared,
            on_state_change=on_state_change,
            on_settled=on_settled,
        )
        self._watching = Watching(
            store=self._store,
            policy=self._policy,
            rng=self._random,
            batch_polling=batch_polling,
            interest=self._interest,
            outcomes=self._outcomes,
            wake=lambda delay: self._poller.wake(delay),
        )
        self._task_group: TaskGroup | None = None
        self._closed = False
        self._poller = Poller(
            store=self._store,
            source=source,
            policy=self._policy,
            throttle=self._throttle,
            stats=self.stats,
            health=self._health,
            lease=lease,
            batch_polling=batch_polling,
            rng=self._random,
            on_state_change=self._outcomes.state_changed,
            on_settled=lambda settle, key: self._outcomes.report(settle.job_id, settle, key),
            on_fatal=self._fail_everything,
            on_given_up=self._outcomes.give_up,
            on_answer=self._outcomes.answered,
            take_unwatched=self._watching.take_unwatched,
            on_store_empty=lambda: self._watching.store_emptied(),
        )
        self._submitter = (
            Submitter(
                store=self._store,
                source=source,
                lease=lease,
                stats=self.stats,
                watch_for=lambda job, key: self._watching.watch_of(job)._replace(key=key),
                on_watched=self._watching.submitted,
            )
            if isinstance(source, JobSubmitter)
            else None
        )

    @property
    def store(self) -> PendingStore:
        """Where this waiter's state lives."""
        return self._store

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> JobWaiter:
        if self._task_group is not None or self._closed:
            raise RuntimeError("a JobWaiter can be entered only once")
        if self._deadline is not None:
            self._deadline_at = anyio.current_time() + self._deadline
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        self._outcomes.start(task_group.start_soon)
        for _ in range(self._throttle.max_concurrency):
            task_group.start_soon(self._poller.work)
        if self._submitter is not None:
            task_group.start_soon(self._take_over_orphans)
        if self._store.shared:
            task_group.start_soon(self._outcomes.follow, self._store)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        task_group = self._task_group
        self._closed = True
        if task_group is None:
            return None
        # Stop the background tasks without handing them the body's exception: a task
        # group would wrap it in an ExceptionGroup, and the user's error must reach the
        # user as it was raised.
        task_group.cancel_scope.cancel()
        try:
            await task_group.__aexit__(None, None, None)
        finally:
            with anyio.move_on_after(5, shield=True):
                await self._poller.flush()  # what was gathered for a shared store
            self._interest.deliver_to_all(closed_error)
            self._interest.end_readers()
        return None

    def _require_running(self) -> None:
        if self._task_group is None or self._closed:
            raise RuntimeError("use the JobWaiter inside `async with client.waiter() as w:`")
        stop = self._outcomes.stop_error
        if stop is not None:
            error = fresh(stop)
            assert isinstance(error, BaseException)  # a copy of an error is an error
            raise error

    # -- adding jobs -----------------------------------------------------------------

    async def add(self, job: JobRef) -> str:
        """Watch ``job`` until it ends, even with nobody waiting yet; returns its id."""
        self._require_running()
        ((job_id, _),) = await self._watching.watch([ref_of(job)], keep=True)
        return job_id

    async def resume(self, pending: Iterable[Mapping[str, Any] | str]) -> list[str]:
        """Take up jobs another waiter was watching (from its ``pending()``); never re-creates."""
        self._require_running()
        refs = [(r, None) if isinstance(r, str) else (str(r["id"]), None) for r in pending]
        return [job_id for job_id, _ in await self._watching.watch(refs, keep=True)]

    async def pending(self) -> list[dict[str, Any]]:
        """The jobs still watched, as JSON-able data for ``resume()`` after a restart.

        Every job not settled yet, waited for or only added, also after the
        waiter closed (for its own store; a shared store lists every process's);
        ``polled`` is False for a job nobody waits for any more.
        """
        return [pending_record(job) for job in await self._store.pending()]

    # -- waiting ---------------------------------------------------------------------

    async def wait(self, job: JobRef, timeout: float | None = None) -> Job:
        """The job once it has ended; ``WaitTimeoutError`` after ``timeout`` seconds."""
        self._require_running()
        job_id, given = ref_of(job)
        subscriber = SingleWait()
        self._interest.subscribe(job_id, subscriber, given)
        try:
            ((_, outcome),) = await self._watching.watch([(job_id, given)], keep=False)
            if outcome is not None:
                subscriber.deliver(job_id, outcome)
            with anyio.move_on_after(self._time_left(timeout)):
                await subscriber.event.wait()
        finally:
            if subscriber.outcome is None:
                seen = self._interest.last_seen(job_id) or given
                self._watching.release(job_id, subscriber)
        if subscriber.outcome is None:
            raise self._outcomes.timeout_error([job_id], seen)
        return self._unwrap(subscriber.outcome)

    @overload
    def as_completed(
        self,
        jobs: Iterable[JobRef],
        *,
        timeout: float | None = None,
        return_exceptions: Literal[False] = False,
    ) -> CompletionStream[Job]: ...

    @overload
    def as_completed(
        self, jobs: Iterable[JobRef], *, timeout: float | None = None, return_exceptions: bool
    ) -> CompletionStream[Job | Exception]: ...

    def as_completed(
        self,
        jobs: Iterable[JobRef],
        *,
        timeout: float | None = None,
        return_exceptions: bool = False,
    ) -> CompletionStream[Any]:
        """Each job as soon as it ends, each exactly once.

        An error for one job is raised from the iteration, or yielded in its
        place (``return_exceptions=True``; its ``job_id`` says which job).
        ``timeout`` bounds the whole iteration (``WaitTimeoutError``).
        """
        self._require_running()

        async def start(refs: Sequence[tuple[str, Job | None]]) -> None:
            for job_id, outcome in await self._watching.watch(refs, keep=False):
                if outcome is not None:
                    self._interest.deliver(job_id, outcome)

        return CompletionStream(
            interest=self._interest,
            jobs=[ref_of(job) for job in jobs],
            start=start,
            release=self._watching.release,
            time_left=lambda at: self._time_left(at - anyio.current_time()),
            timeout=timeout,
            timeout_error=lambda ids: self._outcomes.timeout_error(ids, None),
            raise_on_failure=self._raise_on_failure,
            return_exceptions=return_exceptions,
        )

    @overload
    async def wait_all(
        self,
        jobs: Sequence[JobRef],
        *,
        timeout: float | None = None,
        return_exceptions: Literal[False] = False,
    ) -> list[Job]: ...

    @overload
    async def wait_all(
        self, jobs: Sequence[JobRef], *, timeout: float | None = None, return_exceptions: bool
    ) -> list[Job | Exception]: ...

    async def wait_all(
        self,
        jobs: Sequence[JobRef],
        *,
        timeout: float | None = None,
        return_exceptions: bool = False,
    ) -> list[Any]:
        """Every job once it has ended, in the order given.

        The first error for a job is raised, unless ``return_exceptions=True``
        puts each in its job's place.
        """
        ids = [ref_of(job)[0] for job in jobs]
        results: dict[str, Job | Exception] = {}
        async with self.as_completed(jobs, timeout=timeout, return_exceptions=True) as stream:
            async for outcome in stream:
                if isinstance(outcome, Job):
                    results[outcome.id] = outcome
                elif outcome.job_id is None if isinstance(outcome, MediaXError) else True:
                    raise outcome  # not about one job: rejected credentials, a closed waiter
                else:
                    results[str(getattr(outcome, "job_id", ""))] = outcome
        ordered = [results[job_id] for job_id in ids]
        if not return_exceptions:
            for outcome in ordered:
                if isinstance(outcome, Exception):
                    raise outcome
        return ordered

    def completed(self, group: str | None = None, *, consumer: str | None = None) -> ResultStream:
        """Every job this waiter settles, whoever added it, as ``Settlement`` s.

        Open-ended: it ends when the waiter closes. Several readers may use
        it: each stream without a ``group`` gets everything settled from now
        on; streams of one ``group`` (in any process sharing the store) split
        the settlements, each acknowledged after its reader has it.
        """
        self._require_running()
        return ResultStream(
            interest=self._interest,
            store=self._store,
            group=group,
            consumer=consumer,
            running=lambda: not self._closed,
        )

    # -- submitting ------------------------------------------------------------------

    async def submit(self, request: CreateJobRequest, *, key: str | None = None) -> Job:
        """Create ``request``'s job and watch it until it ends; returns the job as created.

        The intent is recorded in the store before CreateJob is sent; a
        submission whose answer was lost is looked up by custom id (ListJobs)
        before anything is sent again, by this waiter or any waiter on the same
        store, so there is never a second job. ``key`` names the submission
        (unique; a second ``submit`` with the same key returns the first's job);
        by default the request's custom id, when the client chose it.
        ``JobMayExistError`` when it cannot be told yet: the submission stays
        recorded and its job is watched once found.
        """
        self._require_running()
        if self._submitter is None:
            raise TypeError("submit() needs a source that can create jobs (a JobSubmitter)")
        return await self._submitter.submit(request, key)

    async def _take_over_orphans(self) -> None:
        assert self._submitter is not None  # started only with one
        while True:
            if not await self._submitter.take_over_orphans():
                await anyio.sleep(min(_ORPHAN_CHECK, self._lease / 4))

    # -- callbacks -------------------------------------------------------------------

    async def notify(self, job: JobRef) -> bool:
        """News of a job from a callback: poll it now (or settle it, if callbacks are trusted).

        Returns whether the job was being watched. News of a job not watched
        yet is kept (bounded) and applied once it is. Duplicate and late news
        is harmless.
        """
        job_id, given = ref_of(job)
        watched = await self._watching.notify(News(job_id, given, self._trust_callbacks))
        if watched:
            self.stats.notified += 1
        return watched

    # -- outcomes --------------------------------------------------------------------

    def _fail_everything(self, error: BaseException) -> None:
        self._poller.stop()
        self._outcomes.fail_everything(error)

    def _time_left(self, timeout: float | None) -> float:
        limit = self._deadline_at - anyio.current_time()
        if timeout is not None:
            limit = min(limit, timeout)
        return max(0.0, limit)

    def _unwrap(self, outcome: Job | BaseException) -> Job:
        if isinstance(outcome, BaseException):
            raise outcome
        if self._raise_on_failure:
            error = job_error(outcome)
            if error is not None:
                raise error
        return outcome

    def __repr__(self) -> str:
        waits, settled = len(self._interest), self.stats.settled
        return f"JobWaiter(store={self._store!r}, waits={waits}, settled={settled})"
