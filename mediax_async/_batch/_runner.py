"""``BatchRunner``: submit a batch's lines with bounded concurrency, watch, record, resume."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import attrs

from .._callbacks import CALLBACK_POLL_POLICY
from .._enums import State
from .._exceptions import (
    AuthenticationError,
    ConfigurationError,
    MediaXError,
    WaiterClosedError,
)
from .._models import CreateJobRequest, Job
from .._protocol import echoes_request
from ._lines import BatchLine, read_batch_file, tagged
from ._results import LineResult, ResultsFile, default_results_path

if TYPE_CHECKING:
    from .._callbacks import CallbackReceiver, CallbackStats
    from .._client import MediaXClient
    from .._policies import PollPolicy
    from .._waiter import JobWaiter, WaiterStats

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
    """Runs a batch file: submits with bounded concurrency, watches, records, resumes.

    With ``callback_url`` (e.g. ``receiver.callback_url(public_url)``), each
    job submitted without a callback of its own gets that one; with
    ``receiver``, the batch's waiter hears of every callback it takes, so a
    slow ``policy`` is enough (``CALLBACK_POLL_POLICY``, the default then):
    polling only finishes the jobs whose callback never comes.
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
        self._by_job: dict[str, BatchLine] = {}
        self._attributed: set[str] = set()
        self._outstanding: set[str] = set()
        self._submitting = True
        self._closing = False
        self._fatal: BaseException | None = None
        self._idle = anyio.Event()

    @property
    def results_path(self) -> Path:
        """The results file."""
        return self._results_path

    async def run(self) -> BatchSummary:
        """Run the batch to the end (or until cancelled) and say what happened."""
        started = anyio.current_time()
        lines = read_batch_file(self._source, custom_id=None)
        results = ResultsFile.open(self._results_path, self._source.name)
        self._results = results
        try:
            summary = BatchSummary(tag=results.tag, results_path=self._results_path)
            self._summary = summary
            lines = [tagged(line, results.tag) for line in lines]
            summary.lines = len(lines)
            todo = [line for line in lines if line.number not in results.finished]
            summary.skipped = len(lines) - len(todo)
            summary.previous = [
                results.finished[x.number] for x in lines if x.number in results.finished
            ]
            self._observer.batch_started(summary)
            self._attributed.update(r.job_id for r in results.finished.values() if r.job_id)
            for line in todo:
                if line.error is not None:
                    self._record(line, LineResult.of_error(line.number, line.kind, line.error))
            valid = [line for line in todo if line.request is not None]
            found = await self._find_jobs(valid) if results.resumed and valid else {}
            await self._run(valid, found)
            summary.wall_time = anyio.current_time() - started
            return summary
        finally:
            results.close()

    async def _find_jobs(self, lines: Sequence[BatchLine]) -> dict[int, Job]:
        """The jobs an earlier run created for ``lines``, each job for one line at most."""
        jobs = await self._client.list_jobs(self._results.tag)
        free = [job for job in jobs if job.id not in self._attributed]
        found: dict[int, Job] = {}
        for line in lines:
            assert line.request is not None
            match = next((job for job in free if echoes_request(job, line.request)), None)
            if match is not None:
                free.remove(match)
                found[line.number] = match
                self._attributed.add(match.id)
        return found

    async def _run(self, lines: Sequence[BatchLine], found: Mapping[int, Job]) -> None:
        policy = self._policy
        if policy is None and self._receiver is not None:
            policy = CALLBACK_POLL_POLICY  # callbacks settle jobs; polling is the safety net
        waiter = self._client.waiter(
            policy=policy,
            max_concurrency=self._concurrency,
            on_state_change=self._state_changed,
            on_settled=self._settled,
        )
        async with waiter:
            self._summary.stats = waiter.stats
            if self._receiver is not None:
                self._summary.callbacks = self._receiver.stats
                self._receiver.attach(waiter)
            try:
                for line in lines:
                    if line.number in found:
                        self._summary.resumed += 1
                        self._watch(waiter, line, found[line.number], resumed=True)
                to_submit = iter([line for line in lines if line.number not in found])
                async with anyio.create_task_group() as tasks:
                    for _ in range(self._concurrency):
                        tasks.start_soon(self._submit_lines, waiter, to_submit, tasks)
                self._submitting = False
                if not self._outstanding:
                    self._idle.set()
                await self._idle.wait()
            finally:
                self._closing = True
                if self._receiver is not None:
                    self._receiver.detach(waiter)
        if self._fatal is not None:
            raise self._fatal

    async def _submit_lines(
        self, waiter: JobWaiter, lines: Iterator[BatchLine], tasks: anyio.abc.TaskGroup
    ) -> None:
        for line in lines:
            assert line.request is not None
            try:
                request = self._with_callback(line.request)
                job = await self._client.create_job(request, exclude=self._attributed)
            except (AuthenticationError, ConfigurationError) as exc:
                self._fail(exc, tasks)
                return
            except MediaXError as exc:
                self._record(line, LineResult.of_error(line.number, line.kind, exc))
                continue
            self._attributed.add(job.id)
            self._summary.submitted += 1
            try:
                self._watch(waiter, line, job, resumed=False)
            except AuthenticationError as exc:  # the waiter already failed for every job
                self._fail(exc, tasks)
                return

    def _with_callback(self, request: CreateJobRequest) -> CreateJobRequest:
        if self._callback_url is None or request.callback:
            return request
        return attrs.evolve(request, callback=self._callback_url)

    def _fail(self, exc: BaseException, tasks: anyio.abc.TaskGroup) -> None:
        if self._fatal is None:
            self._fatal = exc
        tasks.cancel_scope.cancel()
        self._idle.set()

    def _watch(self, waiter: JobWaiter, line: BatchLine, job: Job, *, resumed: bool) -> None:
        self._by_job[job.id] = line
        self._outstanding.add(job.id)
        self._observer.line_started(line, job, resumed=resumed)
        waiter.add(job)

    def _state_changed(self, job: Job, old: State | None, new: State) -> None:
        line = self._by_job.get(job.id)
        if line is not None:
            self._observer.state_changed(line, job)

    def _settled(self, job_id: str, outcome: Job | BaseException) -> None:
        try:
            self._settle(job_id, outcome)
        except Exception as exc:  # e.g. the disk is full: stop rather than lose a record
            if self._fatal is None:
                self._fatal = exc
            self._idle.set()

    def _settle(self, job_id: str, outcome: Job | BaseException) -> None:
        line = self._by_job.get(job_id)
        if line is None or (self._closing and isinstance(outcome, WaiterClosedError)):
            return  # interrupted: the line stays unfinished, to be found again on resume
        if isinstance(outcome, Job):
            result = LineResult.of_job(line.number, line.kind, outcome)
        else:
            if isinstance(outcome, AuthenticationError) and self._fatal is None:
                self._fatal = outcome
            result = LineResult.of_error(line.number, line.kind, outcome)
        self._record(line, result)
        self._outstanding.discard(job_id)
        if not self._outstanding and not self._submitting:
            self._idle.set()

    def _record(self, line: BatchLine, result: LineResult) -> None:
        self._results.write(result)
        self._summary.results.append(result)
        self._observer.line_finished(line, result)
