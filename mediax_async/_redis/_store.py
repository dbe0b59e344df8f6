"""``RedisStore``: a waiter's state in Redis, shared by every process that uses it."""

from __future__ import annotations

import json
import logging
import math
import secrets
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import anyio
import coredis
import coredis.exceptions
from coredis.retry import ExponentialBackoffRetryPolicy

from .._enums import State
from .._exceptions import MediaXError
from .._waiter import (
    Claim,
    ClaimBatch,
    Claimed,
    News,
    PendingJob,
    Reschedule,
    ResultEntry,
    Settle,
    Settlement,
    Submission,
    SubmissionTicket,
    TagDone,
    Update,
    Watch,
)
from .._waiter._tags import LIST_WORTH_JOBS
from . import _lua
from ._codec import decode_news, decode_settlement, encode_news, encode_outcome

__all__ = ["RedisStore"]

logger = logging.getLogger("mediax_async.redis")

_COMPACT = (",", ":")
_MALFORMED = (ValueError, KeyError, TypeError, AttributeError, RecursionError, MediaXError)
"""What decoding an entry some other writer put in the results stream may raise."""
_RETRYABLE = (coredis.exceptions.ConnectionError, TimeoutError, coredis.exceptions.BusyLoadingError)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _number(value: Any) -> float:
    return float(_text(value))


