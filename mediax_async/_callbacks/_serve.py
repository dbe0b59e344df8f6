"""Serving a callback receiver with uvicorn (an optional dependency, imported lazily)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from .._conn_guard import DEFAULT_HEADER_TIMEOUT, ConnectionLimits
from .._serving import serve_asgi

if TYPE_CHECKING:
    from ._receiver import CallbackReceiver

__all__ = ["serve_receiver"]


@asynccontextmanager
async def serve_receiver(
    receiver: CallbackReceiver,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    max_connections: int | None = None,
) -> AsyncIterator[str]:
    """Serve ``receiver`` with uvicorn while the block runs; yield the base URL it listens on.

    The socket is bound before the block starts (``port=0`` picks a free
    port), so callbacks sent at once wait in its backlog. uvicorn's access
    log is off (request paths hold the token). A connection has
    ``header_timeout`` seconds to send its request head; at most
    ``max_connections`` are open at once (default 1000, fewer if the
    descriptor limit says so), the slowest shed first. Runs on asyncio only.
    """
    limits = ConnectionLimits(header_timeout=header_timeout, max_connections=max_connections)
    async with serve_asgi(receiver, host, port, purpose="serving callbacks", limits=limits) as url:
        yield url
