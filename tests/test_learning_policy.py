"""LearningPollPolicy: polls placed around the learned end of each kind of job; pure, bounded."""

from __future__ import annotations

import itertools
import math
import random
from typing import Any

import anyio
import attrs
import pytest
import trio.testing
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mediax_async import (
    Job,
    MediaXClient,
    PollContext,
    PollPolicy,
    PollStrategy,
    State,
    parse_job,
    separation_request,
)
from mediax_async._learning import (
    LRO_BACKOFF,
    LearnedSchedule,
    LearningPollPolicy,
    _Fit,
    quantile,
)
from mediax_async.testing import FakeMediaX, FixedDuration, Profile, Schedule

KIND = "musicSeperate"
OTHER = "musicComposerHumming"
DESCRIPTORS: dict[str, dict[str, Any]] = {
    KIND: {"musicSeperate": {"method": 1}},
    OTHER: {"musicComposerHumming": {"songQuantity": 1}},
}
FALLBACK = PollPolicy(
    first_delay=1.0,
    initial_interval=2.0,
    multiplier=2.0,
    max_interval=10.0,
    submitted_factor=1.0,
    jitter="none",
)


def ended(
    seconds: float,
    *,
    kind: str = KIND,
    state: State = State.COMPLETED,
    completed: bool = True,
) -> Job:
    """A settled job as GetJob returns it, ``seconds`` from creation to completion."""
    created = 1_700_000_000_000
    output = {
        "contentId": "repo",
        "inputSelectors": [0],
        "smartContentDescriptor": DESCRIPTORS[kind],
    }
    return parse_job(
        {
            "id": "job-1",
            "state": int(state),
            "inputs": [{"url": "https://songs.test/a.mp3"}],
            "outputs": [output],
            "timing": {
                "createdAt": str(created),
                "startedAt": str(created),
                "completedAt": str(created + round(seconds * 1000)) if completed else "0",
            },
        }
    )


def taught(durations: list[float], kind: str = KIND, **options: Any) -> LearningPollPolicy:
    options.setdefault("fallback", FALLBACK)
    options.setdefault("delay_reference", FALLBACK)
    policy = LearningPollPolicy(**options)
    for seconds in durations:
        policy.learn(kind, seconds)
    policy.complete_fits()
    return policy


def context(elapsed: float, polls: int, kind: str | None = KIND, **extra: Any) -> PollContext:
    extra.setdefault("state", State.PROCESSING)
    return PollContext(polls=polls, elapsed=elapsed, kind=kind, **extra)


def run(policy: PollStrategy, duration: float, kind: str = KIND) -> tuple[int, float]:
    """Polls, and detection delay, of one job ending ``duration`` s after take-up (no latency)."""
    at, polls = 0.0, 0
    while True:
        state = State.SUBMITTED if polls == 0 else State.PROCESSING
        at += policy.next_delay(context(at, polls, kind, state=state), draw=0.5)
        polls += 1
        if at >= duration:
            return polls, at - duration


SPREAD = [100.0 + n / 2 for n in range(200)]  # 100 .. 199.5 s, evenly


def test_until_enough_jobs_have_ended_the_fallback_decides() -> None:
    """With fewer than min_samples settled jobs of a kind, polls follow the fallback exactly."""
    policy = taught(SPREAD[:19])
    assert policy.schedule(KIND) is None
    for polls, elapsed in [(0, 0.0), (1, 1.0), (4, 15.0), (9, 300.0)]:
        here = context(elapsed, polls)
        assert policy.next_delay(here, 0.3) == FALLBACK.next_delay(here, 0.3)
    policy.learn(KIND, SPREAD[19])
    policy.complete_fits()
    assert policy.schedule(KIND) is not None


