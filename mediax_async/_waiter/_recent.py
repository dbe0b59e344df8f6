"""``Recent``: a bounded map that forgets its oldest entries, by count and by age. Pure."""

from __future__ import annotations

import collections
import math
from collections.abc import Iterator
from typing import Generic, TypeVar

__all__ = ["Recent"]

K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """The last ``size`` entries put, each for at most ``max_age`` (times are arguments).

    Putting a key again refreshes it (it becomes the newest).
    """

    __slots__ = ("_entries", "max_age", "size")

    def __init__(self, size: int, max_age: float = math.inf) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size = size
        self.max_age = max_age
        self._entries: collections.OrderedDict[K, tuple[float, V]] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[K]:
        return iter(self._entries)

    def put(self, key: K, value: V, now: float) -> None:
        """Keep ``value`` under ``key`` as of ``now``; forget the oldest past the size."""
        entries = self._entries
        entries[key] = (now, value)
        entries.move_to_end(key)
        while len(entries) > self.size:
            entries.popitem(last=False)

    def get(self, key: K, now: float) -> V | None:
        """The value under ``key``, unless it is older than ``max_age`` (then forgotten)."""
        found = self._entries.get(key)
        if found is None:
            return None
        if now - found[0] > self.max_age:
            del self._entries[key]
            return None
        return found[1]

    def pop(self, key: K, now: float) -> V | None:
        """Take the value under ``key`` out (None if absent or too old)."""
        value = self.get(key, now)
        if value is not None:
            del self._entries[key]
        return value

    def expire(self, now: float) -> None:
        """Forget every entry older than ``max_age``."""
        entries = self._entries
        while entries:
            key, (at, _) = next(iter(entries.items()))
            if now - at <= self.max_age:
                return
            del entries[key]
