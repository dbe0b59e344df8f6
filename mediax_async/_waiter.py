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
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar, cast, overload

import anyio
import anyio.lowlevel
import attrs
from anyio.abc import TaskGroup

from ._constants import CUSTOM_ID_PREFIX, DEFAULT_WAITER_CONCURRENCY
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
from ._policies import PollContext, PollPolicy, PollStrategy
from ._throttle import Throttle
from ._transport import is_transient, logger
from ._validation import lenient

if TYPE_CHECKING:
    from ._client import MediaXClient

__all__ = ["JobWaiter", "WaiterStats"]

T = TypeVar("T")

JobRef = Job | str
"""A job to wait for: a ``Job`` or its id."""

StateHook = Callable[[Job, "State | None", State], Any]
"""``on_state_change(job, old_state, new_state)``: plain or async."""
SettledHook = Callable[[str, "Job | BaseException"], Any]
"""``on_settled(job_id, job_or_error)``: plain or async."""

_NO_TIMEKEEPER = -math.inf
_LIST_WORTH_JOBS = 20
_RECENTLY_SETTLED = 4096
"""Ids of the last jobs settled, so that one handed back finished is not counted twice."""


@attrs.define
class WaiterStats:
    """What a waiter has done so far."""

    polls: int = 0
    """GetJob requests answered with a job."""
    list_polls: int = 0
    """ListJobs requests that refreshed a batch of jobs sharing a custom id."""
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


class _Subscriber(Protocol):
    """Someone waiting for one or more jobs: a single wait, or a stream."""

    def deliver(self, job_id: str, outcome: Job | BaseException) -> None:
        """Hand over ``job_id``'s outcome (a terminal job, or the error that ended its wait)."""


class _SingleWait:
    __slots__ = ("event", "outcome")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.outcome: Job | BaseException | None = None

    def deliver(self, job_id: str, outcome: Job | BaseException) -> None:
        if self.outcome is None:
            self.outcome = outcome
            self.event.set()


