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
own; the ``draw`` argument reaches the fallback. A refit is a resumable
computation advanced a small slice at a time by the policy's own calls, so it
never holds up the event loop that calls them.
"""

from __future__ import annotations

import bisect
import collections
import math
from collections.abc import Generator, Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

import attrs

from ._enums import State
from ._policies import PollContext, PollPolicy, PollStrategy

if TYPE_CHECKING:
    from ._models import Job

__all__ = ["LRO_BACKOFF", "LearnedSchedule", "LearningPollPolicy"]

_TAIL_QUANTILES = (0.9, 0.92, 0.94, 0.95, 0.955, 0.96, 0.965, 0.97, 0.975, 0.98, 0.99, 1.0)
"""Where the far tail may start, as quantiles of the learned durations; the fit picks one."""

_HEAD_SHARE_STEP = 0.005
"""The fit tries first polls leaving 0, 0.5%, 1%, ... of jobs late, within the late budget."""

_INTERVAL_PRECISION = 1 / 2000
"""The widest steady interval is found to this fraction of the delay limit."""

_MAX_REFERENCE_POLLS = 100_000
"""A bound on the reference's modelled polls (a backoff that never waits cannot be beaten)."""

_MAX_TAIL_POLLS = 10_000
"""A schedule that would need more polls than this in its far tail is not fitted."""

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

_CHUNK = 64
"""A fit's inner loops hand control back after this many steps (a unit of work each)."""

_WORK_PER_CALL = 256
"""Units of fitting work each ``observe()`` or ``next_delay()`` call advances (about 0.3 ms)."""

T = TypeVar("T")

_Work = Generator[int, None, T]
"""A resumable computation: it yields the units of work done since it last yielded, returns a T."""


