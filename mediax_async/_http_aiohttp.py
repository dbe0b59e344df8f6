"""The aiohttp backend: one ``aiohttp.ClientSession`` per client, asyncio only.

Requests go straight through aiohttp (no httpx machinery above it): each
action's URL is a ``yarl.URL`` built once, answers are read undecoded and
inflated here in bounded steps (``_inflate``), as on the httpx backend.
Only gzip and deflate are asked for. The session is opened on the first
request, inside the running loop, and holds at most ``max_connections``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import yarl

from . import _constants as C
from ._exceptions import ConfigurationError, TransportError
from ._http_common import decode_failed, describe, too_large
from ._inflate import BodyTooLarge, BoundedDecoder, DecodeFailed
from ._protocol import ACTION_PATHS, Answer
from ._redact import Redactor

__all__ = ["AiohttpBackend"]

_HEADERS = {
    "User-Agent": "mediax-async",
    "Content-Type": "application/json",
    "Accept": "application/json",
    "Accept-Encoding": "gzip, deflate",  # what _inflate decodes in bounded steps
}


class AiohttpBackend:
    """Posts through an ``aiohttp.ClientSession`` it opens and closes itself."""

    def __init__(
        self,
        *,
        base_url: str,
        timeout: float,
        max_connections: int,
        redactor: Redactor,
        max_response_bytes: int,
    ) -> None:
        self._base_url = base_url
        self._redactor = redactor
        self._limit = max_response_bytes
        self._max_connections = max_connections
        # No total or read timeout: the transport's deadline bounds each attempt whole.
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=min(timeout, C.DEFAULT_CONNECT_TIMEOUT)
        )
        try:
            self._urls = {
                action: yarl.URL(f"{base_url}/{path}") for action, path in ACTION_PATHS.items()
            }
        except ValueError as exc:
            raise ConfigurationError(
                f"bad base URL {base_url!r}: {describe(redactor, exc)}"
            ) from None
        self._session: aiohttp.ClientSession | None = None

    @property
    def http_client(self) -> None:
        """No httpx client: requests go through aiohttp."""
        return None

    def _open(self) -> aiohttp.ClientSession:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise ConfigurationError("http_backend='aiohttp' runs on asyncio only") from None
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0),
            headers=_HEADERS,
            timeout=self._timeout,
            auto_decompress=False,
            cookie_jar=aiohttp.CookieJar(unsafe=True),  # as httpx: cookies of IP hosts too
        )
        return self._session

    async def aclose(self) -> None:
        """Close the session and its connections."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def post(self, action: str, content: bytes) -> Answer:
        """POST ``content`` to ``action``'s URL; the whole answer, decoded and bounded."""
        session = self._session or self._open()
        try:
            response = await session.request(
                "POST", self._urls[action], data=content, allow_redirects=False
            )
            try:
                body = await self._read(action, response)
            except BaseException:
                response.close()  # the rest unread: this connection cannot be reused
                raise
            response.release()
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # Raised only while connecting: the request was not written. ("from None":
            # the redacted description is in the message.)
            raise TransportError(
                f"{action} could not connect: {describe(self._redactor, exc)}",
                action=action,
                sent=False,
            ) from None
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
            raise ConfigurationError(
                f"bad base URL {self._base_url!r}: {describe(self._redactor, exc)}"
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise TransportError(
                f"{action} failed: {describe(self._redactor, exc)}", action=action, sent=True
            ) from None
        return Answer(response.status, response.headers, body)

    async def _read(self, action: str, response: aiohttp.ClientResponse) -> bytes:
        limit = self._limit
        headers: Any = response.headers
        declared = headers.get("Content-Length", "")
        encoding = headers.get("Content-Encoding", "")
        if declared.isdigit() and not encoding and int(declared) > limit:
            raise too_large(action, response.status, limit)
        if declared.isdigit() and not encoding:
            return await response.read()  # the length is known and within the limit
        decoder = BoundedDecoder.for_encoding(encoding, limit)
        if decoder is None:
            raise decode_failed(action, encoding, ValueError("not gzip or deflate"))
        stream = response.content
        try:
            while chunk := await stream.readany():
                decoder.feed(chunk)
            return decoder.finish()
        except BodyTooLarge:
            raise too_large(action, response.status, limit) from None
        except DecodeFailed as exc:
            raise decode_failed(action, encoding, exc) from None
