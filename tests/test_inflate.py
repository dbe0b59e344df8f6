"""The bounded decoder: every body back exactly, however it is split, and nothing past the limit."""

from __future__ import annotations

import gzip
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mediax_async._inflate import BodyTooLarge, BoundedDecoder, DecodeFailed


def deflate_raw(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


ENCODERS = {
    "": lambda data: data,
    "identity": lambda data: data,
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,  # as the standard says: zlib-wrapped
    "Deflate": deflate_raw,  # as servers send it: raw
    "deflate, gzip": lambda data: gzip.compress(zlib.compress(data)),
}


def decode(encoding: str, wire: bytes, limit: int, cuts: list[int]) -> bytes:
    decoder = BoundedDecoder.for_encoding(encoding, limit)
    assert decoder is not None
    points = sorted({min(cut, len(wire)) for cut in cuts})
    for start, end in zip([0, *points], [*points, len(wire)], strict=True):
        decoder.feed(wire[start:end])
    return decoder.finish()


bodies = st.one_of(
    st.binary(max_size=3000),
    # Highly compressible: one step of input leaves output pending inside zlib.
    st.builds(lambda b, n: b * n, st.binary(min_size=1, max_size=3), st.integers(0, 400_000)),
)


@given(
    body=bodies,
    encoding=st.sampled_from(sorted(ENCODERS)),
    slack=st.integers(-3, 3),
    cuts=st.lists(st.integers(0, 5000), max_size=6),
)
def test_a_body_comes_back_exactly_or_is_refused_past_the_limit(
    body: bytes, encoding: str, slack: int, cuts: list[int]
) -> None:
    limit = max(1, len(body) + slack)
    wire = ENCODERS[encoding](body)
    if len(body) > limit:
        with pytest.raises(BodyTooLarge):
            decode(encoding, wire, limit, cuts)
    else:
        assert decode(encoding, wire, limit, cuts) == body


def test_a_bomb_is_refused_having_inflated_no_more_than_the_limit() -> None:
    wire = gzip.compress(bytes(50 * 1024 * 1024))
    decoder = BoundedDecoder.for_encoding("gzip", 1024 * 1024)
    assert decoder is not None
    with pytest.raises(BodyTooLarge):
        decoder.feed(wire)
    assert decoder.size <= 1024 * 1024


def test_a_corrupt_body_is_a_decode_failure() -> None:
    decoder = BoundedDecoder.for_encoding("gzip", 1000)
    assert decoder is not None
    with pytest.raises(DecodeFailed):
        decoder.feed(b"not gzip at all")


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip, br", "compress"])
def test_a_coding_it_does_not_know_is_left_to_the_caller(encoding: str) -> None:
    assert BoundedDecoder.for_encoding(encoding, 1000) is None
