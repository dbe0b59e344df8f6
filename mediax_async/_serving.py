"""Serving an ASGI app over real HTTP with uvicorn (an optional dependency, imported lazily).

Shared by the callback receiver and the fake service's emulator.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

from anyio.abc import TaskGroup

from ._conn_guard import ConnectionLimits, connection_budget, guarded_protocol
from ._exceptions import ConfigurationError
from ._tasks import background_tasks

__all__ = ["bind_socket", "import_uvicorn", "serve_asgi", "socket_url"]

INSTALL_HINT = "pip install 'mediax-async[cli]'"
SHUTDOWN_GRACE = 5
"""Seconds requests in flight get to finish once the server is told to stop."""
MAX_HEAD_BYTES = 16 * 1024
"""The largest request head (request line and headers) a guarded server reads."""


def import_uvicorn(purpose: str) -> ModuleType:
    """The uvicorn module, or a ``ConfigurationError`` saying how to install it."""
    try:
        import uvicorn
    except ImportError:
        raise ConfigurationError(f"{purpose} needs uvicorn: {INSTALL_HINT}") from None
    return uvicorn


LISTEN_QUEUE = 1024
"""Connections the kernel holds for a listening socket until they are accepted."""


class _ListeningSocket(socket.socket):
    """A listening socket whose kernel queue stays long whatever ``listen()`` is asked.

    asyncio's ``create_server(sock=..., backlog=n)`` calls ``listen(n)`` and also
    accepts up to ``n`` connections per loop tick. A guarded server asks for a
    small ``n`` (short accept bursts, so its connection cap holds), and connections
    beyond it should wait in the queue rather than have their SYN dropped.
    """

    def listen(self, backlog: int = LISTEN_QUEUE, /) -> None:
        """Listen, with a queue of at least ``LISTEN_QUEUE``."""
        super().listen(max(backlog, LISTEN_QUEUE))


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0`` picks a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets it knows are TCP,
    # and without it every answer waits out a delayed ACK (~40 ms).
    sock = _ListeningSocket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_QUEUE)
    except BaseException:
        sock.close()
        raise
    return sock


def socket_url(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@asynccontextmanager
async def serve_asgi(
    app: Any,
    host: str,
    port: int,
    *,
    purpose: str,
    limits: ConnectionLimits | None = None,
    shutdown_grace: float = SHUTDOWN_GRACE,
) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn while the block runs; yield the base URL it listens on.

    The socket listens before the block starts, so requests made at once wait
    in its backlog. uvicorn's access log is off (request paths may hold
    secrets). An error raised by the block comes out as itself, not in an
    exception group; the block is cancelled if the server stops on its own
    (e.g. on Ctrl-C). Requests still running when the block ends get
    ``shutdown_grace`` seconds, then are cancelled, so leaving the block never
    hangs. Runs on asyncio only, as uvicorn does. With ``limits``,
    slow connections are cut off and surplus ones shed (``_conn_guard``), so
    a flood of them does not lock real requests out.
    """
    uvicorn = import_uvicorn(purpose)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise ConfigurationError(f"{purpose} needs the asyncio backend (uvicorn)") from None
    options: dict[str, Any] = {}
    if limits is not None:
        budget = connection_budget(limits)
        options["http"] = guarded_protocol(limits, budget.cap)
        options["h11_max_incomplete_event_size"] = MAX_HEAD_BYTES
        options["backlog"] = budget.accept_batch
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        access_log=False,
        ws="none",
        interface="asgi3",
        # A request still running when the block ends (a slow handler, a stuck client)
        # gets this long, then is cancelled: leaving the block never hangs.
        timeout_graceful_shutdown=shutdown_grace,
        **options,
    )
    server = uvicorn.Server(config)

    def stop_serving(tasks: TaskGroup) -> None:
        server.should_exit = True  # a graceful stop: uvicorn closes its connections

    with bind_socket(host, port) as sock:
        async with background_tasks(stop=stop_serving) as tasks:

            async def serve_until_stopped() -> None:
                await server.serve(sockets=[sock])
                tasks.cancel_scope.cancel()  # the server stopped on its own (a signal)

            tasks.start_soon(serve_until_stopped)
            yield socket_url(sock)