def test_first_poll_comes_as_late_as_the_delay_budget_allows() -> None:
    """No poll before jobs start ending; few jobs end longer than the budget before the first."""
    policy = taught(SPREAD)
    schedule = policy.schedule(KIND)
    assert schedule is not None
    learned_from = SPREAD[: schedule.samples]  # the fit as of its last refit
    budget = schedule.reference_delay  # the delay the fit kept to
    # Later than the earliest end plus the budget: it lets a few early ends be late ...
    assert schedule.first > min(learned_from) + budget
    late = [seconds for seconds in learned_from if seconds < schedule.first - budget]
    # ... but no more than the delay quantile allows.
    assert 0 < len(late) <= 0.05 * len(learned_from)
    assert policy.next_delay(context(0.0, 0, state=State.SUBMITTED), 0.5) == schedule.first


def test_steady_polls_stay_on_a_grid_and_never_come_twice_in_a_row() -> None:
    """After the first poll, polls keep a steady grid: a late answer or rounding never shifts it."""
    policy = taught(SPREAD)
    schedule = policy.schedule(KIND)
    assert schedule is not None
    first, step = schedule.first, schedule.interval
    assert step > 0
    assert policy.next_delay(context(first, 1), 0.5) == pytest.approx(step)
    late = first + 0.3 * step
    assert policy.next_delay(context(late, 1), 0.5) == pytest.approx(0.7 * step)
    just_short = math.nextafter(first + step, 0.0)
    assert policy.next_delay(context(just_short, 2), 0.5) == pytest.approx(step)
    assert policy.next_delay(context(math.nextafter(first, 0.0), 1), 0.5) == pytest.approx(step)


def test_far_tail_is_polled_ever_more_sparsely_up_to_the_cap() -> None:
    """Past the late quantiles, gaps grow with the time spent there, up to max_interval."""
    durations = [random.Random(n).lognormvariate(math.log(60), 1.0) for n in range(400)]
    policy = taught(durations, max_interval=120.0)
    schedule = policy.schedule(KIND)
    assert schedule is not None
    assert schedule.tail_start < schedule.horizon == max(durations)
    times = list(schedule.poll_times())
    tail = [at for at in times if at > schedule.tail_start]
    gaps = [later - earlier for earlier, later in itertools.pairwise(tail)]
    assert len(gaps) >= 3
    assert all(later >= earlier - 1e-9 for earlier, later in itertools.pairwise(gaps))
    assert gaps[-1] > schedule.interval
    assert all(schedule.interval - 1e-9 <= gap <= 120.0 + 1e-9 for gap in gaps)
    assert times[-1] >= schedule.horizon > times[-2]
    # From one tail poll, the policy waits exactly for the next.
    for earlier, later in itertools.pairwise(tail):
        assert policy.next_delay(context(earlier, 9), 0.5) == pytest.approx(later - earlier)


def test_beyond_the_longest_learned_duration_the_fallback_decides_again() -> None:
    """A job outliving every job seen is polled like the fallback would, not ever more rarely."""
    policy = taught(SPREAD)
    past = context(1_000.0, 12)
    assert policy.next_delay(past, 0.5) == FALLBACK.next_delay(past, 0.5)


def test_each_kind_is_learned_on_its_own() -> None:
    """What is learned of one capability does not change how another is polled."""
    policy = taught(SPREAD)
    assert policy.schedule(OTHER) is None
    here = context(0.0, 0, kind=OTHER)
    assert policy.next_delay(here, 0.5) == FALLBACK.next_delay(here, 0.5)


def test_jobs_of_unknown_kind_or_state_follow_the_fallback() -> None:
    """A bare job id (no state yet) or a job without a capability is polled by the fallback."""
    policy = taught(SPREAD)
    for here in (context(0.0, 0, state=None), context(0.0, 0, kind=None)):
        assert policy.next_delay(here, 0.5) == FALLBACK.next_delay(here, 0.5)


