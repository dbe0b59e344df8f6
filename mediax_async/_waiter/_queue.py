"""``DueQueue``: items ordered by due time, rescheduled in O(log n). Pure (times are arguments).

A heap of ``(due, seq, item)``. Rescheduling an item pushes a new entry and
bumps the item's ``seq``; the old entry stays in the heap until it surfaces
and is skipped (lazy deletion), which is cheaper than removing it. When
stale entries outnumber live ones the heap is rebuilt, so it never holds
more than about twice the live items.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import Generic, Protocol, TypeVar

__all__ = ["DueQueue", "Scheduled"]

_COMPACT_MIN = 1024


class Scheduled(Protocol):
    """What the queue needs of an item: a writable ``seq`` (0: not queued)."""

    seq: int


T = TypeVar("T", bound=Scheduled)


class DueQueue(Generic[T]):
    """Items by due time; each item is in the queue at most once."""

    __slots__ = ("_counter", "_heap", "_live")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, T]] = []
        self._counter = itertools.count(1)
        self._live = 0

    def __len__(self) -> int:
        """Items queued (each counted once)."""
        return self._live

    def schedule(self, item: T, due: float) -> None:
        """Queue ``item`` at ``due``, replacing its earlier place if it had one."""
        if not item.seq:
            self._live += 1
        seq = next(self._counter)
        item.seq = seq
        heapq.heappush(self._heap, (due, seq, item))
        if len(self._heap) > _COMPACT_MIN and len(self._heap) > 2 * self._live:
            self._compact()

    def remove(self, item: T) -> None:
        """Take ``item`` out of the queue (its entry is skipped when it surfaces)."""
        if item.seq:
            item.seq = 0
            self._live -= 1

    def pop_due(self, now: float) -> T | None:
        """The earliest item due at ``now`` or before, taken out of the queue; else None."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, seq, item = heapq.heappop(heap)
            if item.seq == seq:
                item.seq = 0
                self._live -= 1
                return item
        return None

    def next_due(self) -> float:
        """When the earliest item is due (``inf`` when the queue is empty)."""
        heap = self._heap
        while heap and heap[0][2].seq != heap[0][1]:
            heapq.heappop(heap)
        return heap[0][0] if heap else math.inf

    def _compact(self) -> None:
        self._heap = [entry for entry in self._heap if entry[2].seq == entry[1]]
        heapq.heapify(self._heap)
