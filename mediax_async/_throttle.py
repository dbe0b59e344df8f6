"""How hard a waiter may poll: a shared request-rate cap and its response to 429s. Pure.

After a 429 the whole waiter pauses (for the ``Retry-After``, or a backoff
when there is none) and halves its concurrency and rate; each success then
wins back a step, so it recovers gradually instead of hitting the limit again
at full speed (additive increase, multiplicative decrease).
"""

from __future__ import annotations

import attrs

__all__ = ["Throttle"]

_MIN_PAUSE = 1.0
_MAX_PAUSE = 60.0


@attrs.define
class Throttle:
    """The waiter's current pace; times are seconds on the waiter's clock."""

    max_concurrency: int
    max_rate: float | None = None
    recovery_successes: int = 10
    """Successes needed to win back one step of concurrency."""

    concurrency: int = attrs.field(init=False)
    rate_factor: float = attrs.field(init=False, default=1.0)
    resume_at: float = attrs.field(init=False, default=0.0)
    _successes: int = attrs.field(init=False, default=0)
    _strikes: int = attrs.field(init=False, default=0)
    _next_send: float = attrs.field(init=False, default=0.0)

    def __attrs_post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {self.max_concurrency}")
        if self.max_rate is not None and not self.max_rate > 0:
            raise ValueError(f"max_rate must be > 0 requests per second, got {self.max_rate}")
        self.concurrency = self.max_concurrency

    @property
    def rate(self) -> float | None:
        """Requests per second allowed now (None: no cap)."""
        return None if self.max_rate is None else self.max_rate * self.rate_factor

    def send_time(self, now: float) -> float:
        """When the next request may go, and book that slot."""
        at = max(now, self.resume_at, self._next_send)
        rate = self.rate
        if rate is not None:
            self._next_send = at + 1.0 / rate
        return at

    def on_rate_limited(self, now: float, retry_after: float | None) -> None:
        """A 429: pause everyone and halve the pace."""
        self._strikes += 1
        self._successes = 0
        pause = retry_after
        if pause is None:
            pause = min(_MAX_PAUSE, _MIN_PAUSE * 2 ** (self._strikes - 1))
        self.resume_at = max(self.resume_at, now + pause)
        self.concurrency = max(1, self.concurrency // 2)
        self.rate_factor = max(1 / 64, self.rate_factor / 2)

    def on_success(self) -> None:
        """An answered request: step back towards full pace."""
        self._strikes = 0
        if self.concurrency >= self.max_concurrency and self.rate_factor >= 1.0:
            return
        self._successes += 1
        if self._successes >= self.recovery_successes:
            self._successes = 0
            self.concurrency = min(self.max_concurrency, self.concurrency + 1)
            self.rate_factor = min(1.0, self.rate_factor * 1.25)
