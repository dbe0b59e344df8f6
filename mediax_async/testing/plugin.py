"""Pytest fixtures for testing code that uses mediax-async, against the fake service.

Registered through the ``pytest11`` entry point, so installing mediax-async is
enough. The fixtures are synchronous, so they work under anyio's plugin (on
asyncio and trio) and pytest-asyncio's (on asyncio) alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ._service import FakeMediaX

if TYPE_CHECKING:
    from .._client import MediaXClient

__all__ = ["mediax_client", "mediax_fake"]


@pytest.fixture
def mediax_fake() -> FakeMediaX:
    """Return a fresh fake MediaX service with the default credentials and seed 0."""
    return FakeMediaX(seed=0)


@pytest.fixture
def mediax_client(mediax_fake: FakeMediaX) -> MediaXClient:
    """Return a ``mediax_async.MediaXClient`` connected in-process to ``mediax_fake``."""
    return mediax_fake.client()
