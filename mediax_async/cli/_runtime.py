"""What the command line connects to and writes to; tests swap it for the fake service."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import Any, TextIO

import attrs

from .. import _constants as C
from .._client import MediaXClient
from .._exceptions import ConfigurationError
from .._policies import PollPolicy
from .._waiter import PendingStore
from ._stores import open_store

__all__ = ["ClientSettings", "Runtime", "default_client"]


@attrs.frozen(kw_only=True)
class ClientSettings:
    """The client options the command line collected (``--base-url``)."""

    base_url: str | None = None


def default_client(settings: ClientSettings) -> MediaXClient:
    """A client from the settings and the ``MEDIAX_*`` environment variables.

    Missing credentials are named as the command line takes them: environment
    variables (a secret key on the command line would be visible to every
    user of the machine, so there is no option for it).
    """
    missing = [name for name in (C.ENV_SECRET_ID, C.ENV_SECRET_KEY) if not os.environ.get(name)]
    if missing:
        raise ConfigurationError(
            f"missing credentials: set {' and '.join(missing)} in the environment"
        )
    return MediaXClient(base_url=settings.base_url)


@attrs.frozen(kw_only=True)
class Runtime:
    """The outside world of one ``main()`` call.

    ``client_factory`` makes the client (tests return ``fake.client()``),
    ``poll_policy`` paces the waiter (tests use short intervals against a
    sped-up fake), ``stdout``/``stderr`` default to ``sys``'s at the time of
    writing, ``terminal`` overrides ``stdout.isatty()`` and ``error_terminal``
    ``stderr.isatty()``. ``backend`` and ``backend_options`` go to
    ``anyio.run`` (tests run commands under trio's ``MockClock`` this way).
    """

    client_factory: Callable[[ClientSettings], MediaXClient] = default_client
    poll_policy: PollPolicy | None = None
    store_factory: Callable[[str, str, float | None], PendingStore] = open_store
    """``(url, namespace)`` to the store of ``--store`` (tests pass their own)."""
    stdout: TextIO | None = None
    stderr: TextIO | None = None
    terminal: bool | None = None
    error_terminal: bool | None = None
    backend: str = "asyncio"
    backend_options: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def out(self) -> TextIO:
        """Where results go."""
        return self.stdout if self.stdout is not None else sys.stdout

    @property
    def err(self) -> TextIO:
        """Where errors and notes go."""
        return self.stderr if self.stderr is not None else sys.stderr

    @property
    def is_terminal(self) -> bool:
        """Whether results go to a terminal (live progress, colours)."""
        if self.terminal is not None:
            return self.terminal
        isatty = getattr(self.out, "isatty", None)
        return bool(isatty and isatty())

    @property
    def error_is_terminal(self) -> bool:
        """Whether errors and notes go to a terminal."""
        if self.error_terminal is not None:
            return self.error_terminal
        isatty = getattr(self.err, "isatty", None)
        return bool(isatty and isatty())
