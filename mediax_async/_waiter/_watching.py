"""Putting jobs under watch: what the store already knows of them, news, and letting go.

``Watching`` is the waiter's side of the store for one process: it turns
jobs (or bare ids) into ``Watch`` records, applies what the store answers
(an outcome settled earlier, news kept from before the job was watched),
settles jobs handed in already ended, and hands the workers the jobs nobody
waits for any more.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import anyio

from .._exceptions import WaiterClosedError
from .._models import Job
from .._policies import PollContext, PollStrategy
from ._health import logger
from ._interest import Interest, Subscriber
from ._outcomes import Outcomes
from ._store import News, PendingJob, PendingStore, Settle, Settlement, Watch
from ._tags import batch_tag

__all__ = ["JobRef", "Watching", "closed_error", "pending_record", "ref_of"]

JobRef = Job | str
"""A job to wait for: a ``Job`` or its id."""

Known = tuple[str, Job | BaseException | None]
"""A job id and its outcome, when it is already known."""

_REWATCH_GAP = 5.0
"""Seconds between two rewatches of everything after the store lost it (no busy loop)."""
_REWATCH_BATCH = 1_000
"""Jobs per ``watch`` call when watching again."""


class Watching:
    """Puts jobs under watch in ``store`` and applies what is already known of them.

    ``wake(delay)`` tells the workers something comes due within ``delay``
    seconds.
    """

    def __init__(
        self,
        *,
        store: PendingStore,
        policy: PollStrategy,
        rng: random.Random,
        batch_polling: bool,
        interest: Interest,
        outcomes: Outcomes,
        wake: Callable[[float], None],
    ) -> None:
        self._store = store
        self._policy = policy
        self._random = rng
        self._batch_polling = batch_polling
        self._interest = interest
        self._outcomes = outcomes
        self._wake = wake
        self._unwatched: list[str] = []
        self._rewatched_at = -math.inf

    def watch_of(self, job: Job) -> Watch:
        """The record that watches ``job``: first poll when the policy says."""
        context = PollContext(polls=0, state=job.state, elapsed=0.0, kind=job.kind)
        return Watch(
            job.id,
            self._policy.next_delay(context, self._random.random()),
            batch_tag(job.custom_id, self._batch_polling),
            job.kind,
            job.state,
            None,
            job,
        )

    async def watch(self, refs: Sequence[tuple[str, Job | None]], *, keep: bool) -> list[Known]:
        """Watch jobs (``keep``: even with nobody waiting); each id with its known outcome."""
        results: list[Known] = []
        watches = []
        for job_id, job in refs:
            if job is not None and job.state.is_terminal:
                await self.settle_given(job)
                results.append((job_id, job))
                continue
            if keep:
                self._interest.keep(job_id)
            # A bare id carries no state: poll it at once.
            watches.append(self.watch_of(job) if job is not None else Watch(job_id, 0.0))
            results.append((job_id, None))
        known: dict[str, Job | BaseException] = {}
        soonest = math.inf
        for watch, found in zip(watches, await self._store.watch(watches), strict=True):
            if isinstance(found, Settlement):
                known[watch.job_id] = found.outcome
                self._interest.deliver(watch.job_id, found.outcome)
            elif isinstance(found, News):
                await self.news_for_watched(found)
                soonest = 0.0
            else:
                soonest = min(soonest, watch.delay)
        if soonest < math.inf:
            self._wake(soonest)
        return [(job_id, known.get(job_id, outcome)) for job_id, outcome in results]

    async def settle_given(self, job: Job, key: str | None = None) -> None:
        """A job handed in already ended: settled here, once."""
        settle = Settle(job.id, None, job)
        if (await self._store.apply([settle]))[0]:
            self._outcomes.report(job.id, settle, key)

    async def submitted(self, job: Job, watch: Watch) -> None:
        """A job ``submit`` created (and the store now watches): kept until it ends."""
        self._interest.keep(job.id, watch.key)
        if job.state.is_terminal:
            await self.settle_given(job, watch.key)
        else:
            self._wake(watch.delay)

    async def notify(self, news: News) -> bool:
        """Hand ``news`` to the store; applied now if the job is watched, else kept."""
        (watched,) = await self._store.notify([news])
        if watched:
            await self.news_for_watched(news)
        return watched

    async def news_for_watched(self, news: News) -> None:
        """News of a watched job: settle it (trusted and ended), else poll it now."""
        job = news.job
        if news.trusted and job is not None and job.state.is_terminal:
            settle = Settle(news.job_id, None, job)
            if (await self._store.apply([settle]))[0]:
                self._outcomes.report(news.job_id, settle, None)
                return
        self._wake(0.0)

    async def store_emptied(self) -> None:
        """A shared store watches nothing at all: if this process still wants jobs, rewatch them.

        The store lost them (FLUSHDB, keys evicted, a Redis restarted without
        its data): without this, their waits would never end. Each is watched
        again, due at once; one whose outcome the store still has ends now.
        """
        wanted = self._interest.wanted()
        if not wanted:
            return
        now = anyio.current_time()
        if now < self._rewatched_at + _REWATCH_GAP:
            return
        self._rewatched_at = now
        logger.warning(
            "the store watches none of the %d jobs this waiter waits for (emptied, or its keys "
            "evicted?); watching them again",
            len(wanted),
        )
        for start in range(0, len(wanted), _REWATCH_BATCH):
            watches = [self._watch_again(job_id) for job_id in wanted[start:][:_REWATCH_BATCH]]
            for watch, found in zip(watches, await self._store.watch(watches), strict=True):
                if isinstance(found, Settlement):
                    self._interest.deliver(watch.job_id, found.outcome)
                elif isinstance(found, News):
                    await self.news_for_watched(found)
        self._wake(0.0)

    def _watch_again(self, job_id: str) -> Watch:
        seen = self._interest.last_seen(job_id)
        watch = self.watch_of(seen) if seen is not None else Watch(job_id, 0.0)
        return watch._replace(delay=0.0, key=self._interest.kept_key(job_id))

    def release(self, job_id: str, subscriber: Subscriber) -> None:
        """``subscriber`` stops waiting; a job nobody waits for any more is no longer polled."""
        if (
            not self._interest.unsubscribe(job_id, subscriber)
            and not self._interest.kept(job_id)
            and not self._store.shared
        ):
            self._unwatched.append(job_id)
            self._wake(0.0)  # written at the next fetch: make it now

    def take_unwatched(self) -> list[str]:
        """The jobs let go since the last call that still nobody waits for."""
        if not self._unwatched:
            return []
        ids, self._unwatched = self._unwatched, []
        return [i for i in ids if i not in self._interest and not self._interest.kept(i)]


def pending_record(job: PendingJob) -> dict[str, Any]:
    """One entry of ``JobWaiter.pending()``: JSON-able, what ``resume()`` takes."""
    return {
        "id": job.job_id,
        "customId": job.job.custom_id if job.job is not None else job.tag,
        "state": int(job.state) if job.state is not None else None,
        "kind": job.kind,
        "polls": job.polls,
        "polled": job.polled,
    }


def closed_error(job_id: str) -> WaiterClosedError:
    """The error of a wait for ``job_id`` that the waiter's closing ended."""
    error = WaiterClosedError(f"the waiter closed before job {job_id} ended")
    error.job_id = job_id
    return error


def ref_of(job: JobRef) -> tuple[str, Job | None]:
    """``job``'s id, and the job itself when one was given."""
    if isinstance(job, Job):
        return job.id, job
    if not isinstance(job, str) or not job:
        raise ValueError(f"expected a Job or a job id, got {job!r}")
    return job, None
