"""``LearningPollPolicy``: poll around the end each kind of job has been seen to reach.

A backoff policy polls as if it knew nothing about how long jobs take. This one
learns it: from every settled job it keeps the time from creation to completion,
per capability (``job.kind``), in a fixed-size window of recent samples. From
those it fits a schedule of three parts:

- the first poll as late as it can be while few jobs end long before it (a
  first poll at the p-quantile plus the delay budget leaves a share p late);
- then a steady interval;
- past a late quantile of the learned durations (the far tail, where few jobs
  end), intervals that grow with the time spent there; past the longest
  duration learned, the fallback takes over again.

The fit picks the first poll, the interval and the start of the tail that need
the fewest polls on the learned durations while the p95 detection delay stays
no worse than a plain exponential backoff's on the same durations (Google's
long-running-operation default: 1 s, x1.5, capped at 20 s). A detection delay
up to the reference's p95 therefore costs nothing, and the 5% of jobs allowed
to be later go where ends are rarest: the very start and the far tail.

Until a kind has ``min_samples`` settled jobs, and for jobs whose kind or state
is unknown (a bare job id), the fallback (a plain ``PollPolicy`` by default)
decides. Like every policy here it is pure: no clock and no randomness of its
own; the ``draw`` argument reaches the fallback.
"""

from __future__ import annotations

import bisect
import collections
import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import attrs

from ._enums import State
from ._policies import PollContext, PollPolicy, PollStrategy

if TYPE_CHECKING:
    from ._models import Job

__all__ = ["LRO_BACKOFF", "LearnedSchedule", "LearningPollPolicy"]

_TAIL_QUANTILES = (0.9, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99, 1.0)
"""Where the far tail may start, as quantiles of the learned durations; the fit picks one."""

_HEAD_SHARE_STEP = 0.005
"""The fit tries first polls leaving 0, 0.5%, 1%, ... of jobs late, within the late budget."""

_BISECTION_STEPS = 12
_MAX_REFERENCE_POLLS = 100_000
"""A bound on the reference's modelled polls (a backoff that never waits cannot be beaten)."""

LRO_BACKOFF = PollPolicy(
    first_delay=1.0,
    initial_interval=1.5,
    multiplier=1.5,
    max_interval=20.0,
    submitted_factor=1.0,
    jitter="none",
)
"""Google's long-running-operation default (1 s, x1.5, capped at 20 s, no jitter).

The default ``delay_reference`` of ``LearningPollPolicy``: the plain backoff whose
p95 detection delay a learned schedule keeps to.
"""

_LEARNED_STATES = frozenset({State.COMPLETED, State.ERROR})
"""Ends the service reaches by itself; a cancellation says nothing about how long jobs take."""


def quantile(ordered: Sequence[float], p: float) -> float:
    """The ``p`` quantile (0..1) of sorted ``ordered``, interpolated between neighbours."""
    if not ordered:
        raise ValueError("no values")
    position = p * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


