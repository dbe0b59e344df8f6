"""The fake's pure parts: state machine, schedule, validation and fault decisions (no I/O)."""

from __future__ import annotations

import statistics
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediax_async._enums import State
from mediax_async.testing import (
    Fault,
    FaultPlan,
    FixedDuration,
    LogNormalDuration,
    MediaXState,
    Profile,
    Schedule,
)
from mediax_async.testing._wire import DEFAULT_EPOCH_OFFSET_MS, ServiceError

OWNER = "owner"


def separate_request(**extra: Any) -> dict[str, Any]:
    return {
        "inputs": [{"url": "https://example.com/song.mp3"}],
        "outputs": [
            {
                "contentId": "repo",
                "inputSelectors": [0],
                "smartContentDescriptor": {"musicSeperate": {"method": 1}},
            }
        ],
        **extra,
    }


def training_request(name: str) -> dict[str, Any]:
    descriptor = {"singingCloning": {"type": 2, "modelName": name}}
    return {
        "inputs": [{"url": "https://example.com/voice.wav"}],
        "outputs": [{"inputSelectors": [0], "smartContentDescriptor": descriptor}],
    }


def make_state(
    queue: float = 1, processing: float = 30, *, seed: int = 0, **rates: float
) -> MediaXState:
    profile = Profile(queue=FixedDuration(queue), processing=FixedDuration(processing), **rates)
    state = MediaXState(seed=seed, schedule=Schedule(default=profile))
    state.add_account(OWNER, "key")
    return state


def ms(seconds: float) -> str:
    return str(DEFAULT_EPOCH_OFFSET_MS + round(seconds * 1000))


def test_job_moves_through_its_states_on_schedule() -> None:
    """A job is SUBMITTED, PROCESSING after its queue time, COMPLETED after processing."""
    state = make_state(queue=2, processing=10)
    job = state.create_job(OWNER, separate_request(), now=100)
    assert job.wire["state"] == State.SUBMITTED
    assert job.wire["timing"] == {"createdAt": ms(100), "startedAt": "0", "completedAt": "0"}
    state.advance(101.999)
    assert job.state == State.SUBMITTED
    state.advance(102)
    assert job.wire["state"] == State.PROCESSING
    assert job.wire["timing"]["startedAt"] == ms(102)
    state.advance(500)
    assert job.wire["state"] == State.COMPLETED
    assert job.wire["timing"] == {
        "createdAt": ms(100),
        "startedAt": ms(102),
        "completedAt": ms(112),
    }
    assert "smartContentResult" in job.wire["outputs"][0]


def test_job_json_echoes_the_request() -> None:
    """The job carries customId, callback, inputs, outputs and timeout exactly as sent."""
    request = separate_request(customId="mine", callback="https://hook.test/cb", timeout=600)
    request["outputs"][0]["destination"] = "/stems"
    job = make_state().create_job(OWNER, request, now=0)
    assert job.wire["customId"] == "mine"
    assert job.wire["callback"] == "https://hook.test/cb"
    assert job.wire["timeout"] == 600
    assert job.wire["inputs"] == request["inputs"]
    assert job.wire["outputs"] == request["outputs"]
    assert set(job.wire) == {
        "id", "state", "customId", "callback", "timeout", "inputs", "outputs", "timing"
    }  # fmt: skip


def test_job_without_optional_fields_has_empty_custom_id_and_callback() -> None:
    """A job always has customId and callback (empty when not sent); timeout only if sent."""
    job = make_state().create_job(OWNER, separate_request(), now=0)
    assert job.wire["customId"] == ""
    assert job.wire["callback"] == ""
    assert "timeout" not in job.wire


def test_results_do_not_touch_the_request_objects() -> None:
    """Finishing a job adds results to the job's outputs, not to the caller's request dicts."""
    request = separate_request()
    state = make_state()
    state.create_job(OWNER, request, now=0)
    state.advance(1000)
    assert "smartContentResult" not in request["outputs"][0]


def test_timeout_during_processing_ends_the_job_in_error() -> None:
    """A job still running when its timeout passes ends ERROR at that moment."""
    state = make_state(queue=1, processing=30)
    job = state.create_job(OWNER, separate_request(timeout=10), now=0)
    state.advance(1000)
    assert job.state == State.ERROR
    assert job.wire["timing"] == {"createdAt": ms(0), "startedAt": ms(1), "completedAt": ms(10)}
    assert "smartContentResult" not in job.wire["outputs"][0]


