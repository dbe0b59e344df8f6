"""``BatchRunner``: submit a batch's lines with bounded concurrency, watch, record, resume."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import anyio
import anyio.to_thread
import attrs

from .._callbacks import CALLBACK_POLL_POLICY
from .._constants import DEFAULT_WAITER_LEASE
from .._enums import State
from .._exceptions import (
    AuthenticationError,
    ConfigurationError,
    JobMayExistError,
    MediaXError,
    RateLimitError,
    TransportError,
)
from .._models import CreateJobRequest, Job, JobList
from .._protocol import echoes_request
from .._tasks import background_tasks
from ._lines import BatchLine, read_batch_file, tagged
from ._results import LineResult, ResultsFile, default_results_path

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from .._callbacks import CallbackReceiver, CallbackStats
    from .._client import MediaXClient
    from .._policies import PollPolicy
    from .._waiter import JobWaiter, PendingStore, ResultStream, Settlement, WaiterStats

__all__ = ["BatchObserver", "BatchRunner", "BatchSummary"]


class BatchObserver:
    """What a batch tells its caller as it goes; override what you need."""

    def batch_started(self, summary: BatchSummary) -> None:
        """The files are read: ``summary`` has the tag, line counts and earlier results."""

    def line_started(self, line: BatchLine, job: Job, *, resumed: bool) -> None:
        """A line's job was created, or found again (``resumed``)."""

    def state_changed(self, line: BatchLine, job: Job) -> None:
        """A line's job moved to a new state."""

    def line_finished(self, line: BatchLine, result: LineResult) -> None:
        """A line finished; its record was just written."""


@attrs.define(kw_only=True)
class BatchSummary:
    """What one run of a batch did."""

    tag: str
    results_path: Path
    lines: int = 0
    skipped: int = 0
    """Lines finished by an earlier run."""
    submitted: int = 0
    resumed: int = 0
    """Jobs of an earlier run found again and watched."""
    results: list[LineResult] = attrs.Factory(list)
    """This run's records, in the order written."""
    previous: list[LineResult] = attrs.Factory(list)
    """The records of lines an earlier run finished."""
    stats: WaiterStats | None = None
    callbacks: CallbackStats | None = None
    """What the callback receiver saw, when the batch used one."""
    wall_time: float = 0.0

    @property
    def all_completed(self) -> bool:
        """Whether every line of the batch, this run's and earlier, is a COMPLETED job."""
        done = len(self.results) + len(self.previous)
        return done == self.lines and all(r.completed for r in (*self.results, *self.previous))

    def count(self, state: str) -> int:
        """Records of this run whose job ended ``state``."""
        return sum(1 for result in self.results if result.state == state)

    @property
    def errors(self) -> int:
        """Records of this run that are an error without a terminal job."""
        return sum(1 for r in self.results if r.error is not None and r.state is None)

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON-able data."""
        return {
            "batch": self.tag,
            "results": str(self.results_path),
            "lines": self.lines,
            "skipped": self.skipped,
            "submitted": self.submitted,
            "resumed": self.resumed,
            "completed": self.count("COMPLETED"),
            "failed": self.count("ERROR"),
            "canceled": self.count("CANCELED"),
            "errors": self.errors,
            "all_completed": self.all_completed,
            "wall_time": round(self.wall_time, 3),
            "stats": attrs.asdict(self.stats) if self.stats is not None else None,
            "callbacks": attrs.asdict(self.callbacks) if self.callbacks is not None else None,
        }


class BatchRunner:
    """Runs a batch file: submits through a waiter, records every line once, resumes.

    Each line is submitted with ``JobWaiter.submit`` under the key
    ``TAG:LINE`` and every settlement read back from ``waiter.completed()``, so a
    line's record is written whoever settled its job. With ``callback_url``
    (e.g. ``receiver.callback_url(public_url)``), each job submitted without a
    callback of its own gets that one; with ``receiver``, the batch's waiter
    hears of every callback it takes, so a slow ``policy`` is enough
    (``CALLBACK_POLL_POLICY``, the default then). With a shared ``store``
    (``RedisStore``) the batch's state outlives this process: other processes
    (``mediax worker``) share its polling, and a rerun takes it up; ``lease``
    is how long this process's claims outlive it (the waiter's default unless given).
    """

    def __init__(
        self,
        client: MediaXClient,
        source: Path,
        results: Path | None = None,
        *,
        concurrency: int = 8,
        policy: PollPolicy | None = None,
        observer: BatchObserver | None = None,
        callback_url: str | None = None,
        receiver: CallbackReceiver | None = None,
        store: PendingStore | None = None,
        lease: float | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency!r}")
        self._client = client
        self._source = source
        self._results_path = results if results is not None else default_results_path(source)
        self._concurrency = concurrency
        self._policy = policy
        self._observer = observer or BatchObserver()
        self._callback_url = callback_url
        self._receiver = receiver
        self._store = store
        self._lease = lease

    @property
    def results_path(self) -> Path:
        """The results file."""
        return self._results_path

    async def run(self) -> BatchSummary:
        """Run the batch to the end (or until cancelled) and say what happened."""
        started = anyio.current_time()
        lines = read_batch_file(self._source, custom_id=None)
        results = ResultsFile.open(self._results_path, self._source.name)
        try:
            summary = BatchSummary(tag=results.tag, results_path=self._results_path)
            run = _Run(self, results, summary)
            await run.run([tagged(line, results.tag) for line in lines])
            summary.wall_time = anyio.current_time() - started
            return summary
        finally:
            results.close()


class _Fatal(NamedTuple):
    """A failure that ends the whole batch (rejected credentials, a full disk)."""

    error: BaseException


class _Unsure(NamedTuple):
    """A line whose job may exist: the waiter is still looking it up."""

    line: BatchLine
    error: JobMayExistError


class _Recorded(NamedTuple):
    """A line's record was written from its settlement (by ``_forward``)."""

    number: int


