"""Serving over real HTTP with uvicorn (an optional dependency, imported lazily)."""

from __future__ import annotations

import contextlib
import functools
import logging
import shlex
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TextIO

import anyio

from .._serving import import_uvicorn, serve_asgi
from ._asgi import InjectedDisconnect
from ._schedule import Schedule
from ._service import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, FakeMediaX

__all__ = ["run_emulator", "serve_app"]


class _HideInjectedDisconnects(logging.Filter):
    """Keeps uvicorn from logging, as a crash, a connection the fake dropped on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], InjectedDisconnect))


@contextmanager
def _quiet_injected_disconnects() -> Iterator[None]:
    logger = logging.getLogger("uvicorn.error")
    hide = _HideInjectedDisconnects()
    logger.addFilter(hide)
    try:
        yield
    finally:
        logger.removeFilter(hide)


@asynccontextmanager
async def serve_app(app: Any, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn in a background task; yield its base URL.

    ``port=0`` picks a free port: the socket is bound here and handed to
    uvicorn, so the URL carries the real port. Runs on asyncio only (uvicorn
    does). The block is cancelled if the server stops (e.g. on Ctrl-C).
    """
    with _quiet_injected_disconnects():
        async with serve_asgi(app, host, port, purpose="serving the fake over HTTP") as url:
            yield url


def run_emulator(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    speed: float = 1.0,
    seed: int | None = None,
    secret_id: str = DEFAULT_SECRET_ID,
    secret_key: str = DEFAULT_SECRET_KEY,
    schedule: Schedule | None = None,
    out: TextIO | None = None,
    on_ready: Callable[[str, FakeMediaX], object] | None = None,
) -> None:
    """Serve a fake MediaX over HTTP until interrupted (Ctrl-C, SIGINT or SIGTERM); blocks.

    Once the server accepts requests it calls ``on_ready(base_url, fake)``;
    by default it prints to ``out`` (default: stdout), flushed, three lines a
    shell can run: ``export MEDIAX_BASE_URL=...``, ``export
    MEDIAX_SECRET_ID=...`` and ``export MEDIAX_SECRET_KEY=...``. ``port=0``
    picks a free port. Fake time runs ``speed`` times faster than the wall
    clock, and the jobs' timestamps follow the wall clock from the start.
    ``seed=None`` draws fresh ids and durations. Needs uvicorn.
    """
    import_uvicorn("the emulator")
    if on_ready is None:
        on_ready = functools.partial(_print_exports, out if out is not None else sys.stdout)
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(
            _emulate,
            host,
            port,
            FakeMediaX(
                secret_id=secret_id,
                secret_key=secret_key,
                seed=seed,
                schedule=schedule,
                speed=speed,
                # asyncio's clock is time.monotonic(); line its zero up with the wall clock.
                epoch_offset_ms=round((time.time() - time.monotonic() * speed) * 1000),
            ),
            on_ready,
            backend="asyncio",
        )


def _print_exports(out: TextIO, base_url: str, fake: FakeMediaX) -> None:
    for name, value in (
        ("MEDIAX_BASE_URL", base_url),
        ("MEDIAX_SECRET_ID", fake.secret_id),
        ("MEDIAX_SECRET_KEY", fake.secret_key),
    ):
        print(f"export {name}={shlex.quote(value)}", file=out)
    out.flush()


async def _emulate(
    host: str, port: int, fake: FakeMediaX, on_ready: Callable[[str, FakeMediaX], object]
) -> None:
    async with fake.serve(host, port) as base_url:
        fake.base_url = base_url
        on_ready(base_url, fake)
        await anyio.sleep_forever()