class _StreamWait:
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
    """One watched job: what the scheduler needs, kept small (100k of these must fit).

    It does not keep every answer: while a job runs only its state and timing
    change, so the last job seen is the first one (``template``, often the
    caller's own object) with the last state and timing put back.
    """

    __slots__ = (
        "done",
        "failures",
        "job_id",
        "keep",
        "notified",
        "outcome",
        "polls",
        "seq",
        "started",
        "state",
        "subscribers",
        "template",
        "timing",
    )

    def __init__(self, job_id: str, job: Job | None, started: float) -> None:
        self.job_id = job_id
        self.template = job
        self.state = job.state if job is not None else None
        self.timing = job.timing if job is not None else None
        self.started = started
        self.polls = 0
        self.failures = 0
        self.seq = 0
        self.done = False
        self.keep = False
        # News from a callback: refresh by id at once, and again if a poll was in flight.
        self.notified = False
        self.outcome: Job | BaseException | None = None
        self.subscribers: list[_Subscriber] | None = None

    @property
    def job(self) -> Job | None:
        """The last job seen (None before the first answer for a bare id)."""
        template = self.template
        if template is None or (template.state == self.state and template.timing == self.timing):
            return template
        assert self.state is not None  # set together with the template
        with lenient():  # the service's values, not a user's: no construction checks
            return attrs.evolve(template, state=self.state, timing=self.timing)

    def subscribe(self, subscriber: _Subscriber) -> None:
        if self.subscribers is None:
            self.subscribers = [subscriber]
        else:
            self.subscribers.append(subscriber)

    def unsubscribe(self, subscriber: _Subscriber) -> bool:
        """Remove ``subscriber``; whether anyone is still waiting."""
        if self.subscribers is not None and subscriber in self.subscribers:
            self.subscribers.remove(subscriber)
        return bool(self.subscribers)


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

    Jobs that share a custom id (a batch tag) are refreshed together with one
    ListJobs request instead of one GetJob each (``batch_polling``); a job
    ListJobs fails to return is asked for by id.
    """

    def __init__(
        self,
        client: MediaXClient,
        *,
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
    ) -> None:
        if deadline is not None and not deadline > 0:
            raise ValueError(f"deadline must be > 0 seconds, got {deadline!r}")
        self._client = client
        self._policy: PollStrategy = policy or PollPolicy()
        self._throttle = Throttle(max_concurrency=max_concurrency, max_rate=max_rate)
        self._deadline = deadline
        self._deadline_at = math.inf
        self._raise_on_failure = raise_on_failure
        self._trust_callbacks = trust_callbacks
        self._batch_polling = batch_polling
        # Watches by custom id (one watch, or an ordered set of several), and how
        # many jobs ListJobs last returned for a custom id.
        self._tags: dict[str, _Watch | dict[_Watch, None]] = {}
        self._tag_totals: dict[str, int] = {}
        self._on_state_change = on_state_change
        self._on_settled = on_settled
        self._recently_settled: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._random = rng or random.Random()
        self._watches: dict[str, _Watch] = {}
        self._heap: list[tuple[float, int, _Watch]] = []
        self._seq = itertools.count(1)
        self._timekeeper_due = _NO_TIMEKEEPER
        self._timekeeper_wakeup = anyio.Event()
        self._parked: collections.deque[anyio.Event] = collections.deque()
        self._fatal: BaseException | None = None
        self._task_group: TaskGroup | None = None
        self._closed = False
        self._pending_at_close: list[dict[str, Any]] | None = None
        self._limiter = anyio.CapacityLimiter(max_concurrency)
        self.stats = WaiterStats()
        """Counts of polls, retries, errors, 429s and settled jobs."""

    # -- lifecycle --------------------------------------------------------------

    async def __aenter__(self) -> JobWaiter:
        if self._task_group is not None or self._closed:
            raise RuntimeError("a JobWaiter can be entered only once")
        if self._deadline is not None:
            self._deadline_at = anyio.current_time() + self._deadline
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        for _ in range(self._throttle.max_concurrency):
            task_group.start_soon(self._work)
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
        self._pending_at_close = self.pending()  # still there for pending() after the block
        for watch in list(self._watches.values()):
            error = WaiterClosedError(f"the waiter closed before job {watch.job_id} ended")
            error.job_id = watch.job_id
            self._settle(watch, error)

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
        """The jobs still being watched, as JSON-able data for ``resume()`` after a restart.

        After the waiter has closed, the jobs it was still watching when it closed.
        """
        if self._pending_at_close is not None:
            return list(self._pending_at_close)
        records = []
        for watch in self._watches.values():
            if watch.done:
                continue
            template = watch.template
            records.append(
                {
                    "id": watch.job_id,
                    "customId": template.custom_id if template is not None else None,
                    "state": int(watch.state) if watch.state is not None else None,
                    "kind": template.kind if template is not None else None,
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
        self._tag_add(watch)
        if job is not None and job.state.is_terminal:
            self._settle(watch, job)
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
        watch.subscribe(subscriber)
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
        return CompletionStream(self, list(jobs), timeout, return_exceptions)

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
        ids = [job.id if isinstance(job, Job) else job for job in jobs]
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
        assert watch.outcome is not None  # only asked of settled watches
        return watch.outcome

    def _unsubscribe(self, watch: _Watch, subscriber: _Subscriber) -> None:
        if not watch.unsubscribe(subscriber) and not watch.keep and not watch.done:
            # Nobody wants this job any more: stop polling it.
            watch.done = True
            self._watches.pop(watch.job_id, None)
            self._tag_remove(watch)

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
        watch.notified = True
        self._reschedule(watch, 0.0)
        return True

    # -- scheduling ------------------------------------------------------------------------
    #
    # The workers share one heap of (due time, sequence, watch). A worker takes the
    # earliest due job itself, so a busy waiter hands nothing between tasks. An idle
    # worker parks: one of them (the timekeeper) sleeps until the earliest due time,
    # the others until woken, so a due job wakes one worker, not all of them.

    def _reschedule(self, watch: _Watch, delay: float) -> None:
        due = anyio.current_time() + delay
        watch.seq = next(self._seq)
        heapq.heappush(self._heap, (due, watch.seq, watch))
        if due < self._timekeeper_due:
            self._timekeeper_wakeup.set()
        elif self._timekeeper_due == _NO_TIMEKEEPER and self._parked:
            self._parked.popleft().set()

    def _take_due(self, now: float) -> _Watch | None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, seq, watch = heapq.heappop(heap)
            if not watch.done and watch.seq == seq:
                return watch
            # Otherwise settled, or rescheduled since this entry was pushed.
        return None

    async def _park(self) -> None:
        if self._timekeeper_due == _NO_TIMEKEEPER:
            due = self._heap[0][0] if self._heap else math.inf
            self._timekeeper_due = due
            self._timekeeper_wakeup = anyio.Event()
            try:
                with anyio.move_on_after(due - anyio.current_time()):
                    await self._timekeeper_wakeup.wait()
            finally:
                self._timekeeper_due = _NO_TIMEKEEPER
                # Someone else must keep time while this worker polls.
                if self._parked:
                    self._parked.popleft().set()
        else:
            wakeup = anyio.Event()
            self._parked.append(wakeup)
            try:
                await wakeup.wait()
            finally:
                if not wakeup.is_set():
                    self._parked.remove(wakeup)

    async def _work(self) -> None:
        throttle = self._throttle
        while True:
            # A poll through an in-process transport may never suspend: yield once per
            # poll so that a zero-delay policy cannot starve the rest of the program.
            await anyio.lowlevel.checkpoint()
            now = anyio.current_time()
            watch = self._take_due(now)
            if watch is None:
                await self._park()
                continue
            if self._heap and self._parked and self._heap[0][0] <= now:
                self._parked.popleft().set()  # more is due: bring another worker in
            send_at = throttle.send_time(now)
            if send_at > now:
                await anyio.sleep(send_at - now)  # a rate cap, or a pause after a 429
                if watch.done:
                    continue
            if throttle.concurrency < throttle.max_concurrency:
                async with self._limiter:
                    await self._refresh(watch)
            else:
                await self._refresh(watch)

    async def _refresh(self, watch: _Watch) -> None:
        # A callback names one job: ask for that one, not for its whole batch.
        tag = None if watch.notified else self._batch_tag(watch)
        if tag is None:
            await self._poll(watch)
        else:
            await self._poll_batch(watch, tag)

    # -- batch polling through ListJobs ------------------------------------------------

    def _tag_add(self, watch: _Watch) -> None:
        tag = watch.template.custom_id if watch.template is not None else None
        if not self._batch_polling or not tag or tag.startswith(CUSTOM_ID_PREFIX):
            return  # the client's own custom ids are unique: no batch to share
        current = self._tags.get(tag)
        if current is None:
            self._tags[tag] = watch
        elif isinstance(current, _Watch):
            if current is not watch:
                self._tags[tag] = {current: None, watch: None}
        else:
            current[watch] = None

    def _tag_remove(self, watch: _Watch) -> None:
        tag = watch.template.custom_id if watch.template is not None else None
        if not tag:
            return
        current = self._tags.get(tag)
        if current is watch:
            del self._tags[tag]
            self._tag_totals.pop(tag, None)
        elif isinstance(current, dict):
            current.pop(watch, None)
            if len(current) == 1:
                self._tags[tag] = next(iter(current))

    def _batch_tag(self, watch: _Watch) -> str | None:
        """The custom id to refresh ``watch`` through, when a ListJobs is worth it."""
        tag = watch.template.custom_id if watch.template is not None else None
        if not tag:
            return None
        group = self._tags.get(tag)
        if not isinstance(group, dict):
            return None
        # ListJobs returns every job with the tag, finished ones too. A request costs
        # about as much as decoding 20-30 jobs, so once fewer than one listed job in
        # 20 is still pending, asking for those one by one is cheaper.
        listed = self._tag_totals.get(tag, 0)
        return tag if len(group) * _LIST_WORTH_JOBS >= listed else None

    async def _poll_batch(self, watch: _Watch, tag: str) -> None:
        try:
            jobs = await self._client._list_jobs(tag, retry=False)
        except AuthenticationError as exc:
            self._fail_everything(exc)
            return
        except Exception as exc:
            logger.debug("ListJobs for %s failed (%s); asking by id", tag, exc)
            await self._poll(watch)
            return
        self.stats.list_polls += 1
        self._throttle.on_success()
        self._tag_totals[tag] = len(jobs)
        seen = False
        for job in jobs:
            member = self._watches.get(job.id)
            if member is None or member.done:
                continue  # not ours, or settled: a custom id is not unique
            member.failures = 0
            self._observe(member, job)
            seen = seen or member is watch
        if not seen and not watch.done:
            await self._poll(watch)  # the list omitted it: ask for it by id

    async def _poll(self, watch: _Watch) -> None:
        watch.notified = False  # news that arrives while this poll is in flight sets it again
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
            delay = self._policy.error_delay(watch.failures, self._random.random())
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
        template = watch.template
        context = PollContext(
            polls=watch.polls,
            state=watch.state,
            elapsed=anyio.current_time() - watch.started,
            kind=template.kind if template is not None else None,
            retry_after=retry_after,
        )
        return self._policy.next_delay(context, self._random.random())

    def _observe(self, watch: _Watch, job: Job) -> None:
        if watch.done:
            return
        watch.polls += 1
        old = watch.state
        if watch.template is None:
            watch.template = job
            self._tag_add(watch)
        watch.state = job.state
        watch.timing = job.timing
        if old != job.state:
            self._call_hook(self._on_state_change, job, old, job.state)
        if job.state.is_terminal:
            self._settle(watch, job)
        elif watch.notified:
            self._reschedule(watch, 0.0)  # a callback came while this answer was on its way
        else:
            self._reschedule(watch, self._next_poll_delay(watch, None))

    # -- outcomes ------------------------------------------------------------------------

    def _give_up(self, watch: _Watch, exc: BaseException) -> None:
        if isinstance(exc, MediaXError):
            exc.job_id = watch.job_id
        self._settle(watch, exc)

    def _fail_everything(self, exc: AuthenticationError) -> None:
        if self._fatal is None:
            self._fatal = exc
            logger.error("credentials rejected; ending every wait: %s", exc)
        for watch in list(self._watches.values()):
            self._settle(watch, exc)

    def _settle(self, watch: _Watch, outcome: Job | BaseException) -> None:
        """End ``watch`` with ``outcome``: every wait for it gets it.

        The first time this waiter settles a job it also counts it, lets the
        policy learn from it and reports it to ``on_settled``; a job waited for
        again after it settled here (say, from as_completed to wait_all) is
        only handed back.
        """
        if watch.done:
            return
        watch.done = True
        watch.outcome = outcome
        subscribers, watch.subscribers = watch.subscribers or [], None
        self._watches.pop(watch.job_id, None)
        self._tag_remove(watch)
        first = watch.job_id not in self._recently_settled
        if first:
            self._recently_settled[watch.job_id] = None
            if len(self._recently_settled) > _RECENTLY_SETTLED:
                self._recently_settled.popitem(last=False)
            self._count(outcome)
        for subscriber in subscribers:
            subscriber.deliver(watch.job_id, outcome)
        if first:
            self._call_hook(self._on_settled, watch.job_id, outcome)

    def _count(self, outcome: Job | BaseException) -> None:
        if isinstance(outcome, WaiterClosedError):
            return  # the waiter ended, not the job
        if not isinstance(outcome, Job):
            self.stats.errors += 1
            return
        self.stats.settled += 1
        self._policy.observe(outcome)
        if outcome.state == State.COMPLETED:
            self.stats.completed += 1
        elif outcome.state == State.ERROR:
            self.stats.failed += 1
        else:
            self.stats.canceled += 1

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


class CompletionStream(Generic[T]):
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
                watch.subscribe(self._subscriber)

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        if not self._remaining:
            raise StopAsyncIteration
        limit = min(self._timeout_at, self._waiter._deadline_at) - anyio.current_time()
        with anyio.move_on_after(max(0.0, limit)):
            job_id, outcome = await self._subscriber.next()
            del self._remaining[job_id]
            item = self._item(outcome)
            if isinstance(item, BaseException) and not self._return_exceptions:
                raise item
            return cast(T, item)
        waiting = list(self._remaining)
        self.close()
        raise WaitTimeoutError(f"{len(waiting)} job(s) did not end in time: {waiting[:5]}")

    def _item(self, outcome: Job | BaseException) -> Job | BaseException:
        if isinstance(outcome, BaseException) or not self._waiter._raise_on_failure:
            return outcome
        error: MediaXError
        if outcome.state == State.ERROR:
            error = JobFailedError(outcome)
        elif outcome.state == State.CANCELED:
            error = JobCanceledError(outcome)
        else:
            return outcome
        error.job_id = outcome.id
        return error

    async def __aenter__(self) -> CompletionStream[T]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop waiting for the jobs not yet yielded."""
        for watch in self._remaining.values():
            if watch is not None:
                self._waiter._unsubscribe(watch, self._subscriber)
        self._remaining.clear()