def test_timeout_while_queued_never_starts_the_job() -> None:
    """A job whose timeout passes in the queue ends ERROR with startedAt "0"."""
    state = make_state(queue=60, processing=30)
    job = state.create_job(OWNER, separate_request(timeout=5), now=0)
    state.advance(1000)
    assert job.state == State.ERROR
    assert job.wire["timing"]["startedAt"] == "0"
    assert job.wire["timing"]["completedAt"] == ms(5)


def test_job_finishing_exactly_at_its_timeout_completes() -> None:
    """A timeout equal to the job's duration is not exceeded."""
    state = make_state(queue=1, processing=9)
    job = state.create_job(OWNER, separate_request(timeout=10), now=0)
    state.advance(10)
    assert job.state == State.COMPLETED


def test_ids_are_uuid4_and_repeat_with_the_seed() -> None:
    """Job ids look like uuid4 and the same seed gives the same ids."""

    def ids(seed: int) -> list[str]:
        state = make_state(seed=seed)
        return [state.create_job(OWNER, separate_request(), now=0).id for _ in range(3)]

    first = ids(0)
    assert all(uuid.UUID(job_id).version == 4 for job_id in first)
    assert len(set(first)) == 3
    assert ids(0) == first
    assert ids(1) != first


def test_error_and_cancel_fractions_follow_the_profile() -> None:
    """error_rate and cancel_rate set the share of jobs ending ERROR and CANCELED."""
    state = make_state(error_rate=0.3, cancel_rate=0.2)
    jobs = [state.create_job(OWNER, separate_request(), now=0) for _ in range(2000)]
    state.advance(1000)
    ends = [job.state for job in jobs]
    assert ends.count(State.ERROR) / 2000 == pytest.approx(0.3, abs=0.04)
    assert ends.count(State.CANCELED) / 2000 == pytest.approx(0.2, abs=0.04)
    assert ends.count(State.COMPLETED) / 2000 == pytest.approx(0.5, abs=0.04)


def test_lognormal_durations_center_on_their_median_and_repeat() -> None:
    """LogNormalDuration draws around its median, and a seed repeats the draws."""
    import random

    duration = LogNormalDuration(median=20, sigma=0.5)
    draws = [duration.sample(random.Random(7)) for _ in range(2)]
    assert draws[0] == draws[1]
    rng = random.Random(0)
    assert statistics.median(duration.sample(rng) for _ in range(4001)) == pytest.approx(20, 0.1)


def test_profile_per_capability_overrides_the_default() -> None:
    """Schedule.by_capability gives one capability its own durations."""
    slow = Profile(queue=FixedDuration(0), processing=FixedDuration(500))
    state = MediaXState(schedule=Schedule(by_capability={"musicSeperate": slow}))
    state.add_account(OWNER, "key")
    job = state.create_job(OWNER, separate_request(), now=0)
    state.advance(499)
    assert job.wire["state"] == State.PROCESSING
    state.advance(500)
    assert job.wire["state"] == State.COMPLETED


@pytest.mark.parametrize(
    "build",
    [
        lambda: FixedDuration(-1),
        lambda: LogNormalDuration(median=0, sigma=1),
        lambda: Profile(error_rate=1.5),
        lambda: Profile(error_rate=0.6, cancel_rate=0.6),
    ],
)
def test_bad_schedules_are_refused(build: Any) -> None:
    """Negative durations, a zero median and rates over 1 raise ValueError at once."""
    with pytest.raises(ValueError, match=r"must|exceed"):
        build()


def test_list_jobs_returns_every_job_with_the_custom_id() -> None:
    """A customId is not unique: every job of the account with it is listed, oldest first."""
    state = make_state()
    jobs = [state.create_job(OWNER, separate_request(customId="batch"), now=0) for _ in range(3)]
    state.create_job(OWNER, separate_request(customId="other"), now=0)
    assert state.list_jobs(OWNER, "batch") == jobs
    assert state.list_jobs(OWNER, "none") == []


def test_training_adds_its_model_when_it_completes() -> None:
    """A singing-training job adds its model to ListModels when, and only when, it completes."""
    state = make_state(queue=1, processing=10)
    state.create_job(OWNER, training_request("voice_1"), now=0)
    state.advance(10)
    assert state.list_models(OWNER, 0, 10) == (0, [])
    state.advance(11)
    assert state.list_models(OWNER, 0, 10) == (1, [{"name": "voice_1", "createdAt": ms(11)}])


