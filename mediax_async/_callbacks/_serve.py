"""Serving a callback receiver with uvicorn (an optional dependency, imported lazily)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from .._serving import serve_asgi

if TYPE_CHECKING:
    from ._receiver import CallbackReceiver

__all__ = ["serve_receiver"]


@asynccontextmanager
async def serve_receiver(
    receiver: CallbackReceiver, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve ``receiver`` with uvicorn while the block runs; yield the base URL it listens on.

    The socket is bound before the block starts (``port=0`` picks a free
    port), so callbacks sent at once wait in its backlog. uvicorn's access
    log is off (request paths hold the token). Runs on asyncio only.
    """
    async with serve_asgi(receiver, host, port, purpose="serving callbacks") as url:
        yield url
