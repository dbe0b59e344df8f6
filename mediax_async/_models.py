"""The job tree: jobs, their inputs and outputs, requests and model pages.

Python names are snake_case; the converter (``_converter``) maps them to the
vendor's camelCase. Models know nothing of the wire and do no I/O. Building
a model checks it (``RequestValidationError`` names the field); parsing an
answer does not, so a newer server's values still parse.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeAlias

import attrs

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
    WireModel,
)
from ._enums import SingingCloningType, State
from ._exceptions import JobCanceledError, JobFailedError
from ._validation import (
    at_most_chars,
    callback_url,
    checked,
    fail,
    int_range,
    is_lenient,
    non_empty_string,
    shorter_than,
)

if TYPE_CHECKING:
    from ._files import OutputFile

__all__ = [
    "Capability",
    "CreateJobRequest",
    "Input",
    "Job",
    "JobList",
    "ModelPage",
    "Output",
    "SingingModel",
    "SmartContentDescriptor",
    "SmartContentResult",
    "Source",
    "Timing",
]

Capability: TypeAlias = ImageBgmGeneration | MusicComposerHumming | SingingCloning | MusicSeparate
"""The parameters of any one capability."""

_CAPABILITY_FIELDS = (
    "image_bgm_generation",
    "music_composer_humming",
    "singing_cloning",
    "music_separate",
)


def _tuple(value: Iterable[Any]) -> tuple[Any, ...]:
    """Accept any iterable for a sequence field; keep it as an immutable tuple."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"expected a sequence, got {type(value).__name__}")
    return tuple(value)


@attrs.frozen(kw_only=True)
class Source(WireModel):
    """A file in a storage repository: repository id (``content_id``) and path."""

    content_id: str = attrs.field(validator=checked(non_empty_string))
    path: str = attrs.field(validator=checked(non_empty_string))


@attrs.frozen(kw_only=True)
class Input(WireModel):
    """One input: exactly one of ``url``, ``source`` or ``source_data`` (text, singing only)."""

    url: str | None = attrs.field(default=None, validator=checked(non_empty_string))
    source: Source | None = None
    source_data: str | None = attrs.field(default=None, validator=checked(at_most_chars(512)))

    def __attrs_post_init__(self) -> None:
        if is_lenient():
            return
        given = [
            name for name in ("url", "source", "source_data") if getattr(self, name) is not None
        ]
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            raise fail("input", f"needs exactly one of url, source, source_data (got {found})")

    @classmethod
    def from_value(cls, value: str | Source | Input) -> Input:
        """An input from a URL string, a ``Source`` or an ``Input`` (returned as is)."""
        if isinstance(value, Input):
            return value
        if isinstance(value, Source):
            return cls(source=value)
        return cls(url=value)


@attrs.frozen(kw_only=True)
class SmartContentDescriptor(WireModel):
    """What to make of the inputs: an optional file-name prefix and exactly one capability."""

    output_prefix: str | None = attrs.field(default=None, validator=checked(shorter_than(20)))
    image_bgm_generation: ImageBgmGeneration | None = None
    music_composer_humming: MusicComposerHumming | None = None
    singing_cloning: SingingCloning | None = None
    music_separate: MusicSeparate | None = None

    def __attrs_post_init__(self) -> None:
        if is_lenient():
            return
        given = [name for name in _CAPABILITY_FIELDS if getattr(self, name) is not None]
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            raise fail(
                "smart_content_descriptor",
                f"needs exactly one capability of {', '.join(_CAPABILITY_FIELDS)} (got {found})",
            )

    @classmethod
    def of(
        cls, capability: Capability, *, output_prefix: str | None = None
    ) -> SmartContentDescriptor:
        """A descriptor holding ``capability``."""
        if isinstance(capability, ImageBgmGeneration):
            return cls(output_prefix=output_prefix, image_bgm_generation=capability)
        if isinstance(capability, MusicComposerHumming):
            return cls(output_prefix=output_prefix, music_composer_humming=capability)
        if isinstance(capability, SingingCloning):
            return cls(output_prefix=output_prefix, singing_cloning=capability)
        if isinstance(capability, MusicSeparate):
            return cls(output_prefix=output_prefix, music_separate=capability)
        raise TypeError(f"not a capability: {capability!r}")

    @property
    def capability(self) -> Capability | None:
        """The capability's parameters (None when the service sent one this release lacks)."""
        for name in _CAPABILITY_FIELDS:
            value: Capability | None = getattr(self, name)
            if value is not None:
                return value
        return None


