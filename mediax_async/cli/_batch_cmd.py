"""``mediax batch FILE``: run a JSON Lines file of jobs with live progress (display only)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import anyio

from .._batch import (
    BATCH_KINDS,
    BatchLine,
    BatchObserver,
    BatchRunner,
    BatchSummary,
    LineResult,
    read_batch_file,
)
from .._models import Job
from ._commands import Context
from ._errors import shorten_values
from ._listen import callback_receiver
from ._output import Output
from ._parser import EXIT_JOB_FAILED, EXIT_OK, EXIT_USAGE
from ._progress import JobProgress, make_progress
from ._worker import store_of

__all__ = ["batch", "line_label"]

_TABLE_LIMIT = 50
"""Results listed one per row at the end; a bigger batch shows only the counts."""


def line_label(number: int, kind: str | None) -> str:
    """``line 3 (separation)``; a kind that is not one of the batch kinds is left out."""
    return f"line {number} ({kind})" if kind in BATCH_KINDS else f"line {number}"


class _Display(BatchObserver):
    """Turns the runner's news into progress rows and stderr lines for bad lines."""

    def __init__(self, output: Output, progress: JobProgress) -> None:
        self._output = output
        self._progress = progress
        self._started: set[str] = set()

    def batch_started(self, summary: BatchSummary) -> None:
        self._progress.set_total(summary.lines - summary.skipped)
        if summary.skipped and not self._output.json_mode:
            self._output.line(
                f"resuming batch {summary.tag}: {summary.skipped} of {summary.lines} "
                "line(s) already finished"
            )

    def line_started(self, line: BatchLine, job: Job, *, resumed: bool) -> None:
        self._started.add(job.id)
        state = f"{job.state.name} (found again)" if resumed else job.state.name
        self._progress.track(job.id, f"line {line.number} {line.kind}", state)

    def state_changed(self, line: BatchLine, job: Job) -> None:
        if not job.state.is_terminal:
            self._progress.update(job.id, job.state.name)

    def line_finished(self, line: BatchLine, result: LineResult) -> None:
        message = result.error.get("message", "") if result.error else ""
        if result.job_id is not None and result.state is not None:
            files = len(result.files)
            self._progress.finish(result.job_id, result.state, f"{files} file(s)" if files else "")
            return
        label = f"line {line.number} {line.kind or ''}".rstrip()
        message = shorten_values(" ".join(str(message).split()))
        if result.job_id is not None and result.job_id in self._started:
            self._progress.finish(result.job_id, "FAILED", message)
        else:
            self._progress.fail(result.job_id or f"line-{line.number}", label, message)
        self._output.error(f"{line_label(line.number, line.kind)}: {message}")


def _result_row(result: LineResult) -> list[str]:
    files = [f"{f.get('content_id') or '-'}:{f.get('path')}" for f in result.files]
    if result.model_name:
        files.append(f"model:{result.model_name}")
    detail = "\n".join(files) or (str(result.error.get("message")) if result.error else "-")
    return [
        str(result.line),
        result.kind or "-",
        result.job_id or "-",
        result.state or "FAILED",
        detail,
    ]


def _show(output: Output, summary: BatchSummary, source: Path) -> None:
    rows = sorted((*summary.previous, *summary.results), key=lambda r: r.line)
    if output.json_mode:
        records = [record.to_json() for record in rows]
        output.json({"source": str(source), **summary.to_json(), "records": records})
        return
    if rows and len(rows) <= _TABLE_LIMIT:
        output.table(
            None,
            ["line", "kind", "job", "state", "files / error"],
            [_result_row(r) for r in rows],
            fit=4,
        )
    counts = summary.to_json()
    output.line(
        f"batch {summary.tag}: {summary.lines} line(s); this run: {counts['completed']} completed, "
        f"{counts['failed']} error, {counts['canceled']} canceled, {counts['errors']} not run "
        f"(bad line or request error); {summary.skipped} finished earlier"
    )
    output.line(
        f"submitted {summary.submitted}, found again {summary.resumed}; results in "
        f"{summary.results_path}"
    )
    stats = summary.stats
    if stats is not None:
        output.line(
            f"waiter: {stats.polls} GetJob polls, {stats.list_polls} ListJobs batch polls, "
            f"{stats.retries} retries, "
            f"{stats.rate_limited} rate-limited; wall time {summary.wall_time:.1f} s"
        )
    callbacks = summary.callbacks
    if callbacks is not None:
        output.line(
            f"callbacks: {callbacks.accepted} taken ({callbacks.unknown} for no job being "
            f"watched), {callbacks.rejected} refused"
        )


def check(ctx: Context, source: Path) -> int:
    """``batch --check``: every line parsed, every bad one reported; nothing is sent."""
    lines = read_batch_file(source, custom_id=None)
    bad = [line for line in lines if line.error is not None]
    if ctx.output.json_mode:
        problems = [
            {
                "line": line.number,
                "kind": line.kind,
                "problem": line.error.problem,
                "message": str(line.error),
            }
            for line in bad
            if line.error is not None
        ]
        ctx.output.json({"source": str(source), "lines": len(lines), "bad": problems})
    else:
        for line in bad:
            message = shorten_values(str(line.error))
            ctx.output.error(f"{line_label(line.number, line.kind)}: {message}")
        ctx.output.line(f"{source}: {len(lines)} line(s), {len(bad)} bad")
    return EXIT_USAGE if bad else EXIT_OK


async def batch(ctx: Context) -> int:
    """Run the batch in ``FILE``; results to ``--results`` (resumable)."""
    args = ctx.args
    source = Path(args.file)
    if args.check:
        return check(ctx, source)
    results = Path(args.results) if args.results else None
    progress = make_progress(ctx.output)
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(ctx.client())
        store = await stack.enter_async_context(store_of(ctx)) if args.store else None
        receiver, callback_url = None, None
        if args.listen is not None:  # callbacks settle the jobs, polling is the fallback
            host, port = args.listen
            receiver, callback_url = await stack.enter_async_context(
                callback_receiver(ctx, host, port)
            )
        runner = BatchRunner(
            client,
            source,
            results,
            concurrency=args.concurrency,
            policy=ctx.policy,
            observer=_Display(ctx.output, progress),
            callback_url=callback_url,
            receiver=receiver,
            store=store,
            lease=args.lease,
        )
        try:
            with progress:
                summary = await runner.run()
        except (anyio.get_cancelled_exc_class(), KeyboardInterrupt):
            if not ctx.output.closed:  # a closed pipe stops the batch quietly
                ctx.output.note(
                    f"stopped: finished lines are in {runner.results_path}; "
                    "run the same command again to resume"
                )
            raise
    _show(ctx.output, summary, source)
    return EXIT_OK if summary.all_completed else EXIT_JOB_FAILED
