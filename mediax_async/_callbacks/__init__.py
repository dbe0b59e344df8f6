"""Callbacks: a receiver (raw ASGI) that authenticates the service's POSTs and tells waiters.

The service POSTs the whole job to a job's ``callback`` URL when it ends
COMPLETED or ERROR, unauthenticated. ``CallbackReceiver`` checks a secret
token carried in that URL, refuses oversized, malformed and non-job bodies,
and hands each job to ``JobWaiter.notify``: the job is polled at once (or,
with ``trust_callbacks=True``, settled from the payload). With
``callback_poll_policy()`` polling becomes a slow safety net::

    receiver = CallbackReceiver()
    async with receiver.serve("0.0.0.0", 8080), client.waiter(
        policy=CALLBACK_POLL_POLICY
    ) as waiter:
        receiver.attach(waiter)
        url = receiver.callback_url("https://hooks.example.com")
        job = await client.create_job(attrs.evolve(request, callback=url))
        done = await waiter.wait(job)
"""

from __future__ import annotations

from ._policy import CALLBACK_POLL_POLICY, callback_poll_policy
from ._receiver import CallbackReceiver, CallbackStats, JobHook
from ._rules import new_callback_token, redact_callback_url

__all__ = [
    "CALLBACK_POLL_POLICY",
    "CallbackReceiver",
    "CallbackStats",
    "JobHook",
    "callback_poll_policy",
    "new_callback_token",
    "redact_callback_url",
]
