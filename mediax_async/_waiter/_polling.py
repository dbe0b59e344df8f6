"""``Poller``: workers that claim due jobs from the store, poll them, and write back.

A fixed set of worker tasks shares one deque of claims. An idle worker with
nothing claimed fetches the next batch from the store (one fetcher at a
time); when nothing is due, that fetcher sleeps until the next due time (the
timekeeper) and the other idle workers park until woken. The worker count
is the one concurrency gate: after a 429 the throttle lowers it and the
workers above it park until it recovers.

A claim is one job (GetJob) or a batch tag's members (one ListJobs). The
answer becomes updates for the store: a reschedule, a settlement, and for a
tag its release. A settlement the store accepts is this waiter's to report.
"""

from __future__ import annotations

import collections
import math
import random
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel

from .._clock import fast_clock
from .._exceptions import MediaXError, ResponseError
from .._models import Job
from .._policies import PollStrategy, delay_function
from .._source import Failure, FailureKind, JobSource
from .._throttle import Throttle
from ._answers import Answers, Written, again
from ._health import Health, WaiterStats, describe, logger
from ._store import Claim, Claimed, PendingStore, Reschedule, Settle, TagDone, Update

__all__ = ["Poller"]

_SHARED_IDLE = 0.5
"""How long an idle waiter on a shared store sleeps at most: others may add jobs."""