def test_observe_learns_from_completed_and_failed_jobs_only() -> None:
    """Durations come from COMPLETED and ERROR jobs' timing; cancellations and gaps are skipped."""
    policy = LearningPollPolicy()
    policy.observe(ended(30.0))
    policy.observe(ended(12.5, state=State.ERROR))
    policy.observe(ended(40.0, kind=OTHER))
    policy.observe(ended(5.0, state=State.CANCELED))
    policy.observe(ended(9.0, completed=False))
    policy.observe(attrs.evolve(ended(7.0), outputs=()))
    assert policy.samples(KIND) == [30.0, 12.5]
    assert policy.samples(OTHER) == [40.0]


def test_observe_reaches_the_fallback_too() -> None:
    """A fallback that learns sees every ended job the learning policy sees."""
    seen: list[Job] = []

    class Recording(PollPolicy):
        def observe(self, job: Job) -> None:
            seen.append(job)

    policy = LearningPollPolicy(fallback=Recording())
    job = ended(3.0)
    policy.observe(job)
    assert seen == [job]


def test_bad_durations_are_ignored() -> None:
    """Negative, infinite or NaN durations never reach the samples."""
    policy = taught([-1.0, math.inf, math.nan, 2.0])
    assert policy.samples(KIND) == [2.0]


def test_memory_is_bounded_per_kind_and_in_kinds() -> None:
    """Only the last sample_size durations of at most max_kinds kinds are kept."""
    policy = taught([float(n) for n in range(100)], min_samples=5, sample_size=30, max_kinds=1)
    assert policy.samples(KIND) == [float(n) for n in range(70, 100)]
    policy.learn(OTHER, 1.0)
    assert policy.samples(OTHER) == []


def test_learned_polls_are_reproducible_and_ignore_the_draw() -> None:
    """Pure: the same settled jobs give the same schedule; learned delays ignore the draw."""
    first, second = taught(SPREAD), taught(SPREAD)
    assert first.schedule(KIND) == second.schedule(KIND)
    for elapsed, polls in [(0.0, 0), (110.0, 1), (150.0, 3)]:
        here = context(elapsed, polls)
        assert first.next_delay(here, 0.0) == first.next_delay(here, 0.99)


def test_retry_after_is_a_floor() -> None:
    """A Retry-After from the service is never undercut by a learned delay."""
    policy = taught(SPREAD)
    assert policy.next_delay(context(0.0, 0, retry_after=500.0), 0.5) == 500.0


def test_failed_polls_back_off_as_the_fallback_says() -> None:
    """After failed polls the fallback's error backoff applies, learned or not."""
    policy = taught(SPREAD)
    assert policy.error_delay(3, 0.5) == FALLBACK.error_delay(3, 0.5)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("min_samples", 1),
        ("sample_size", 10),
        ("delay_quantile", 1.0),
        ("confidence", -1.0),
        ("tail_growth", 0.0),
        ("max_interval", math.nan),
        ("max_kinds", 0),
    ],
)
def test_bad_options_are_refused(option: str, value: float) -> None:
    """Options that make no sense are refused when the policy is built."""
    options: dict[str, Any] = {option: value}
    with pytest.raises(ValueError, match=option):
        LearningPollPolicy(**options)


def test_after_learning_far_fewer_polls_at_no_worse_p95_delay() -> None:
    """Trained on 1,000 jobs: under half the polls of Google's backoff, at its p95 delay."""
    rng = random.Random(7)
    training = [rng.lognormvariate(math.log(30), 1.0) for _ in range(1_000)]
    jobs = [rng.lognormvariate(math.log(30), 1.0) for _ in range(3_000)]
    policy = LearningPollPolicy()
    for seconds in training:
        policy.learn(KIND, seconds)
    policy.complete_fits()
    learned = [run(policy, duration) for duration in jobs]
    backoff = [run(LRO_BACKOFF, duration) for duration in jobs]

    def p95(outcomes: list[tuple[int, float]]) -> float:
        return quantile(sorted(delay for _, delay in outcomes), 0.95)

    def mean_polls(outcomes: list[tuple[int, float]]) -> float:
        return sum(polls for polls, _ in outcomes) / len(outcomes)

    assert mean_polls(learned) < 0.5 * mean_polls(backoff)
    assert p95(learned) <= 1.02 * p95(backoff)