@attrs.frozen(kw_only=True)
class LearnedSchedule:
    """Where the polls of one kind of job go, in seconds since the waiter took the job up.

    The first poll is at ``first``; then every ``interval`` seconds on a grid
    anchored at ``first`` (a late answer does not shift later polls) until
    ``tail_start``; after that each delay is ``tail_growth`` times the time
    spent past ``tail_start``, at least ``interval`` and at most
    ``max_interval``. Past ``horizon`` (the longest duration learned) the
    policy's fallback decides again. The other fields describe the fit: how
    many ``samples`` it used, and on them the detection delay at the policy's
    quantile and the mean polls per job, of this schedule and of the fallback.
    """

    first: float
    interval: float
    tail_start: float
    tail_growth: float
    max_interval: float
    horizon: float = math.inf
    samples: int = 0
    expected_delay: float = 0.0
    expected_polls: float = 0.0
    fallback_delay: float = 0.0
    fallback_polls: float = 0.0

    def delay(self, elapsed: float, polls: int) -> float:
        """Seconds until the next poll, ``elapsed`` s after take-up and ``polls`` answers.

        A poll that comes back just before, on or after a grid point is
        followed by the next grid point at least half an interval later, so
        rounding and latency never cause two polls in a row.
        """
        if (polls == 0 and elapsed <= self.first) or self.first - elapsed >= self.interval / 2:
            return self.first - elapsed
        if elapsed < self.tail_start:
            steps = max(1, math.ceil((elapsed + self.interval / 2 - self.first) / self.interval))
            return self.first + steps * self.interval - elapsed
        grown = self.tail_growth * (elapsed - self.tail_start)
        return min(self.max_interval, max(self.interval, grown))

    def outcome(self, duration: float) -> tuple[int, float]:
        """Polls, and the detection delay, for a job that ends ``duration`` seconds after take-up.

        The polls are answered at once (no latency), as the fit assumes.
        """
        if duration <= self.first:
            return 1, self.first - duration
        grid_steps = max(0, math.ceil((self.tail_start - self.first) / self.interval))
        steps = math.ceil((duration - self.first) / self.interval)
        if steps <= grid_steps:
            return 1 + steps, self.first + steps * self.interval - duration
        polls = 1 + grid_steps
        at = self.first + grid_steps * self.interval
        while at < duration:
            grown = self.tail_growth * (at - self.tail_start)
            at += min(self.max_interval, max(self.interval, grown))
            polls += 1
        return polls, at - duration

    def poll_times(self) -> Iterator[float]:
        """The times of the polls, in seconds after take-up: an endless iterator.

        The same polls ``outcome()`` counts (no latency).
        """
        yield self.first
        grid_steps = max(0, math.ceil((self.tail_start - self.first) / self.interval))
        for step in range(1, grid_steps + 1):
            yield self.first + step * self.interval
        at = self.first + grid_steps * self.interval
        while True:
            at += min(
                self.max_interval, max(self.interval, self.tail_growth * (at - self.tail_start))
            )
            yield at


@attrs.define
class _Kind:
    """What the policy knows of one kind: recent durations and the schedule fitted to them."""

    samples: collections.deque[float]
    fresh: int = 0
    """Samples added since the last fit."""
    schedule: LearnedSchedule | None = None


