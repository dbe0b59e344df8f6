"""A loopback TCP proxy in front of redis-server that can lose one script's answer.

``arm()`` makes it drop the connection that next sends a script (``EVALSHA``
or ``EVAL``) right after the server answered it: the script ran, its caller
never hears so, and its client retries on a new connection, the same call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc

__all__ = ["DroppingProxy", "dropping_proxy"]


class DroppingProxy:
    """Forwards every connection to ``upstream_port``; ``arm()`` loses one answer."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.armed = False
        self.dropped = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def arm(self) -> None:
        """Lose the answer to the next script sent through the proxy."""
        self.armed = True

    async def serve(self, client: anyio.abc.SocketStream) -> None:
        async with client, await anyio.connect_tcp("127.0.0.1", self.upstream_port) as server:
            dropping = anyio.Event()

            async def upstream() -> None:
                async for chunk in client:
                    if self.armed and b"EVAL" in chunk:
                        self.armed = False
                        dropping.set()
                    await server.send(chunk)

            async def downstream() -> None:
                async for chunk in server:
                    if dropping.is_set():
                        self.dropped += 1
                        tasks.cancel_scope.cancel()  # the answer goes nowhere: both ends close
                        return
                    await client.send(chunk)

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(upstream)
                tasks.start_soon(downstream)


@asynccontextmanager
async def dropping_proxy(upstream_port: int) -> AsyncIterator[DroppingProxy]:
    """A running proxy to ``127.0.0.1:upstream_port``, stopped on leaving."""
    proxy = DroppingProxy(upstream_port)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    proxy.port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tasks:
        tasks.start_soon(listener.serve, proxy.serve, tasks)
        try:
            yield proxy
        finally:
            tasks.cancel_scope.cancel()