def _run(work: _Work[T]) -> T:
    """Run ``work`` to its end, in one go."""
    while True:
        try:
            next(work)
        except StopIteration as done:
            result: T = done.value
            return result


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
    anchored at ``first`` (a late answer does not shift later polls) up to the
    first grid point at or past ``tail_start``; after that, in the far tail,
    each gap is ``tail_growth`` times the time spent past ``tail_start``, at
    least ``interval`` and at most ``max_interval``, up to the first poll at or
    past ``horizon`` (the longest duration learned), after which the policy's
    fallback decides again. The other fields describe the fit: how many
    ``samples`` it used; on them, this schedule's detection delay at the
    policy's quantile and its mean polls per job; and the same two figures of
    the reference backoff (``reference_delay`` is the limit the fit kept to:
    the reference's delay quantile, lowered by the policy's safety margin).
    """

    first: float
    interval: float
    tail_start: float
    tail_growth: float
    max_interval: float
    horizon: float
    samples: int = 0
    expected_delay: float = 0.0
    expected_polls: float = 0.0
    reference_delay: float = 0.0
    reference_polls: float = 0.0
    _grid_steps: int = attrs.field(init=False, repr=False, eq=False)
    _tail: tuple[float, ...] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if not (self.interval > 0 and self.max_interval > 0 and self.tail_growth > 0):
            raise ValueError("interval, max_interval and tail_growth must be > 0")
        grid_steps = max(0, math.ceil((self.tail_start - self.first) / self.interval))
        at = self.first + grid_steps * self.interval
        tail: list[float] = []
        while at < self.horizon:
            if len(tail) >= _MAX_TAIL_POLLS:
                raise ValueError(f"more than {_MAX_TAIL_POLLS} polls in the far tail")
            gap = self.tail_growth * (at - self.tail_start)
            at += min(self.max_interval, max(self.interval, gap))
            tail.append(at)
        object.__setattr__(self, "_grid_steps", grid_steps)
        object.__setattr__(self, "_tail", tuple(tail))

    def delay(self, elapsed: float, polls: int) -> float | None:
        """Seconds until the next poll, ``elapsed`` s after take-up and ``polls`` answers.

        A poll that comes back just before, on or after one of the schedule's
        times is followed by the next time at least half an interval later, so
        rounding and latency never cause two polls in a row. None past the
        schedule's last poll: the policy's fallback decides there.
        """
        if (polls == 0 and elapsed <= self.first) or self.first - elapsed >= self.interval / 2:
            return self.first - elapsed
        earliest = elapsed + self.interval / 2
        steps = max(1, math.ceil((earliest - self.first) / self.interval))
        if steps <= self._grid_steps:
            return self.first + steps * self.interval - elapsed
        index = bisect.bisect_left(self._tail, earliest)
        return self._tail[index] - elapsed if index < len(self._tail) else None

    def poll_for(self, duration: float) -> tuple[int, float]:
        """The number and time of the first poll at or after ``duration`` (no latency).

        For a duration past the last poll of the schedule (past ``horizon``),
        the count and time of that last poll.
        """
        if duration <= self.first:
            return 1, self.first
        steps = math.ceil((duration - self.first) / self.interval)
        # Division rounds: make ``steps`` the first grid point at or after ``duration``.
        while steps > 1 and self.first + (steps - 1) * self.interval >= duration:
            steps -= 1
        while self.first + steps * self.interval < duration:
            steps += 1
        if steps <= self._grid_steps:
            return 1 + steps, self.first + steps * self.interval
        index = min(bisect.bisect_left(self._tail, duration), len(self._tail) - 1)
        if index < 0:  # no tail: the grid ends at the horizon
            return 1 + self._grid_steps, self.first + self._grid_steps * self.interval
        return 2 + self._grid_steps + index, self._tail[index]

    def outcome(self, duration: float) -> tuple[int, float]:
        """Polls, and the detection delay, for a job that ends ``duration`` seconds after take-up.

        The polls are answered at once (no latency), as the fit assumes.
        """
        number, at = self.poll_for(duration)
        return number, at - duration

    def poll_times(self) -> Iterator[float]:
        """The times of the polls, in seconds after take-up, up to the first at or past ``horizon``.

        The same polls ``outcome()`` counts (no latency).
        """
        for step in range(self._grid_steps + 1):
            yield self.first + step * self.interval
        yield from self._tail


@attrs.define
class _Kind:
    """What the policy knows of one kind: recent durations and the schedule fitted to them."""

    samples: collections.deque[float]
    fresh: int = 0
    """Samples added since the last fit started."""
    schedule: LearnedSchedule | None = None
    """The schedule of the last fit completed: the one polls follow."""
    fitting: _Work[LearnedSchedule | None] | None = None
    """The fit in progress, if any, on the samples as they were when it started."""


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

    A refit never stalls the event loop: it runs in small steps, each
    ``observe()``, ``learn()`` and ``next_delay()`` call advancing it by a
    bounded slice of work (about a millisecond at most), while polls keep
    following the last schedule fitted until the new one is done. A refit
    on 4,096 samples, 50 ms or more of work in all, is spread over about 250
    calls; the schedule it gives is the one a fit in one go would give.
    ``complete_fits()`` finishes the fits in progress at once, say after
    seeding the policy with ``learn()``.

    The fallback also decides for a kind not yet learned, for a job whose
    kind or state is unknown (a bare job id), and after failed polls. The
    schedule counts time from when the waiter took the job up, so it fits
    jobs waited for from their creation; a job taken up long after it was
    created is polled later than it should be. A ``Retry-After`` is a floor.

    Pure: no clock, no thread, no randomness of its own (``draw`` goes to the
    fallback), so the same calls give the same polls. Memory is bounded:
    ``sample_size`` floats for each of at most ``max_kinds`` kinds (twice that
    while a kind's refit runs). One instance may serve several waiters.
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
    confidence: float = attrs.field(default=1.5, validator=_non_negative)
    """Standard errors of safety margin (large while samples are few).

    The fit holds its own delay to a quantile that many standard errors above
    ``delay_quantile``, within the reference's delay at a quantile that many below.
    """
    tail_growth: float = attrs.field(default=1.0, validator=_positive)
    """In the far tail, each interval is this fraction of the time spent past its start."""
    max_interval: float = attrs.field(default=600.0, validator=_positive)
    """The longest interval between two polls of a learned schedule."""
    max_kinds: int = attrs.field(default=64, validator=attrs.validators.ge(1))
    """Kinds learned at most; further kinds stay with the fallback."""
    _kinds: dict[str, _Kind] = attrs.field(factory=dict, init=False, repr=False)
    _fitting: collections.deque[str] = attrs.field(
        factory=collections.deque, init=False, repr=False
    )
    """Kinds with a fit in progress, the oldest first (it is the one advanced)."""

    # -- PollStrategy -----------------------------------------------------------------

    def next_delay(self, context: PollContext, draw: float) -> float:
        """Seconds until the next poll: from the learned schedule, else from the fallback.

        Also advances a refit in progress by a bounded slice of work.
        """
        self._advance_fits(_WORK_PER_CALL)
        schedule = self.schedule(context.kind) if context.state is not None else None
        delay = None
        if schedule is not None and context.elapsed < schedule.horizon:
            delay = schedule.delay(context.elapsed, context.polls)
        if delay is None:
            return self.fallback.next_delay(context, draw)
        if context.retry_after is not None:
            delay = max(delay, context.retry_after)
        return delay

    def error_delay(self, failures: int, draw: float) -> float:
        """Seconds until the next poll after ``failures`` failed polls in a row: the fallback's."""
        return self.fallback.error_delay(failures, draw)

    def observe(self, job: Job) -> None:
        """Learn from a job that has ended: its kind and its creation-to-completion time.

        Also advances a refit in progress by a bounded slice of work.
        """
        self.fallback.observe(job)
        timing = job.timing
        kind = job.kind
        if (
            kind is None
            or timing is None
            or job.state not in _LEARNED_STATES
            or timing.created_at is None
            or timing.completed_at is None
        ):
            self._advance_fits(_WORK_PER_CALL)
            return
        self.learn(kind, (timing.completed_at - timing.created_at).total_seconds())

    # -- learning ---------------------------------------------------------------------

    def learn(self, kind: str, seconds: float) -> None:
        """Record that a job of ``kind`` took ``seconds`` from creation to its end.

        ``observe()`` calls this; call it yourself to start from durations you
        kept (a negative or non-finite duration is ignored), then
        ``complete_fits()`` to have the schedule ready at once. Like
        ``observe()``, it advances a refit in progress by a bounded slice of work.
        """
        if math.isfinite(seconds) and seconds >= 0:
            known = self._kinds.get(kind)
            if known is None and len(self._kinds) < self.max_kinds:
                known = self._kinds[kind] = _Kind(collections.deque(maxlen=self.sample_size))
            if known is not None:
                known.samples.append(seconds)
                known.fresh += 1
                self._start_fit_if_due(kind, known)
        self._advance_fits(_WORK_PER_CALL)

    def complete_fits(self) -> None:
        """Finish every fit in progress now, in one go (tens of milliseconds for a large window).

        Polls then follow the schedules fitted to every sample learned so far
        (as far as the refit rule asks for a fit). The waiter never calls this;
        call it off the event loop's hot path, e.g. after ``learn()``-ing kept durations.
        """
        self._advance_fits(math.inf)

    def schedule(self, kind: str | None) -> LearnedSchedule | None:
        """The schedule ``kind``'s polls follow (the last fit completed), or None: the fallback."""
        if kind is None:
            return None
        known = self._kinds.get(kind)
        return known.schedule if known is not None else None

    def samples(self, kind: str) -> list[float]:
        """The durations (seconds) kept for ``kind``, oldest first."""
        known = self._kinds.get(kind)
        return list(known.samples) if known is not None else []

    def _start_fit_if_due(self, kind: str, known: _Kind) -> None:
        """Start a refit of ``kind`` if enough samples came since the last one started.

        One fit per kind at a time: samples that arrive while one runs are
        counted, and start the next when it is done.
        """
        count = len(known.samples)
        if known.fitting is not None:
            return
        if count >= self.min_samples and known.fresh >= max(self.min_samples, count // 4):
            known.fresh = 0
            known.fitting = self._fit(kind, list(known.samples))
            self._fitting.append(kind)

    def _advance_fits(self, budget: float) -> None:
        """Advance the fits in progress, oldest first, by about ``budget`` units of work."""
        while budget > 0 and self._fitting:
            kind = self._fitting[0]
            known = self._kinds[kind]
            assert known.fitting is not None  # kinds are queued with their fit
            try:
                budget -= next(known.fitting)
            except StopIteration as done:
                known.schedule = done.value
                known.fitting = None
                self._fitting.popleft()
                self._start_fit_if_due(kind, known)

    # -- fitting ----------------------------------------------------------------------
    #
    # A fit is a generator (``_Work``): it yields, every ``_CHUNK`` steps or so, the
    # units of work done since it last yielded, and returns the schedule. Driven
    # to its end in one go (``_run``) it is the fit as a plain function would do it.

    def _fit(self, kind: str, samples: list[float]) -> _Work[LearnedSchedule | None]:
        """The fewest-polls schedule keeping the delay quantile within the reference's."""
        durations = sorted(samples)
        yield 1 + len(durations) // 8
        reference = yield from self._reference_outcomes(kind, durations)
        if reference is None:
            return None
        limit, reference_polls = reference
        # Judge the schedule at a stricter quantile (by ``confidence`` standard
        # errors), so that noise in a small sample does not make it worse than the reference.
        q = self.delay_quantile
        strict = min(1.0, q + self._margin(len(durations)))
        # Delays above the limit that the quantile at ``strict`` tolerates: with
        # at most this many, the neighbours its interpolation weighs are within the limit.
        allowed_late = len(durations) - 1 - math.ceil(strict * (len(durations) - 1))
        fit = _Fit(durations, limit, allowed_late, self.tail_growth, self.max_interval)
        # A first poll ``limit`` after the p-quantile leaves only that share of
        # jobs late (they ended longer before it): p is the head's share of the budget.
        budget = allowed_late / len(durations)
        firsts = [
            _latest_within(quantile(durations, n * _HEAD_SHARE_STEP), limit)
            for n in range(math.floor(budget / _HEAD_SHARE_STEP) + 1)
        ]
        tails = [quantile(durations, p) for p in _TAIL_QUANTILES]
        best = yield from _search(fit, firsts, tails)
        if best is None or best.expected_polls >= reference_polls:
            return None  # learning would not save anything: keep the fallback
        delays: list[float] = []
        for start in range(0, len(durations), _CHUNK):
            chunk = durations[start : start + _CHUNK]
            delays.extend(best.outcome(duration)[1] for duration in chunk)
            yield _CHUNK
        delays.sort()
        yield 1 + len(delays) // 8
        return attrs.evolve(
            best,
            samples=len(durations),
            expected_delay=quantile(delays, q),
            reference_delay=limit,
            reference_polls=reference_polls,
        )

    def _margin(self, samples: int) -> float:
        """``confidence`` standard errors of the delay quantile estimated from ``samples``."""
        q = self.delay_quantile
        return self.confidence * math.sqrt(q * (1 - q) / samples)

    def _reference_outcomes(
        self, kind: str, durations: list[float]
    ) -> _Work[tuple[float, float] | None]:
        """The reference's delay quantile and mean polls on ``durations`` (at the median draw)."""
        times: list[float] = []
        at = 0.0
        while not times or times[-1] < durations[-1]:
            if len(times) >= _MAX_REFERENCE_POLLS:
                return None
            context = PollContext(polls=len(times), state=State.PROCESSING, elapsed=at, kind=kind)
            at += max(0.0, self.delay_reference.next_delay(context, 0.5))
            times.append(at)
            if len(times) % _CHUNK == 0:
                yield _CHUNK
        delays = []
        polls = 0
        for number, duration in enumerate(durations, 1):
            index = bisect.bisect_left(times, duration)
            delays.append(times[index] - duration)
            polls += index + 1
            if number % _CHUNK == 0:
                yield _CHUNK
        delays.sort()
        yield 1 + len(delays) // 8
        # The reference's quantile is an estimate too: take it a margin lower,
        # so that on fresh jobs the schedule stays within the reference's delay.
        limit = quantile(delays, max(0.0, self.delay_quantile - self._margin(len(durations))))
        if not limit > 0:
            return None
        return limit, polls / len(durations)


def _search(fit: _Fit, firsts: list[float], tails: list[float]) -> _Work[LearnedSchedule | None]:
    """The fewest-polls schedule over pairs (first poll, tail start).

    The head and the tail share one budget of late jobs, so pairs are tried
    together: every first poll, each with tail starts from the latest down to
    the first that leaves too many jobs late (an earlier start nearly always
    adds late jobs: stopping there may miss a cheaper schedule, never a safe
    one). Nearby pairs have nearly the same widest interval, so each search
    for it starts from the last one found.
    """
    best: LearnedSchedule | None = None
    guess = fit.limit
    for first in firsts:
        for tail_start in reversed(tails):
            candidate = yield from fit.widest(first, tail_start, guess)
            if candidate is None:
                break
            guess = candidate.interval
            if best is None or candidate.expected_polls < best.expected_polls:
                best = candidate
    return best


def _latest_within(end: float, limit: float) -> float:
    """The latest time whose delay ``time - end`` is within ``limit`` (rounding and all)."""
    at = end + limit
    while at - end > limit:
        at = math.nextafter(at, -math.inf)
    return at


@attrs.frozen
class _Fit:
    """Schedules measured against sorted learned durations: mean polls, and how many are late."""

    durations: list[float]
    limit: float
    """The detection delay a job may have without counting as late."""
    allowed_late: int
    tail_growth: float
    max_interval: float

    def widest(
        self, first: float, tail_start: float, guess: float | None = None
    ) -> _Work[LearnedSchedule | None]:
        """The schedule with the longest steady interval that leaves few enough jobs late.

        A search from ``guess`` (the limit by default): steps growing twofold
        away from it until one side is feasible and the other not, then a
        bisection to a 2,000th of the limit. It takes fewer late jobs for a
        shorter interval, which holds up to the limit (no job between the
        first poll and the tail is late then) and nearly so past it; every
        candidate is measured, so a non-monotone case costs polls, never the
        delay quantile.
        """
        durations = self.durations
        if bisect.bisect_left(durations, first - self.limit) > self.allowed_late:
            return None  # too many jobs end long before the first poll, whatever follows
        # Intervals under a quarter of the limit only add polls: none of the
        # grid's jobs is late from the limit down.
        ceiling = min(self.max_interval, 2 * self.limit)
        floor = min(self.limit / 4, ceiling)
        precision = self.limit * _INTERVAL_PRECISION
        start = min(max(self.limit if guess is None else guess, floor), ceiling)
        fitted = yield from self.measure(first, start, tail_start)
        step = 4 * precision
        if fitted is not None:  # feasible here: look further out
            low, high = start, ceiling
            while low < ceiling:
                probe = min(ceiling, low + step)
                candidate = yield from self.measure(first, probe, tail_start)
                if candidate is None:
                    high = probe
                    break
                low, fitted, step = probe, candidate, 2 * step
        else:  # infeasible here: look further in
            high = start
            while True:
                low = max(floor, high - step)
                fitted = yield from self.measure(first, low, tail_start)
                if fitted is not None:
                    break
                if low <= floor:
                    return None
                high, step = low, 2 * step
        while high - low > precision:
            middle = (low + high) / 2
            candidate = yield from self.measure(first, middle, tail_start)
            if candidate is not None:
                low, fitted = middle, candidate
            else:
                high = middle
        return fitted

    def measure(
        self, first: float, interval: float, tail_start: float
    ) -> _Work[LearnedSchedule | None]:
        """The schedule with its mean polls, or None if it leaves too many jobs late."""
        try:
            schedule = LearnedSchedule(
                first=first,
                interval=interval,
                tail_start=max(first, tail_start),
                tail_growth=self.tail_growth,
                max_interval=self.max_interval,
                horizon=self.durations[-1],
            )
        except ValueError:
            yield _MAX_TAIL_POLLS
            return None  # too many polls in the far tail: not a schedule worth having
        yield 1 + len(schedule._tail)
        polls, late = yield from self.counting(schedule, stop_after=self.allowed_late)
        if late > self.allowed_late:
            return None
        fitted = attrs.evolve(schedule, expected_polls=polls / len(self.durations))
        yield 1 + len(schedule._tail)
        return fitted

    def count(self, schedule: LearnedSchedule, stop_after: float = math.inf) -> tuple[int, int]:
        """Total polls, and jobs late (delay over the limit), of ``schedule`` on the durations."""
        return _run(self.counting(schedule, stop_after))

    def counting(
        self, schedule: LearnedSchedule, stop_after: float = math.inf
    ) -> _Work[tuple[int, int]]:
        """``count()`` as a resumable computation, a unit of work per gap between polls.

        Goes from one poll that sees jobs end to the next (a bisection each), so
        the work is bounded by the number of durations, however dense the
        schedule. Stops early once more than ``stop_after`` jobs are late.
        """
        durations, limit = self.durations, self.limit
        polls = late = start = steps = 0
        count = len(durations)
        while start < count:
            number, at = schedule.poll_for(durations[start])
            end = bisect.bisect_right(durations, at, start)
            if end == start:  # past the schedule's last poll: cannot happen within the horizon
                raise AssertionError("a duration past the schedule's horizon")
            polls += number * (end - start)
            # The jobs whose delay ``at - d`` exceeds the limit: the earliest ones.
            late_end = bisect.bisect_left(durations, at - limit, start, end)
            while late_end > start and not at - durations[late_end - 1] > limit:
                late_end -= 1  # rounding in ``at - limit``
            while late_end < end and at - durations[late_end] > limit:
                late_end += 1
            late += late_end - start
            if late > stop_after:
                break
            start = end
            steps += 1
            if steps == _CHUNK:
                yield steps
                steps = 0
        yield steps + 1
        return polls, late
