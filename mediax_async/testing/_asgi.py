"""The fake as a plain ASGI 3 application (no framework)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from .._asgi import Receive, Scope, Send, serve_lifespan

if TYPE_CHECKING:
    from ._service import FakeMediaX

__all__ = ["InjectedDisconnect", "MediaXApp"]


# What a dropped connection shows before it drops: headers promising a body it never gets.
_PROMISED_LENGTH = b"1024"


class InjectedDisconnect(httpx.RemoteProtocolError):
    """Raised by the ASGI app to drop a connection on purpose.

    A server closes the connection mid-answer, so its client sees a protocol
    error; ``httpx.ASGITransport`` re-raises it, and it is already an httpx error.
    """


class MediaXApp:
    """An ASGI app serving a ``FakeMediaX`` at any path ending in ``/job`` or ``/music_model``."""

    def __init__(self, fake: FakeMediaX) -> None:
        self.fake = fake

    def __repr__(self) -> str:
        return f"<MediaXApp {self.fake!r}>"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise ValueError(f"{type(self).__name__} serves HTTP only, not {scope['type']}")
        body = await _read_body(receive)
        reply = await self.fake.exchange(scope["method"], scope["path"], body)
        if reply.disconnect is not None:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", _PROMISED_LENGTH),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b"{", "more_body": True})
            raise InjectedDisconnect(f"connection dropped on purpose ({reply.disconnect.value})")
        headers = [(name.encode(), value.encode()) for name, value in reply.headers]
        headers.append((b"content-length", str(len(reply.body)).encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
