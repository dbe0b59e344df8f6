"""mediax-async: an async client for Tencent Media Lab's MediaX music API.

Submit image-to-music, humming composition, singing cloning (and model
training) and source separation jobs from asyncio or trio, and wait for
thousands of them at once with ``JobWaiter``::

    async with MediaXClient() as client:
        job = await client.submit_separation(url, content_id="repo")
        job = await client.wait(job)
        for f in job.output_files():
            print(f.content_id, f.path)
"""

from __future__ import annotations

from importlib import metadata as _metadata

# Modules whose every listed name is public are taken whole (``__all__ += m.__all__``
# below, which type checkers follow too); from modules that also list names for the
# package's own use, the public ones are imported by name. A test keeps each module's
# ``__all__`` complete, so the package's list is built, never written twice.
from . import (
    _builders,
    _callbacks,
    _capabilities,
    _client,
    _enums,
    _exceptions,
    _files,
    _learning,
    _models,
    _source,
)
from ._builders import *  # noqa: F403 - the module's whole __all__
from ._callbacks import *  # noqa: F403
from ._capabilities import *  # noqa: F403
from ._client import *  # noqa: F403
from ._constants import DEFAULT_BASE_URL, LEGACY_BASE_URL
from ._converter import converter, parse_job
from ._enums import *  # noqa: F403
from ._exceptions import *  # noqa: F403
from ._files import *  # noqa: F403
from ._learning import *  # noqa: F403
from ._models import *  # noqa: F403
from ._policies import Jitter, PollContext, PollPolicy, PollStrategy, RetryPolicy
from ._redact import Redactor
from ._source import *  # noqa: F403
from ._waiter import (
    CompletionStream,
    JobRef,
    JobWaiter,
    MemoryStore,
    PendingStore,
    ResultStream,
    SettledHook,
    Settlement,
    StateHook,
    WaiterStats,
)

try:
    __version__ = _metadata.version("mediax-async")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "DEFAULT_BASE_URL",
    "LEGACY_BASE_URL",
    "CompletionStream",
    "Jitter",
    "JobRef",
    "JobWaiter",
    "MemoryStore",
    "PendingStore",
    "PollContext",
    "PollPolicy",
    "PollStrategy",
    "Redactor",
    "ResultStream",
    "RetryPolicy",
    "SettledHook",
    "Settlement",
    "StateHook",
    "WaiterStats",
    "__version__",
    "converter",
    "parse_job",
]
__all__ += _builders.__all__
__all__ += _callbacks.__all__
__all__ += _capabilities.__all__
__all__ += _client.__all__
__all__ += _enums.__all__
__all__ += _exceptions.__all__
__all__ += _files.__all__
__all__ += _learning.__all__
__all__ += _models.__all__
__all__ += _source.__all__