def test_training_names_are_unique_until_a_failed_training_frees_them() -> None:
    """A model name in training or trained is taken; a training that ends ERROR frees it."""
    state = make_state()
    first = state.create_job(OWNER, training_request("voice"), now=0)
    with pytest.raises(ServiceError, match="'voice' is already taken"):
        state.create_job(OWNER, training_request("voice"), now=0)
    state.force_state(first.id, State.ERROR, now=1)
    state.create_job(OWNER, training_request("voice"), now=2)
    state.advance(100)
    with pytest.raises(ServiceError, match="already taken"):
        state.create_job(OWNER, training_request("voice"), now=100)


def test_models_belong_to_their_account() -> None:
    """One account's trained models are not listed for, nor usable by, another."""
    state = make_state()
    state.add_account("other", "key2")
    state.add_model(OWNER, "mine", now=0)
    assert state.list_models("other", 0, 10) == (0, [])
    request = separate_request()
    request["outputs"][0]["smartContentDescriptor"] = {
        "singingCloning": {"type": 1, "modelName": "mine"}
    }
    state.create_job(OWNER, request, now=0)
    with pytest.raises(ServiceError, match="is not a model of this account"):
        state.create_job("other", request, now=0)


def test_list_models_pages_oldest_first() -> None:
    """ListModels pages with offset and limit over models in creation order."""
    state = make_state()
    for index in range(5):
        state.add_model(OWNER, f"m{index}", now=index)
    total, page = state.list_models(OWNER, 1, 2)
    assert total == 5
    assert [model["name"] for model in page] == ["m1", "m2"]
    assert state.list_models(OWNER, 4, 10)[1] == [{"name": "m4", "createdAt": ms(4)}]
    assert state.list_models(OWNER, 9, 10) == (5, [])


def test_force_state_completes_now_with_results_and_replaces_the_plan() -> None:
    """force_state(COMPLETED) finishes the job now with results; its planned steps are dropped."""
    state = make_state(queue=5, processing=50)
    job = state.create_job(OWNER, separate_request(callback="https://hook.test/"), now=0)
    state.force_state(job.id, State.COMPLETED, now=2)
    assert job.wire["timing"] == {"createdAt": ms(0), "startedAt": ms(2), "completedAt": ms(2)}
    assert job.wire["outputs"][0]["smartContentResult"]["musicSeperate"]
    state.advance(1000)
    assert job.state == State.COMPLETED
    assert [(c.job_id, c.state, c.due) for c in state.take_callbacks()] == [
        (job.id, State.COMPLETED, 2)
    ]


def test_force_processing_reschedules_the_end() -> None:
    """force_state(PROCESSING) starts the job now; it ends one processing time later."""
    state = make_state(queue=100, processing=10)
    job = state.create_job(OWNER, separate_request(), now=0)
    state.force_state(job.id, State.PROCESSING, now=1)
    assert job.wire["timing"]["startedAt"] == ms(1)
    state.advance(10.9)
    assert job.wire["state"] == State.PROCESSING
    state.advance(11)
    assert job.wire["state"] == State.COMPLETED


@pytest.mark.parametrize("target", [State.SUBMITTED, State.COMPLETED])
def test_force_state_refuses_impossible_moves(target: State) -> None:
    """Forcing a job back to SUBMITTED, or an ended job anywhere, raises ValueError."""
    state = make_state()
    job = state.create_job(OWNER, separate_request(), now=0)
    state.advance(1000)
    with pytest.raises(ValueError, match=r"already ended|cannot force"):
        state.force_state(job.id, target, now=1000)


def test_force_state_of_an_unknown_job_raises_key_error() -> None:
    """force_state names the missing job."""
    with pytest.raises(KeyError, match="nope"):
        make_state().force_state("nope", State.ERROR, now=0)


def test_callbacks_come_due_in_end_order_and_skip_canceled_jobs() -> None:
    """Callbacks fire for COMPLETED and ERROR, in the order jobs ended, never for CANCELED."""
    state = make_state(queue=0, processing=10)
    hook = "https://hook.test/"
    late = state.create_job(OWNER, separate_request(callback=hook), now=5)
    early = state.create_job(OWNER, separate_request(callback=hook, timeout=3), now=5)
    canceled = state.create_job(OWNER, separate_request(callback=hook), now=0)
    quiet = state.create_job(OWNER, separate_request(), now=0)
    state.force_state(canceled.id, State.CANCELED, now=0)
    assert state.next_callback_due() == 8
    state.advance(100)
    taken = state.take_callbacks()
    assert [(c.job_id, c.state, c.due) for c in taken] == [
        (early.id, State.ERROR, 8),
        (late.id, State.COMPLETED, 15),
    ]
    assert quiet.state == State.COMPLETED
    assert state.next_callback_due() is None
    assert state.take_callbacks() == []


