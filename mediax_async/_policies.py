"""Pure timing policies: how long to wait before a retry, and before the next poll.

Nothing here sleeps, reads a clock or draws randomness itself: the random
draw (a float in ``[0, 1)``) and every elapsed time are arguments, so each
function can be tested exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, Protocol

import attrs

from . import _constants as C
from ._enums import State

if TYPE_CHECKING:
    from ._models import Job

__all__ = [
    "DelayFunction",
    "Jitter",
    "PollContext",
    "PollPolicy",
    "PollStrategy",
    "RetryPolicy",
    "backoff_delay",
    "delay_function",
]

Jitter = Literal["full", "equal", "none"]
"""How a delay is randomised: uniform in ``[0, d]``, in ``[d/2, d]``, or not at all."""

_JITTERS = ("full", "equal", "none")

_INTERVALS_KEPT = 256
"""How many of a ``PollPolicy``'s intervals it works out in advance (later ones as needed)."""


def backoff_delay(
    attempt: int,
    *,
    initial: float,
    maximum: float,
    multiplier: float,
    jitter: Jitter,
    draw: float,
) -> float:
    """The delay before try ``attempt + 1`` (``attempt`` counts from 1), capped at ``maximum``.

    Large attempts do not overflow: the exponent is clamped before it is used.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    if initial <= 0 or maximum <= 0:
        return apply_jitter(0.0 if initial <= 0 else min(maximum, initial), jitter, draw)
    exponent = attempt - 1
    if multiplier > 1:
        # initial * multiplier ** exponent > maximum  <=>  exponent > log(maximum / initial)
        limit = math.log(max(maximum, initial) / initial, multiplier)
        if math.isfinite(limit):
            exponent = min(exponent, math.ceil(limit))
    try:
        grown = initial * multiplier**exponent
    except OverflowError:
        grown = math.inf
    return apply_jitter(min(maximum, grown), jitter, draw)


def apply_jitter(delay: float, jitter: Jitter, draw: float) -> float:
    """``delay`` randomised by ``jitter`` with the uniform draw ``draw`` in ``[0, 1)``."""
    if delay == math.inf:
        return delay  # an uncapped backoff that overflowed: inf * 0 would be NaN
    if jitter == "full":
        return delay * draw
    if jitter == "equal":
        return delay / 2 + delay / 2 * draw
    return delay


def _check_jitter(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in _JITTERS:
        raise ValueError(f"{attribute.name} must be one of {', '.join(_JITTERS)}, got {value!r}")


def _non_negative(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 0:  # also refuses NaN
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _at_least_one(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 1:
        raise ValueError(f"{attribute.name} must be >= 1, got {value!r}")


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """When a failed request is tried again: exponential backoff with jitter.

    ``max_retries`` counts retries after the first attempt. A ``Retry-After``
    from the service is honoured (the wait is at least that long) unless it is
    longer than ``max_retry_after``, in which case the call gives up at once.
    """

    max_retries: int = attrs.field(default=C.DEFAULT_MAX_RETRIES, validator=attrs.validators.ge(0))
    initial_delay: float = attrs.field(default=C.RETRY_INITIAL_DELAY, validator=_non_negative)
    max_delay: float = attrs.field(default=C.RETRY_MAX_DELAY, validator=_non_negative)
    multiplier: float = attrs.field(default=C.RETRY_MULTIPLIER, validator=_at_least_one)
    jitter: Jitter = attrs.field(default="full", validator=_check_jitter)
    max_retry_after: float = attrs.field(default=C.RETRY_MAX_RETRY_AFTER, validator=_non_negative)

    def delay(self, attempt: int, *, retry_after: float | None, draw: float) -> float | None:
        """Seconds to wait after failed ``attempt`` (from 1), or None to give up."""
        if attempt > self.max_retries:
            return None
        if retry_after is not None and retry_after > self.max_retry_after:
            return None
        delay = backoff_delay(
            attempt,
            initial=self.initial_delay,
            maximum=self.max_delay,
            multiplier=self.multiplier,
            jitter=self.jitter,
            draw=draw,
        )
        return max(delay, retry_after) if retry_after is not None else delay


@attrs.frozen(kw_only=True)
class PollContext:
    """What a poll policy knows about one watched job.

    ``polls`` is how many answers have been seen for it, ``state`` the last
    state seen (None before the first answer), ``elapsed`` seconds since the
    job was created (or since the waiter took it up), ``kind`` its
    capability's wire key, and ``retry_after`` a delay the service asked for
    on the last poll.
    """

    polls: int
    state: State | None
    elapsed: float = 0.0
    kind: str | None = None
    retry_after: float | None = None


class PollStrategy(Protocol):
    """What a waiter asks of a poll policy (``PollPolicy`` or one of your own)."""

    def next_delay(self, context: PollContext, draw: float) -> float:
        """Seconds until the next poll of the job described by ``context``."""
        ...

    def error_delay(self, failures: int, draw: float) -> float:
        """Seconds until the next poll after ``failures`` failed polls in a row."""
        ...

    def observe(self, job: Job) -> None:
        """Learn from a job that has ended (its kind and timing)."""
        ...


@attrs.frozen(kw_only=True)
class PollPolicy:
    """How often a waiter asks for a job's state: exponential backoff between polls.

    The first poll comes ``first_delay`` after the job is taken up; then the
    interval starts at ``initial_interval`` and grows by ``multiplier`` up to
    ``max_interval``. While a job is still SUBMITTED (queued), intervals are
    ``submitted_factor`` times longer. ``jitter`` spreads polls so that jobs
    created together do not poll together. A ``Retry-After`` on a poll answer
    is a floor for that job's next delay.

    The defaults poll after 4.75 s, 9.75 s, 16 s, 23.8 s, 33.6 s, 45.8 s,
    61.0 s, 80.1 s, then every 19.75 s, without jitter. The first two polls
    come just before a fixed 5 s loop's (5 s and 10 s): a job ended by the
    first is seen before that loop's first poll, one ended by the second
    before its second. Then intervals grow by 1.25 from 6.25 s. On
    log-normal job durations (sigma 1; ``benchmarks/polling_efficiency.py``,
    exact distribution) a fixed 5 s loop never beats them on both polls and
    p95 detection delay at once: at a median of 1 s they need 0.4% more
    polls (1.075 against 1.071) at a p95 of 4.6 s against 4.8 s; at 5 s, 7%
    fewer polls (2.01 against 2.17) at a later p95 (6.3 s against 4.7 s); at
    30 s and 300 s, 0.57x and 0.30x the polls. No schedule does better than
    the fixed loop on both at once by more than a hair at 1 s (at its p95,
    any schedule needs 1.070 polls), nor at all at 30 s and 300 s without
    losing to Google's backoff. Against Google's long-running-operation
    default (1 s, x1.5, capped at 20 s) they need 25% fewer polls at a
    median of 30 s and 4% fewer at 300 s, with a p95 detection delay 1.5-7%
    shorter (and at 5 s, about half the polls at a shorter p95). The cap, a
    little below 20 s, sets the p95 of long jobs. Jitter is off because
    jitter at the same p95 costs at least 13% more polls in the long run,
    and a waiter already spreads its requests: jobs are taken up one by one,
    concurrency is bounded, and failed polls back off with
    jitter. Pass ``jitter="equal"`` for jobs taken up in large bursts.
    """

    first_delay: float = attrs.field(default=4.75, validator=_non_negative)
    initial_interval: float = attrs.field(default=5.0, validator=_non_negative)
    multiplier: float = attrs.field(default=1.25, validator=_at_least_one)
    max_interval: float = attrs.field(default=19.75, validator=_non_negative)
    submitted_factor: float = attrs.field(default=2.0, validator=_at_least_one)
    jitter: Jitter = attrs.field(default="none", validator=_check_jitter)
    error_initial_delay: float = attrs.field(default=1.0, validator=_non_negative)
    """After a failed poll (network, 429, 5xx), the first delay before that job's next poll."""
    error_max_delay: float = attrs.field(default=60.0, validator=_non_negative)
    """The cap of the doubling delays after consecutive failed polls of one job."""

    def error_delay(self, failures: int, draw: float) -> float:
        """Seconds until the next poll of a job whose last ``failures`` polls failed."""
        return backoff_delay(
            failures,
            initial=self.error_initial_delay,
            maximum=self.error_max_delay,
            multiplier=2.0,
            jitter="equal",
            draw=draw,
        )

    def observe(self, job: Job) -> None:
        """A job has ended; this policy does not learn from it."""

    def next_delay(self, context: PollContext, draw: float) -> float:
        """Seconds until the next poll of the job described by ``context``."""
        delay = self._delay(context.polls, context.state, draw)
        if context.retry_after is not None:
            delay = max(delay, context.retry_after)
        return delay

    def _delay(self, polls: int, state: State | None, draw: float) -> float:
        if polls == 0:
            return apply_jitter(self.first_delay, self.jitter, draw)
        intervals = self._intervals
        if polls <= len(intervals):
            delay = apply_jitter(intervals[polls - 1], self.jitter, draw)
        elif self._steady:
            delay = apply_jitter(intervals[-1], self.jitter, draw)
        else:
            delay = backoff_delay(
                polls,
                initial=self.initial_interval,
                maximum=self.max_interval,
                multiplier=self.multiplier,
                jitter=self.jitter,
                draw=draw,
            )
        if state == State.SUBMITTED:
            delay = min(delay * self.submitted_factor, self.max_interval * self.submitted_factor)
        return delay

    _intervals: tuple[float, ...] = attrs.field(init=False, repr=False, eq=False)
    """The interval after each poll, before jitter: ``backoff_delay``'s, worked out once."""
    _steady: bool = attrs.field(init=False, repr=False, eq=False)
    """Whether every interval past ``_intervals`` is its last one."""

    def __attrs_post_init__(self) -> None:
        intervals: list[float] = []
        steady = False
        for polls in range(1, _INTERVALS_KEPT + 1):
            interval = backoff_delay(
                polls,
                initial=self.initial_interval,
                maximum=self.max_interval,
                multiplier=self.multiplier,
                jitter="none",
                draw=0.0,
            )
            # At the cap, or not growing (a multiplier of 1, an interval of 0): it stays.
            steady = interval >= self.max_interval or (
                bool(intervals) and interval == intervals[-1]
            )
            intervals.append(interval)
            if steady:
                break
        object.__setattr__(self, "_intervals", tuple(intervals))
        object.__setattr__(self, "_steady", steady)


DelayFunction = Callable[[int, "State | None", float, "str | None", float], float]
"""``(polls, state, elapsed, kind, draw)`` to the seconds until a job's next poll."""


def delay_function(policy: PollStrategy) -> DelayFunction:
    """``policy.next_delay`` as a function of a ``PollContext``'s fields.

    A plain ``PollPolicy`` reads only ``polls`` and ``state``, so for it no
    ``PollContext`` is built per poll; any other policy gets one, as always.
    """
    if type(policy) is PollPolicy:
        delay = policy._delay
        return lambda polls, state, elapsed, kind, draw: delay(polls, state, draw)
    next_delay = policy.next_delay

    def through_a_context(
        polls: int, state: State | None, elapsed: float, kind: str | None, draw: float
    ) -> float:
        context = PollContext(polls=polls, state=state, elapsed=elapsed, kind=kind)
        return next_delay(context, draw)

    return through_a_context
