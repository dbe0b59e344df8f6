"""The store contract (``store_contract.py``) on ``RedisStore``, against a real redis-server.

Each test gets its own namespace on one server for the module; the contract
runs on asyncio and on trio (coredis runs on anyio).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis_server import RedisServer
from store_contract import *  # noqa: F403 - the contract's tests run here
from store_contract import ManualClock

from mediax_async import PendingStore

pytest.importorskip("coredis")

from mediax_async.redis import RedisStore

pytestmark = pytest.mark.anyio
_namespaces = itertools.count()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the module."""
    with RedisServer(Path(tmp_path_factory.mktemp("redis"))) as server:
        yield server


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_store(redis_server: RedisServer) -> object:
    """RedisStore on the contract's clock, in a namespace of its own (the contract closes it)."""

    async def make(clock: ManualClock, **options: Any) -> PendingStore:
        store = RedisStore.from_url(
            redis_server.url, namespace=f"contract-{next(_namespaces)}", clock=clock, **options
        )
        await store.__aenter__()
        return store

    return make
