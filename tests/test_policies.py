"""Retry timing: exponential backoff with jitter, capped, honouring Retry-After; pure functions."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mediax_async import RetryPolicy
from mediax_async._policies import Jitter, apply_jitter, backoff_delay


def delay(attempt: int, jitter: Jitter = "none", draw: float = 0.5, **options: float) -> float:
    settings: dict[str, Any] = {"initial": 0.5, "maximum": 30.0, "multiplier": 2.0}
    settings.update(options)
    return backoff_delay(attempt, jitter=jitter, draw=draw, **settings)


def test_backoff_grows_by_the_multiplier_up_to_the_maximum() -> None:
    """Delays go initial, initial*m, initial*m², ... and stop growing at the maximum."""
    assert [delay(n) for n in range(1, 9)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


@pytest.mark.parametrize("attempt", [100, 10_000, 10**9, 10**18])
def test_huge_attempt_numbers_do_not_overflow(attempt: int) -> None:
    """However many attempts came before, the delay is the maximum, not an overflow."""
    assert delay(attempt) == 30.0
    assert delay(attempt, multiplier=1000.0, initial=1e-6, maximum=86_400.0) == 86_400.0


def test_unbounded_maximum_does_not_overflow() -> None:
    """``max_delay=inf`` (no cap) still gives finite, growing delays."""
    assert delay(1, maximum=math.inf) == 0.5
    assert delay(11, maximum=math.inf) == 512.0
    assert RetryPolicy(max_delay=math.inf, jitter="none").delay(3, retry_after=None, draw=0) == 2.0


@pytest.mark.parametrize(
    ("jitter", "draw", "expected"),
    [
        ("none", 0.0, 8.0),
        ("none", 0.99, 8.0),
        ("full", 0.0, 0.0),
        ("full", 0.25, 2.0),
        ("full", 0.5, 4.0),
        ("equal", 0.0, 4.0),
        ("equal", 0.5, 6.0),
    ],
)
def test_jitter_spreads_the_delay_with_the_draw(
    jitter: Jitter, draw: float, expected: float
) -> None:
    """Full jitter is uniform in [0, d], equal jitter in [d/2, d], none is d."""
    assert delay(5, jitter=jitter, draw=draw) == expected
    assert apply_jitter(8.0, jitter, draw) == expected


def test_multiplier_of_one_keeps_the_delay_constant() -> None:
    """A multiplier of 1 waits the initial delay every time."""
    assert [delay(n, multiplier=1.0, initial=3.0) for n in (1, 5, 50, 10**9)] == [3.0] * 4


@pytest.mark.parametrize("attempt", [1, 5, 50, 2_000, 10**9])
def test_zero_initial_delay_never_waits(attempt: int) -> None:
    """An initial delay of 0 (retries without waiting) gives 0 for any attempt, never an error."""
    assert delay(attempt, initial=0.0) == 0.0


def test_maximum_below_initial_caps_the_first_delay() -> None:
    """The maximum wins even over the initial delay."""
    assert delay(1, initial=10.0, maximum=2.0) == 2.0
    assert delay(7, initial=10.0, maximum=2.0) == 2.0


def test_attempts_count_from_one() -> None:
    """Attempt 0 is a programming error."""
    with pytest.raises(ValueError, match="from 1"):
        delay(0)


@given(
    attempt=st.integers(min_value=1, max_value=10**12),
    initial=st.one_of(st.just(0.0), st.floats(min_value=1e-6, max_value=3600.0)),
    maximum=st.floats(min_value=0.0, max_value=86_400.0),
    multiplier=st.floats(min_value=1.0, max_value=10.0),
    jitter=st.sampled_from(["full", "equal", "none"]),
    draw=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_backoff_is_always_between_zero_and_the_maximum(
    attempt: int,
    initial: float,
    maximum: float,
    multiplier: float,
    jitter: Jitter,
    draw: float,
) -> None:
    """For any settings and attempt, the delay is finite and within [0, maximum]."""
    value = backoff_delay(
        attempt, initial=initial, maximum=maximum, multiplier=multiplier, jitter=jitter, draw=draw
    )
    assert math.isfinite(value)
    assert 0.0 <= value <= maximum


@given(
    attempt=st.integers(min_value=1, max_value=200),
    initial=st.floats(min_value=1e-3, max_value=60.0),
    multiplier=st.floats(min_value=1.0, max_value=5.0),
)
def test_backoff_without_jitter_never_shrinks(
    attempt: int, initial: float, multiplier: float
) -> None:
    """Without jitter, a later attempt never waits less than an earlier one."""
    options: dict[str, Any] = {"initial": initial, "multiplier": multiplier, "maximum": 120.0}
    assert delay(attempt + 1, **options) >= delay(attempt, **options)


# -- RetryPolicy --------------------------------------------------------------------------------


def test_retry_policy_defaults() -> None:
    """By default: 3 retries, from 0.5 s doubling to at most 30 s, full jitter."""
    policy = RetryPolicy()
    assert policy.max_retries == 3
    assert (policy.initial_delay, policy.multiplier, policy.max_delay) == (0.5, 2.0, 30.0)
    assert policy.jitter == "full"
    assert policy.max_retry_after == 120.0


def test_retry_policy_gives_up_after_max_retries() -> None:
    """Attempts 1..max_retries get a delay; the next one gives up (None)."""
    policy = RetryPolicy(jitter="none")
    assert [policy.delay(n, retry_after=None, draw=0.5) for n in range(1, 6)] == [
        0.5,
        1.0,
        2.0,
        None,
        None,
    ]
    assert RetryPolicy(max_retries=0).delay(1, retry_after=None, draw=0.5) is None


def test_retry_after_is_a_floor() -> None:
    """A Retry-After makes the wait at least that long, never shorter than the backoff."""
    policy = RetryPolicy(jitter="none", initial_delay=4.0)
    assert policy.delay(1, retry_after=10.0, draw=0.0) == 10.0
    assert policy.delay(1, retry_after=1.0, draw=0.0) == 4.0
    assert policy.delay(1, retry_after=0.0, draw=0.0) == 4.0
    full = RetryPolicy(jitter="full", initial_delay=4.0)
    assert full.delay(1, retry_after=3.0, draw=0.0) == 3.0


def test_retry_after_beyond_the_limit_gives_up() -> None:
    """A Retry-After longer than ``max_retry_after`` is not waited out inside a call."""
    policy = RetryPolicy(max_retry_after=60.0)
    assert policy.delay(1, retry_after=60.0, draw=0.5) == 60.0
    assert policy.delay(1, retry_after=61.0, draw=0.5) is None


def test_retry_after_does_not_extend_the_number_of_retries() -> None:
    """Even with a Retry-After, the attempt after the last retry gives up."""
    assert RetryPolicy(max_retries=2).delay(3, retry_after=1.0, draw=0.5) is None


@given(
    attempt=st.integers(min_value=1, max_value=10),
    retry_after=st.one_of(st.none(), st.floats(min_value=0.0, max_value=120.0)),
    draw=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_policy_delay_bounds(attempt: int, retry_after: float | None, draw: float) -> None:
    """A policy's delay is at least the Retry-After and at most max(max_delay, Retry-After)."""
    policy = RetryPolicy(max_retries=10)
    value = policy.delay(attempt, retry_after=retry_after, draw=draw)
    assert value is not None
    assert value >= (retry_after or 0.0)
    assert value <= max(policy.max_delay, retry_after or 0.0)


@pytest.mark.parametrize(
    "options",
    [
        {"max_retries": -1},
        {"initial_delay": -0.1},
        {"initial_delay": math.nan},
        {"max_delay": -1.0},
        {"multiplier": 0.5},
        {"jitter": "random"},
        {"max_retry_after": -5.0},
    ],
    ids=lambda options: next(iter(options)),
)
def test_retry_policy_refuses_bad_settings(options: dict[str, Any]) -> None:
    """Negative, NaN or unknown settings are refused when the policy is built."""
    with pytest.raises(ValueError, match=next(iter(options))):
        RetryPolicy(**options)
