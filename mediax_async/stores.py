"""Where a ``JobWaiter`` keeps its state: the ``PendingStore`` protocol, its values, its stores.

``MemoryStore`` (the default) keeps it in this process. ``RedisStore``
(``pip install 'mediax-async[redis]'``, ``from mediax_async.redis import
RedisStore``) shares it between processes. To write a store of your own,
implement ``PendingStore`` with the values below; ``tests/store_contract.py``
in the source tree holds the tests every store must pass.
"""

from __future__ import annotations

from ._waiter import (
    Claim,
    ClaimBatch,
    Claimed,
    MemoryStore,
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

__all__ = [
    "Claim",
    "ClaimBatch",
    "Claimed",
    "MemoryStore",
    "News",
    "PendingJob",
    "PendingStore",
    "Reschedule",
    "ResultEntry",
    "Settle",
    "Settlement",
    "Submission",
    "SubmissionTicket",
    "TagDone",
    "TicketStatus",
    "Update",
    "Watch",
]