RESUBMIT_ROUNDS = 8
"""Times a line is submitted while the service refuses it as too busy (429)."""
RESUBMIT_FIRST_PAUSE = 2.0
RESUBMIT_MAX_PAUSE = 120.0
"""Seconds between those rounds: doubling from the first, at most the last."""

UNSURE_GRACE = 120.0
"""Seconds a batch with only unsure lines left waits for the waiter to find their jobs."""


class _Run:
    """One run of a batch: lines go out through ``submit``, records come back in one channel.

    A settlement read from ``completed()`` is written to the results file
    before the next one is read, which is when the stream acknowledges it: a
    process killed (or a disk full) before a record is written leaves its
    settlement to be delivered again, to a rerun or another reader.
    """

    def __init__(self, runner: BatchRunner, results: ResultsFile, summary: BatchSummary) -> None:
        self._runner = runner
        self._client = runner._client
        self._results = results
        self._summary = summary
        lease = runner._lease if runner._lease is not None else DEFAULT_WAITER_LEASE
        self._grace = max(UNSURE_GRACE, 2 * lease)
        self._by_key: dict[str, BatchLine] = {}
        self._by_job: dict[str, BatchLine] = {}
        self._remaining: set[int] = set()
        self._being_written: set[int] = set()
        self._writing = anyio.Lock()
        self._send, self._receive = anyio.create_memory_object_stream[
            "tuple[BatchLine, LineResult] | _Fatal | _Unsure | _Recorded"
        ](math.inf)

    def _key(self, line: BatchLine) -> str:
        return f"{self._results.tag}:{line.number}"

    async def run(self, lines: list[BatchLine]) -> None:
        summary, results = self._summary, self._results
        summary.lines = len(lines)
        todo = [line for line in lines if line.number not in results.finished]
        summary.skipped = len(lines) - len(todo)
        summary.previous = [results.finished[n] for n in sorted(results.finished)]
        self._runner._observer.batch_started(summary)
        self._remaining = {line.number for line in todo}
        try:
            for line in todo:
                self._by_key[self._key(line)] = line
                if line.error is not None:
                    error = LineResult.of_error(line.number, line.kind, line.error)
                    await self._record_once(line, error)
            valid = [line for line in todo if line.request is not None]
            await self._watch(valid)
        finally:
            self._send.close()
            self._receive.close()

    async def _watch(self, lines: list[BatchLine]) -> None:
        """Submit ``lines`` and record every line's result as it settles (errors come out bare)."""
        waiter = self._waiter()
        async with waiter, background_tasks(_cancel) as tasks:
            self._summary.stats = waiter.stats
            receiver = self._runner._receiver
            if receiver is not None:
                self._summary.callbacks = receiver.stats
                receiver.attach(waiter)
            try:
                group = f"batch:{self._results.tag}" if waiter.store.shared else None
                settled = waiter.completed(group)
                tasks.start_soon(self._forward, settled)
                tasks.start_soon(self._submit_all, waiter, lines)
                await self._collect(waiter)
                await settled.ack()
            finally:
                if receiver is not None:
                    receiver.detach(waiter)

    async def _collect(self, waiter: JobWaiter) -> None:
        """Record each line's result as it comes, until every line has one.

        A line whose job may exist (its CreateJob answer was lost and the lookup
        failed) waits while the waiter keeps looking it up; once only such lines
        are left, they get ``UNSURE_GRACE`` seconds more (twice the lease if longer:
        a process that died holding the look-up lets it go only when its lease ends),
        and those whose job is still unknown are recorded as errors (a rerun looks them up again).
        """
        remaining = self._remaining
        unsure: dict[int, tuple[BatchLine, JobMayExistError]] = {}
        while remaining:
            grace = self._grace if remaining <= unsure.keys() else math.inf
            with anyio.move_on_after(grace) as waited:
                item = await self._receive.receive()
            if waited.cancelled_caught:
                known = await waiter.store.submissions()
                for number, (line, error) in list(unsure.items()):
                    del unsure[number]
                    if known.get(self._key(line)) is None:  # not found: it stays unknown
                        await self._record_once(line, LineResult.of_error(number, line.kind, error))
                continue
            if isinstance(item, _Fatal):
                raise item.error
            if isinstance(item, _Unsure):
                if item.line.number in remaining:
                    unsure[item.line.number] = (item.line, item.error)
                continue
            if isinstance(item, _Recorded):
                unsure.pop(item.number, None)
                continue
            line, result = item
            unsure.pop(line.number, None)
            await self._record_once(line, result)

    def _waiter(self) -> JobWaiter:
        runner = self._runner
        policy = runner._policy
        if policy is None and runner._receiver is not None:
            policy = CALLBACK_POLL_POLICY  # callbacks settle jobs; polling is the safety net
        return self._client.waiter(
            policy=policy,
            max_concurrency=runner._concurrency,
            on_state_change=self._state_changed,
            store=runner._store,
            lease=runner._lease,
        )

    async def _submit_all(self, waiter: JobWaiter, lines: Sequence[BatchLine]) -> None:
        """Submit every line, ``concurrency`` at a time (finding an earlier run's jobs first)."""
        try:
            to_send = await self._take_up(waiter, lines)
        except Exception as exc:
            self._send.send_nowait(_Fatal(exc))
            return
        queue = iter(to_send)
        async with anyio.create_task_group() as tasks:
            for _ in range(self._runner._concurrency):
                tasks.start_soon(self._submit_lines, waiter, queue)

    async def _take_up(self, waiter: JobWaiter, lines: Sequence[BatchLine]) -> list[BatchLine]:
        """Watch the jobs an earlier run created for ``lines``; the lines still to send.

        Only for a results file taken up without a shared store (a shared store
        knows its submissions itself): one ListJobs finds them, each job for one
        line at most. A line that an incomplete ListJobs answer cannot account
        for is recorded as unknown rather than sent a second time.
        """
        if not self._results.resumed or not lines or waiter.store.shared:
            return list(lines)
        jobs = await self._client.list_jobs(self._results.tag)
        taken = {r.job_id for r in self._results.finished.values() if r.job_id}
        free = [job for job in jobs if job.id not in taken]
        complete = not isinstance(jobs, JobList) or jobs.complete
        to_send = []
        for line in lines:
            assert line.request is not None
            match = next((job for job in free if echoes_request(job, line.request)), None)
            if match is not None:
                free.remove(match)
                self._summary.resumed += 1
                self._started(line, match, resumed=True)
                await waiter.add(match)
            elif complete:
                to_send.append(line)
            else:
                unknown = JobMayExistError(
                    f"ListJobs listed only {len(jobs)} of the jobs of batch {self._results.tag}: "
                    "this line's job may exist; run the batch again to look once more",
                    custom_id=self._results.tag,
                )
                self._send.send_nowait((line, LineResult.of_error(line.number, line.kind, unknown)))
        return to_send

    async def _submit_lines(self, waiter: JobWaiter, lines: Iterator[BatchLine]) -> None:
        for line in lines:
            assert line.request is not None
            try:
                job = await self._submit(waiter, line, line.request)
            except (AuthenticationError, ConfigurationError) as exc:
                self._send.send_nowait(_Fatal(exc))
                return
            except JobMayExistError as exc:  # the waiter keeps looking it up
                self._send.send_nowait(_Unsure(line, exc))
                continue
            except MediaXError as exc:
                self._send.send_nowait((line, LineResult.of_error(line.number, line.kind, exc)))
                continue
            self._summary.submitted += 1
            self._started(line, job, resumed=False)

    async def _submit(self, waiter: JobWaiter, line: BatchLine, request: CreateJobRequest) -> Job:
        """Submit one line; sent again later while the service says it is too busy.

        A 429 (or a connection that never opened) means no job was made, so a
        line the client's own retries could not get through goes out again,
        ``RESUBMIT_ROUNDS`` times at most, after a growing pause (or the
        answer's Retry-After).
        """
        rounds = 0
        while True:
            try:
                return await waiter.submit(self._with_callback(request), key=self._key(line))
            except (RateLimitError, TransportError) as exc:
                rounds += 1
                may_exist = isinstance(exc, TransportError) and exc.sent
                if may_exist or rounds >= RESUBMIT_ROUNDS:
                    raise
                asked = exc.retry_after if isinstance(exc, RateLimitError) else None
                pause = min(RESUBMIT_MAX_PAUSE, RESUBMIT_FIRST_PAUSE * 2 ** (rounds - 1))
                await anyio.sleep(max(pause, asked or 0.0))

    def _with_callback(self, request: CreateJobRequest) -> CreateJobRequest:
        url = self._runner._callback_url
        if url is None or request.callback:
            return request
        return attrs.evolve(request, callback=url)

    def _started(self, line: BatchLine, job: Job, *, resumed: bool) -> None:
        self._by_job[job.id] = line
        self._runner._observer.line_started(line, job, resumed=resumed)

    async def _forward(self, settled: ResultStream) -> None:
        """Every settlement of a line of this batch becomes that line's record.

        Written here, before the stream is asked for the next settlement (which
        acknowledges this one), never later from a queue.
        """
        try:
            async with settled:
                async for settlement in settled:
                    line = self._line_of(settlement)
                    if line is not None:
                        await self._record_once(line, _result_of(line, settlement))
                        self._send.send_nowait(_Recorded(line.number))
        except anyio.ClosedResourceError:
            pass  # the run is over
        except Exception as exc:  # what was read and not written stays unacknowledged
            self._send.send_nowait(_Fatal(exc))

    def _line_of(self, settlement: Settlement) -> BatchLine | None:
        if settlement.key is not None:
            line = self._by_key.get(settlement.key)
            if line is not None:
                return line
        return self._by_job.get(settlement.job_id)

    def _state_changed(self, job: Job, old: State | None, new: State) -> None:
        line = self._by_job.get(job.id)
        if line is not None:
            self._runner._observer.state_changed(line, job)

    async def _record_once(self, line: BatchLine, result: LineResult) -> None:
        """Write ``line``'s record, unless it has one already (each line gets one)."""
        if line.number not in self._remaining or line.number in self._being_written:
            return
        self._being_written.add(line.number)
        async with self._writing:  # one writer at a time: records are whole lines
            # Written in a worker thread: a slow disk must not stall the event loop.
            await anyio.to_thread.run_sync(self._results.write, result)
        self._remaining.discard(line.number)  # only now: the run ends when none remain
        self._summary.results.append(result)
        self._runner._observer.line_finished(line, result)


def _cancel(tasks: TaskGroup) -> None:
    """Stop the batch's background tasks (its block is over)."""
    tasks.cancel_scope.cancel()


def _result_of(line: BatchLine, settlement: Settlement) -> LineResult:
    if settlement.job is not None:
        return LineResult.of_job(line.number, line.kind, settlement.job)
    assert settlement.error is not None  # a settlement has one or the other
    return LineResult.of_error(line.number, line.kind, settlement.error)
