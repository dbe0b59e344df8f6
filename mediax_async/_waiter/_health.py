"""What a waiter has done (``WaiterStats``), and whether the service still answers (``Health``)."""

from __future__ import annotations

import logging

import attrs

__all__ = ["FAILURE_RUN_WARNING", "Health", "WaiterStats", "describe", "logger"]

logger = logging.getLogger("mediax_async.waiter")

FAILURE_RUN_WARNING = 5
"""Failed polls in a row, with no answer between, after which a WARNING is logged."""


@attrs.define
class WaiterStats:
    """What a waiter has done so far."""

    polls: int = 0
    """GetJob requests answered with a job."""
    list_polls: int = 0
    """ListJobs requests that refreshed a batch of jobs sharing a custom id."""
    retries: int = 0
    """Polls that failed transiently and were rescheduled."""
    errors: int = 0
    """Jobs whose wait ended with an error (404, ...)."""
    rate_limited: int = 0
    """429 answers."""
    notified: int = 0
    """Callback notifications for jobs being watched."""
    submitted: int = 0
    """Jobs created through ``submit`` (looked up again after a lost answer included)."""
    settled: int = 0
    """Jobs this waiter saw reach COMPLETED, ERROR or CANCELED."""
    completed: int = 0
    failed: int = 0
    canceled: int = 0
    hook_errors: int = 0
    """Exceptions raised by the user's hooks (logged, never fatal)."""


class Health:
    """Runs of failed polls: a WARNING after a run, and the time a run has lasted.

    ``give_up_after`` (seconds of nothing but failures) says when the waits
    should end with the last error; None never.
    """

    def __init__(self, give_up_after: float | None) -> None:
        if give_up_after is not None and not give_up_after > 0:
            raise ValueError(f"give_up_after must be > 0 seconds, got {give_up_after!r}")
        self.give_up_after = give_up_after
        self.failures = 0
        """Failed polls since the last answer."""
        self.failing_since: float | None = None
        self.last_error: BaseException | None = None
        """The last failure of a poll (kept after an answer, for timeouts to name)."""
        self._warned = False

    def answered(self) -> None:
        """A poll got an answer: the run of failures, if any, is over."""
        if self.failures:
            if self._warned:
                logger.warning("the service answers again after %d failed polls", self.failures)
            self.failures = 0
            self.failing_since = None
            self._warned = False

    def failed(self, error: BaseException, now: float) -> bool:
        """A poll failed; whether the waits should now end with ``error`` (given up)."""
        self.last_error = error
        self.failures += 1
        if self.failing_since is None:
            self.failing_since = now
        if self.failures >= FAILURE_RUN_WARNING and not self._warned:
            self._warned = True
            logger.warning(
                "%d polls in a row failed over %.0f s; the service may be down. Last error: %s",
                self.failures,
                now - self.failing_since,
                describe(error),
            )
        return self.give_up_after is not None and now - self.failing_since >= self.give_up_after


def describe(error: BaseException | None) -> str:
    """``error`` as one short line: its type and message."""
    if error is None:
        return "none"
    text = str(error).splitlines()[0] if str(error) else ""
    if len(text) > 200:
        text = text[:197] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
