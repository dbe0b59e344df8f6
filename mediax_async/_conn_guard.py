"""Keeping a uvicorn server reachable when strangers open slow connections.

uvicorn has no timeout for a request's head: a client that opens a
connection and trickles its headers (or sends nothing) holds a descriptor
for as long as it likes. A thousand of them exhaust the process's descriptors,
accept() fails with EMFILE, and a real request cannot get in. Two guards, at
the HTTP protocol level:

- a *header timeout*: a connection has ``header_timeout`` seconds to send a
  whole request head (after connecting, and again on a kept-alive connection
  after each answer); then it is closed without an answer;
- a *connection cap*, below the descriptor limit: when a new connection
  would pass it, the oldest connection that has not yet sent its whole
  request is closed to make room (a real sender sends at once, so the
  slowest are the ones to go); if every connection is busy with a whole
  request, the new one is closed instead.

The cap never exceeds what the descriptor limit leaves once the process's
other descriptors (and a reserve for its outgoing connections) are counted.
Needs uvicorn (imported when a protocol class is made), asyncio only.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
from typing import Any, Final

import attrs

__all__ = [
    "DEFAULT_HEADER_TIMEOUT",
    "ConnectionBudget",
    "ConnectionLimits",
    "connection_budget",
    "guarded_protocol",
]

logger = logging.getLogger("mediax_async.serving")

DEFAULT_HEADER_TIMEOUT: Final = 10.0
"""Seconds a connection has to send a whole request head."""
DEFAULT_MAX_CONNECTIONS: Final = 1000
"""Connections served at once, unless the descriptor limit leaves fewer."""
_FALLBACK_OPEN_DESCRIPTORS: Final = 64
"""Descriptors assumed in use when they cannot be counted (no /proc)."""


@attrs.frozen(kw_only=True)
class ConnectionLimits:
    """How long a connection may take to send a request head, and how many may be open."""

    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    max_connections: int | None = None
    """At most this many (default 1000), and never more than the descriptor limit leaves."""

    def __attrs_post_init__(self) -> None:
        if not self.header_timeout > 0:
            raise ValueError(f"header_timeout must be > 0 seconds, got {self.header_timeout!r}")
        if self.max_connections is not None and self.max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {self.max_connections!r}")


def _descriptor_limit() -> int | None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def _open_descriptors() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # pragma: no cover - no /proc
        return _FALLBACK_OPEN_DESCRIPTORS


@attrs.frozen
class ConnectionBudget:
    """How many connections a server holds at once, and how many it accepts in one go."""

    cap: int
    accept_batch: int
    """asyncio accepts up to this many connections per loop tick (its ``backlog``), before
    any of them is seen: the cap plus a few batches must stay under the descriptor limit."""


def connection_budget(limits: ConnectionLimits) -> ConnectionBudget:
    """The budget ``limits`` and the descriptor limit leave (read now, when serving starts)."""
    wanted = limits.max_connections or DEFAULT_MAX_CONNECTIONS
    limit = _descriptor_limit()
    if limit is None:
        return ConnectionBudget(wanted, 128)
    reserve = max(64, limit // 8)  # accept bursts, outgoing connections, files, ...
    room = limit - _open_descriptors() - reserve
    return ConnectionBudget(max(8, min(wanted, room)), max(8, min(128, reserve // 4)))


def guarded_protocol(limits: ConnectionLimits, cap: int) -> type[asyncio.Protocol]:
    """The h11 protocol of uvicorn, with a header timeout and a connection cap (``Config(http=)``).

    Each call makes a class with its own bookkeeping: use one per server.
    """
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    # Connections that have not sent a whole request yet, oldest first.
    incomplete: collections.OrderedDict[Any, None] = collections.OrderedDict()
    warned = [False]

    class GuardedH11Protocol(H11Protocol):
        """H11Protocol that closes slow and surplus connections."""

        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            if len(self.connections) > cap:
                victim = next(iter(incomplete), None)
                if not warned[0]:
                    warned[0] = True
                    logger.warning(
                        "%d connections are open, the most this server takes: closing the "
                        "slowest ones (a slow-connection flood, or raise the descriptor limit)",
                        cap,
                    )
                if victim is None:  # every connection holds a whole request: refuse this one
                    self.transport.close()
                    return
                victim.shed()
            self.await_request()

        def await_request(self) -> None:
            """Start the clock for a request head, and count this connection as incomplete."""
            incomplete[self] = None
            incomplete.move_to_end(self)
            self._stop_clock()
            self._head_timer = self.loop.call_later(limits.header_timeout, self.shed)

        def _stop_clock(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def shed(self) -> None:
            """Close this connection without an answer."""
            self._stop_clock()
            incomplete.pop(self, None)
            if not self.transport.is_closing():
                self.transport.close()

        def handle_events(self) -> None:
            super().handle_events()
            state = self.conn.their_state
            if state is not h11.IDLE:
                self._stop_clock()  # the head is in
            if state is not h11.IDLE and state is not h11.SEND_BODY:
                incomplete.pop(self, None)  # the whole request is in

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self.await_request()  # kept alive: the next head has the same time

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_clock()
            incomplete.pop(self, None)
            super().connection_lost(exc)

    return GuardedH11Protocol
