"""Decoding an answer's ``Content-Encoding`` in bounded steps, pure (no I/O).

A small gzip body can inflate a thousandfold: decoding a whole network chunk
at once (as httpx does) turns 64 KiB into 64 MiB before anything can check
the size. Here each step inflates at most what the limit still allows, so a
body over the limit is refused having held at most the limit.
"""

from __future__ import annotations

import zlib

__all__ = ["BodyTooLarge", "BoundedDecoder", "DecodeFailed"]


class BodyTooLarge(Exception):
    """The body, decoded, is longer than the limit."""


class DecodeFailed(Exception):
    """The body is not valid for its ``Content-Encoding``."""


_STEP = 256 * 1024
"""The most one step inflates."""
_ZLIB_HEADER = 2


class _Inflater:
    """One zlib stream (gzip, zlib-wrapped or raw deflate), inflated in bounded steps."""

    def __init__(self, wbits: int, *, raw_fallback: bool = False) -> None:
        self._zlib = zlib.decompressobj(wbits)
        # "deflate" is zlib-wrapped by the standard and raw in practice: try both. The
        # zlib header is the first 2 bytes: until they passed, keep them to start over.
        self._raw_fallback = raw_fallback
        self._head = b""

    def feed(self, data: bytes, room: int) -> list[bytes]:
        """Inflate ``data``; more than ``room`` bytes out raises ``BodyTooLarge``."""
        if self._raw_fallback:
            self._head += data
        out: list[bytes] = []
        while not self._zlib.eof:
            # max_length 0 would mean "no limit": room + 1 is at least 1. A step of at
            # most _STEP: zlib builds each output twice (in blocks, then joined).
            want = min(room + 1, _STEP)
            try:
                chunk = self._zlib.decompress(data, want)
            except zlib.error as exc:
                if self._raw_fallback:
                    self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                    self._raw_fallback = False
                    data, self._head = self._head, b""
                    continue
                raise DecodeFailed(str(exc)) from None
            if self._raw_fallback and len(self._head) >= _ZLIB_HEADER:
                self._raw_fallback = False  # the header checked out: zlib-wrapped
                self._head = b""
            room -= len(chunk)
            if room < 0:
                raise BodyTooLarge
            if chunk:
                out.append(chunk)
            data = self._zlib.unconsumed_tail
            # A full step may leave output pending inside zlib even with no input left.
            if not data and len(chunk) < want:
                break
        return out


_WBITS = {
    "gzip": (16 + zlib.MAX_WBITS, False),
    "x-gzip": (16 + zlib.MAX_WBITS, False),
    "deflate": (zlib.MAX_WBITS, True),
}


class BoundedDecoder:
    """Decodes a body chunk by chunk, refusing it once it passes ``limit`` bytes.

    ``for_encoding`` gives None for an encoding it cannot decode (br, zstd):
    the caller must then decode some other way.
    """

    def __init__(self, inflaters: list[_Inflater], limit: int) -> None:
        self._inflaters = inflaters
        self._limit = limit
        self._size = 0
        self._chunks: list[bytes] = []

    @classmethod
    def for_encoding(cls, content_encoding: str, limit: int) -> BoundedDecoder | None:
        """A decoder for a ``Content-Encoding`` header's value, or None if unsupported."""
        inflaters = []
        # Codings apply in the order listed, so they come off in reverse.
        for coding in reversed(content_encoding.lower().split(",")):
            coding = coding.strip()
            if coding in ("", "identity"):
                continue
            if coding not in _WBITS:
                return None
            wbits, raw_fallback = _WBITS[coding]
            inflaters.append(_Inflater(wbits, raw_fallback=raw_fallback))
        return cls(inflaters, limit)

    @property
    def size(self) -> int:
        """Decoded bytes so far."""
        return self._size

    def feed(self, data: bytes) -> None:
        """Take the next chunk as received; ``BodyTooLarge`` / ``DecodeFailed``."""
        if not self._inflaters:
            self._add([data])
            return
        *inner, last = self._inflaters
        chunks = [data]
        for inflater in inner:
            # An inner coding's output may outgrow the body a little (framing, stored
            # blocks), never by a factor: a step more than the body may still hold.
            chunks = [out for chunk in chunks for out in inflater.feed(chunk, self._room() + _STEP)]
        for chunk in chunks:
            self._add(last.feed(chunk, self._room()))

    def finish(self) -> bytes:
        """The whole decoded body, once every chunk was fed."""
        body = b"".join(self._chunks)
        self._chunks = []
        return body

    def _room(self) -> int:
        return self._limit - self._size

    def _add(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self._size += len(chunk)
            if self._size > self._limit:
                raise BodyTooLarge
            self._chunks.append(chunk)
