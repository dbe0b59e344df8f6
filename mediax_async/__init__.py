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

from ._builders import (
    humming_request,
    image_to_music_request,
    separation_request,
    singing_request,
    singing_training_request,
)
from ._callbacks import (
    CALLBACK_POLL_POLICY,
    CallbackReceiver,
    CallbackStats,
    callback_poll_policy,
    new_callback_token,
    redact_callback_url,
)
from ._capabilities import (
    HummingOutputFile,
    ImageBgmGeneration,
    ImageBgmGenerationResult,
    MusicComposerHumming,
    MusicComposerHummingResult,
    MusicSeparate,
    MusicSeparateResult,
    SingingCloning,
    SingingCloningResult,
)
from ._client import MediaXClient
from ._constants import DEFAULT_BASE_URL, LEGACY_BASE_URL
from ._converter import converter, parse_job
from ._enums import (
    BgmOutputType,
    HummingOutputType,
    MusicSeparateMethod,
    MusicSeparateTone,
    SingingCloningType,
    SongEmotion,
    SongGenre,
    SongType,
    State,
    SwitchOption,
)
from ._exceptions import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    JobCanceledError,
    JobError,
    JobFailedError,
    JobMayExistError,
    MediaXError,
    NotFoundError,
    RateLimitError,
    RequestValidationError,
    ResponseError,
    ServerError,
    TransportError,
    WaiterClosedError,
    WaitTimeoutError,
)
from ._files import OutputFile, output_files
from ._learning import LRO_BACKOFF, LearnedSchedule, LearningPollPolicy
from ._models import (
    CreateJobRequest,
    Input,
    Job,
    JobList,
    ModelPage,
    Output,
    SingingModel,
    SmartContentDescriptor,
    SmartContentResult,
    Source,
    Timing,
)
from ._policies import PollContext, PollPolicy, PollStrategy, RetryPolicy
from ._source import Failure, FailureKind, JobSource, JobSubmitter
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
    "CALLBACK_POLL_POLICY",
    "DEFAULT_BASE_URL",
    "LEGACY_BASE_URL",
    "LRO_BACKOFF",
    "APIError",
    "AuthenticationError",
    "BgmOutputType",
    "CallbackReceiver",
    "CallbackStats",
    "CompletionStream",
    "ConfigurationError",
    "CreateJobRequest",
    "Failure",
    "FailureKind",
    "HummingOutputFile",
    "HummingOutputType",
    "ImageBgmGeneration",
    "ImageBgmGenerationResult",
    "Input",
    "Job",
    "JobCanceledError",
    "JobError",
    "JobFailedError",
    "JobList",
    "JobMayExistError",
    "JobRef",
    "JobSource",
    "JobSubmitter",
    "JobWaiter",
    "LearnedSchedule",
    "LearningPollPolicy",
    "MediaXClient",
    "MediaXError",
    "MemoryStore",
    "ModelPage",
    "MusicComposerHumming",
    "MusicComposerHummingResult",
    "MusicSeparate",
    "MusicSeparateMethod",
    "MusicSeparateResult",
    "MusicSeparateTone",
    "NotFoundError",
    "Output",
    "OutputFile",
    "PendingStore",
    "PollContext",
    "PollPolicy",
    "PollStrategy",
    "RateLimitError",
    "RequestValidationError",
    "ResponseError",
    "ResultStream",
    "RetryPolicy",
    "ServerError",
    "SettledHook",
    "Settlement",
    "SingingCloning",
    "SingingCloningResult",
    "SingingCloningType",
    "SingingModel",
    "SmartContentDescriptor",
    "SmartContentResult",
    "SongEmotion",
    "SongGenre",
    "SongType",
    "Source",
    "State",
    "StateHook",
    "SwitchOption",
    "Timing",
    "TransportError",
    "WaitTimeoutError",
    "WaiterClosedError",
    "WaiterStats",
    "__version__",
    "callback_poll_policy",
    "converter",
    "humming_request",
    "image_to_music_request",
    "new_callback_token",
    "output_files",
    "parse_job",
    "redact_callback_url",
    "separation_request",
    "singing_request",
    "singing_training_request",
]