class Poller:
    """The worker tasks of one waiter."""

    def __init__(
        self,
        *,
        store: PendingStore,
        source: JobSource,
        policy: PollStrategy,
        throttle: Throttle,
        stats: WaiterStats,
        health: Health,
        lease: float,
        batch_polling: bool,
        rng: random.Random,
        on_state_change: Callable[[Job, Any], None],
        on_settled: Callable[[Settle, str | None], None],
        on_fatal: Callable[[BaseException], None],
        on_given_up: Callable[[BaseException], None],
        on_answer: Callable[[], None],
        take_unwatched: Callable[[], list[str]],
        on_store_empty: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        self._source = source
        self._policy = policy
        self._answers = Answers(delay_function(policy), rng, batch_polling)
        self._throttle = throttle
        self._stats = stats
        self._health = health
        self._lease = lease
        self._random = rng
        self._on_state_change = on_state_change
        self._on_settled = on_settled
        self._on_fatal = on_fatal
        self._on_given_up = on_given_up
        self._on_answer = on_answer
        self._take_unwatched = take_unwatched
        self._on_store_empty = on_store_empty if store.shared else None
        self._ready: collections.deque[Claim] = collections.deque()
        self._active = 0
        self._fetching = False
        self._stopped = False
        self._parked: collections.deque[anyio.Event] = collections.deque()
        self._waking = 0  # parked workers woken that have not run yet
        self._alarm = anyio.Event()  # wakes the timekeeper
        self._alarm_at = -math.inf  # when the timekeeper wakes by itself (-inf: no timekeeper)
        self._pending_writes: list[tuple[Update, Written | None]] = []
        self._pause_for: float | None = None  # a 429's pause, for the store to share
        self._pacing = throttle.max_rate is not None
        self._write_batch = max(1, int(getattr(store, "write_batch", 1)))
        self._idle_cap = _SHARED_IDLE if store.shared else math.inf
        self._clock = anyio.current_time  # fast_clock() once running

    # -- running -----------------------------------------------------------------------

    async def work(self) -> None:
        """One worker: take claims and poll them, until cancelled or stopped."""
        self._clock = fast_clock()
        throttle = self._throttle
        while True:
            if self._stopped:
                await anyio.sleep_forever()
            if self._active >= throttle.concurrency:
                await self._park()  # fewer workers for now, after a 429
                continue
            claim = self._ready.popleft() if self._ready else await self._fetch()
            if claim is None:
                continue
            if self._ready and self._parked and not self._waking:
                self._wake_one()  # it polls the next claim once this poll suspends
            self._active += 1
            try:
                if claim.tag is None:
                    await self._poll(claim.jobs[0])
                else:
                    await self._poll_tag(claim)
            finally:
                self._active -= 1

    def wake(self, delay: float) -> None:
        """Something comes due in ``delay`` seconds: make sure a worker is up by then."""
        if self._alarm_at == -math.inf:
            if not self._fetching:
                # Always one more: a worker woken already may take a claim left ready
                # and never fetch, leaving this job to wait for a slow poll to end.
                self._wake_one(even_if_one_is_waking=True)
        elif self._clock() + delay < self._alarm_at:
            self._alarm.set()

    def stop(self) -> None:
        """Poll nothing more (every wait has ended for good)."""
        self._stopped = True

    async def flush(self) -> None:
        """Write what is gathered to the store, and report what it accepted."""
        writes, self._pending_writes = self._pending_writes, []
        try:
            if self._pause_for is not None:
                pause, self._pause_for = self._pause_for, None
                await self._store.pause(pause)
            unwatched = self._take_unwatched()
            if unwatched:
                await self._store.unwatch(unwatched)
            if not writes:
                return
            accepted = await self._store.apply([update for update, _ in writes])
        except anyio.get_cancelled_exc_class():
            # Cut off (the waiter closes): the close's flush writes them. A store rejects
            # a stale fence, so what did reach it is not applied twice.
            self._pending_writes[:0] = writes
            raise
        keeping_time = self._alarm_at != -math.inf
        soonest = math.inf
        for ok, (update, written) in zip(accepted, writes, strict=True):
            if not ok:
                continue
            if written is not None:
                if written.changed is not None:
                    self._on_state_change(written.changed, written.old)
                if written.settle is not None:
                    self._on_settled(written.settle, written.key)
            if keeping_time and isinstance(update, Reschedule) and update.delay < soonest:
                soonest = update.delay
        if soonest < math.inf:
            self.wake(soonest)  # a timekeeper asleep till later must poll these

    async def _write(self, update: Update, written: Written | None = None) -> None:
        self._pending_writes.append((update, written))
        await self._written()

    async def _written(self) -> None:
        if self._ready and self._waking:
            # This worker goes on to the next claim, and a worker woken to help runs
            # once this one suspends: it writes then (in `_park`). Polls answered
            # without suspending (an in-process source) so cost one apply, not one each.
            return
        await self._flush_if_due()

    async def _flush_if_due(self) -> None:
        # Gather while other workers are busy (their writes join the same apply); the
        # last worker out, or the next fetch, writes it all.
        if len(self._pending_writes) >= self._write_batch or self._active <= 1:
            await self.flush()

    async def _fetch(self) -> Claim | None:
        """The next claim: from the store, or None after parking or sleeping."""
        if self._fetching:
            await self._park()
            return None
        self._fetching = True
        try:
            # The only checkpoint on a busy waiter's path: a poll through an in-process
            # transport may never suspend, and other tasks must still get to run.
            await anyio.lowlevel.checkpoint()
            await self.flush()
            throttle = self._throttle
            limit = max(1, throttle.concurrency - self._active)
            batch = await self._store.claim(limit, self._lease)
            if batch.claims:
                self._ready.extend(batch.claims)
                return self._ready.popleft()
            if batch.next_due is None and batch.paused <= 0 and self._on_store_empty is not None:
                await self._on_store_empty()  # it lost what this process waits for?
            wait = batch.paused if batch.paused > 0 else batch.next_due
            await self._keep_time(math.inf if wait is None else wait)
            return None
        finally:
            self._fetching = False
            if self._ready or self._alarm_at == -math.inf:
                self._wake_one()  # someone must poll, fetch, or keep time

    async def _keep_time(self, wait: float) -> None:
        wait = min(wait, self._idle_cap)
        self._alarm = anyio.Event()
        self._alarm_at = self._clock() + wait
        try:
            with anyio.move_on_after(wait):
                await self._alarm.wait()
        finally:
            self._alarm_at = -math.inf

    def _wake_one(self, *, even_if_one_is_waking: bool = False) -> None:
        """Wake one parked worker, unless one woken already has yet to run.

        A woken worker that finds a claim left wakes the next in turn, and only
        once it runs: so workers are woken as fast as polls suspend, and a
        claim of many jobs polled without suspending (an in-process source)
        wakes nobody in vain.
        """
        if self._parked and (even_if_one_is_waking or not self._waking):
            self._waking += 1
            self._parked.popleft().set()

    async def _park(self) -> None:
        wakeup = anyio.Event()
        self._parked.append(wakeup)
        try:
            await wakeup.wait()
        finally:
            if wakeup.is_set():
                self._waking -= 1
            else:
                self._parked.remove(wakeup)
        if self._pending_writes:
            await self._flush_if_due()  # what the worker that woke this one left

    async def _pace(self) -> None:
        """Wait for the rate cap or a pause after a 429."""
        throttle = self._throttle
        now = anyio.current_time()
        send_at = throttle.send_time(now)
        if send_at > now:
            await anyio.sleep(send_at - now)
        elif throttle.max_rate is None:
            self._pacing = False  # the pause is over

    # -- one job, by id ----------------------------------------------------------------

    async def _poll(self, claimed: Claimed) -> None:
        if self._pacing:
            await self._pace()
        try:
            job = await self._source.get_job(claimed.job_id, retry=False)
            if job.id != claimed.job_id:
                raise ResponseError(
                    f"GetJob for {claimed.job_id} answered job {job.id}", action="GetJob"
                )
        except Exception as exc:
            failure = self._classify(exc)
            if failure.kind is FailureKind.END_ALL:
                await self._fatal(exc)
                return
            update = self._failed(claimed, exc, failure)
            await self._write(update, self._answers.ended(update, claimed))
            return
        self._stats.polls += 1
        if self._health.failures:
            self._answered()
        else:
            self._throttle.on_success()
        update, written = self._answers.observed(claimed, job)
        await self._write(update, written)

    # -- a batch tag, by ListJobs ----------------------------------------------------------

    async def _poll_tag(self, claim: Claim) -> None:
        tag = claim.tag
        assert tag is not None  # only tag claims come here
        if self._pacing:
            await self._pace()
        try:
            jobs = await self._source.list_jobs(tag, retry=False)
        except Exception as exc:
            failure = self._classify(exc)
            if failure.kind is FailureKind.END_ALL:
                await self._fatal(exc)
                return
            self._note_failure(exc, failure)
            # After a 429, list again once the pause is over; after any other failure,
            # ask for each member by id at once, so a broken ListJobs never stalls a batch.
            limited = failure.kind is FailureKind.RATE_LIMITED
            delay = max(self._throttle.resume_at - anyio.current_time(), 0.0) if limited else 0.0
            logger.debug("ListJobs for %s failed (%s)", tag, describe(exc))
            updates: list[tuple[Update, Written | None]] = [
                (again(claimed, delay, alone=not limited), None) for claimed in claim.jobs
            ]
            updates.append((TagDone(tag, claim.fence, 0), None))
            self._pending_writes.extend(updates)
            await self._written()
            return
        self._stats.list_polls += 1
        self._answered()
        by_id = {job.id: job for job in jobs}
        writes: list[tuple[Update, Written | None]] = []
        for claimed in claim.jobs:
            job = by_id.get(claimed.job_id)
            if job is None:  # left out of the list: ask for it by id, now
                writes.append((again(claimed, 0.0, alone=True), None))
            else:
                writes.append(self._answers.observed(claimed, job))
        listed = getattr(jobs, "total", len(jobs))
        writes.append((TagDone(tag, claim.fence, max(len(jobs), int(listed))), None))
        self._pending_writes.extend(writes)
        await self._written()

    # -- answers and failures ----------------------------------------------------------

    async def _fatal(self, exc: Exception) -> None:
        """Rejected credentials: every wait ends with ``exc``, once what was answered is written.

        A poll answered just before, without suspending, may have left its write to
        the worker it woke (`_written`): written first, its wait gets its job.
        """
        try:
            if self._pending_writes:
                await self.flush()
        finally:
            self._on_fatal(exc)  # even if the store fails on that write

    def _failed(self, claimed: Claimed, exc: Exception, failure: Failure) -> Update:
        """The update after a failed poll of ``claimed`` (not one that ends every wait)."""
        if failure.kind is FailureKind.END_JOB:
            if isinstance(exc, MediaXError):
                exc.job_id = claimed.job_id
            if not isinstance(exc, MediaXError):
                logger.error("unexpected error polling job %s: %s", claimed.job_id, describe(exc))
            return Settle(claimed.job_id, claimed.fence, error=exc)
        self._note_failure(exc, failure)
        failures = claimed.failures + 1
        delay = self._policy.error_delay(failures, self._random.random())
        if failure.retry_after is not None:
            delay = max(delay, failure.retry_after)
        logger.debug("poll of %s failed (%s), next in %.2f s", claimed.job_id, describe(exc), delay)
        return again(claimed, delay, failures=failures)

    def _classify(self, exc: Exception) -> Failure:
        try:
            return self._source.classify_failure(exc)
        except Exception:
            logger.exception("classify_failure raised; ending that job's wait")
            return Failure(FailureKind.END_JOB)

    def _note_failure(self, exc: Exception, failure: Failure) -> None:
        self._stats.retries += 1
        now = anyio.current_time()
        if failure.kind is FailureKind.RATE_LIMITED:
            self._stats.rate_limited += 1
            self._throttle.on_rate_limited(now, failure.retry_after)
            self._pacing = True
            self._pause_for = max(self._pause_for or 0.0, self._throttle.resume_at - now)
            self._requeue_ready()
        if self._health.failed(exc, now):
            self._on_given_up(exc)

    def _requeue_ready(self) -> None:
        """After a 429, claims not sent yet go back to the store until the pause ends."""
        pause = max(0.0, self._throttle.resume_at - anyio.current_time())
        while self._ready:
            claim = self._ready.popleft()
            for claimed in claim.jobs:
                self._pending_writes.append((again(claimed, pause), None))
            if claim.tag is not None:
                self._pending_writes.append((TagDone(claim.tag, claim.fence, 0), None))

    def _answered(self) -> None:
        if self._health.failures:
            self._health.answered()
            self._on_answer()
        self._throttle.on_success()
