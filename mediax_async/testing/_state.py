"""The pure state machine of the fake: accounts, jobs, models and their schedule.

No I/O and no clock: every call that depends on time takes ``now`` (seconds on
the fake's clock). Jobs are not ticked by a background task; each job's planned
transitions sit in a heap, and ``advance(now)`` applies every transition due by
``now`` in time order, so a transition costs O(log n) whenever it is observed.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import random
from collections.abc import Iterator
from typing import Any, Final

import attrs

from .._enums import State
from ._results import smart_content_result
from ._schedule import Schedule
from ._validation import DEFAULT_MODEL, validate_create_job
from ._wire import (
    DEFAULT_EPOCH_OFFSET_MS,
    ServiceError,
    capability_of,
    dumps,
    invalid,
    random_uuid,
)

__all__ = ["MediaXState", "PendingCallback"]

_TERMINAL: Final = frozenset({State.COMPLETED, State.ERROR, State.CANCELED})
_CALLBACK_STATES: Final = frozenset({State.COMPLETED, State.ERROR})


@attrs.frozen
class PendingCallback:
    """A callback due for delivery: the job as it ended, and when it ended."""

    url: str
    job_id: str
    state: State
    body: bytes
    due: float


@attrs.define(eq=False)
class _Job:
    id: str
    owner: str
    wire: dict[str, Any]
    outcome: State
    trains: tuple[str, ...]
    state: State = State.SUBMITTED
    generation: int = 0
    encoded: bytes | None = None

    @property
    def callback(self) -> str:
        return str(self.wire["callback"])


@attrs.define(eq=False)
class _Account:
    key_digest: bytes = attrs.field(repr=False)
    models: dict[str, str] = attrs.Factory(dict)  # name -> createdAt, oldest first
    training: set[str] = attrs.Factory(set)  # names reserved by unfinished training jobs
    by_custom_id: dict[str, list[_Job]] = attrs.Factory(dict)


def _digest(secret_key: str) -> bytes:
    # Only a digest is kept, so no repr or dump of the state can show a key.
    return hashlib.sha256(secret_key.encode()).digest()


class MediaXState:
    """Accounts, jobs and models of the fake service, driven by an explicit clock.

    ``seed`` makes job ids, durations and outcomes repeat from run to run
    (``None`` draws fresh ones). ``epoch_offset_ms`` is the epoch time, in ms,
    that clock zero stands for in the jobs' ``timing``.
    """

    def __init__(
        self,
        *,
        seed: int | None = 0,
        schedule: Schedule | None = None,
        epoch_offset_ms: int = DEFAULT_EPOCH_OFFSET_MS,
    ) -> None:
        self.schedule = schedule if schedule is not None else Schedule()
        self.epoch_offset_ms = epoch_offset_ms
        self._ids = random.Random(None if seed is None else f"{seed}/job-ids")
        self._draws = random.Random(None if seed is None else f"{seed}/durations")
        self._accounts: dict[str, _Account] = {}
        self._jobs: dict[str, _Job] = {}
        self._sequence = itertools.count()
        # (due, sequence, job, generation, target): a transition planned for a job;
        # stale when the job's generation moved on (force_state re-plans a job).
        self._transitions: list[tuple[float, int, _Job, int, State]] = []
        # (due, sequence, job, generation) for jobs that will call back when they end.
        self._callbacks_due: list[tuple[float, int, _Job, int]] = []
        self._outbox: list[PendingCallback] = []
        #: Bumped whenever the next callback may have become due sooner.
        self.callback_revision = 0

    def __repr__(self) -> str:
        return f"<MediaXState accounts={len(self._accounts)} jobs={len(self._jobs)}>"

    # -- accounts and models -------------------------------------------------

    def add_account(self, secret_id: str, secret_key: str) -> None:
        """Add an account (or change its key)."""
        account = self._accounts.get(secret_id)
        if account is None:
            self._accounts[secret_id] = _Account(_digest(secret_key))
        else:
            account.key_digest = _digest(secret_key)

    def authenticate(self, secret_id: object, secret_key: object) -> str:
        """Return the account id, or raise ``ServiceError`` (401)."""
        if not isinstance(secret_id, str) or not isinstance(secret_key, str):
            raise ServiceError(401, "AuthFailure", "secretId and secretKey are required")
        account = self._accounts.get(secret_id)
        if account is None:
            raise ServiceError(401, "AuthFailure", "the secretId is not known")
        if not hmac.compare_digest(account.key_digest, _digest(secret_key)):
            raise ServiceError(401, "AuthFailure", "the secretKey does not match the secretId")
        return secret_id

    def add_model(self, owner: str, name: str, now: float) -> None:
        """Give account ``owner`` a trained singing model called ``name``."""
        self._accounts[owner].models[name] = self._epoch_ms(now)

    def list_models(self, owner: str, offset: int, limit: int) -> tuple[int, list[dict[str, str]]]:
        """Return (total, one page of ``{name, createdAt}``), oldest first."""
        models = self._accounts[owner].models
        page = itertools.islice(models.items(), offset, offset + limit)
        return len(models), [{"name": name, "createdAt": created} for name, created in page]

    # -- jobs ----------------------------------------------------------------

    def create_job(self, owner: str, request: Any, now: float) -> _Job:
        """Validate a ``createJobRequest`` and plan the new job's life from ``now``."""
        plan = validate_create_job(request)
        account = self._accounts[owner]
        trains: list[str] = []
        for path, name in plan.trains:
            if name in account.models or name in account.training or name in trains:
                raise invalid(f"{path} {name!r} is already taken")
            trains.append(name)
        for path, name in plan.uses:
            if name != DEFAULT_MODEL and name not in account.models:
                raise invalid(f"{path} {name!r} is not a model of this account")

        profile = self.schedule.profile(plan.capability)
        queued_until = now + profile.queue.sample(self._draws)
        start_at: float | None = queued_until
        end_at = queued_until + profile.processing.sample(self._draws)
        draw = self._draws.random()
        if draw < profile.error_rate:
            outcome = State.ERROR
        elif draw < profile.error_rate + profile.cancel_rate:
            outcome = State.CANCELED
        else:
            outcome = State.COMPLETED
        timeout = request.get("timeout")
        if timeout is not None and now + timeout < end_at:
            end_at, outcome = now + timeout, State.ERROR
            if queued_until >= end_at:
                start_at = None

        wire: dict[str, Any] = {
            "id": random_uuid(self._ids),
            "state": int(State.SUBMITTED),
            "customId": request.get("customId") or "",
            "callback": request.get("callback") or "",
            "inputs": list(request["inputs"]),
            # Shallow copies: results are added to these dicts, never to the request's.
            "outputs": [dict(output) for output in request["outputs"]],
            "timing": {"createdAt": self._epoch_ms(now), "startedAt": "0", "completedAt": "0"},
        }
        if timeout is not None:
            wire["timeout"] = timeout
        job = _Job(wire["id"], owner, wire, outcome, tuple(trains))
        self._jobs[job.id] = job
        account.training.update(trains)
        if job.wire["customId"]:
            account.by_custom_id.setdefault(job.wire["customId"], []).append(job)
        if start_at is not None:
            self._plan(job, start_at, State.PROCESSING)
        self._plan(job, end_at, outcome)
        return job

    def get_job(self, owner: str, job_id: str) -> _Job:
        """Return the job, or raise ``ServiceError`` (404) if ``owner`` has no such job."""
        job = self._jobs.get(job_id)
        if job is None or job.owner != owner:
            raise ServiceError(404, "ResourceNotFound", f"job {job_id!r} does not exist")
        return job

    def list_jobs(self, owner: str, custom_id: str) -> list[_Job]:
        """Every job of ``owner`` with this customId, oldest first (customId is not unique)."""
        return self._accounts[owner].by_custom_id.get(custom_id, [])

    def iter_jobs(self) -> Iterator[_Job]:
        """Every job of every account, oldest first."""
        return iter(self._jobs.values())

    def find_job(self, job_id: str) -> _Job:
        """Return the job with this id, whatever its account; ``KeyError`` if none."""
        try:
            return self._jobs[job_id]
        except KeyError:
            raise KeyError(f"no job {job_id!r}") from None

    def encode(self, job: _Job) -> bytes:
        """Return the job's wire JSON, encoded once per change."""
        if job.encoded is None:
            job.encoded = dumps(job.wire)
        return job.encoded

    def force_state(self, job_id: str, state: State | int, now: float) -> None:
        """Move a job to ``state`` at ``now``, replacing its planned transitions.

        PROCESSING starts it now (it then ends after a fresh processing time, as
        planned); COMPLETED (with results), ERROR and CANCELED end it now.
        """
        self.advance(now)
        job = self.find_job(job_id)
        target = State(state)
        if job.state in _TERMINAL:
            raise ValueError(f"job {job_id!r} has already ended ({job.state.name})")
        if target not in _TERMINAL and target != State.PROCESSING:
            raise ValueError(f"cannot force a job to {target.name}")
        if target == job.state:
            raise ValueError(f"job {job_id!r} is already {target.name}")
        job.generation += 1
        if target == State.PROCESSING:
            self._apply(job, State.PROCESSING, now)
            descriptor = job.wire["outputs"][0]["smartContentDescriptor"]
            profile = self.schedule.profile(capability_of(descriptor))
            self._plan(job, now + profile.processing.sample(self._draws), job.outcome)
        else:
            job.outcome = target
            self._apply(job, target, now)

    # -- time ----------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Apply, in time order, every planned transition due by ``now``."""
        transitions = self._transitions
        while transitions and transitions[0][0] <= now:
            due, _, job, generation, target = heapq.heappop(transitions)
            if generation == job.generation:
                self._apply(job, target, due)

    def next_callback_due(self) -> float | None:
        """When the next callback is due: now if one waits, else its job's planned end."""
        if self._outbox:
            return self._outbox[0].due
        heap = self._callbacks_due
        while heap and (heap[0][3] != heap[0][2].generation or heap[0][2].state in _TERMINAL):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def take_callbacks(self) -> list[PendingCallback]:
        """Hand over the callbacks of every job that has ended since the last call."""
        taken, self._outbox = self._outbox, []
        return taken

    def _plan(self, job: _Job, due: float, target: State) -> None:
        sequence = next(self._sequence)
        heapq.heappush(self._transitions, (due, sequence, job, job.generation, target))
        if target in _CALLBACK_STATES and job.callback:
            heapq.heappush(self._callbacks_due, (due, sequence, job, job.generation))
            self.callback_revision += 1

    def _apply(self, job: _Job, target: State, at: float) -> None:
        wire, timing = job.wire, job.wire["timing"]
        job.state = target
        job.encoded = None
        wire["state"] = int(target)
        if target == State.PROCESSING:
            timing["startedAt"] = self._epoch_ms(at)
            return
        account = self._accounts[job.owner]
        if target == State.COMPLETED:
            if timing["startedAt"] == "0":
                timing["startedAt"] = self._epoch_ms(at)
            for output in wire["outputs"]:
                output["smartContentResult"] = smart_content_result(output, job.id)
            for name in job.trains:
                account.models[name] = self._epoch_ms(at)
        timing["completedAt"] = self._epoch_ms(at)
        account.training.difference_update(job.trains)
        if target in _CALLBACK_STATES and job.callback:
            self._outbox.append(PendingCallback(job.callback, job.id, target, self.encode(job), at))
            self.callback_revision += 1

    def _epoch_ms(self, at: float) -> str:
        return str(self.epoch_offset_ms + round(at * 1000))
