"""``mediax worker`` and ``mediax status``: join a shared store's polling; count its jobs."""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio

from .._models import Job
from .._waiter import PendingStore
from ._commands import Context
from ._errors import describe
from ._parser import EXIT_OK
from ._shapes import kind_name
from ._stores import store_label

__all__ = ["status", "store_of", "worker"]

_SCAN = 1_000
"""Results read per call when ``status`` counts the settled jobs."""


@asynccontextmanager
async def store_of(ctx: Context) -> AsyncIterator[PendingStore]:
    """The ``--store`` of the command, closed on the way out."""
    lease = getattr(ctx.args, "lease", None)  # status has none
    store = ctx.runtime.store_factory(ctx.args.store, ctx.args.namespace, lease)
    if isinstance(store, AbstractAsyncContextManager):  # RedisStore: its connections
        async with store:
            yield store
        return
    try:
        yield store
    finally:
        with anyio.move_on_after(5, shield=True):
            await store.aclose()


async def worker(ctx: Context) -> int:
    """Share the polling (and orphaned submissions) of a store until Ctrl-C.

    One line per job this process settles (``--json``: one JSON object per
    line); what every process settles reaches the batch that submitted it
    through the store's results stream.
    """
    args, output = ctx.args, ctx.output

    def on_settled(job_id: str, outcome: Job | BaseException) -> None:
        if output.json_mode:
            record: dict[str, Any] = {"id": job_id}
            if isinstance(outcome, Job):
                record |= {"state": int(outcome.state), "stateName": outcome.state.name}
                record["kind"] = kind_name(outcome)
            else:
                record |= {"error": type(outcome).__name__, "message": describe(outcome)}
            output.json_line(record)
        elif isinstance(outcome, Job):
            output.line(f"{job_id} {kind_name(outcome)} {outcome.state.name}")
        else:
            output.line(f"{job_id} error: {describe(outcome)}")

    async with store_of(ctx) as store, ctx.client() as client:
        waiter = client.waiter(
            store=store,
            policy=ctx.policy,
            max_concurrency=args.concurrency,
            on_settled=on_settled,
            lease=args.lease,
        )
        async with waiter:
            output.note(
                f"worker on {store_label(args.store)} (namespace {args.namespace!r}), "
                f"{args.concurrency} poll(s) at once; Ctrl-C to stop"
            )
            await anyio.sleep_forever()
    return EXIT_OK  # pragma: no cover - a worker ends by a signal


async def status(ctx: Context) -> int:
    """Counts of a store's jobs: being submitted, watched by state, settled by state."""
    async with store_of(ctx) as store:
        submissions = await store.submissions()
        pending = await store.pending()
        settled = await _settled_counts(store)
    watched = collections.Counter(
        job.state.name if job.state is not None else "UNKNOWN" for job in pending
    )
    submitting = sum(1 for job_id in submissions.values() if job_id is None)
    by_state = {"watched": dict(sorted(watched.items())), "settled": dict(sorted(settled.items()))}
    if ctx.output.json_mode:
        where = {"store": store_label(ctx.args.store), "namespace": ctx.args.namespace}
        ctx.output.json({**where, "submitting": submitting, **by_state})
        return EXIT_OK
    rows = [["submitting", "-", str(submitting)]]
    rows += [
        [what, state, str(n)] for what, counts in by_state.items() for state, n in counts.items()
    ]
    ctx.output.table(
        f"{store_label(ctx.args.store)} namespace {ctx.args.namespace!r}",
        ["", "state", "jobs"],
        rows,
    )
    return EXIT_OK


async def _settled_counts(store: PendingStore) -> collections.Counter[str]:
    """Settled jobs by final state (``ERROR`` for a wait ended by an error), each job once."""
    seen: dict[str, str] = {}
    cursor = "0"  # the oldest entry the store keeps
    while True:
        entries, cursor = await store.follow_results(cursor, _SCAN, 0.0)
        for entry in entries:
            job = entry.settlement.job
            seen[entry.settlement.job_id] = job.state.name if job is not None else "ERROR (wait)"
        if len(entries) < _SCAN:
            return collections.Counter(seen.values())
