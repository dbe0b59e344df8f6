"""A task group for background work beside a ``with`` block, without exception groups."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
from anyio.abc import TaskGroup

__all__ = ["background_tasks"]


@asynccontextmanager
async def background_tasks(stop: Callable[[TaskGroup], object]) -> AsyncIterator[TaskGroup]:
    """Yield a task group for background tasks; call ``stop(group)`` when the block ends.

    An error raised by the block comes out as itself, not wrapped in an
    exception group, so users can catch it as usual (the background tasks here
    never raise). Cancellation passes through untouched.
    """
    error: Exception | None = None
    async with anyio.create_task_group() as tasks:
        try:
            yield tasks
        except Exception as caught:
            error = caught
        finally:
            stop(tasks)
    if error is not None:
        raise error
