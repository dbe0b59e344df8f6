"""The cattrs converter between the job tree and the vendor's JSON.

- Names: snake_case in Python, camelCase on the wire, and the vendor's
  misspelt ``musicSeperate`` for ``music_separate``.
- Unset optional fields are left out, so a request body equals the vendor's
  example key for key.
- Timing values are epoch milliseconds as strings (``"0"`` is "not yet"),
  turned into timezone-aware UTC datetimes with exact integer arithmetic.
- Forward compatibility: keys this release does not know are kept in each
  model's ``extra`` and written back unchanged; unknown enum values parse
  (see ``_enums``). Parsing does not apply the construction checks.
"""

from __future__ import annotations

import datetime as dt
import json
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ._capabilities import MusicComposerHummingResult, WireModel
from ._enums import WireEnum
from ._exceptions import ResponseError
from ._models import Job, SmartContentResult, Timing
from ._validation import is_lenient, lenient

__all__ = ["converter", "parse_job", "structure", "unstructure", "wire_name"]

T = TypeVar("T")

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_MILLISECOND = dt.timedelta(milliseconds=1)
_SPECIAL_NAMES = {"music_separate": "musicSeperate"}

converter = cattrs.Converter(
    forbid_extra_keys=False,
    unstruct_collection_overrides={tuple: list},
)
"""The configured converter: ``converter.structure(data, Job)``, ``converter.unstructure(job)``."""


def wire_name(name: str) -> str:
    """The wire (camelCase) name of a Python field name."""
    special = _SPECIAL_NAMES.get(name)
    if special is not None:
        return special
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


# -- timestamps ---------------------------------------------------------------


def _structure_millis(value: Any, _: Any) -> dt.datetime | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"expected epoch milliseconds as a string, got {value!r}")
    millis = int(value)
    if millis == 0:
        return None
    return _EPOCH + millis * _MILLISECOND