@attrs.frozen(kw_only=True)
class SmartContentResult(WireModel):
    """The files a finished output produced, under the capability's key."""

    image_bgm_generation: tuple[ImageBgmGenerationResult, ...] | None = None
    # The vendor's table says an array, its examples show one object: both parse,
    # and each is written back in the shape it came in.
    music_composer_humming: (
        MusicComposerHummingResult | tuple[MusicComposerHummingResult, ...] | None
    ) = None
    singing_cloning: SingingCloningResult | None = None
    music_separate: tuple[MusicSeparateResult, ...] | None = None

    @property
    def humming_files(self) -> tuple[HummingOutputFile, ...]:
        """Every humming output file, whichever shape the service sent."""
        value = self.music_composer_humming
        if value is None:
            return ()
        results = value if isinstance(value, tuple) else (value,)
        return tuple(f for result in results for f in result.output_files)


@attrs.frozen(kw_only=True)
class Output(WireModel):
    """One output: where files go (``content_id``, ``destination``) and what to make.

    ``input_selectors`` are indexes into the request's inputs. In a finished
    job, ``smart_content_result`` lists the files made.
    """

    content_id: str | None = attrs.field(default=None, validator=checked(non_empty_string))
    destination: str | None = None
    input_selectors: tuple[int, ...] = attrs.field(default=(0,), converter=_tuple)
    smart_content_descriptor: SmartContentDescriptor
    smart_content_result: SmartContentResult | None = None

    @property
    def capability(self) -> Capability | None:
        """Shorthand for ``smart_content_descriptor.capability``."""
        return self.smart_content_descriptor.capability


@attrs.frozen(kw_only=True)
class Timing(WireModel):
    """When a job was created, started and completed (UTC; None when not yet)."""

    created_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None

    @property
    def queued(self) -> dt.timedelta | None:
        """Time from creation to start, once started."""
        if self.created_at is None or self.started_at is None:
            return None
        return self.started_at - self.created_at

    @property
    def processing(self) -> dt.timedelta | None:
        """Time from start to completion, once completed."""
        if self.started_at is None or self.completed_at is None:
            return None
        return self.completed_at - self.started_at


@attrs.frozen(kw_only=True)
class CreateJobRequest(WireModel):
    """Everything CreateJob sends: inputs, outputs, and optional callback, custom id and timeout.

    Checked as a whole when built: every input selector points at an input,
    ``source_data`` inputs feed only singing cloning, and every output but a
    singing-model training has a ``content_id``.
    """

    custom_id: str | None = attrs.field(default=None, validator=checked(shorter_than(64)))
    callback: str | None = attrs.field(default=None, validator=checked(callback_url))
    inputs: tuple[Input, ...] = attrs.field(converter=_tuple)
    outputs: tuple[Output, ...] = attrs.field(converter=_tuple)
    timeout: int | None = attrs.field(default=None, validator=checked(int_range(1, 2**31 - 1)))

    def __attrs_post_init__(self) -> None:
        if is_lenient():
            return
        if not self.inputs:
            raise fail("inputs", "needs at least one input")
        if not self.outputs:
            raise fail("outputs", "needs at least one output")
        for index, output in enumerate(self.outputs):
            _check_output(index, output, self.inputs)

    def with_custom_id(self, custom_id: str) -> CreateJobRequest:
        """A copy of this request under ``custom_id``."""
        return attrs.evolve(self, custom_id=custom_id)


