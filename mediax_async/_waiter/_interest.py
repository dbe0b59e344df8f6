"""Who in this process waits for which job, and how an outcome reaches them.

The store knows every watched job; this knows only the waits of this
process: single waits, ``as_completed`` streams and ``completed()`` readers.
Every wait that ends with an error gets an exception object of its own, so
200 waits ended by one rejected key do not share (and grow) one traceback.
"""

from __future__ import annotations

import collections
import copy
from collections.abc import Callable, Iterable
from typing import Generic, Protocol, TypeVar

import anyio

from .._models import Job
from ._store import Settlement

__all__ = ["Interest", "Queue", "SingleWait", "StreamWait", "Subscriber", "fresh"]

T = TypeVar("T")


def fresh(outcome: Job | BaseException) -> Job | BaseException:
    """``outcome``, or for an error a copy of it with no traceback yet (one per wait)."""
    if not isinstance(outcome, BaseException):
        return outcome
    try:
        error = copy.copy(outcome)
    except Exception:  # an exception type that cannot be copied: share it, rather than fail
        return outcome
    error.__traceback__ = None
    return error


class Subscriber(Protocol):
    """Someone waiting for one or more jobs: a single wait, or a stream."""

    def deliver(self, job_id: str, outcome: Job | BaseException) -> None:
        """Hand over ``job_id``'s outcome (a terminal job, or the error that ended its wait)."""


class SingleWait:
    """One ``wait()``: the first outcome it is given."""

    __slots__ = ("event", "outcome")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.outcome: Job | BaseException | None = None

    def deliver(self, job_id: str, outcome: Job | BaseException) -> None:
        if self.outcome is None:
            self.outcome = outcome
            self.event.set()


class Queue(Generic[T]):
    """An unbounded queue one task reads (a stream's outcomes)."""

    __slots__ = ("_arrived", "_items")

    def __init__(self) -> None:
        self._items: collections.deque[T] = collections.deque()
        self._arrived = anyio.Event()

    def put(self, item: T) -> None:
        self._items.append(item)
        self._arrived.set()

    def __len__(self) -> int:
        return len(self._items)

    async def get(self) -> T:
        while not self._items:
            self._arrived = anyio.Event()
            await self._arrived.wait()
        return self._items.popleft()


class StreamWait:
    """The outcomes of an ``as_completed`` stream, queued for its reader."""

    __slots__ = ("queue",)

    def __init__(self) -> None:
        self.queue: Queue[tuple[str, Job | BaseException]] = Queue()

    def deliver(self, job_id: str, outcome: Job | BaseException) -> None:
        self.queue.put((job_id, outcome))


class Interest:
    """The waits of this process by job id, the last job each has seen, and every reader."""

    def __init__(self) -> None:
        self._waits: dict[str, list[Subscriber]] = {}
        # added or submitted (with its submission key): watched even with nobody waiting
        self._kept: dict[str, str | None] = {}
        self._seen: dict[str, Job] = {}
        self._readers: set[Queue[Settlement | None]] = set()

    def __contains__(self, job_id: str) -> bool:
        return job_id in self._waits

    def __len__(self) -> int:
        return len(self._waits)

    def subscribe(self, job_id: str, subscriber: Subscriber, seen: Job | None = None) -> None:
        """``subscriber`` waits for ``job_id`` (``seen``: the job as the caller knows it)."""
        waits = self._waits.get(job_id)
        if waits is None:
            self._waits[job_id] = [subscriber]
        else:
            waits.append(subscriber)
        if seen is not None and job_id not in self._seen:
            self._seen[job_id] = seen

    def unsubscribe(self, job_id: str, subscriber: Subscriber) -> bool:
        """``subscriber`` no longer waits; whether anyone still waits for ``job_id``."""
        waits = self._waits.get(job_id)
        if waits is None:
            return False
        if subscriber in waits:
            waits.remove(subscriber)
        if waits:
            return True
        del self._waits[job_id]
        self._seen.pop(job_id, None)
        return False

    def saw(self, job: Job) -> None:
        """A poll saw ``job``: the last seen, for a wait that times out."""
        if job.id in self._waits:
            self._seen[job.id] = job

    def last_seen(self, job_id: str) -> Job | None:
        """The last job seen of ``job_id`` while someone waited for it."""
        return self._seen.get(job_id)

    def keep(self, job_id: str, key: str | None = None) -> None:
        """The waiter itself wants ``job_id`` until it ends (added, or submitted as ``key``)."""
        if key is not None or job_id not in self._kept:
            self._kept[job_id] = key

    def kept(self, job_id: str) -> bool:
        """Whether ``job_id`` is watched until it ends, waited for or not."""
        return job_id in self._kept

    def kept_key(self, job_id: str) -> str | None:
        """The submission key of a kept job (None: added, or not kept)."""
        return self._kept.get(job_id)

    def wanted(self) -> list[str]:
        """Every job this process waits for or keeps, each once."""
        return list(dict.fromkeys([*self._waits, *self._kept]))

    def deliver(self, job_id: str, outcome: Job | BaseException) -> None:
        """End every wait for ``job_id`` with ``outcome`` (it has ended: no longer kept)."""
        self._kept.pop(job_id, None)
        waits = self._waits.pop(job_id, None)
        self._seen.pop(job_id, None)
        if waits is not None:
            for subscriber in waits:
                subscriber.deliver(job_id, fresh(outcome))

    def deliver_to_all(self, error: BaseException | Callable[[str], BaseException]) -> None:
        """End every wait of this process with ``error`` (each its own copy), or ``error(id)``."""
        for job_id in list(self._waits):
            self.deliver(job_id, error(job_id) if callable(error) else error)

    def waited(self) -> Iterable[str]:
        """The ids someone waits for."""
        return self._waits.keys()

    # -- completed() readers

    def add_reader(self, reader: Queue[Settlement | None]) -> None:
        """``reader`` gets every settlement from now on (None: the end)."""
        self._readers.add(reader)

    def remove_reader(self, reader: Queue[Settlement | None]) -> None:
        """``reader`` is done."""
        self._readers.discard(reader)

    def broadcast(self, settlement: Settlement) -> None:
        """Hand ``settlement`` to every reader."""
        for reader in self._readers:
            reader.put(settlement)

    def fail_readers(self, error: BaseException) -> None:
        """Every reader ends with ``error`` (each its own copy), after what it was given."""
        for reader in self._readers:
            reader.put(fresh(error))  # type: ignore[arg-type]
        self._readers.clear()

    def end_readers(self) -> None:
        """The waiter closed: every reader stops after what it was given."""
        for reader in self._readers:
            reader.put(None)
        self._readers.clear()
