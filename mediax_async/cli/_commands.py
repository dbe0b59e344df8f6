"""The commands that talk to the service: submit a job, get, list, wait."""

from __future__ import annotations

import argparse
import inspect
import os
import urllib.parse
from collections.abc import Sequence
from typing import Any

import anyio
import attrs

from .. import _constants as C
from .._batch import BATCH_KINDS
from .._client import MediaXClient
from .._enums import State
from .._exceptions import AuthenticationError, ConfigurationError, MediaXError
from .._models import CreateJobRequest, Input, Job
from .._policies import PollPolicy
from ._errors import describe, few
from ._output import Output, job_row, when
from ._parser import EXIT_JOB_FAILED, EXIT_OK, EXIT_SERVICE, JOB_COMMANDS
from ._progress import make_progress
from ._runtime import ClientSettings, Runtime
from ._shapes import job_json, kind_name, model_json

__all__ = [
    "Context",
    "Watched",
    "check_base_url",
    "get",
    "jobs",
    "models",
    "outcome_code",
    "submit",
    "wait",
    "watch",
]


def check_base_url(url: str) -> None:
    """Refuse a base URL the client could not connect to, as a configuration error (exit 3)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"the base URL must be http(s)://HOST[:PORT]/..., got {url!r}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 0 < port <= 65535:
        raise ConfigurationError(f"the base URL's port must be 1 to 65535, got {url!r}")


@attrs.define
class Context:
    """One command's arguments, outside world and output."""

    args: argparse.Namespace
    runtime: Runtime
    output: Output

    def client(self) -> MediaXClient:
        """A new client for this command (use it with ``async with``)."""
        base_url = getattr(self.args, "base_url", None)
        configured = base_url or os.environ.get(C.ENV_BASE_URL)
        if configured:
            check_base_url(configured)
        return self.runtime.client_factory(ClientSettings(base_url=base_url))

    @property
    def policy(self) -> PollPolicy | None:
        """The waiter's poll policy (None: the library's default)."""
        return self.runtime.poll_policy


def outcome_code(outcomes: Sequence[Job | BaseException | None]) -> int:
    """0 when every job completed, 1 when one failed or was canceled, 4 on an error or timeout."""
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
    job_input = getattr(args, first)
    if job_input is None and isinstance(getattr(args, "text", None), Input):
        job_input = args.text  # `singing --text`: the song is a text (sourceData)
    return builder(job_input, **kwargs)


@attrs.frozen
class Watched:
    """How a watch ended: each job's outcome in the order given (None: still running)."""

    ids: tuple[str, ...]
    outcomes: tuple[Job | Exception | None, ...]
    last_seen: dict[str, Job]
    """The last state seen of each job, ended or not."""
    max_wait: float | None = None

    @property
    def unfinished(self) -> list[str]:
        """The jobs still running when the wait ran out of time."""
        return [i for i, o in zip(self.ids, self.outcomes, strict=True) if o is None]

    def timeout_message(self) -> str:
        """``N of M job(s) did not end within S s: a, b, c and 7 more``."""
        unfinished = self.unfinished
        return (
            f"{len(unfinished)} of {len(self.ids)} job(s) did not end within "
            f"{self.max_wait:g} s: {few(unfinished)}"
        )


async def watch(
    ctx: Context,
    client: MediaXClient,
    refs: Sequence[Job | str],
    *,
    max_wait: float | None = None,
    give_up_after: float | None = None,
) -> Watched:
    """Watch jobs to their end (or for ``max_wait`` seconds) with live progress."""
    ids = tuple(dict.fromkeys(ref.id if isinstance(ref, Job) else ref for ref in refs))
    last_seen: dict[str, Job] = {ref.id: ref for ref in refs if isinstance(ref, Job)}
    progress = make_progress(ctx.output, len(ids))

    def on_state_change(job: Job, old: State | None, new: State) -> None:
        last_seen[job.id] = job
        progress.on_state_change(job, old, new)

    ended: dict[str, Job | Exception] = {}
    with progress:
        waiter = client.waiter(
            policy=ctx.policy,
            on_state_change=on_state_change,
            on_settled=progress.on_settled,
            give_up_after=give_up_after,
        )
        async with waiter:
            for ref in refs:
                if isinstance(ref, Job):
                    progress.track(ref.id, f"{kind_name(ref)} {ref.id}", ref.state.name)
                else:
                    progress.track(ref, ref, "waiting")
            with anyio.move_on_after(max_wait if max_wait is not None else float("inf")):
                async with waiter.as_completed(refs, return_exceptions=True) as stream:
                    async for outcome in stream:
                        if isinstance(outcome, Job):
                            ended[outcome.id] = last_seen[outcome.id] = outcome
                        elif (
                            isinstance(outcome, MediaXError)
                            and outcome.job_id in ids
                            and not isinstance(outcome, AuthenticationError)
                        ):
                            ended[outcome.job_id] = outcome
                        else:
                            raise outcome  # not about one job: rejected credentials, ...
    return Watched(ids, tuple(ended.get(i) for i in ids), last_seen, max_wait)


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
        watched = await watch(
            ctx, client, [job], max_wait=args.max_wait, give_up_after=args.give_up_after
        )
    (outcome,) = watched.outcomes
    if outcome is None:  # out of time: show the job as last seen, then say so
        ctx.output.job(watched.last_seen.get(job.id, job))
        ctx.output.error(watched.timeout_message())
        return EXIT_SERVICE
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
        ctx.output.json({"models": [model_json(m) for m in found], "total": total})
        return EXIT_OK
    rows = [[m.name, when(m.created_at)] for m in found]
    ctx.output.table(f"{len(found)} of {total} model(s)", ["name", "created"], rows)
    return EXIT_OK


async def wait(ctx: Context) -> int:
    """Watch jobs by id until each ends; a table (or JSON) of how each ended.

    With ``--max-wait``, the jobs that ended in time are shown all the same,
    the others as last seen, and the exit code is 4.
    """
    async with ctx.client() as client:
        args = ctx.args
        watched = await watch(
            ctx,
            client,
            list(args.job_ids),
            max_wait=args.max_wait,
            give_up_after=args.give_up_after,
        )
    pairs = list(zip(watched.ids, watched.outcomes, strict=True))
    errors = [(i, o) for i, o in pairs if isinstance(o, BaseException)]
    if ctx.output.json_mode:
        data: dict[str, Any] = {
            "jobs": [job_json(o) for _, o in pairs if isinstance(o, Job)],
            "errors": [
                {"id": job_id, "type": type(exc).__name__, "message": describe(exc)}
                for job_id, exc in errors
            ],
            "unfinished": watched.unfinished,
        }
        ctx.output.json(data)
    else:
        ctx.output.table(
            None, ["id", "kind", "state", "files"], [_row(watched, i, o) for i, o in pairs], fit=3
        )
        for job_id, exc in errors:
            ctx.output.error(f"job {job_id}: {describe(exc)}")
    if watched.unfinished:
        ctx.output.error(watched.timeout_message())
    return outcome_code(watched.outcomes)


def _row(watched: Watched, job_id: str, outcome: Job | Exception | None) -> list[str]:
    if isinstance(outcome, Job):
        return job_row(outcome)
    if outcome is not None:
        return [job_id, "?", "FAILED", describe(outcome)]
    seen = watched.last_seen.get(job_id)
    state = seen.state.name if seen is not None else "?"
    return [job_id, kind_name(seen) if seen else "?", state, "(still running)"]
