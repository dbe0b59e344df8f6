"""PollPolicy and Throttle: the waiter's pure pacing rules."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mediax_async import Jitter, LearningPollPolicy, PollContext, PollPolicy, PollStrategy, State
from mediax_async._policies import apply_jitter, backoff_delay, delay_function
from mediax_async._throttle import Throttle

NO_JITTER = PollPolicy(
    first_delay=1.0,
    initial_interval=2.0,
    multiplier=2.0,
    max_interval=10.0,
    submitted_factor=3.0,
    jitter="none",
)


def delays(policy: PollPolicy, state: State, count: int) -> list[float]:
    return [
        policy.next_delay(PollContext(polls=polls, state=state), draw=0.5) for polls in range(count)
    ]


def test_schedule_while_processing_is_exponential_and_capped() -> None:
    """A processing job is polled after 1 s, then 2, 4, 8 s, then every 10 s."""
    assert delays(NO_JITTER, State.PROCESSING, 6) == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_submitted_jobs_are_polled_more_slowly() -> None:
    """A queued job waits submitted_factor times longer between polls, capped likewise."""
    assert delays(NO_JITTER, State.SUBMITTED, 5) == [1.0, 6.0, 12.0, 24.0, 30.0]


def test_retry_after_is_a_floor_for_the_next_delay() -> None:
    """A Retry-After from the service is never undercut."""
    context = PollContext(polls=1, state=State.PROCESSING, retry_after=7.5)
    assert NO_JITTER.next_delay(context, draw=0.0) == 7.5
    context = PollContext(polls=4, state=State.PROCESSING, retry_after=0.5)
    assert NO_JITTER.next_delay(context, draw=0.0) == 10.0


@pytest.mark.parametrize(
    ("jitter", "draw", "expected"),
    [("full", 0.25, 1.0), ("equal", 0.5, 3.0), ("none", 0.9, 4.0)],
)
def test_jitter_kinds(jitter: str, draw: float, expected: float) -> None:
    """Full jitter spans [0, d], equal jitter [d/2, d], none gives d itself."""
    policy = PollPolicy(initial_interval=4.0, multiplier=2.0, jitter=jitter)
    context = PollContext(polls=1, state=State.PROCESSING)
    assert policy.next_delay(context, draw=draw) == pytest.approx(expected)


def test_huge_poll_counts_do_not_overflow() -> None:
    """A job watched for a very long time still gets the capped interval."""
    context = PollContext(polls=10_000, state=State.PROCESSING)
    assert NO_JITTER.next_delay(context, draw=0.5) == 10.0


def test_bad_policy_values_are_refused() -> None:
    """Negative delays, shrinking multipliers and unknown jitter are refused at construction."""
    with pytest.raises(ValueError, match="first_delay"):
        PollPolicy(first_delay=-1)
    with pytest.raises(ValueError, match="multiplier"):
        PollPolicy(multiplier=0.5)
    with pytest.raises(ValueError, match="jitter"):
        PollPolicy(jitter="some")


def test_throttle_pauses_and_halves_on_429_then_recovers_gradually() -> None:
    """A 429 pauses every poll until Retry-After and halves concurrency; successes win it back."""
    throttle = Throttle(max_concurrency=8, recovery_successes=2)
    throttle.on_rate_limited(now=100.0, retry_after=5.0)
    assert throttle.resume_at == 105.0
    assert throttle.send_time(101.0) == 105.0
    assert throttle.concurrency == 4
    throttle.on_rate_limited(now=101.0, retry_after=None)
    assert throttle.concurrency == 2
    recovered = []
    for _ in range(12):
        throttle.on_success()
        recovered.append(throttle.concurrency)
    assert recovered == [2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8]
    throttle.on_success()
    assert throttle.concurrency == 8


def test_throttle_spaces_requests_at_the_rate_cap() -> None:
    """With max_rate, consecutive sends are 1/rate apart, and a 429 halves the rate."""
    throttle = Throttle(max_concurrency=4, max_rate=10.0)
    times = [throttle.send_time(0.0) for _ in range(3)]
    assert times == pytest.approx([0.0, 0.1, 0.2])
    throttle.on_rate_limited(now=0.3, retry_after=1.0)
    assert throttle.rate == 5.0
    assert throttle.send_time(0.3) == pytest.approx(1.3)
    assert throttle.send_time(0.3) == pytest.approx(1.5)


def test_default_schedule_is_the_benchmarked_one() -> None:
    """PollPolicy() polls at 4.75, 9.75, 16, 23.8, 33.6, 45.8, 61.0, 80.1 s, then every 19.75 s."""
    assert default_poll_times(10) == pytest.approx(
        [
            4.75,
            9.75,
            16.0,
            23.8125,
            33.578125,
            45.78515625,
            61.0439453125,
            80.117431640625,
            99.867431640625,
            119.617431640625,
        ]
    )


def default_poll_times(count: int) -> list[float]:
    """When PollPolicy() polls a running job, in seconds after it was taken up."""
    policy = PollPolicy()
    times, at = [], 0.0
    for polls in range(count):
        at += policy.next_delay(PollContext(polls=polls, state=State.PROCESSING), draw=0.5)
        times.append(at)
    return times


def test_default_polls_a_short_job_no_later_than_a_fixed_5_s_loop() -> None:
    """The first two polls come just before a fixed 5 s loop's (5 s and 10 s), then intervals grow.

    A job that has ended by the first poll is seen before the fixed loop's
    first poll, and one that has ended by the second before its second, at
    most 5 s after its end either way; after that intervals only grow, from
    more than 5 s to a cap below Google's 20 s.
    """
    times = default_poll_times(40)
    gaps = [later - earlier for earlier, later in zip([0.0, *times], times, strict=False)]
    assert times[1] <= 10.0
    assert 4.5 < times[0] < 5.0
    assert all(gap <= 5.0 for gap in gaps[:2])
    assert gaps[2] > 5.0
    assert gaps[2:] == sorted(gaps[2:])
    assert max(gaps) < 20.0


def test_default_schedule_ignores_the_draw() -> None:
    """PollPolicy() has no jitter: every job follows the same schedule, whatever the draw."""
    policy = PollPolicy()
    for polls in range(8):
        context = PollContext(polls=polls, state=State.PROCESSING)
        assert policy.next_delay(context, draw=0.0) == policy.next_delay(context, draw=0.99)


def test_default_schedule_slows_down_for_queued_jobs() -> None:
    """A job still SUBMITTED after its first poll waits twice as long as a running one."""
    policy = PollPolicy()
    queued = PollContext(polls=2, state=State.SUBMITTED)
    running = PollContext(polls=2, state=State.PROCESSING)
    assert policy.next_delay(queued, draw=0.5) == 2 * policy.next_delay(running, draw=0.5)


@pytest.mark.parametrize("jitter", ["full", "equal", "none"])
def test_an_uncapped_backoff_that_overflows_waits_forever_not_nan(jitter: Jitter) -> None:
    """With no cap, a huge poll count gives an infinite delay, never NaN (it breaks a heap)."""
    policy = PollPolicy(initial_interval=1.0, multiplier=8.0, max_interval=math.inf, jitter=jitter)
    context = PollContext(polls=400, state=State.PROCESSING)
    assert policy.next_delay(context, draw=0.0) == math.inf


def backoff_reference(policy: PollPolicy, context: PollContext, draw: float) -> float:
    """The schedule as documented, worked out from scratch for each poll."""
    if context.polls == 0:
        delay = apply_jitter(policy.first_delay, policy.jitter, draw)
    else:
        delay = backoff_delay(
            context.polls,
            initial=policy.initial_interval,
            maximum=policy.max_interval,
            multiplier=policy.multiplier,
            jitter=policy.jitter,
            draw=draw,
        )
        if context.state is State.SUBMITTED:
            delay = min(
                delay * policy.submitted_factor, policy.max_interval * policy.submitted_factor
            )
    if context.retry_after is not None:
        delay = max(delay, context.retry_after)
    return delay


seconds = st.floats(min_value=0, max_value=1e6, allow_nan=False)
policies = st.builds(
    PollPolicy,
    first_delay=seconds,
    initial_interval=seconds,
    multiplier=st.floats(min_value=1, max_value=10),
    max_interval=st.one_of(seconds, st.just(math.inf)),
    submitted_factor=st.floats(min_value=1, max_value=10),
    jitter=st.sampled_from(["full", "equal", "none"]),
)
contexts = st.builds(
    PollContext,
    polls=st.one_of(st.integers(0, 300), st.integers(0, 10**9)),
    state=st.sampled_from([None, *State]),
    elapsed=seconds,
    kind=st.sampled_from([None, "musicSeperate"]),
    retry_after=st.one_of(st.none(), seconds),
)


@given(policies, contexts, st.floats(min_value=0, max_value=1, exclude_max=True))
def test_every_delay_is_the_documented_backoff(
    policy: PollPolicy, context: PollContext, draw: float
) -> None:
    """Intervals worked out in advance give exactly what the backoff formula gives."""
    assert policy.next_delay(context, draw) == backoff_reference(policy, context, draw)


class SlowerWhenLate(PollPolicy):
    """A policy of one's own, built on PollPolicy, that reads the elapsed time too."""

    def next_delay(self, context: PollContext, draw: float) -> float:
        return super().next_delay(context, draw) + (1.0 if context.elapsed > 60 else 0.0)


@given(
    st.one_of(policies, st.just(SlowerWhenLate()), st.just(LearningPollPolicy())),
    contexts,
    st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_the_waiters_delay_function_is_the_policys_next_delay(
    policy: PollStrategy, context: PollContext, draw: float
) -> None:
    """The waiter's fast path (no PollContext per poll) agrees with ``next_delay``."""
    assume(context.retry_after is None)  # the waiter passes none on a poll's answer
    function = delay_function(policy)
    got = function(context.polls, context.state, context.elapsed, context.kind, draw)
    assert got == policy.next_delay(context, draw)
