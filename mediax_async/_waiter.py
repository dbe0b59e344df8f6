"""``JobWaiter``: watch many jobs at once until each is COMPLETED, ERROR or CANCELED.

One scheduler task keeps a heap of next-poll times and hands due jobs to a
fixed set of worker tasks, so the cost of a waiter does not grow with one task
per job. Transient failures only delay a job's next poll; a 429 slows the
whole waiter (``Throttle``); rejected credentials end every wait at once.
"""

from __future__ import annotations

import collections
import heapq
import inspect
import itertools
import math
import random
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import attrs
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._enums import State
from ._exceptions import (
    AuthenticationError,
    JobCanceledError,
    JobFailedError,
    MediaXError,
    RateLimitError,
    WaiterClosedError,
    WaitTimeoutError,
)
from ._models import Job
from ._policies import PollContext, PollPolicy, backoff_delay
from ._throttle import Throttle
from ._transport import is_transient, logger

if TYPE_CHECKING:
    from ._client import MediaXClient

__all__ = ["JobWaiter", "WaiterStats"]

JobRef = Job | str
"""A job to wait for: a ``Job`` or its id."""

StateHook = Callable[[Job, "State | None", State], Any]
SettledHook = Callable[[str, "Job | BaseException"], Any]

_TRANSIENT_INITIAL = 1.0
_TRANSIENT_MAX = 60.0


@attrs.define
class WaiterStats:
    """What a waiter has done so far."""

    polls: int = 0
    """GetJob requests answered with a job."""
    retries: int = 0
    """Polls that failed transiently and were rescheduled."""
    errors: int = 0
    """Jobs that ended with an error (404, rejected credentials, ...)."""
    rate_limited: int = 0
    """429 answers."""
    notified: int = 0
    """Callback notifications received."""
    settled: int = 0
    """Jobs that reached COMPLETED, ERROR or CANCELED."""
    completed: int = 0
    failed: int = 0
    canceled: int = 0
    hook_errors: int = 0
    """Exceptions raised by the user's hooks (logged, never fatal)."""


class _Subscriber:
    """Someone waiting for one or more jobs: a single wait, or a stream."""

    __slots__ = ()

    def deliver(self, job_id: str, outcome: Job | BaseException) -> None:
        raise NotImplementedError


class _SingleWait(_Subscriber):
    __slots__ = ("event", "outcome")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.outcome: Job | BaseException | None = None

    def deliver(self, job_id: str, outcome: Job | BaseException) -> None:
        if self.outcome is None:
            self.outcome = outcome
            self.event.set()


class _StreamWait(_Subscriber):
    """Outcomes queued for one ``as_completed`` reader (nothing to close if abandoned)."""

    __slots__ = ("arrived", "queue")

    def __init__(self) -> None:
        self.queue: collections.deque[tuple[str, Job | BaseException]] = collections.deque()
        self.arrived = anyio.Event()

    def deliver(self, job_id: str, outcome: Job | BaseException) -> None:
        self.queue.append((job_id, outcome))
        self.arrived.set()

    async def next(self) -> tuple[str, Job | BaseException]:
        while not self.queue:
            self.arrived = anyio.Event()
            await self.arrived.wait()
        return self.queue.popleft()


class _Watch:
    """One watched job: everything the scheduler needs, and nothing more."""

    __slots__ = (
        "done",
        "failures",
        "job",
        "job_id",
        "keep",
        "polls",
        "seq",
        "started",
        "subscribers",
    )

    def __init__(self, job_id: str, job: Job | None, started: float) -> None:
        self.job_id = job_id
        self.job = job
        self.started = started
        self.polls = 0
        self.failures = 0
        self.seq = 0
        self.done = False
        self.keep = False
        self.subscribers: list[_Subscriber] = []


