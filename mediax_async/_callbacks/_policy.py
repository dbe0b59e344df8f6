"""The poll policy for waiters fed by callbacks: polling becomes the safety net."""

from __future__ import annotations

from typing import Final

from .._policies import Jitter, PollPolicy

__all__ = ["CALLBACK_POLL_POLICY", "callback_poll_policy"]

CALLBACK_FIRST_POLL: Final = 600.0
"""Seconds before a job fed by callbacks is first polled (with jitter, half to all of it)."""

CALLBACK_MAX_INTERVAL: Final = 900.0
"""The longest pause between polls of a job fed by callbacks."""


def callback_poll_policy(
    *,
    first_delay: float = CALLBACK_FIRST_POLL,
    max_interval: float = CALLBACK_MAX_INTERVAL,
    jitter: Jitter = "equal",
) -> PollPolicy:
    """A ``PollPolicy`` for a waiter that a ``CallbackReceiver`` feeds.

    Callbacks settle jobs (each one makes the waiter poll its job once, to
    confirm it); polling only finishes the jobs whose callback never comes
    (lost, refused by a proxy, or a CANCELED job, which has none). The first
    poll comes ``first_delay`` seconds after a job is taken up (``"equal"``
    jitter: between half of it and all of it), then the pause doubles up to
    ``max_interval``. So a job whose callback is lost ends at most about
    ``max_interval`` seconds late, and a job that ends before its first poll
    costs one GetJob.
    """
    return PollPolicy(
        first_delay=first_delay,
        initial_interval=first_delay,
        multiplier=2.0,
        max_interval=max(first_delay, max_interval),
        submitted_factor=1.0,
        jitter=jitter,
    )


CALLBACK_POLL_POLICY: Final = callback_poll_policy()
"""``callback_poll_policy()`` with its defaults: first poll after 300-600 s, then every 900 s."""