def _probability(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0 < value < 1:
        raise ValueError(f"{attribute.name} must be between 0 and 1, got {value!r}")


def _non_negative(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 0:  # also refuses NaN
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:  # also refuses NaN
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _sample_size(instance: LearningPollPolicy, attribute: attrs.Attribute[int], value: int) -> None:
    if value < instance.min_samples:
        raise ValueError(f"sample_size must be >= min_samples, got {value!r}")


@attrs.define(kw_only=True)
class LearningPollPolicy:
    """A poll policy that learns how long each kind of job takes, and polls around its end.

    ``observe()`` (which the waiter calls for every job that ends) keeps the
    creation-to-completion time of COMPLETED and ERROR jobs, per capability,
    in a window of the last ``sample_size`` jobs of that kind. Once a kind
    has ``min_samples`` of them, its polls follow a ``LearnedSchedule``: the
    first poll, as late as a few early ends allow; then a steady interval;
    then, in the far tail, intervals growing with the time
    spent there, up to ``max_interval``; past the longest duration learned,
    the fallback again. The fit chooses the first poll, the interval and where
    the tail starts so as to need the fewest polls while, on the learned
    durations, the ``delay_quantile`` (p95) of the detection delay is no worse
    than ``delay_reference``'s (Google's long-running-operation backoff by
    default; pass ``delay_reference=PollPolicy()`` to hold to the default
    policy's tighter p95 instead, at more polls). The schedule is refitted
    each time the window has grown or turned over by a quarter; if it would
    not save polls over the reference, the fallback stays in charge.

    The fallback also decides for a kind not yet learned, for a job whose
    kind or state is unknown (a bare job id), and after failed polls. The
    schedule counts time from when the waiter took the job up, so it fits
    jobs waited for from their creation; a job taken up long after it was
    created is polled later than it should be. A ``Retry-After`` is a floor.

    Pure: no clock, no randomness of its own (``draw`` goes to the
    fallback). Memory is bounded: ``sample_size`` floats for each of at most
    ``max_kinds`` kinds. One instance may serve several waiters.
    """

    fallback: PollStrategy = attrs.field(factory=PollPolicy)
    """Decides until a kind is learned, past the learned horizon, and after failed polls."""
    delay_reference: PollStrategy = attrs.field(default=LRO_BACKOFF)
    """The plain backoff whose delay quantile, on the learned durations, the fit keeps to."""
    min_samples: int = attrs.field(default=20, validator=attrs.validators.ge(2))
    """Settled jobs of a kind needed before its polls follow a learned schedule."""
    sample_size: int = attrs.field(default=4096, validator=_sample_size)
    """Durations kept per kind (the most recent ones)."""
    delay_quantile: float = attrs.field(default=0.95, validator=_probability)
    """The quantile of the detection delay held no worse than the reference's."""
    confidence: float = attrs.field(default=1.0, validator=_non_negative)
    """Standard errors of safety margin on that quantile (large while samples are few)."""
    tail_growth: float = attrs.field(default=1.0, validator=_positive)
    """In the far tail, each interval is this fraction of the time spent past its start."""
    max_interval: float = attrs.field(default=600.0, validator=_positive)
    """The longest interval between two polls of a learned schedule."""
    max_kinds: int = attrs.field(default=64, validator=attrs.validators.ge(1))
    """Kinds learned at most; further kinds stay with the fallback."""
    _kinds: dict[str, _Kind] = attrs.field(factory=dict, init=False, repr=False)

    # -- PollStrategy -----------------------------------------------------------------

    def next_delay(self, context: PollContext, draw: float) -> float:
        """Seconds until the next poll: from the learned schedule, else from the fallback."""
        schedule = self.schedule(context.kind) if context.state is not None else None
        if schedule is None or context.elapsed >= schedule.horizon:
            return self.fallback.next_delay(context, draw)
        delay = schedule.delay(context.elapsed, context.polls)
        if context.retry_after is not None:
            delay = max(delay, context.retry_after)
        return delay

    def error_delay(self, failures: int, draw: float) -> float:
        """Seconds until the next poll after ``failures`` failed polls in a row: the fallback's."""
        return self.fallback.error_delay(failures, draw)

    def observe(self, job: Job) -> None:
        """Learn from a job that has ended: its kind and its creation-to-completion time."""
        self.fallback.observe(job)
        timing = job.timing
        kind = job.kind
        if kind is None or timing is None or job.state not in _LEARNED_STATES:
            return
        if timing.created_at is None or timing.completed_at is None:
            return
        self.learn(kind, (timing.completed_at - timing.created_at).total_seconds())

    # -- learning ---------------------------------------------------------------------

    def learn(self, kind: str, seconds: float) -> None:
        """Record that a job of ``kind`` took ``seconds`` from creation to its end.

        ``observe()`` calls this; call it yourself to start from durations you
        kept (a negative or non-finite duration is ignored).
        """
        if not (math.isfinite(seconds) and seconds >= 0):
            return
        known = self._kinds.get(kind)
        if known is None:
            if len(self._kinds) >= self.max_kinds:
                return
            known = self._kinds[kind] = _Kind(collections.deque(maxlen=self.sample_size))
        known.samples.append(seconds)
        known.fresh += 1
        count = len(known.samples)
        if count >= self.min_samples and known.fresh >= max(self.min_samples, count // 4):
            known.fresh = 0
            known.schedule = self._fit(kind, sorted(known.samples))

    def schedule(self, kind: str | None) -> LearnedSchedule | None:
        """The schedule fitted for ``kind``, or None while the fallback decides."""
        if kind is None:
            return None
        known = self._kinds.get(kind)
        return known.schedule if known is not None else None

    def samples(self, kind: str) -> list[float]:
        """The durations (seconds) kept for ``kind``, oldest first."""
        known = self._kinds.get(kind)
        return list(known.samples) if known is not None else []

    # -- fitting ----------------------------------------------------------------------

    def _fit(self, kind: str, durations: list[float]) -> LearnedSchedule | None:
        """The fewest-polls schedule keeping the delay quantile within the reference's."""
        reference = self._reference_outcomes(kind, durations)
        if reference is None:
            return None
        limit, reference_polls = reference
        # Judge the schedule at a stricter quantile (by ``confidence`` standard
        # errors), so that noise in a small sample does not make it worse than the reference.
        q = self.delay_quantile
        strict = min(1.0, q + self._margin(len(durations)))
        # Delays above the limit that the quantile at ``strict`` tolerates: with
        # at most this many, both neighbours of its position are within the limit.
        allowed_late = len(durations) - 1 - math.ceil(strict * (len(durations) - 1))
        fit = _Fit(durations, limit, allowed_late, self.tail_growth, self.max_interval)

        # A first poll ``limit`` after the p-quantile leaves only that share of
        # jobs late (they ended longer before it): p is the head's share of the budget.
        budget = allowed_late / len(durations)
        steps = math.floor(budget / _HEAD_SHARE_STEP)
        firsts = [quantile(durations, n * _HEAD_SHARE_STEP) + limit for n in range(steps + 1)]
        # The head and the tail share one budget of late jobs, so every pair
        # is tried; for each first poll, from the latest tail start down to the
        # first that leaves too many late (earlier ones only add more).
        tails = sorted({quantile(durations, p) for p in _TAIL_QUANTILES}, reverse=True)
        best: LearnedSchedule | None = None
        for first in firsts:
            for tail_start in tails:
                candidate = fit.widest(first, tail_start)
                if candidate is None:
                    break
                if best is None or candidate.expected_polls < best.expected_polls:
                    best = candidate
        if best is None or best.expected_polls >= reference_polls:
            return None  # learning would not save anything: keep the fallback
        outcomes = [best.outcome(duration) for duration in durations]
        return attrs.evolve(
            best,
            horizon=durations[-1],
            samples=len(durations),
            expected_delay=quantile(sorted(delay for _, delay in outcomes), q),
            fallback_delay=limit,
            fallback_polls=reference_polls,
        )

    def _margin(self, samples: int) -> float:
        """``confidence`` standard errors of the delay quantile estimated from ``samples``."""
        q = self.delay_quantile
        return self.confidence * math.sqrt(q * (1 - q) / samples)

    def _reference_outcomes(self, kind: str, durations: list[float]) -> tuple[float, float] | None:
        """The reference's delay quantile and mean polls on ``durations`` (at the median draw)."""
        times: list[float] = []
        at = 0.0
        while not times or times[-1] < durations[-1]:
            if len(times) >= _MAX_REFERENCE_POLLS:
                return None
            context = PollContext(polls=len(times), state=State.PROCESSING, elapsed=at, kind=kind)
            at += max(0.0, self.delay_reference.next_delay(context, 0.5))
            times.append(at)
        delays = []
        polls = 0
        for duration in durations:
            index = bisect.bisect_left(times, duration)
            delays.append(times[index] - duration)
            polls += index + 1
        delays.sort()
        # The reference's quantile is an estimate too: take it a margin lower,
        # so that on fresh jobs the schedule stays within the reference's delay.
        limit = quantile(delays, max(0.0, self.delay_quantile - self._margin(len(durations))))
        if not limit > 0:
            return None
        return limit, polls / len(durations)


@attrs.frozen
class _Fit:
    """Schedules measured against sorted learned durations: mean polls, and how many are late."""

    durations: list[float]
    limit: float
    """The detection delay a job may have without counting as late."""
    allowed_late: int
    tail_growth: float
    max_interval: float

    def widest(self, first: float, tail_start: float) -> LearnedSchedule | None:
        """The schedule with the longest steady interval that leaves few enough jobs late."""
        durations = self.durations
        if bisect.bisect_left(durations, first - self.limit) > self.allowed_late:
            return None  # too many jobs end long before the first poll, whatever follows
        # Below a quarter of the limit no job between the first poll and the
        # tail is late any more: shorter intervals only add polls.
        low, high = self.limit / 4, min(self.max_interval, 2 * self.limit)
        fitted: LearnedSchedule | None = None
        for _ in range(_BISECTION_STEPS):
            middle = (low + high) / 2
            candidate = self.measure(first, middle, tail_start)
            if candidate is not None:
                low, fitted = middle, candidate
            else:
                high = middle
        return fitted if fitted is not None else self.measure(first, low, tail_start)

    def measure(self, first: float, interval: float, tail_start: float) -> LearnedSchedule | None:
        """The schedule with its mean polls, or None if it leaves too many jobs late.

        Counts per gap between polls (two bisections each) rather than per job.
        """
        schedule = LearnedSchedule(
            first=first,
            interval=interval,
            tail_start=max(first, tail_start),
            tail_growth=self.tail_growth,
            max_interval=self.max_interval,
        )
        durations = self.durations
        polls = late = start = 0
        count = len(durations)
        for number, at in enumerate(schedule.poll_times(), start=1):
            end = bisect.bisect_right(durations, at, start)
            if end > start:
                polls += number * (end - start)
                # Jobs that ended more than ``limit`` before this poll are late.
                late += max(0, bisect.bisect_left(durations, at - self.limit, start, end) - start)
                if late > self.allowed_late:
                    return None
                if end == count:
                    break
                start = end
        return attrs.evolve(schedule, expected_polls=polls / count)