class JobWaiter:
    """Watches jobs until each ends; use it as ``async with client.waiter() as w``.

    - ``await w.wait(job, timeout=None)`` returns the terminal job.
    - ``async for job in w.as_completed(jobs)`` yields each as soon as it ends.
    - ``await w.wait_all(jobs)`` returns them in the order given.

    A job ending ERROR or CANCELED is returned as a job, unless
    ``raise_on_failure`` turns it into ``JobFailedError`` / ``JobCanceledError``.
    ``max_concurrency`` bounds polls in flight, ``max_rate`` (requests per
    second) paces them, ``deadline`` (seconds) bounds the whole waiter.
    ``on_state_change(job, old, new)`` and ``on_settled(job_id, job_or_error)``
    may be plain or async functions; their exceptions are logged, not raised.
    """

    def __init__(
        self,
        client: MediaXClient,
        *,
        policy: PollPolicy | None = None,
        max_concurrency: int = 16,
        max_rate: float | None = None,
        deadline: float | None = None,
        raise_on_failure: bool = False,
        trust_callbacks: bool = False,
        on_state_change: StateHook | None = None,
        on_settled: SettledHook | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if deadline is not None and not deadline > 0:
            raise ValueError(f"deadline must be > 0 seconds, got {deadline!r}")
        self._client = client
        self._policy = policy or PollPolicy()
        self._throttle = Throttle(max_concurrency=max_concurrency, max_rate=max_rate)
        self._deadline = deadline
        self._deadline_at = math.inf
        self._raise_on_failure = raise_on_failure
        self._trust_callbacks = trust_callbacks
        self._on_state_change = on_state_change
        self._on_settled = on_settled
        self._random = rng or random.Random()
        self._watches: dict[str, _Watch] = {}
        self._heap: list[tuple[float, int, _Watch]] = []
        self._seq = itertools.count(1)
        self._wakeup = anyio.Event()
        self._sleeping_until = math.inf
        self._fatal: BaseException | None = None
        self._task_group: TaskGroup | None = None
        self._closed = False
        self._limiter = anyio.CapacityLimiter(max_concurrency)
        self.stats = WaiterStats()
        """Counts of polls, retries, errors, 429s and settled jobs."""

    # -- lifecycle --------------------------------------------------------------

    async def __aenter__(self) -> JobWaiter:
        if self._task_group is not None or self._closed:
            raise RuntimeError("a JobWaiter can be entered only once")
        if self._deadline is not None:
            self._deadline_at = anyio.current_time() + self._deadline
        send, receive = anyio.create_memory_object_stream[_Watch](0)
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        task_group.start_soon(self._schedule, send)
        for _ in range(self._throttle.max_concurrency):
            task_group.start_soon(self._work, receive.clone())
        receive.close()
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
        # Stop the background tasks without handing them the body's exception: a
        # task group would wrap it in an ExceptionGroup, and the user's error must
        # reach the user as it was raised.
        task_group.cancel_scope.cancel()
        try:
            await task_group.__aexit__(None, None, None)
        finally:
            self._close_pending()
        return None

    def _close_pending(self) -> None:
        """Give every wait still blocked an outcome: the waiter is gone."""
        for watch in list(self._watches.values()):
            self._settle(
                watch, WaiterClosedError(f"the waiter closed before job {watch.job_id} ended")
            )

    def _require_running(self) -> None:
        if self._task_group is None or self._closed:
            raise RuntimeError("use the JobWaiter inside `async with client.waiter() as w:`")
        if self._fatal is not None:
            raise self._fatal

    # -- adding jobs ------------------------------------------------------------------

    def add(self, job: JobRef) -> str:
        """Watch ``job`` until it ends, even with nobody waiting yet; returns its id."""
        self._require_running()
        watch = self._watch(job)
        watch.keep = True
        return watch.job_id

    def resume(self, pending: Iterable[Mapping[str, Any] | str]) -> list[str]:
        """Take up jobs another waiter was watching (from its ``pending()``); never re-creates."""
        ids = []
        for record in pending:
            ids.append(self.add(record if isinstance(record, str) else str(record["id"])))
        return ids

    def pending(self) -> list[dict[str, Any]]:
        """The jobs still being watched, as JSON-able data for ``resume()`` after a restart."""
        records = []
        for watch in self._watches.values():
            if watch.done:
                continue
            job = watch.job
            records.append(
                {
                    "id": watch.job_id,
                    "customId": job.custom_id if job is not None else None,
                    "state": int(job.state) if job is not None else None,
                    "kind": job.kind if job is not None else None,
                    "polls": watch.polls,
                }
            )
        return records

    def _watch(self, ref: JobRef) -> _Watch:
        job = ref if isinstance(ref, Job) else None
        job_id = ref.id if isinstance(ref, Job) else ref
        if not isinstance(job_id, str) or not job_id:
            raise ValueError(f"expected a Job or a job id, got {ref!r}")
        watch = self._watches.get(job_id)
        if watch is not None:
            return watch
        watch = _Watch(job_id, job, anyio.current_time())
        self._watches[job_id] = watch
        if job is not None and job.state.is_terminal:
            self._finish(watch, job)
        else:
            self._reschedule(watch, self._next_poll_delay(watch, None))
        return watch

    # -- waiting ----------------------------------------------------------------------

    async def wait(self, job: JobRef, timeout: float | None = None) -> Job:
        """The job once it has ended; ``WaitTimeoutError`` after ``timeout`` seconds."""
        self._require_running()
        watch = self._watch(job)
        subscriber = _SingleWait()
        if watch.done:
            return self._unwrap(self._outcome_of(watch))
        watch.subscribers.append(subscriber)
        try:
            with anyio.move_on_after(self._time_left(timeout)):
                await subscriber.event.wait()
        finally:
            if subscriber.outcome is None:
                self._unsubscribe(watch, subscriber)
        if subscriber.outcome is None:
            raise WaitTimeoutError(
                f"job {watch.job_id} did not end in time", job=watch.job, job_id=watch.job_id
            )
        return self._unwrap(subscriber.outcome)

    def as_completed(
        self,
        jobs: Iterable[JobRef],
        *,
        timeout: float | None = None,
        return_exceptions: bool = False,
    ) -> CompletionStream:
        """Each job as soon as it ends, each exactly once.

        An error for one job is raised from the iteration, or yielded in its
        place (``return_exceptions=True``; its ``job_id`` says which job).
        """
        self._require_running()
        return CompletionStream(self, list(jobs), timeout, return_exceptions)

    async def wait_all(
        self,
        jobs: Sequence[JobRef],
        *,
        timeout: float | None = None,
        return_exceptions: bool = False,
    ) -> list[Any]:
        """Every job once it has ended, in the order given."""
        ids = [job.id if isinstance(job, Job) else job for job in jobs]
        results: dict[str, Any] = {}
        async with self.as_completed(jobs, timeout=timeout, return_exceptions=True) as stream:
            async for outcome in stream:
                if isinstance(outcome, Job):
                    results[outcome.id] = outcome
                elif getattr(outcome, "job_id", None) is None:
                    raise outcome  # not about one job: rejected credentials, a closed waiter
                else:
                    results[outcome.job_id] = outcome
        ordered = [results[job_id] for job_id in ids]
        if not return_exceptions:
            for outcome in ordered:
                if isinstance(outcome, BaseException):
                    raise outcome
        return ordered

    def _time_left(self, timeout: float | None) -> float:
        limit = self._deadline_at - anyio.current_time()
        if timeout is not None:
            limit = min(limit, timeout)
        return max(0.0, limit)

    def _unwrap(self, outcome: Job | BaseException) -> Job:
        if isinstance(outcome, BaseException):
            raise outcome
        if self._raise_on_failure:
            outcome.raise_for_state()
        return outcome

    def _outcome_of(self, watch: _Watch) -> Job | BaseException:
        assert watch.job is not None or self._fatal is not None
        return watch.job if watch.job is not None else self._fatal  # type: ignore[return-value]

    def _unsubscribe(self, watch: _Watch, subscriber: _Subscriber) -> None:
        if subscriber in watch.subscribers:
            watch.subscribers.remove(subscriber)
        if not watch.subscribers and not watch.keep and not watch.done:
            # Nobody wants this job any more: stop polling it.
            watch.done = True
            self._watches.pop(watch.job_id, None)

    # -- callbacks ------------------------------------------------------------------------

    def notify(self, job: JobRef) -> bool:
        """News of a job from a callback: poll it now (or settle it, if callbacks are trusted).

        Returns whether the job was being watched. Duplicate and late news is harmless.
        """
        job_id = job.id if isinstance(job, Job) else job
        watch = self._watches.get(job_id)
        if watch is None or watch.done:
            return False
        self.stats.notified += 1
        if self._trust_callbacks and isinstance(job, Job) and job.state.is_terminal:
            self._observe(watch, job)
            return True
        self._reschedule(watch, 0.0)
        return True

    # -- scheduling ------------------------------------------------------------------------

    def _reschedule(self, watch: _Watch, delay: float) -> None:
        due = anyio.current_time() + delay
        watch.seq = next(self._seq)
        heapq.heappush(self._heap, (due, watch.seq, watch))
        if due < self._sleeping_until:
            self._wakeup.set()

    async def _schedule(self, send: MemoryObjectSendStream[_Watch]) -> None:
        async with send:
            while True:
                if not self._heap:
                    await self._sleep_until(math.inf)
                    continue
                due, seq, watch = self._heap[0]
                now = anyio.current_time()
                if due > now:
                    await self._sleep_until(due)
                    continue
                heapq.heappop(self._heap)
                if watch.done or watch.seq != seq:
                    continue  # settled, or rescheduled since this entry was pushed
                send_at = self._throttle.send_time(now)
                if send_at > now:
                    await anyio.sleep(send_at - now)
                await send.send(watch)

    async def _sleep_until(self, when: float) -> None:
        self._wakeup = anyio.Event()
        self._sleeping_until = when
        try:
            with anyio.move_on_after(when - anyio.current_time()):
                await self._wakeup.wait()
        finally:
            self._sleeping_until = math.inf

    async def _work(self, receive: MemoryObjectReceiveStream[_Watch]) -> None:
        async with receive:
            async for watch in receive:
                # A 429 may have paused the waiter after this job was handed over.
                pause = self._throttle.resume_at - anyio.current_time()
                if pause > 0:
                    await anyio.sleep(pause)
                if watch.done:
                    continue
                async with self._limiter:
                    await self._poll(watch)

    async def _poll(self, watch: _Watch) -> None:
        try:
            job = await self._client._get_job(watch.job_id, retry=False)
        except AuthenticationError as exc:
            self._fail_everything(exc)
        except MediaXError as exc:
            if not is_transient(exc):
                self._give_up(watch, exc)
                return
            self.stats.retries += 1
            watch.failures += 1
            retry_after = None
            if isinstance(exc, RateLimitError):
                self.stats.rate_limited += 1
                retry_after = exc.retry_after
                self._throttle.on_rate_limited(anyio.current_time(), retry_after)
                self._limiter.total_tokens = self._throttle.concurrency
            delay = backoff_delay(
                watch.failures,
                initial=_TRANSIENT_INITIAL,
                maximum=_TRANSIENT_MAX,
                multiplier=2.0,
                jitter="equal",
                draw=self._random.random(),
            )
            logger.debug("poll of %s failed (%s), next in %.2f s", watch.job_id, exc, delay)
            self._reschedule(watch, max(delay, retry_after or 0.0))
        except Exception as exc:
            # A bug, not a service problem: end this job's wait with it rather than lose it.
            logger.exception("unexpected error polling job %s", watch.job_id)
            self._give_up(watch, exc)
        else:
            self.stats.polls += 1
            watch.failures = 0
            self._throttle.on_success()
            if self._limiter.total_tokens != self._throttle.concurrency:
                self._limiter.total_tokens = self._throttle.concurrency
            self._observe(watch, job)

    def _next_poll_delay(self, watch: _Watch, retry_after: float | None) -> float:
        job = watch.job
        context = PollContext(
            polls=watch.polls,
            state=job.state if job is not None else None,
            elapsed=anyio.current_time() - watch.started,
            kind=job.kind if job is not None else None,
            retry_after=retry_after,
        )
        return self._policy.next_delay(context, self._random.random())

    def _observe(self, watch: _Watch, job: Job) -> None:
        if watch.done:
            return
        watch.polls += 1
        old = watch.job.state if watch.job is not None else None
        if old != job.state:
            watch.job = job
            self._call_hook(self._on_state_change, job, old, job.state)
        if job.state.is_terminal:
            watch.job = job
            self._finish(watch, job)
        else:
            self._reschedule(watch, self._next_poll_delay(watch, None))

    # -- outcomes ------------------------------------------------------------------------

    def _finish(self, watch: _Watch, job: Job) -> None:
        self.stats.settled += 1
        if job.state == State.COMPLETED:
            self.stats.completed += 1
        elif job.state == State.ERROR:
            self.stats.failed += 1
        else:
            self.stats.canceled += 1
        self._settle(watch, job)

    def _give_up(self, watch: _Watch, exc: BaseException) -> None:
        self.stats.errors += 1
        if isinstance(exc, MediaXError):
            exc.job_id = watch.job_id
        self._settle(watch, exc)

    def _fail_everything(self, exc: AuthenticationError) -> None:
        if self._fatal is None:
            self._fatal = exc
            logger.error("credentials rejected; ending every wait: %s", exc)
        for watch in list(self._watches.values()):
            if not watch.done:
                self.stats.errors += 1
                self._settle(watch, exc)

    def _settle(self, watch: _Watch, outcome: Job | BaseException) -> None:
        if watch.done:
            return
        watch.done = True
        subscribers, watch.subscribers = watch.subscribers, []
        self._watches.pop(watch.job_id, None)
        for subscriber in subscribers:
            subscriber.deliver(watch.job_id, outcome)
        self._call_hook(self._on_settled, watch.job_id, outcome)

    def _call_hook(self, hook: Callable[..., Any] | None, *args: Any) -> None:
        if hook is None:
            return
        try:
            result = hook(*args)
        except Exception:
            self.stats.hook_errors += 1
            logger.exception("a waiter hook raised; the waiter goes on")
            return
        if inspect.isawaitable(result) and self._task_group is not None:
            self._task_group.start_soon(self._await_hook, result)

    async def _await_hook(self, result: Any) -> None:
        try:
            await result
        except Exception:
            self.stats.hook_errors += 1
            logger.exception("a waiter hook raised; the waiter goes on")

    def __repr__(self) -> str:
        return f"JobWaiter(pending={len(self._watches)}, settled={self.stats.settled})"


class CompletionStream:
    """The jobs of ``JobWaiter.as_completed``, each as soon as it ends.

    Iterate it with ``async for``; use ``async with`` as well to stop
    watching the rest if you leave the loop early.
    """

    def __init__(
        self,
        waiter: JobWaiter,
        jobs: list[JobRef],
        timeout: float | None,
        return_exceptions: bool,
    ) -> None:
        self._waiter = waiter
        self._timeout_at = anyio.current_time() + timeout if timeout is not None else math.inf
        self._return_exceptions = return_exceptions
        self._subscriber = _StreamWait()
        self._remaining: dict[str, _Watch | None] = {}
        for job in jobs:
            watch = waiter._watch(job)
            if watch.job_id in self._remaining:
                continue  # the same job twice is yielded once
            if watch.done:
                self._remaining[watch.job_id] = None
                self._subscriber.deliver(watch.job_id, waiter._outcome_of(watch))
            else:
                self._remaining[watch.job_id] = watch
                watch.subscribers.append(self._subscriber)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        if not self._remaining:
            raise StopAsyncIteration
        limit = min(self._timeout_at, self._waiter._deadline_at) - anyio.current_time()
        with anyio.move_on_after(max(0.0, limit)):
            job_id, outcome = await self._subscriber.next()
            del self._remaining[job_id]
            if isinstance(outcome, BaseException):
                if self._return_exceptions:
                    return outcome
                raise outcome
            if self._waiter._raise_on_failure:
                if outcome.state == State.ERROR:
                    error: MediaXError = JobFailedError(outcome)
                elif outcome.state == State.CANCELED:
                    error = JobCanceledError(outcome)
                else:
                    return outcome
                if self._return_exceptions:
                    error.job_id = outcome.id
                    return error
                raise error
            return outcome
        waiting = list(self._remaining)
        self.close()
        raise WaitTimeoutError(f"{len(waiting)} job(s) did not end in time: {waiting[:5]}")

    async def __aenter__(self) -> CompletionStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop waiting for the jobs not yet yielded."""
        for watch in self._remaining.values():
            if watch is not None:
                self._waiter._unsubscribe(watch, self._subscriber)
        self._remaining.clear()