def test_by_default_the_delay_budget_is_google_lro_backoff() -> None:
    """The p95 delay a schedule keeps to is that of 1 s, x1.5, capped at 20 s, unless told."""
    assert LearningPollPolicy().delay_reference == LRO_BACKOFF
    assert (LRO_BACKOFF.first_delay, LRO_BACKOFF.multiplier, LRO_BACKOFF.max_interval) == (
        1.0,
        1.5,
        20.0,
    )
    tighter = taught(SPREAD, delay_reference=PollPolicy()).schedule(KIND)
    looser = taught(SPREAD, delay_reference=LRO_BACKOFF).schedule(KIND)
    assert tighter is not None
    assert looser is not None
    assert tighter.reference_delay < looser.reference_delay
    assert tighter.expected_polls >= looser.expected_polls


durations_lists = st.lists(
    st.floats(min_value=20.0, max_value=400.0, allow_nan=False), min_size=40, max_size=120
)
"""Durations a schedule can beat the reference on: nothing ends during its first polls."""


@settings(max_examples=60, deadline=None)
@given(durations_lists)
def test_a_fitted_schedule_beats_its_reference_on_what_it_learned(
    durations: list[float],
) -> None:
    """On the durations it learned, a schedule beats its reference: fewer polls, p95 no worse."""
    policy = taught(durations, min_samples=len(durations), sample_size=len(durations))
    schedule = policy.schedule(KIND)
    assume(schedule is not None)  # too few fits would fail the test (hypothesis health check)
    assert schedule is not None
    reference = [run(FALLBACK, duration) for duration in durations]  # taught() made it so
    fitted = [schedule.outcome(duration) for duration in durations]
    assert sum(p for p, _ in fitted) < sum(p for p, _ in reference)
    assert (
        quantile(sorted(d for _, d in fitted), 0.95)
        <= quantile(sorted(d for _, d in reference), 0.95) + 1e-9
    )


@settings(max_examples=60, deadline=None)
@given(durations_lists, st.floats(min_value=0.0, max_value=1.0))
def test_polls_follow_the_schedule_the_fit_assumed(durations: list[float], share: float) -> None:
    """next_delay places polls exactly where the fit expected them, always after a positive wait."""
    policy = taught(durations, min_samples=len(durations), sample_size=len(durations))
    schedule = policy.schedule(KIND)
    assume(schedule is not None)
    assert schedule is not None
    end = share * schedule.horizon
    polls, delay = run(policy, end)
    expected_polls, expected_delay = schedule.outcome(end)
    assert polls == expected_polls
    assert delay == pytest.approx(expected_delay, abs=1e-6)
    times = itertools.takewhile(lambda at: at < end, schedule.poll_times())
    assert sum(1 for _ in times) + 1 == expected_polls  # the fit counts the same polls


def test_schedule_is_described() -> None:
    """The fitted schedule says where polls go and what the fit expects of it."""
    schedule = taught(SPREAD).schedule(KIND)
    assert isinstance(schedule, LearnedSchedule)
    assert len(SPREAD) * 3 / 4 <= schedule.samples <= len(SPREAD)
    assert schedule.expected_polls < schedule.reference_polls
    assert schedule.expected_delay <= schedule.reference_delay


def test_it_is_a_poll_strategy() -> None:
    """It can be handed to a waiter wherever a PollStrategy is expected."""
    strategy: PollStrategy = LearningPollPolicy()
    assert strategy.next_delay(context(0.0, 0), 0.5) == PollPolicy().next_delay(
        context(0.0, 0), 0.5
    )


