"""Shared fixtures: every async test runs on asyncio and on trio."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import pytest
import trio
import trio.testing

T = TypeVar("T")


@pytest.fixture(
    params=[
        pytest.param("asyncio", id="asyncio"),
        pytest.param("trio", id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run each ``@pytest.mark.anyio`` test once per event loop."""
    return str(request.param)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No MEDIAX_* variable from the developer's shell reaches a test."""
    for name in ("MEDIAX_SECRET_ID", "MEDIAX_SECRET_KEY", "MEDIAX_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _virtual_time_waits_for_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under trio's ``MockClock``, virtual time stands still while a worker thread runs.

    A clock that jumps whenever every task sleeps would otherwise jump while
    a thread works (writing a results file, say): the thread's few real
    milliseconds became hours of virtual time on a busy machine, and every
    deadline in them fired at once.
    """
    real = anyio.to_thread.run_sync
    running: dict[int, tuple[trio.testing.MockClock, float, int]] = {}

    async def run_sync(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        clock = _mock_clock()
        if clock is None:
            return await real(func, *args, **kwargs)
        _, threshold, count = running.get(id(clock), (clock, clock.autojump_threshold, 0))
        running[id(clock)] = (clock, threshold, count + 1)
        clock.autojump_threshold = math.inf
        try:
            return await real(func, *args, **kwargs)
        finally:
            _, threshold, count = running.pop(id(clock))
            if count > 1:
                running[id(clock)] = (clock, threshold, count - 1)
            else:
                clock.autojump_threshold = threshold

    monkeypatch.setattr(anyio.to_thread, "run_sync", run_sync)


def _mock_clock() -> trio.testing.MockClock | None:
    """The running trio loop's ``MockClock``, if this is one."""
    try:
        clock = trio.lowlevel.current_clock()
    except RuntimeError:  # not in trio
        return None
    return clock if isinstance(clock, trio.testing.MockClock) else None


SLOWEST_FILES = (
    "test_shared_batch.py",
    "test_waiter_faults_over_http.py",
    "test_waiter_virtual_time.py",
    "test_cli_processes.py",
)
"""Files whose tests take the longest, slowest first (see ``pytest --durations``)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the slowest files first.

    Under xdist (``--dist loadfile``) files go to the workers in this order: a
    two-minute file that started last kept one worker busy long after the
    other had run out of work.
    """
    rank = {name: index for index, name in enumerate(SLOWEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
