"""Check request bodies the way the service does, naming the offending field.

Pure functions: each takes the action's request object (``createJobRequest``
and so on, as decoded from JSON) and returns what the state machine needs, or
raises ``ServiceError`` (HTTP 400). Field paths in messages are relative to the
action's request object, e.g. ``outputs[0].smartContentDescriptor.outputPrefix``.
A JSON ``null`` counts as absent; booleans are not integers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final, Literal, overload

import attrs

from .._enums import (
    BgmOutputType,
    HummingOutputType,
    MusicSeparateMethod,
    SingingCloningType,
    SongEmotion,
    SongGenre,
    SongType,
    SwitchOption,
)
from ._wire import CAPABILITIES, HUMMING, IMAGE_BGM, SINGING, invalid, missing

__all__ = [
    "DEFAULT_MODEL",
    "JobPlan",
    "validate_create_job",
    "validate_get_job",
    "validate_list_jobs",
    "validate_list_models",
]

DEFAULT_MODEL: Final = "default"
MAX_SONG_QUANTITY: Final = 100
MAX_OUTPUT_PREFIX: Final = 20  # exclusive
MAX_CUSTOM_ID: Final = 64  # exclusive
MAX_SOURCE_DATA: Final = 512  # inclusive
MAX_TOTAL_EPOCH: Final = 50
MAX_LIMIT: Final = 100
DEFAULT_LIMIT: Final = 10
MODEL_LIST_TYPE: Final = 2
_MODEL_NAME: Final = re.compile(r"[A-Za-z0-9_]{1,63}")


@attrs.frozen
class JobPlan:
    """What a valid CreateJob asks for, beyond its echoed body.

    ``capability`` is the first output's (it picks the job's schedule);
    ``trains`` and ``uses`` are (field path, model name) pairs for the model
    names the state must check: new ones must be free, used ones must exist.
    """

    capability: str
    trains: tuple[tuple[str, str], ...] = ()
    uses: tuple[tuple[str, str], ...] = ()


def _values(enum: Iterable[Any]) -> frozenset[int]:
    return frozenset(int(member) for member in enum)


_BGM_OUTPUT_TYPES: Final = _values(BgmOutputType)
_SONG_TYPES: Final = _values(SongType)
_EMOTIONS: Final = _values(SongEmotion)
_GENRES: Final = _values(SongGenre)
_HUMMING_OUTPUT_TYPES: Final = _values(HummingOutputType)
_SWITCH: Final = _values(SwitchOption)
_SINGING_TYPES: Final = _values(SingingCloningType)
_METHODS: Final = _values(MusicSeparateMethod)
_MODEL_LIST_TYPES: Final = frozenset({MODEL_LIST_TYPE})


def _path(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def _object(value: Any, path: str) -> dict[str, Any]:
    if value is None:
        raise missing(f"{path} is required")
    if not isinstance(value, dict):
        raise invalid(f"{path} must be an object")
    return value


def _array(value: Any, path: str) -> list[Any]:
    if value is None:
        raise missing(f"{path} is required")
    if not isinstance(value, list) or not value:
        raise invalid(f"{path} must be a non-empty array")
    return value


def _int(
    obj: dict[str, Any],
    key: str,
    parent: str,
    *,
    required: bool = False,
    low: int | None = None,
    high: int | None = None,
    choices: frozenset[int] | None = None,
) -> int | None:
    path = _path(parent, key)
    value = obj.get(key)
    if value is None:
        if required:
            raise missing(f"{path} is required")
        return None
    if type(value) is not int:
        raise invalid(f"{path} must be an integer")
    if choices is not None and value not in choices:
        raise invalid(f"{path} must be one of {', '.join(map(str, sorted(choices)))}")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise invalid(f"{path} must be {bounds}")
    return value


@overload
def _str(
    obj: dict[str, Any],
    key: str,
    parent: str,
    *,
    required: Literal[True],
    shorter_than: int | None = None,
) -> str: ...


@overload
def _str(
    obj: dict[str, Any],
    key: str,
    parent: str,
    *,
    required: bool = False,
    shorter_than: int | None = None,
) -> str | None: ...


def _str(
    obj: dict[str, Any],
    key: str,
    parent: str,
    *,
    required: bool = False,
    shorter_than: int | None = None,
) -> str | None:
    path = _path(parent, key)
    value = obj.get(key)
    if value is None or (required and value == ""):
        if required:
            raise missing(f"{path} is required")
        return None
    if not isinstance(value, str):
        raise invalid(f"{path} must be a string")
    if shorter_than is not None and len(value) >= shorter_than:
        raise invalid(f"{path} must be shorter than {shorter_than} characters")
    return value


def validate_create_job(request: Any) -> JobPlan:
    """Check a ``createJobRequest``; return its plan or raise ``ServiceError``."""
    request = _object(request, "createJobRequest")
    _str(request, "customId", "", shorter_than=MAX_CUSTOM_ID)
    callback = _str(request, "callback", "")
    if callback and not callback.startswith(("http://", "https://")):
        raise invalid("callback must be an http:// or https:// URL")
    _int(request, "timeout", "", low=1)
    inputs = _array(request.get("inputs"), "inputs")
    for index, item in enumerate(inputs):
        _check_input(item, f"inputs[{index}]")
    outputs = _array(request.get("outputs"), "outputs")
    capabilities: list[str] = []
    trains: list[tuple[str, str]] = []
    uses: list[tuple[str, str]] = []
    for index, item in enumerate(outputs):
        path = f"outputs[{index}]"
        capability, model = _check_output(item, path, inputs)
        capabilities.append(capability)
        if model is not None:
            is_training, name_path, name = model
            (trains if is_training else uses).append((name_path, name))
    return JobPlan(capabilities[0], tuple(trains), tuple(uses))


def _check_input(item: Any, path: str) -> None:
    item = _object(item, path)
    given = [key for key in ("url", "source", "sourceData") if item.get(key) is not None]
    if len(given) != 1:
        raise invalid(f"{path} needs exactly one of url, source, sourceData")
    if given[0] == "url":
        _str(item, "url", path, required=True)
    elif given[0] == "source":
        source_path = f"{path}.source"
        source = _object(item["source"], source_path)
        _str(source, "contentId", source_path, required=True)
        _str(source, "path", source_path, required=True)
    else:
        if len(_str(item, "sourceData", path, required=True)) > MAX_SOURCE_DATA:
            raise invalid(f"{path}.sourceData must be at most {MAX_SOURCE_DATA} characters")


def _check_output(
    item: Any, path: str, inputs: list[Any]
) -> tuple[str, tuple[bool, str, str] | None]:
    """Check one output; return its capability and its (training?, path, name) model."""
    item = _object(item, path)
    descriptor_path = f"{path}.smartContentDescriptor"
    descriptor = _object(item.get("smartContentDescriptor"), descriptor_path)
    _str(descriptor, "outputPrefix", descriptor_path, shorter_than=MAX_OUTPUT_PREFIX)
    present = [key for key in CAPABILITIES if descriptor.get(key) is not None]
    if len(present) != 1:
        error = missing if not present else invalid
        raise error(f"{descriptor_path} needs exactly one of {', '.join(CAPABILITIES)}")
    capability = present[0]
    params_path = f"{descriptor_path}.{capability}"
    params = _object(descriptor[capability], params_path)

    selectors = _array(item.get("inputSelectors"), f"{path}.inputSelectors")
    for position, selector in enumerate(selectors):
        selector_path = f"{path}.inputSelectors[{position}]"
        if type(selector) is not int:
            raise invalid(f"{selector_path} must be an integer")
        if not 0 <= selector < len(inputs):
            raise invalid(f"{selector_path} is {selector}, but there are {len(inputs)} inputs")
        if capability != SINGING and inputs[selector].get("sourceData") is not None:
            raise invalid(f"inputs[{selector}].sourceData is only accepted by {SINGING}")
    _str(item, "destination", path)

    model: tuple[bool, str, str] | None = None
    if capability == IMAGE_BGM:
        _check_image_bgm(params, params_path)
    elif capability == HUMMING:
        _int(params, "songQuantity", params_path, required=True, low=1, high=MAX_SONG_QUANTITY)
        _int(params, "useSieve", params_path, choices=_SWITCH)
        _int(params, "outputType", params_path, choices=_HUMMING_OUTPUT_TYPES)
    elif capability == SINGING:
        model = _check_singing(params, params_path)
    else:
        _int(params, "method", params_path, required=True, choices=_METHODS)
    is_training = model is not None and model[0]
    _str(item, "contentId", path, required=not is_training)
    return capability, model


def _check_image_bgm(params: dict[str, Any], path: str) -> None:
    _int(params, "songQuantity", path, required=True, low=1, high=MAX_SONG_QUANTITY)
    _int(params, "outputType", path, choices=_BGM_OUTPUT_TYPES)
    song_type = _int(params, "type", path, choices=_SONG_TYPES) or SongType.LARGE_MODEL
    emotion = _int(params, "emotion", path, choices=_EMOTIONS)
    genre = _int(params, "genre", path, choices=_GENRES)
    multitrack = song_type == SongType.MULTITRACK
    if emotion in (SongEmotion.WARM, SongEmotion.ANGRY) and not multitrack:
        raise invalid(f"{path}.emotion {emotion} needs type {int(SongType.MULTITRACK)}")
    if genre is not None and multitrack:
        raise invalid(f"{path}.genre is not supported with type {int(SongType.MULTITRACK)}")


def _check_singing(params: dict[str, Any], path: str) -> tuple[bool, str, str]:
    kind = _int(params, "type", path, required=True, choices=_SINGING_TYPES)
    is_training = kind == SingingCloningType.TRAIN_MODEL
    _int(params, "totalEpoch", path, low=1, high=MAX_TOTAL_EPOCH)
    _int(params, "useSeparate", path, choices=_SWITCH)
    name_path = f"{path}.modelName"
    name = _str(params, "modelName", path, required=is_training) or DEFAULT_MODEL
    if not _MODEL_NAME.fullmatch(name):
        raise invalid(f"{name_path} must be 1 to 63 letters, digits or underscores")
    if is_training and name == DEFAULT_MODEL:
        raise invalid(f"{name_path} {DEFAULT_MODEL!r} is reserved")
    return is_training, name_path, name


def validate_get_job(request: Any) -> str:
    """Check a ``getJobRequest``; return the job id."""
    request = _object(request, "getJobRequest")
    return _str(request, "id", "", required=True)


def validate_list_jobs(request: Any) -> str:
    """Check a ``listJobsRequest``; return the customId."""
    request = _object(request, "listJobsRequest")
    return _str(request, "customId", "", required=True, shorter_than=MAX_CUSTOM_ID)


def validate_list_models(request: Any) -> tuple[int, int]:
    """Check a ``listModelsRequest``; return (offset, limit)."""
    request = _object(request, "listModelsRequest")
    offset = _int(request, "offset", "", low=0)
    limit = _int(request, "limit", "", low=1, high=MAX_LIMIT)
    _int(request, "type", "", required=True, choices=_MODEL_LIST_TYPES)
    return offset or 0, DEFAULT_LIMIT if limit is None else limit
