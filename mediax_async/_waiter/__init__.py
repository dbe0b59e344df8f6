"""The job waiter: watch many jobs until each ends, its state behind a ``PendingStore``.

- ``_waiter``: ``JobWaiter``, the facade.
- ``_store``: the ``PendingStore`` protocol and the values it exchanges.
- ``_memory``: ``MemoryStore``, the default store (``_queue`` due times,
  ``_book`` submissions, ``_results_log`` the results stream, ``_recent``
  bounded maps, ``_snapshot`` saving and loading).
- ``_polling``: the workers (claim, poll, write back, pacing).
- ``_submit``: submissions through the store.
- ``_tags``: when a batch tag is worth one ListJobs.
- ``_interest``: who in this process waits for what.
- ``_streams``: ``as_completed`` and ``completed()``.
- ``_health``: ``WaiterStats`` and runs of failed polls.
"""

from __future__ import annotations

from ._health import WaiterStats
from ._memory import MemoryStore
from ._store import (
    Claim,
    ClaimBatch,
    Claimed,
    News,
    PendingJob,
    PendingStore,
    Reschedule,
    ResultEntry,
    Settle,
    Settlement,
    Submission,
    SubmissionTicket,
    TagDone,
    TicketStatus,
    Update,
    Watch,
)
from ._streams import CompletionStream, ResultStream
from ._waiter import JobRef, JobWaiter, SettledHook, StateHook

__all__ = [
    "Claim",
    "ClaimBatch",
    "Claimed",
    "CompletionStream",
    "JobRef",
    "JobWaiter",
    "MemoryStore",
    "News",
    "PendingJob",
    "PendingStore",
    "Reschedule",
    "ResultEntry",
    "ResultStream",
    "Settle",
    "SettledHook",
    "Settlement",
    "StateHook",
    "Submission",
    "SubmissionTicket",
    "TagDone",
    "TicketStatus",
    "Update",
    "WaiterStats",
    "Watch",
]
