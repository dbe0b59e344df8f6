"""``ResultLog``: the results stream of a store in memory, with consumer groups. Pure.

Entries are numbered from 1. A group delivers each entry to one of its
consumers and delivers it again to any consumer once it has gone
unacknowledged for ``claim_idle`` seconds (at-least-once, as a Redis
consumer group). Followers read every entry after a cursor. Entries are
kept while a group may still need them (up to ``hard_limit``), and the
last ``keep`` always.
"""

from __future__ import annotations

import collections
import math

from ._store import ResultEntry, Settlement

__all__ = ["ResultLog"]


class _Group:
    __slots__ = ("next", "pending")

    def __init__(self, start: int) -> None:
        self.next = start
        # entry number -> (consumer, delivered at)
        self.pending: dict[int, tuple[str, float]] = {}


class ResultLog:
    """Settlements in the order they were recorded."""

    def __init__(
        self, keep: int = 10_000, claim_idle: float = 60.0, hard_limit: int = 1_000_000
    ) -> None:
        self._entries: collections.deque[ResultEntry] = collections.deque()
        self._first = 1  # number of the oldest entry kept
        self._next = 1  # number the next entry gets
        self._groups: dict[str, _Group] = {}
        self._keep = keep
        self._hard_limit = max(keep, hard_limit)
        self.claim_idle = claim_idle

    @property
    def end(self) -> int:
        """The number of the last entry (0 before the first)."""
        return self._next - 1

    def append(self, settlement: Settlement) -> ResultEntry:
        """Record ``settlement`` as the newest entry."""
        entry = ResultEntry(str(self._next), settlement)
        self._entries.append(entry)
        self._next += 1
        self._trim()
        return entry

    def follow(self, after: int, count: int) -> list[ResultEntry]:
        """Up to ``count`` entries after number ``after`` (those still kept)."""
        start = max(after + 1, self._first)
        stop = min(self._next, start + count)
        return [self._entries[n - self._first] for n in range(start, stop)]

    def read(self, group: str, consumer: str, count: int, now: float) -> list[ResultEntry]:
        """Up to ``count`` entries for ``consumer``: overdue redeliveries first, then new ones."""
        state = self._groups.get(group)
        if state is None:
            state = self._groups[group] = _Group(self._first)
        found: list[ResultEntry] = []
        for number, (_, delivered) in list(state.pending.items()):
            if len(found) >= count:
                break
            if now - delivered >= self.claim_idle and number >= self._first:
                state.pending[number] = (consumer, now)
                found.append(self._entries[number - self._first])
        while len(found) < count and state.next < self._next:
            number = max(state.next, self._first)
            state.next = number + 1
            state.pending[number] = (consumer, now)
            found.append(self._entries[number - self._first])
        return found

    def ack(self, group: str, entry_ids: list[str]) -> None:
        """Acknowledge entries of ``group``; they are not delivered again."""
        state = self._groups.get(group)
        if state is None:
            return
        for entry_id in entry_ids:
            state.pending.pop(int(entry_id), None)
        self._trim()

    def next_redelivery(self, group: str, now: float) -> float:
        """Seconds until an unacknowledged entry of ``group`` may be delivered again."""
        state = self._groups.get(group)
        if state is None or not state.pending:
            return math.inf
        oldest = min(delivered for _, delivered in state.pending.values())
        return max(0.0, oldest + self.claim_idle - now)

    def has_new(self, group: str) -> bool:
        """Whether ``group`` has entries not delivered yet."""
        state = self._groups.get(group)
        return state is None or state.next < self._next

    def _trim(self) -> None:
        needed = self._next
        for state in self._groups.values():
            needed = min(needed, state.next)
            if state.pending:
                needed = min(needed, min(state.pending))
        # A group nobody reads any more must not hold every entry for ever.
        limit = max(min(needed, self._next - self._keep), self._next - self._hard_limit)
        while self._first < limit:
            self._entries.popleft()
            self._first += 1
