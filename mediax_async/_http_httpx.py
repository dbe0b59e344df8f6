"""The httpx backend: one pooled ``httpx.AsyncClient``, the user's or our own.

Each action's URL is an ``httpx.URL`` built once (parsing a URL string costs
httpx more per request than the rest of our code). A client this library
made sends through its own ``AsyncHTTPTransport`` directly, with the
client's headers merged once: httpx's ``send`` would otherwise run its auth,
redirect and event-hook machinery, and extract cookies from every answer,
though the service sets none. Cookies are still kept when an answer sets
one, and sent back. A user's own client goes through ``send`` as it is, so
its hooks, auth and mounts apply.
"""

from __future__ import annotations

import contextlib

import httpx

from . import _constants as C
from ._exceptions import ConfigurationError, TransportError
from ._http_common import decode_failed, describe, too_large
from ._inflate import BodyTooLarge, BoundedDecoder, DecodeFailed
from ._protocol import ACTION_PATHS, Answer
from ._redact import Redactor

__all__ = ["JSON_HEADERS", "HttpxBackend", "new_httpx_client"]

JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
"""Headers every request needs; a client the library creates sends them by default."""


def new_httpx_client(
    timeout: float, max_connections: int
) -> tuple[httpx.AsyncClient, httpx.AsyncHTTPTransport]:
    """A pooled client sized so ``max_connections`` requests never wait on the pool.

    With its transport, for requests to go to directly (see the module).
    """
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    transport = httpx.AsyncHTTPTransport(limits=limits)
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=min(timeout, C.DEFAULT_CONNECT_TIMEOUT)),
        limits=limits,
        headers={"User-Agent": "mediax-async", **JSON_HEADERS},
        transport=transport,
    )
    return client, transport


class HttpxBackend:
    """Posts through ``client``; ``owned``: a client from ``new_httpx_client``, closed here.

    ``transport``: the client's own, to send to directly (a client of ours only).
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        base_url: str,
        owned: bool,
        redactor: Redactor,
        max_response_bytes: int,
        connect_errors_are_unsent: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = client
        self._owned = owned
        self._redactor = redactor
        self._limit = max_response_bytes
        self._base_url = base_url
        # httpx raises ConnectError only before a request is written; other transports
        # (httpx-aiohttp) also report a connection dropped after sending that way.
        self._connect_errors_are_unsent = connect_errors_are_unsent
        self._urls: dict[str, httpx.URL] = {}
        try:
            for action, path in ACTION_PATHS.items():
                self._urls[action] = httpx.URL(f"{base_url}/{path}")
        except httpx.InvalidURL as exc:
            raise ConfigurationError(
                f"bad base URL {base_url!r}: {describe(redactor, exc)}"
            ) from None
        self._transport = transport
        # Merging per-request headers costs httpx more than the rest of our code: send
        # them per request only when a user's own client may not have them as defaults.
        has_defaults = all(client.headers.get(k) == v for k, v in JSON_HEADERS.items())
        self._request_headers = None if has_defaults else JSON_HEADERS
        self._headers = client.headers  # merged once (a client of ours keeps them)
        self._extensions = {"timeout": client.timeout.as_dict()}

    @property
    def http_client(self) -> httpx.AsyncClient:
        """The httpx client requests go through."""
        return self._http

    async def aclose(self) -> None:
        """Close the client if this library created it."""
        if self._owned:
            await self._http.aclose()

    async def post(self, action: str, content: bytes) -> Answer:
        """POST ``content`` to ``action``'s URL; the whole answer, decoded and bounded."""
        url = self._urls[action]
        try:
            response = await self._send(url, content)
            try:
                body = await self._read(action, response)
            finally:
                await response.aclose()
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # "from None": the redacted description is in the message; the original
            # error's text is not ours to vouch for.
            raise TransportError(
                f"{action} could not connect: {describe(self._redactor, exc)}",
                action=action,
                sent=not self._connect_errors_are_unsent,
            ) from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise ConfigurationError(
                f"bad base URL {self._base_url!r}: {describe(self._redactor, exc)}"
            ) from None
        except httpx.HTTPError as exc:
            raise TransportError(
                f"{action} failed: {describe(self._redactor, exc)}", action=action, sent=True
            ) from None
        return Answer(response.status_code, response.headers, body)

    async def _send(self, url: httpx.URL, content: bytes) -> httpx.Response:
        if self._transport is None:
            request = self._http.build_request(
                "POST", url, content=content, headers=self._request_headers
            )
            return await self._http.send(request, stream=True)
        cookies = self._http.cookies
        request = httpx.Request(
            "POST",
            url,
            content=content,
            headers=self._headers,
            cookies=cookies if cookies.jar else None,
            extensions=self._extensions,
        )
        response = await self._transport.handle_async_request(request)
        response.request = request
        if "set-cookie" in response.headers:
            cookies.extract_cookies(response)
        return response

    async def _read(self, action: str, response: httpx.Response) -> bytes:
        """The decoded body, refused (``ResponseError``) past ``max_response_bytes``.

        gzip and deflate are inflated here in bounded steps; a coding only httpx
        knows (br, zstd) is left to it, checked after each decoded chunk.
        """
        limit = self._limit
        if response.is_stream_consumed:  # a transport that read it already (MockTransport)
            if len(response.content) > limit:
                raise too_large(action, response.status_code, limit)
            return response.content
        headers = response.headers
        declared = headers.get("content-length", "")
        encoding = headers.get("content-encoding", "")
        if declared.isdigit() and not encoding and int(declared) > limit:
            raise too_large(action, response.status_code, limit)
        decoder = BoundedDecoder.for_encoding(encoding, limit)
        if decoder is None:
            return await self._read_through_httpx(action, response)
        # Past the limit the rest is read and dropped, up to the limit again: leaving
        # httpx's stream mid-way leaves its inner generators to the loop's finalizer
        # (trio warns of each), and a body that small costs nothing to drain.
        too_long = False
        received = 0
        try:
            # (httpx types its iterators as AsyncIterator, though they are generators.)
            async with contextlib.aclosing(response.aiter_raw()) as raw:  # type: ignore[type-var]
                async for chunk in raw:
                    received += len(chunk)
                    if too_long:
                        if received > limit:
                            break
                        continue
                    try:
                        decoder.feed(chunk)
                    except BodyTooLarge:
                        too_long = True
        except DecodeFailed as exc:
            raise decode_failed(action, encoding, exc) from None
        if too_long:
            raise too_large(action, response.status_code, limit)
        return decoder.finish()

    async def _read_through_httpx(self, action: str, response: httpx.Response) -> bytes:
        limit = self._limit
        chunks, size = [], 0
        async with contextlib.aclosing(response.aiter_bytes()) as decoded:  # type: ignore[type-var]
            async for chunk in decoded:
                size += len(chunk)
                if size > limit:
                    raise too_large(action, response.status_code, limit)
                chunks.append(chunk)
        return b"".join(chunks)
