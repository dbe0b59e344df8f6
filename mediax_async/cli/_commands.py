"""The commands that talk to the service: submit a job, get, list, wait."""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Sequence
from typing import Any

import attrs

from .._batch import BATCH_KINDS
from .._client import MediaXClient
from .._converter import unstructure
from .._enums import State
from .._models import CreateJobRequest, Job
from .._policies import PollPolicy
from ._output import Output, job_row, kind_name
from ._parser import EXIT_JOB_FAILED, EXIT_OK, EXIT_SERVICE, JOB_COMMANDS
from ._progress import make_progress
from ._runtime import ClientSettings, Runtime

__all__ = ["Context", "get", "jobs", "models", "outcome_code", "submit", "wait"]


@attrs.define
class Context:
    """One command's arguments, outside world and output."""

    args: argparse.Namespace
    runtime: Runtime
    output: Output

    def client(self) -> MediaXClient:
        """A new client for this command (use it with ``async with``)."""
        settings = ClientSettings(base_url=getattr(self.args, "base_url", None))
        return self.runtime.client_factory(settings)

    @property
    def policy(self) -> PollPolicy | None:
        """The waiter's poll policy (None: the library's default)."""
        return self.runtime.poll_policy


def outcome_code(outcomes: Sequence[Job | BaseException]) -> int:
    """0 when every job completed, 1 when one failed or was canceled, 4 on an error."""
    jobs = [outcome for outcome in outcomes if isinstance(outcome, Job)]
    if len(jobs) < len(outcomes):
        return EXIT_SERVICE
    if any(job.state != State.COMPLETED for job in jobs):
        return EXIT_JOB_FAILED
    return EXIT_OK


def request_from_args(kind: str, args: argparse.Namespace) -> CreateJobRequest:
    """The request a job subcommand describes: its options are the builder's arguments."""
    builder = BATCH_KINDS[kind]
    first, *names = inspect.signature(builder).parameters
    kwargs = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    return builder(getattr(args, first), **kwargs)


async def watch(
    ctx: Context,
    client: MediaXClient,
    refs: Sequence[Job | str],
    *,
    max_wait: float | None = None,
) -> list[Job | Exception]:
    """Watch jobs to their end with live progress; each one's terminal job or error."""
    progress = make_progress(ctx.output, len(refs))
    with progress:
        waiter = client.waiter(
            policy=ctx.policy,
            on_state_change=progress.on_state_change,
            on_settled=progress.on_settled,
        )
        async with waiter:
            for ref in refs:
                if isinstance(ref, Job):
                    progress.track(ref.id, f"{kind_name(ref)} {ref.id}", ref.state.name)
                else:
                    progress.track(ref, ref, "waiting")
            outcomes: list[Job | Exception] = await waiter.wait_all(
                refs, timeout=max_wait, return_exceptions=True
            )
    return outcomes


async def submit(ctx: Context) -> int:
    """Create one job (``image-to-music``, ``humming``, ...), and watch it with ``--wait``."""
    args = ctx.args
    request = request_from_args(JOB_COMMANDS[args.command], args)
    async with ctx.client() as client:
        job = await client.create_job(request)
        if not args.wait:
            ctx.output.job(job)
            return EXIT_OK
        if not ctx.output.json_mode:
            ctx.output.line(f"created job {job.id}; watching it until it ends")
        (outcome,) = await watch(ctx, client, [job], max_wait=args.max_wait)
    if isinstance(outcome, BaseException):
        raise outcome
    ctx.output.job(outcome)
    return outcome_code([outcome])


async def get(ctx: Context) -> int:
    """Show one job."""
    async with ctx.client() as client:
        job = await client.get_job(ctx.args.job_id)
    ctx.output.job(job)
    return EXIT_JOB_FAILED if job.state in (State.ERROR, State.CANCELED) else EXIT_OK


async def jobs(ctx: Context) -> int:
    """List the jobs created with a custom id."""
    async with ctx.client() as client:
        found = await client.list_jobs(ctx.args.custom_id)
    if not found and not ctx.output.json_mode:
        ctx.output.line(f"no jobs with custom id {ctx.args.custom_id!r}")
        return EXIT_OK
    ctx.output.jobs(found)
    return EXIT_OK


async def models(ctx: Context) -> int:
    """List singing voice models: one page, or ``--all``."""
    args = ctx.args
    async with ctx.client() as client:
        if args.all:
            found = [model async for model in client.iter_models()]
            total = len(found)
        else:
            page = await client.list_models(offset=args.offset, limit=args.limit)
            found, total = list(page.models), page.total
    if ctx.output.json_mode:
        ctx.output.json({"models": [unstructure(m) for m in found], "total": total})
        return EXIT_OK
    rows = [[m.name, m.created_at.isoformat() if m.created_at else "-"] for m in found]
    ctx.output.table(f"{len(found)} of {total} model(s)", ["name", "created"], rows)
    return EXIT_OK


async def wait(ctx: Context) -> int:
    """Watch jobs by id until each ends; a table (or JSON) of how each ended."""
    ids: list[str] = list(dict.fromkeys(ctx.args.job_ids))
    async with ctx.client() as client:
        outcomes = await watch(ctx, client, list(ids), max_wait=ctx.args.max_wait)
    ended = [o for o in outcomes if isinstance(o, Job)]
    errors = [(i, o) for i, o in zip(ids, outcomes, strict=True) if isinstance(o, BaseException)]
    if ctx.output.json_mode:
        data: dict[str, Any] = {
            "jobs": [unstructure(job) for job in ended],
            "errors": [
                {"id": job_id, "type": type(exc).__name__, "message": str(exc)}
                for job_id, exc in errors
            ],
        }
        ctx.output.json(data)
    else:
        rows = [
            job_row(o) if isinstance(o, Job) else [i, "?", "FAILED", str(o)]
            for i, o in zip(ids, outcomes, strict=True)
        ]
        ctx.output.table(None, ["id", "kind", "state", "files"], rows)
        for job_id, exc in errors:
            ctx.output.error(f"job {job_id}: {exc}")
    return outcome_code(outcomes)
