"""Serving a callback receiver with uvicorn (an optional dependency, imported lazily)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio

from .._exceptions import ConfigurationError

if TYPE_CHECKING:
    from ._receiver import CallbackReceiver

__all__ = ["bound_url", "serve_receiver"]

INSTALL_HINT = "pip install 'mediax-async[cli]'"


def _import_uvicorn() -> Any:
    try:
        import uvicorn
    except ImportError:
        raise ConfigurationError(f"serving callbacks needs uvicorn: {INSTALL_HINT}") from None
    return uvicorn


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except BaseException:
        sock.close()
        raise
    return sock


def bound_url(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@asynccontextmanager
async def serve_receiver(
    receiver: CallbackReceiver, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve ``receiver`` with uvicorn while the block runs; yield the base URL it listens on.

    The socket is bound before the block starts (``port=0`` picks a free
    port), so callbacks sent at once wait in its backlog. uvicorn's access
    log is off (request paths hold the token). Runs on asyncio only.
    """
    uvicorn = _import_uvicorn()
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise ConfigurationError("serving callbacks needs the asyncio backend (uvicorn)") from None
    config = uvicorn.Config(
        receiver,
        lifespan="off",
        log_level="warning",
        access_log=False,
        ws="none",
        interface="asgi3",
    )
    server = uvicorn.Server(config)
    error: Exception | None = None
    with _bind(host, port) as sock:
        async with anyio.create_task_group() as tasks:

            async def serve_until_stopped() -> None:
                await server.serve(sockets=[sock])
                tasks.cancel_scope.cancel()  # the server stopped on its own (a signal)

            tasks.start_soon(serve_until_stopped)
            try:
                yield bound_url(sock)
            except Exception as caught:  # raised as itself below, not in an exception group
                error = caught
            finally:
                server.should_exit = True  # a graceful stop: uvicorn closes its connections
    if error is not None:
        raise error
