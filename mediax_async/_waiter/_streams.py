"""The waiter's streams: ``as_completed`` (given jobs, each once) and ``completed()`` (all).

Each takes what it needs from the waiter as arguments (the interest table,
and a few callables), never the waiter's own attributes.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import Generic, TypeVar, cast

import anyio

from .._enums import State
from .._exceptions import JobCanceledError, JobFailedError, MediaXError, WaitTimeoutError
from .._models import Job
from ._interest import Interest, Queue, StreamWait
from ._store import PendingStore, ResultEntry, Settlement

__all__ = ["CompletionStream", "ResultStream", "job_error"]

T = TypeVar("T")

JobRef = Job | str


def job_error(job: Job) -> MediaXError | None:
    """The error ``raise_on_failure`` makes of a job that ended ERROR or CANCELED."""
    error: MediaXError
    if job.state == State.ERROR:
        error = JobFailedError(job)
    elif job.state == State.CANCELED:
        error = JobCanceledError(job)
    else:
        return None
    error.job_id = job.id
    return error


class CompletionStream(Generic[T]):
    """The jobs of ``JobWaiter.as_completed``, each as soon as it ends.

    Iterate it with ``async for``. Leaving the loop early by an exception or
    a cancellation stops watching the rest; after a ``break``, use
    ``async with`` (or ``close()``) to do the same at once.
    """

    def __init__(
        self,
        *,
        interest: Interest,
        jobs: Sequence[tuple[str, Job | None]],
        start: Callable[[Sequence[tuple[str, Job | None]]], Awaitable[None]],
        release: Callable[[str, StreamWait], None],
        time_left: Callable[[float], float],
        timeout: float | None,
        timeout_error: Callable[[list[str]], WaitTimeoutError],
        raise_on_failure: bool,
        return_exceptions: bool,
    ) -> None:
        self._interest = interest
        self._release = release
        self._time_left = time_left
        self._timeout_error = timeout_error
        self._timeout_at = anyio.current_time() + timeout if timeout is not None else math.inf
        self._raise_on_failure = raise_on_failure
        self._return_exceptions = return_exceptions
        self._subscriber = StreamWait()
        self._remaining: dict[str, None] = {}
        todo = []
        for job_id, job in jobs:
            if job_id in self._remaining:
                continue  # the same job twice is yielded once
            self._remaining[job_id] = None
            interest.subscribe(job_id, self._subscriber, job)
            todo.append((job_id, job))
        self._todo: Sequence[tuple[str, Job | None]] | None = todo
        self._start = start

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def _begin(self) -> None:
        if self._todo is not None:
            todo, self._todo = self._todo, None
            await self._start(todo)

    async def __anext__(self) -> T:
        try:
            await self._begin()
            if not self._remaining:
                raise StopAsyncIteration
            with anyio.move_on_after(self._time_left(self._timeout_at)):
                job_id, outcome = await self._subscriber.queue.get()
                self._remaining.pop(job_id, None)
                item = self._item(outcome)
                if isinstance(item, BaseException) and not self._return_exceptions:
                    raise item
                return cast(T, item)
        except StopAsyncIteration:
            raise
        except BaseException:
            self.close()  # abandoned (cancelled, or an error raised to the reader)
            raise
        waiting = list(self._remaining)
        self.close()
        raise self._timeout_error(waiting)

    def _item(self, outcome: Job | BaseException) -> Job | BaseException:
        if isinstance(outcome, BaseException) or not self._raise_on_failure:
            return outcome
        return job_error(outcome) or outcome

    async def __aenter__(self) -> CompletionStream[T]:
        await self._begin()  # watched from here on, read or not
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop waiting for the jobs not yet yielded."""
        remaining, self._remaining = self._remaining, {}
        self._todo = None
        for job_id in remaining:
            self._release(job_id, self._subscriber)

    def __del__(self) -> None:
        if getattr(self, "_remaining", None):
            with contextlib.suppress(Exception):  # at interpreter shutdown, nothing to release
                self.close()


def default_consumer() -> str:
    """A consumer name unique to this process: host, pid and a random part."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class ResultStream:
    """``JobWaiter.completed()``: every job the waiter settles, as ``Settlement`` s, open-ended.

    Without a group, each reader gets every settlement from the moment the
    stream was made. With a ``group`` (a name), the readers of that group,
    in any process sharing the store, split the settlements between them;
    each is acknowledged once its reader asks for the next ones, and given to
    another reader if its reader dies first. The stream ends when the waiter
    closes, or on ``close()``.
    """

    _BATCH = 64
    _BLOCK = 1.0

    def __init__(
        self,
        *,
        interest: Interest,
        store: PendingStore,
        group: str | None,
        consumer: str | None,
        running: Callable[[], bool],
    ) -> None:
        self._interest = interest
        self._store = store
        self._group = group
        self._consumer = consumer or default_consumer()
        self._running = running
        self._closed = False
        self._queue: Queue[Settlement | None] | None = None
        self._buffer: list[ResultEntry] = []
        self._unacked: list[str] = []
        if group is None:
            self._queue = Queue()
            interest.add_reader(self._queue)

    @property
    def group(self) -> str | None:
        """The consumer group, or None for a reader of its own."""
        return self._group

    def __aiter__(self) -> AsyncIterator[Settlement]:
        return self

    async def __anext__(self) -> Settlement:
        if self._closed:
            raise StopAsyncIteration
        if self._queue is not None:
            item = await self._queue.get()
            if item is None:
                raise StopAsyncIteration
            return item
        assert self._group is not None  # a group reader has no queue
        while not self._buffer:
            await self.ack()
            if not self._running():
                raise StopAsyncIteration
            self._buffer = await self._store.read_results(
                self._group, self._consumer, self._BATCH, self._BLOCK
            )
            self._buffer.reverse()
        entry = self._buffer.pop()
        self._unacked.append(entry.entry_id)
        return entry.settlement

    async def ack(self) -> None:
        """Acknowledge every settlement read so far (done before each new read anyway)."""
        if self._unacked and self._group is not None:
            ids, self._unacked = self._unacked, []
            await self._store.ack_results(self._group, ids)

    async def __aenter__(self) -> ResultStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            with anyio.CancelScope(shield=True):
                await self.ack()
        await self.aclose()

    async def aclose(self) -> None:
        """Stop reading; settlements read but not acknowledged go to another reader later."""
        self._closed = True
        if self._queue is not None:
            self._interest.remove_reader(self._queue)
        # Unread buffered entries stay unacknowledged: the group delivers them again.
        self._buffer = []

    def __repr__(self) -> str:
        return f"ResultStream(group={self._group!r}, consumer={self._consumer!r})"
