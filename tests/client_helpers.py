"""What the client's test modules share: a test run in virtual time on trio."""

from __future__ import annotations

import pytest
import trio.testing


def virtual_time() -> pytest.MarkDecorator:
    """Run the test on trio with a fresh MockClock: waits take no wall time."""
    clock = trio.testing.MockClock(autojump_threshold=0)
    return pytest.mark.parametrize(
        "anyio_backend", [pytest.param(("trio", {"clock": clock}), id="trio-mockclock")]
    )