@pytest.mark.anyio
@pytest.mark.parametrize(
    "anyio_backend", [("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})]
)
async def test_a_waiter_teaches_it_and_later_jobs_need_fewer_polls() -> None:
    """Jobs settled through a waiter are learned; later jobs of that kind are polled far less."""
    fake = FakeMediaX(
        schedule=Schedule(default=Profile(queue=FixedDuration(0), processing=FixedDuration(100)))
    )
    policy = LearningPollPolicy(min_samples=10)

    async def batch(client: MediaXClient, count: int) -> int:
        jobs = [
            await client.create_job(
                separation_request(f"https://songs.test/{n}.mp3", content_id="repo")
            )
            for n in range(count)
        ]
        before = len([r for r in fake.requests if r.action == "GetJob"])
        async with client.waiter(policy=policy) as waiter:
            done = await waiter.wait_all(jobs)
        assert all(job.state == State.COMPLETED for job in done)
        return len([r for r in fake.requests if r.action == "GetJob"]) - before

    async with fake.client() as client:
        first = await batch(client, 10)
        await anyio.sleep(1)
        later = await batch(client, 10)
    assert policy.samples(KIND) == [100.0] * 20
    assert first >= 10 * 6
    assert later <= 10 * 2


NICE = st.sampled_from([2.5, 5.0, 10.0, 12.5])
"""Values that make durations land exactly on poll times."""


@settings(max_examples=200, deadline=None)
@given(
    durations=st.lists(st.one_of(st.floats(0.0, 500.0), NICE), min_size=1, max_size=60),
    first=st.one_of(st.floats(0.1, 50.0), NICE),
    interval=st.one_of(st.floats(0.1, 30.0), NICE),
    tail_offset=st.floats(0.0, 300.0),
    growth=st.floats(0.05, 3.0),
    max_interval=st.floats(0.5, 200.0),
    limit=st.one_of(st.floats(0.05, 40.0), NICE),
)
def test_the_fit_counts_polls_and_late_jobs_as_outcome_does(
    durations: list[float],
    first: float,
    interval: float,
    tail_offset: float,
    growth: float,
    max_interval: float,
    limit: float,
) -> None:
    """Counting per gap between polls gives what each job's own outcome gives, boundaries too."""
    durations.sort()
    schedule = LearnedSchedule(
        first=first,
        interval=interval,
        tail_start=first + tail_offset,
        tail_growth=growth,
        max_interval=max_interval,
        horizon=durations[-1],
    )
    outcomes = [schedule.outcome(duration) for duration in durations]
    fit = _Fit(durations, limit, len(durations), growth, max_interval)
    assert fit.count(schedule) == (
        sum(number for number, _ in outcomes),
        sum(1 for _, delay in outcomes if delay > limit),
    )
    times = list(schedule.poll_times())
    for duration, (number, delay) in zip(durations, outcomes, strict=True):
        assert delay >= 0  # never seen before it ends
        assert times[number - 1] - duration == delay
        assert number == 1 or times[number - 2] < duration  # the first poll at or after its end


def test_a_fit_on_awkward_durations_is_quick_and_bounded() -> None:
    """Durations just short of the reference's polls (a tiny delay budget) fit in bounded work."""
    policy = LearningPollPolicy(min_samples=100, sample_size=100)
    for seconds in [2.4999] * 96 + [3600.0] * 4:
        policy.learn(KIND, seconds)  # took minutes when empty stretches were walked poll by poll
    schedule = policy.schedule(KIND)
    assert schedule is None or schedule.expected_polls < schedule.reference_polls


def test_the_steady_interval_never_exceeds_max_interval() -> None:
    """A max_interval under the delay budget caps the steady interval too, not only the tail."""
    narrow = [100.0 + n / 20 for n in range(200)]  # one poll can see them all end
    schedule = taught(narrow, delay_reference=LRO_BACKOFF, max_interval=1.0).schedule(KIND)
    assert schedule is not None
    assert schedule.interval <= 1.0
    times = list(schedule.poll_times())
    assert all(later - earlier <= 1.0 + 1e-9 for earlier, later in itertools.pairwise(times))


def test_the_budget_is_the_reference_quantile_lowered_by_the_margin() -> None:
    """With no margin the fit keeps to the reference's p95 delay; a margin makes it stricter."""
    rng = random.Random(3)
    durations = [rng.lognormvariate(math.log(60), 1.0) for _ in range(400)]
    exact = taught(durations, confidence=0.0, delay_reference=LRO_BACKOFF).schedule(KIND)
    careful = taught(durations, delay_reference=LRO_BACKOFF).schedule(KIND)
    assert exact is not None
    assert careful is not None
    learned = sorted(durations[: exact.samples])
    reference = sorted(run(LRO_BACKOFF, seconds)[1] for seconds in learned)
    assert exact.reference_delay == pytest.approx(quantile(reference, 0.95))
    assert careful.reference_delay < exact.reference_delay
    assert careful.expected_polls >= exact.expected_polls


# -- refits in small steps -------------------------------------------------------------


def lognormal(median: float, count: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.lognormvariate(math.log(median), 1.0) for _ in range(count)]


def poll_once(policy: LearningPollPolicy) -> None:
    policy.next_delay(context(30.0, 2), 0.5)


def calls_until_fitted(policy: LearningPollPolicy, before: LearnedSchedule | None) -> int:
    """next_delay calls until the schedule is no longer ``before`` (at most 10,000)."""
    for calls in range(1, 10_001):
        poll_once(policy)
        if policy.schedule(KIND) is not before:
            return calls
    raise AssertionError("the refit never completed")


GOLDEN = {
    # (median, samples, seed): the schedule the fit made, in one go inside learn(), at
    # commit a25dde0 (before refits ran in steps): first, interval, tail_start, horizon,
    # samples, expected_delay, expected_polls, reference_delay, reference_polls.
    (30.0, 4096, 1): (
        20.35497116892897, 17.259209712879386, 137.0198004972583, 1168.2625682932564, 4096,
        17.12335101651106, 2.962158203125, 17.233359673369335, 7.837158203125,
    ),
    (300.0, 4096, 2): (
        49.43773997354835, 18.909300129563036, 1645.3039104314857, 12443.824816028744, 4096,
        18.782599548995478, 22.4912109375, 18.88097866157068, 30.0888671875,
    ),
    (5.0, 1000, 3): (
        7.396710699656438, 7.0690711873242495, 17.40860678574398, 107.13126165605374, 1000,
        6.874978248272094, 1.611, 6.925369764706597, 3.827,
    ),
    (60.0, 200, 4): (
        21.2067627562888, 16.96646420258371, 466.22092739697274, 1162.259398616303, 200,
        16.746198577174013, 6.73, 16.84016298023198, 11.685,
    ),
}  # fmt: skip


@pytest.mark.parametrize(("median", "count", "seed"), list(GOLDEN))
def test_a_refit_in_steps_finds_the_schedule_a_fit_in_one_go_found(
    median: float, count: int, seed: int
) -> None:
    """Spreading a refit over many calls changes nothing in the schedule it finds."""
    policy = LearningPollPolicy(delay_reference=LRO_BACKOFF, min_samples=count, sample_size=count)
    for seconds in lognormal(median, count, seed):
        policy.learn(KIND, seconds)
    calls_until_fitted(policy, None)
    schedule = policy.schedule(KIND)
    assert schedule is not None
    found = (
        schedule.first,
        schedule.interval,
        schedule.tail_start,
        schedule.horizon,
        schedule.samples,
        schedule.expected_delay,
        schedule.expected_polls,
        schedule.reference_delay,
        schedule.reference_polls,
    )
    assert found == GOLDEN[median, count, seed]


def test_no_call_does_more_than_a_small_slice_of_a_refit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refit on 4,096 samples (~70,000 schedule evaluations) never runs within one call."""
    evaluations = 0
    poll_for = LearnedSchedule.poll_for

    def counted(self: LearnedSchedule, duration: float) -> tuple[int, float]:
        nonlocal evaluations
        evaluations += 1
        return poll_for(self, duration)

    monkeypatch.setattr(LearnedSchedule, "poll_for", counted)
    policy = LearningPollPolicy(min_samples=4096)
    most = total = 0
    calls: list[Any] = [
        lambda s=seconds: policy.learn(KIND, s) for seconds in lognormal(300, 4096, 2)
    ]
    calls += [lambda: poll_once(policy)] * 2_000
    for call in calls:
        evaluations = 0
        call()
        most, total = max(most, evaluations), total + evaluations
    assert policy.schedule(KIND) is not None
    assert total > 50_000  # the whole fit ran ...
    assert most <= 1_000  # ... a slice of at most about a millisecond at a time


def test_while_a_refit_runs_polls_follow_the_last_schedule() -> None:
    """Until a refit is done, the schedule fitted before it decides; then the new one does."""
    policy = taught(lognormal(30, 400, 5), min_samples=400, sample_size=400)
    before = policy.schedule(KIND)
    assert before is not None
    for seconds in lognormal(300, 399, 6):
        policy.learn(KIND, seconds)
    assert policy.schedule(KIND) is before  # not due: the window has not turned over yet
    policy.learn(KIND, 300.0)  # due: the refit starts
    assert policy.schedule(KIND) is before
    here = context(before.first, 1)
    assert policy.next_delay(here, 0.5) == pytest.approx(before.delay(before.first, 1))
    calls = calls_until_fitted(policy, before)
    assert 2 <= calls <= 500
    after = policy.schedule(KIND)
    assert after is not None
    assert after.samples == 400
    assert after.horizon == max(policy.samples(KIND))  # fitted to the new window


def test_samples_learned_during_a_refit_start_the_next_one() -> None:
    """Jobs that end while a refit runs are kept, and the next refit fits them too."""
    policy = LearningPollPolicy(min_samples=50, sample_size=200)
    durations = lognormal(60, 200, 7)
    for seconds in durations:  # learn() alone: each call advances the refit in progress
        policy.learn(KIND, seconds)
    policy.complete_fits()
    schedule = policy.schedule(KIND)
    assert schedule is not None
    assert policy.samples(KIND) == durations
    assert schedule.samples > 150  # refits kept up with the samples
    # The last refit fitted the window as it was when it started, as a fit in one go would.
    window = durations[: schedule.samples]
    alone = LearningPollPolicy(min_samples=len(window), sample_size=len(window))
    for seconds in window:
        alone.learn(KIND, seconds)
    alone.complete_fits()
    assert alone.schedule(KIND) == schedule


def test_refits_of_several_kinds_each_complete() -> None:
    """Refits due for two kinds at once both finish, one after the other, through polls."""
    policy = LearningPollPolicy(min_samples=300, sample_size=300)
    for short, long in zip(lognormal(30, 300, 8), lognormal(300, 300, 9), strict=True):
        policy.learn(KIND, short)
        policy.learn(OTHER, long)
    for _ in range(2_000):
        poll_once(policy)
    short_schedule, long_schedule = policy.schedule(KIND), policy.schedule(OTHER)
    assert short_schedule is not None
    assert long_schedule is not None
    assert short_schedule.first < long_schedule.first


def test_complete_fits_finishes_a_refit_at_once() -> None:
    """After learn()-ing kept durations, complete_fits() makes the schedule ready without polls."""
    policy = LearningPollPolicy(min_samples=1000, sample_size=1000)
    for seconds in lognormal(30, 1000, 10):
        policy.learn(KIND, seconds)
    assert policy.schedule(KIND) is None
    policy.complete_fits()
    schedule = policy.schedule(KIND)
    assert schedule is not None
    assert schedule.samples == 1000
