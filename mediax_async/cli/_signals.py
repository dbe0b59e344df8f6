"""SIGTERM ends a command the way Ctrl-C does: cleanly, state saved, with its own exit code."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import attrs

__all__ = ["Termination", "terminate_as_interrupt"]


@attrs.define
class Termination:
    """Whether a SIGTERM arrived while the command ran."""

    received: bool = False


@contextmanager
def terminate_as_interrupt() -> Iterator[Termination]:
    """While the block runs, SIGTERM does what SIGINT does (main thread only).

    The handler hands the signal to whatever handles SIGINT at that moment:
    asyncio's runner (which cancels the main task, so every ``finally`` and
    cancellation handler runs), trio's, or Python's default (``KeyboardInterrupt``).
    A server that captures signals itself (uvicorn) raises them again when it
    stops, so they arrive here too.
    """
    termination = Termination()
    if threading.current_thread() is not threading.main_thread():
        yield termination
        return

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        termination.received = True
        on_sigint = signal.getsignal(signal.SIGINT)
        if callable(on_sigint):
            on_sigint(signal.SIGINT, frame)
            return
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield termination
    finally:
        signal.signal(signal.SIGTERM, previous)