def _unstructure_millis(value: dt.datetime | None) -> str:
    if value is None:
        return "0"
    if value.tzinfo is None:
        raise ValueError("timing datetimes must be timezone-aware")
    return str((value - _EPOCH) // _MILLISECOND)


_OPTIONAL_DATETIMES = (dt.datetime | None, typing.Optional[dt.datetime])  # noqa: UP045 - both spellings reach the hook
converter.register_structure_hook_func(lambda t: t in _OPTIONAL_DATETIMES, _structure_millis)
converter.register_unstructure_hook_func(lambda t: t in _OPTIONAL_DATETIMES, _unstructure_millis)


# -- enums ----------------------------------------------------------------------


def _structure_enum(value: Any, enum_type: type[WireEnum]) -> WireEnum:
    if isinstance(value, bool):
        raise TypeError(f"expected an integer {enum_type.__name__}, got {value!r}")
    return enum_type(int(value))


converter.register_structure_hook_func(
    lambda t: isinstance(t, type) and issubclass(t, WireEnum), _structure_enum
)
converter.register_unstructure_hook_func(
    lambda t: isinstance(t, type) and issubclass(t, WireEnum), int
)


# -- the humming result: an object or a list of objects -----------------------


def _structure_humming(
    value: Any, _: Any
) -> MusicComposerHummingResult | tuple[MusicComposerHummingResult, ...]:
    if isinstance(value, list):
        return tuple(converter.structure(item, MusicComposerHummingResult) for item in value)
    return converter.structure(value, MusicComposerHummingResult)


def _unstructure_humming(
    value: MusicComposerHummingResult | tuple[MusicComposerHummingResult, ...],
) -> Any:
    if isinstance(value, tuple):
        return [converter.unstructure(item) for item in value]
    return converter.unstructure(value)


_FIELD_HOOKS: dict[tuple[type[Any], str], dict[str, Any]] = {
    (SmartContentResult, "music_composer_humming"): {
        "struct_hook": _structure_humming,
        "unstruct_hook": _unstructure_humming,
    },
}


# -- attrs classes: camelCase, extra keys, no unset fields -------------------


def _structure_factory(cl: type[WireModel]) -> Callable[[Any, Any], WireModel]:
    overrides: dict[str, Any] = {}
    known: set[str] = set()
    for field in attrs.fields(cl):
        if field.name == "extra":
            overrides["extra"] = override(omit=True)
            continue
        name = wire_name(field.name)
        known.add(name)
        overrides[field.name] = override(rename=name, **_FIELD_HOOKS.get((cl, field.name), {}))
    generated = make_dict_structure_fn(cl, converter, **overrides)
    known_keys = frozenset(known)

    def structure_model(data: Any, _: Any) -> WireModel:
        if not isinstance(data, Mapping):
            raise TypeError(f"expected a JSON object for {cl.__name__}, got {type(data).__name__}")
        if is_lenient():
            model = generated(data, cl)
        else:
            with lenient():
                model = generated(data, cl)
        if not known_keys.issuperset(data):
            extra = {key: value for key, value in data.items() if key not in known_keys}
            # Frozen after construction; extra keys are only known once the known ones are read.
            object.__setattr__(model, "extra", extra)
        return model

    return structure_model


def _unstructure_factory(cl: type[WireModel]) -> Callable[[WireModel], dict[str, Any]]:
    overrides: dict[str, Any] = {}
    for field in attrs.fields(cl):
        if field.name == "extra":
            overrides["extra"] = override(omit=True)
            continue
        # Timing writes "0" for "not yet"; everywhere else an unset field is left out.
        omit_unset = field.default is None and cl is not Timing
        overrides[field.name] = override(
            rename=wire_name(field.name),
            omit_if_default=omit_unset,
            **{
                k: v
                for k, v in _FIELD_HOOKS.get((cl, field.name), {}).items()
                if k == "unstruct_hook"
            },
        )
    generated = make_dict_unstructure_fn(cl, converter, **overrides)

    def unstructure_model(model: WireModel) -> dict[str, Any]:
        data = generated(model)
        if model.extra:
            data.update(model.extra)
        return data

    return unstructure_model


def _is_wire_model(cl: Any) -> bool:
    return isinstance(cl, type) and attrs.has(cl) and issubclass(cl, WireModel)


converter.register_structure_hook_factory(_is_wire_model, _structure_factory)
converter.register_unstructure_hook_factory(_is_wire_model, _unstructure_factory)


# -- entry points ---------------------------------------------------------------


def structure(data: Any, cl: type[T]) -> T:
    """Build a ``cl`` from wire data, as answers are parsed (no construction checks)."""
    with lenient():
        return converter.structure(data, cl)


def unstructure(model: Any) -> Any:
    """The wire form (JSON-ready dicts and lists) of a model."""
    return converter.unstructure(model)


def parse_job(data: bytes | str | Mapping[str, Any]) -> Job:
    """Parse a job from JSON text or bytes, or a mapping: a callback body, a stored job.

    Raises ``ResponseError`` when the data is not a job.
    """
    if isinstance(data, (bytes, bytearray, memoryview, str)):
        try:
            data = json.loads(bytes(data) if not isinstance(data, str) else data)
        except ValueError as exc:
            raise ResponseError(f"not a job: invalid JSON ({exc.__class__.__name__})") from None
    if not isinstance(data, Mapping):
        raise ResponseError(f"not a job: expected a JSON object, got {type(data).__name__}")
    try:
        return structure(data, Job)
    except Exception as exc:
        raise ResponseError(f"not a job: {describe_structure_error(exc)}") from None


def describe_structure_error(exc: BaseException) -> str:
    """A short, one-line description of why wire data did not fit a model."""
    if isinstance(exc, cattrs.ClassValidationError):
        notes = cattrs.transform_error(exc)
        return "; ".join(notes[:3]) if notes else str(exc)
    return f"{type(exc).__name__}: {exc}"