def _check_output(index: int, output: Output, inputs: tuple[Input, ...]) -> None:
    where = f"outputs[{index}]"
    if not output.input_selectors:
        raise fail(f"{where}.input_selectors", "needs at least one input index")
    for selector in output.input_selectors:
        if isinstance(selector, bool) or not isinstance(selector, int):
            raise fail(f"{where}.input_selectors", f"must hold integers, got {selector!r}")
        if not 0 <= selector < len(inputs):
            raise fail(
                f"{where}.input_selectors",
                f"index {selector} is out of range for {len(inputs)} input(s)",
            )
    capability = output.capability
    singing = isinstance(capability, SingingCloning)
    for selector in output.input_selectors:
        if inputs[selector].source_data is not None and not singing:
            raise fail(f"inputs[{selector}].source_data", "is only for singing cloning")
    training = (
        isinstance(capability, SingingCloning) and capability.type == SingingCloningType.TRAIN_MODEL
    )
    if output.content_id is None and not training:
        raise fail(f"{where}.content_id", "is required (the repository to write to)")


@attrs.frozen(kw_only=True)
class Job(WireModel):
    """A job as the service reports it: its state, what it was asked, and when.

    Once ``state`` is COMPLETED, each output carries ``smart_content_result``;
    ``output_files()`` lists the files with their repository and path.
    """

    id: str
    state: State
    custom_id: str | None = None
    callback: str | None = None
    inputs: tuple[Input, ...] = attrs.field(default=(), converter=_tuple)
    outputs: tuple[Output, ...] = attrs.field(default=(), converter=_tuple)
    timing: Timing | None = None
    timeout: int | None = None

    @property
    def is_terminal(self) -> bool:
        """Whether the job has ended (COMPLETED, ERROR or CANCELED)."""
        return self.state.is_terminal

    @property
    def capability(self) -> Capability | None:
        """The first output's capability parameters."""
        return self.outputs[0].capability if self.outputs else None

    @property
    def kind(self) -> str | None:
        """The first output's capability as its wire key (``"musicSeperate"``, ...)."""
        capability = self.capability
        return capability.WIRE_KEY if capability is not None else None

    @property
    def trained_model_name(self) -> str | None:
        """For a finished singing-model training, the new model's name."""
        for output in self.outputs:
            result = output.smart_content_result
            if result is not None and result.singing_cloning is not None:
                name = result.singing_cloning.model_name
                if name:
                    return name
        return None

    def __repr__(self) -> str:
        return (
            f"Job(id={self.id!r}, state={self.state.name}, kind={self.kind!r}, "
            f"custom_id={self.custom_id!r})"
        )

    def raise_for_state(self) -> Job:
        """Return the job, or raise ``JobFailedError`` (ERROR) / ``JobCanceledError`` (CANCELED)."""
        if self.state == State.ERROR:
            raise JobFailedError(self)
        if self.state == State.CANCELED:
            raise JobCanceledError(self)
        return self

    def output_files(self) -> list[OutputFile]:
        """Every file the finished job made, with its repository and path."""
        from ._files import output_files

        return output_files(self)


class JobList(list[Job]):
    """The jobs of a ListJobs answer, with the ``total`` the service says it holds.

    A plain list of jobs otherwise. When ``total`` is more than the jobs
    listed, the answer is incomplete (``complete`` is False): a job missing
    from it may still exist, so nothing may be concluded from its absence.
    """

    __slots__ = ("total",)

    def __init__(self, jobs: Iterable[Job] = (), total: int | None = None) -> None:
        super().__init__(jobs)
        self.total: int = len(self) if total is None else total
        """How many jobs the service says it holds for the custom id."""

    @property
    def complete(self) -> bool:
        """Whether every job the service holds for the custom id is listed."""
        return self.total <= len(self)

    def __repr__(self) -> str:
        return f"JobList({list.__repr__(self)}, total={self.total})"


@attrs.frozen(kw_only=True)
class SingingModel(WireModel):
    """A singing voice model, trained or built in."""

    name: str
    created_at: dt.datetime | None = None


@attrs.frozen(kw_only=True)
class ModelPage(WireModel):
    """One page of ListModels: the models and the total count."""

    models: tuple[SingingModel, ...] = attrs.field(default=(), converter=_tuple)
    total: int = 0