def test_authentication_checks_both_credentials() -> None:
    """A wrong key, an unknown id or a missing credential is a 401."""
    state = make_state()
    assert state.authenticate(OWNER, "key") == OWNER
    for secret_id, secret_key in [(OWNER, "wrong"), ("who", "key"), (None, "key"), (OWNER, 1)]:
        with pytest.raises(ServiceError) as caught:
            state.authenticate(secret_id, secret_key)
        assert caught.value.status == 401


def test_state_repr_shows_no_key() -> None:
    """Neither the state's repr nor its accounts' show a secret key."""
    state = MediaXState()
    state.add_account("id", "super-secret-key")
    assert "super-secret-key" not in repr(state)
    assert "super-secret-key" not in repr(state._accounts)


@settings(max_examples=60, deadline=None)
@given(
    durations=st.lists(st.tuples(st.floats(0, 50), st.floats(0, 50)), min_size=1, max_size=6),
    timeouts=st.lists(st.none() | st.integers(1, 80), min_size=6, max_size=6),
    steps=st.lists(st.floats(0, 40), min_size=1, max_size=12),
)
def test_states_only_move_forward_and_timing_stays_ordered(
    durations: list[tuple[float, float]], timeouts: list[int | None], steps: list[float]
) -> None:
    """Whatever the schedule and polling, states never go back and timing stays ordered."""
    jobs = []
    for (queue, processing), timeout in zip(durations, timeouts, strict=False):
        state = make_state(queue, processing)
        extra = {} if timeout is None else {"timeout": timeout}
        jobs.append((state, state.create_job(OWNER, separate_request(**extra), now=0)))
    for state, job in jobs:
        now, last = 0.0, State.SUBMITTED
        for step in steps:
            now += step
            state.advance(now)
            assert job.state >= last
            last = job.state
            created, started, completed = map(int, job.wire["timing"].values())
            assert (completed != 0) == job.state.is_terminal
            assert (started != 0) == (job.state != State.SUBMITTED) or job.state == State.ERROR
            assert created <= (started or created) <= (completed or started or created)


def test_scripted_faults_go_first_then_stop() -> None:
    """inject(fault, action, times) hits exactly the next `times` requests of that action."""
    plan = FaultPlan()
    plan.inject(Fault.SERVER_ERROR, action="GetJob", times=2)
    plan.inject(Fault.DROP)
    assert plan.decide("CreateJob") == Fault.DROP
    assert [plan.decide("GetJob") for _ in range(3)] == [Fault.SERVER_ERROR] * 2 + [None]
    assert plan.decide("CreateJob") is None
    assert plan.injected() == 3
    assert plan.injected(action="GetJob", fault=Fault.SERVER_ERROR) == 2


def test_fault_rates_are_seeded_and_per_action() -> None:
    """set_rate gives each request that chance; the same seed repeats the same choices."""

    def decisions(seed: int) -> list[Fault | None]:
        plan = FaultPlan(seed=seed)
        plan.set_rate(Fault.RATE_LIMITED, 0.5)
        plan.set_rate(Fault.RATE_LIMITED, 0.0, action="CreateJob")
        assert plan.decide("CreateJob") is None
        return [plan.decide("GetJob") for _ in range(400)]

    first = decisions(3)
    assert first == decisions(3)
    assert first.count(Fault.RATE_LIMITED) == pytest.approx(200, abs=40)


def test_fault_rates_must_add_up_to_at_most_one() -> None:
    """Rates that would exceed 1 for some action, and unknown actions, are refused."""
    plan = FaultPlan()
    plan.set_rate(Fault.DROP, 0.6)
    with pytest.raises(ValueError, match="over 1"):
        plan.set_rate(Fault.SLOW, 0.6, action="GetJob")
    with pytest.raises(ValueError, match="unknown action"):
        plan.inject(Fault.DROP, action="GetJobs")
    assert plan.decide("GetJob") in (Fault.DROP, None)
