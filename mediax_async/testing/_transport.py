"""The fake as an httpx transport: no sockets, no ASGI, one call into ``exchange``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from ._wire import Disconnect

if TYPE_CHECKING:
    from ._service import FakeMediaX

__all__ = ["FakeTransport"]


class FakeTransport(httpx.AsyncBaseTransport):
    """Hands each request to a ``FakeMediaX``; a dropped connection raises as httpx would.

    A drop before processing raises ``httpx.RemoteProtocolError``; an answer lost
    after processing raises ``httpx.ReadError``.
    """

    def __init__(self, fake: FakeMediaX) -> None:
        self.fake = fake

    def __repr__(self) -> str:
        return f"<FakeTransport {self.fake!r}>"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` from the fake."""
        body = await request.aread()
        reply = await self.fake.exchange(request.method, request.url.path, body)
        if reply.disconnect == Disconnect.BEFORE_PROCESSING:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        if reply.disconnect == Disconnect.AFTER_PROCESSING:
            raise httpx.ReadError("Connection reset by peer", request=request)
        return httpx.Response(
            reply.status, headers=reply.headers, content=reply.body, request=request
        )