class RedisStore:
    """A ``PendingStore`` in Redis (7 or later, or Valkey): many processes, one state.

    Use it as ``async with RedisStore.from_url("redis://...", namespace="batch-1") as
    store:`` and hand it to ``client.waiter(store=store)``. Every key lives
    under ``mediax:{namespace}:`` (one hash tag, so one Redis Cluster slot).
    Each operation is one Lua script, atomic on the server.

    ``clock`` gives the time the store's leases, pauses and redeliveries
    follow; by default the Redis server's own (``TIME``), which every
    process shares whatever its machine's clock says. A lost connection
    (Redis restarted, a failover) is retried with exponential backoff for
    up to ``reconnect_for`` seconds before the error is raised; each call
    carries a token, and its answer is kept ``replay_window`` seconds, so a
    retry of a call that did run gets that answer instead of running again.

    ``results_limit``: entries of the results stream kept; past it, those a
    consumer group has not read and acknowledged are kept too, up to
    ``results_hard_limit`` (a group nobody reads any more must not hold
    every entry for ever). ``keep_created``: created submissions remembered
    once their job settled (one whose job runs is always remembered).
    """

    shared = True
    """Other processes use the same state."""
    write_batch = 32
    """Updates a waiter gathers into one ``apply`` (one round trip for many polls)."""

    def __init__(
        self,
        client: coredis.Redis[bytes],
        *,
        namespace: str = "mediax",
        clock: Callable[[], float] | None = None,
        recent_outcomes: int = 10_000,
        claim_idle: float = 60.0,
        results_limit: int = 1_000_000,
        results_hard_limit: int = 1_000_000,
        keep_created: int = 100_000,
        replay_window: float = 120.0,
    ) -> None:
        if not namespace or any(c in namespace for c in "{}"):
            raise ValueError(f"namespace must be non-empty, without braces: {namespace!r}")
        self._client = client
        self.namespace = namespace
        """The namespace: every key of this store starts ``mediax:{namespace}:``."""
        self._prefix = f"mediax:{{{namespace}}}:"
        self._clock = clock
        self._claim_idle = claim_idle
        self._conf = json.dumps(
            {
                "recent": recent_outcomes,
                "results": max(1, results_limit),
                "results_hard": max(1, results_limit, results_hard_limit),
                "created": keep_created,
                "replay": replay_window,
            },
            separators=_COMPACT,
        )
        self._scripts = {name: client.register_script(getattr(_lua, name)) for name in _lua.__all__}
        self._entered = False

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        namespace: str = "mediax",
        clock: Callable[[], float] | None = None,
        reconnect_for: float = 60.0,
        **options: Any,
    ) -> RedisStore:
        """A store on the Redis at ``url`` (``redis://[:password@]host:port/db``, ``rediss://``)."""
        policy = ExponentialBackoffRetryPolicy(
            _RETRYABLE,
            retries=None,
            deadline=reconnect_for,
            base_delay=0.05,
            max_delay=2.0,
            jitter=True,
        )
        client: coredis.Redis[bytes] = coredis.Redis.from_url(
            url, decode_responses=False, retry_policy=policy
        )
        options.setdefault("replay_window", reconnect_for + 60.0)
        return cls(client, namespace=namespace, clock=clock, **options)

    def __repr__(self) -> str:
        return f"RedisStore(namespace={self.namespace!r})"

    async def __aenter__(self) -> RedisStore:
        await self._client.__aenter__()
        self._entered = True
        await self._client.set(self._prefix + "conf", self._conf)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections (the state stays in Redis)."""
        if self._entered:
            self._entered = False
            await self._client.__aexit__(None, None, None)

    async def _run(self, name: str, *args: Any) -> Any:
        if not self._entered:
            raise RuntimeError(
                "use the store inside `async with RedisStore.from_url(...) as store:`"
            )
        for _ in range(3):
            now = "" if self._clock is None else repr(self._clock())
            once = f"{self._prefix}once:{secrets.token_hex(8)}"  # a retry of this call: same answer
            try:
                return await self._scripts[name](keys=[self._prefix, once], args=[now, *args])
            except coredis.exceptions.ResponseError as exc:
                if not str(exc).startswith("MEDIAXNOCONF"):
                    raise
            # The store was emptied under us (FLUSHDB, eviction): its options first.
            await self._client.set(self._prefix + "conf", self._conf)
        raise RuntimeError(f"the options of {self!r} keep vanishing from Redis")

    # -- watched jobs --------------------------------------------------------------

    async def watch(self, watches: Sequence[Watch]) -> list[Settlement | News | None]:
        """Start watching jobs; see ``PendingStore.watch``."""
        if not watches:
            return []
        args = [
            json.dumps(
                [
                    w.job_id,
                    w.delay,
                    w.tag or "",
                    w.kind or "",
                    int(w.state) if w.state is not None else -1,
                    w.key or "",
                ],
                separators=_COMPACT,
            )
            for w in watches
        ]
        found: list[Settlement | News | None] = []
        for watch, answer in zip(watches, await self._run("WATCH", *args), strict=True):
            if answer == 0:
                found.append(None)
            elif int(answer[0]) == 1:
                found.append(self._settlement(watch.job_id, answer[1]))
            else:
                found.append(decode_news(watch.job_id, _text(answer[1])))
        return found

    @staticmethod
    def _settlement(job_id: str, stored: Any) -> Settlement:
        key, body = json.loads(_text(stored))
        return decode_settlement(job_id, key, body)

    async def claim(self, limit: int, lease: float) -> ClaimBatch:
        """Take up to ``limit`` due jobs; see ``PendingStore.claim``."""
        answer = await self._run("CLAIM", limit, repr(lease), LIST_WORTH_JOBS)
        paused = _number(answer[0])
        next_due = _number(answer[1]) if _text(answer[1]) else None
        claims = []
        for raw in answer[2:]:
            tag = _text(raw[0])
            jobs = [
                Claimed(
                    _text(j[0]),
                    int(j[1]),
                    int(j[2]),
                    int(j[3]),
                    State(int(j[4])) if int(j[4]) >= 0 else None,
                    _text(j[5]) or None,
                    _text(j[6]) or None,
                    _number(j[7]),
                    bool(int(j[8])),
                    _text(j[9]) or None,
                )
                for j in raw[2:]
            ]
            claims.append(Claim(jobs, tag or None, int(raw[1])))
        return ClaimBatch(claims, next_due, paused)

    async def apply(self, updates: Sequence[Update]) -> list[bool]:
        """Apply the outcome of claims; see ``PendingStore.apply``."""
        if not updates:
            return []
        args = []
        for update in updates:
            if isinstance(update, Reschedule):
                item: list[Any] = [
                    "r",
                    update.job_id,
                    update.fence,
                    update.delay,
                    int(update.state) if update.state is not None else -1,
                    update.polls,
                    update.failures,
                    update.kind or "",
                    update.tag or "",
                    1 if update.alone else 0,
                ]
            elif isinstance(update, Settle):
                body = encode_outcome(update.job, update.error)
                fence = -1 if update.fence is None else update.fence
                item = ["s", update.job_id, fence, body]
            else:
                assert isinstance(update, TagDone)
                item = ["t", update.tag, update.fence, update.listed]
            args.append(json.dumps(item, separators=_COMPACT))
        return [bool(int(ok)) for ok in await self._run("APPLY", *args)]

    async def unwatch(self, job_ids: Sequence[str]) -> None:
        """Stop polling jobs nobody waits for; see ``PendingStore.unwatch``."""
        if job_ids:
            await self._run("UNWATCH", *job_ids)

    async def notify(self, news: Sequence[News]) -> list[bool]:
        """Apply news; see ``PendingStore.notify``."""
        if not news:
            return []
        args: list[str] = []
        for item in news:
            args += [item.job_id, encode_news(item)]
        return [bool(int(ok)) for ok in await self._run("NOTIFY", *args)]

    async def outcomes(self, job_ids: Sequence[str]) -> dict[str, Settlement]:
        """Recent outcomes; see ``PendingStore.outcomes``."""
        if not job_ids:
            return {}
        self._require_entered()
        values = await self._client.hmget(self._prefix + "out", list(job_ids))
        return {
            job_id: self._settlement(job_id, value)
            for job_id, value in zip(job_ids, values, strict=True)
            if value is not None
        }

    async def pending(self) -> list[PendingJob]:
        """Every watched job not yet settled."""
        self._require_entered()
        found = []
        cursor: int | None = None
        while cursor != 0:
            cursor, page = await self._client.hscan(self._prefix + "jobs", cursor or 0, count=1000)
            for job_id, value in page.items():
                r = json.loads(_text(value))
                found.append(
                    PendingJob(
                        _text(job_id),
                        r[6] or None,
                        r[5] or None,
                        State(r[4]) if r[4] >= 0 else None,
                        r[2],
                        r[9] or None,
                        None,
                        not r[10],
                    )
                )
        return found

    async def pause(self, seconds: float) -> None:
        """Pause every claim, in every process, for ``seconds``."""
        await self._run("PAUSE", repr(seconds))

    def _require_entered(self) -> None:
        if not self._entered:
            raise RuntimeError(
                "use the store inside `async with RedisStore.from_url(...) as store:`"
            )

    # -- submissions -------------------------------------------------------------------

    async def begin_submission(self, submission: Submission, lease: float) -> SubmissionTicket:
        """Record a submission before sending; see ``PendingStore.begin_submission``."""
        request = json.dumps(dict(submission.request), separators=_COMPACT)
        answer = await self._run(
            "BEGIN_SUBMISSION", submission.key, submission.custom_id, request, repr(lease)
        )
        return self._ticket(answer)

    @staticmethod
    def _ticket(answer: Any) -> SubmissionTicket:
        status, fence, job_id, attempts, key, custom_id, request = answer
        text = _text(request)
        submission = Submission(_text(key), _text(custom_id), json.loads(text) if text else {})
        return SubmissionTicket(
            submission, _text(status), int(fence), _text(job_id) or None, int(attempts)
        )

    async def finish_submission(self, key: str, fence: int, watch: Watch) -> bool:
        """Attribute the job and watch it; see ``PendingStore.finish_submission``."""
        data = [
            watch.job_id,
            watch.delay,
            watch.tag or "",
            watch.kind or "",
            int(watch.state) if watch.state is not None else -1,
            key,
        ]
        answer = await self._run(
            "FINISH_SUBMISSION", key, fence, json.dumps(data, separators=_COMPACT)
        )
        return bool(int(answer))

    async def release_submission(self, key: str, fence: int, retry_in: float) -> bool:
        """Leave a submission unresolved for now; see ``PendingStore.release_submission``."""
        return bool(int(await self._run("END_SUBMISSION", key, fence, "release", repr(retry_in))))

    async def drop_submission(self, key: str, fence: int) -> bool:
        """Forget a submission that created nothing; see ``PendingStore.drop_submission``."""
        return bool(int(await self._run("END_SUBMISSION", key, fence, "drop")))

    async def claim_submissions(self, limit: int, lease: float) -> list[SubmissionTicket]:
        """Take over orphaned submissions; see ``PendingStore.claim_submissions``."""
        answer = await self._run("CLAIM_SUBMISSIONS", limit, repr(lease))
        return [self._ticket(item) for item in answer]

    async def attributed(self, custom_id: str) -> set[str]:
        """Job ids attributed to submissions of ``custom_id``."""
        self._require_entered()
        members = await self._client.smembers(self._prefix + "attr:" + custom_id)
        return {_text(m) for m in members}

    async def submissions(self) -> dict[str, str | None]:
        """Every recorded submission and its job id."""
        self._require_entered()
        found: dict[str, str | None] = {}
        cursor: int | None = None
        while cursor != 0:
            cursor, page = await self._client.hscan(self._prefix + "sub", cursor or 0, count=1000)
            for key, value in page.items():
                found[_text(key)] = json.loads(_text(value))[2] or None
        return found

    # -- results -----------------------------------------------------------------------

    def _entries(self, raw: Sequence[tuple[Any, Any]]) -> tuple[list[ResultEntry], list[str]]:
        """The stream entries ``raw`` decoded, and the ids of those that are not settlements.

        Those are skipped (and logged, without their contents): another
        writer's, or corrupt. One must not stop every reader of the stream.
        """
        found, malformed = [], []
        for entry_id, fields in raw:
            try:
                found.append(ResultEntry(_text(entry_id), _decode_entry(fields)))
            except _MALFORMED as exc:
                malformed.append(_text(entry_id))
                logger.warning(
                    "skipped a malformed entry %s of the results stream of namespace %r (%s)",
                    _text(entry_id),
                    self.namespace,
                    type(exc).__name__,
                )
        return found, malformed

    async def read_results(
        self, group: str, consumer: str, count: int, block: float
    ) -> list[ResultEntry]:
        """Settlements for a group's consumer; see ``PendingStore.read_results``.

        The group is a Redis consumer group on the results stream; delivery
        times are also kept on the store's clock, and an entry not
        acknowledged within ``claim_idle`` seconds is claimed (``XCLAIM``) by
        the next reader of the group.
        """
        deadline = anyio.current_time() + block
        while True:
            redeliver, last_id, entries = await self._run(
                "READ_GROUP", group, consumer, count, repr(self._claim_idle)
            )
            if entries:
                found, malformed = self._entries([(e[0], e[1]) for e in entries])
                if malformed:
                    await self._run("ACK", group, *malformed)  # never delivered again
                if found:
                    return found
                continue
            left = deadline - anyio.current_time()
            if _text(redeliver):
                left = min(left, _number(redeliver) + 0.001)
            if left <= 0:
                return []
            # Woken by the next entry appended (or when a redelivery is due).
            await self._client.xread(
                {self._prefix + "res": last_id}, count=1, block=max(1, math.ceil(left * 1000))
            )

    async def follow_results(
        self, after: str | None, count: int, block: float
    ) -> tuple[list[ResultEntry], str]:
        """Settlements after a cursor (a stream entry id; ``"0"``: the oldest kept)."""
        self._require_entered()
        stream = self._prefix + "res"
        if after is None:
            last = await self._client.xrevrange(stream, count=1)
            after = _text(last[0].identifier) if last else "0-0"
        wait = math.ceil(block * 1000) if block > 0 else None
        found = await self._client.xread({stream: after}, count=count, block=wait)
        if not found:
            return [], after
        (entries,) = found.values()
        results, _ = self._entries([(e.identifier, e.field_values) for e in entries])
        return results, _text(entries[-1].identifier) if entries else after

    async def ack_results(self, group: str, entry_ids: Sequence[str]) -> None:
        """Acknowledge a group's entries."""
        if entry_ids:
            await self._run("ACK", group, *entry_ids)


def _decode_entry(fields: Any) -> Settlement:
    """A settlement from a results stream entry's fields (a mapping, or a flat list)."""
    if isinstance(fields, dict):
        values = {_text(k): _text(v) for k, v in fields.items()}
    else:
        values = {_text(fields[i]): _text(fields[i + 1]) for i in range(0, len(fields), 2)}
    if not values.get("i"):
        raise KeyError("i")
    return decode_settlement(values["i"], values.get("k", ""), values["b"])
