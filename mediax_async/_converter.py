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
- Speed: answers go through decoders generated per model (``_fastdecode``);
  data they do not take (a value to coerce, a malformed answer) goes through
  the cattrs hooks, which coerce it or name the path of the problem.
"""

from __future__ import annotations

import datetime as dt
import json
import typing
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ._capabilities import MusicComposerHummingResult, WireModel
from ._enums import WireEnum
from ._exceptions import ResponseError
from ._fastdecode import DecoderFactory, Mismatch, StructureHook
from ._models import Job, SmartContentResult, Timing
from ._validation import is_lenient, lenient

__all__ = [
    "converter",
    "decoders_off",
    "describe_structure_error",
    "parse_job",
    "structure",
    "unstructure",
    "wire_name",
]

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


# Timing strings repeat from poll to poll of a job ("0" above all), and the arithmetic
# costs more than a lookup; cleared when full rather than kept in LRU order.
_MILLIS_CACHE: dict[str, dt.datetime | None] = {}
_MILLIS_CACHE_SIZE = 1024
_UNCACHED = object()


def _structure_millis(value: Any, _: Any) -> dt.datetime | None:
    if value.__class__ is str:
        if value in _MILLIS_CACHE:
            return _MILLIS_CACHE[value]
    elif isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"expected epoch milliseconds as a string, got {value!r}")
    millis = int(value)
    moment = None if millis == 0 else _EPOCH + millis * _MILLISECOND
    if value.__class__ is str:
        if len(_MILLIS_CACHE) >= _MILLIS_CACHE_SIZE:
            _MILLIS_CACHE.clear()
        _MILLIS_CACHE[value] = moment
    return moment


def _unstructure_millis(value: dt.datetime | None) -> str:
    if value is None:
        return "0"
    if value.tzinfo is None:
        raise ValueError("timing datetimes must be timezone-aware")
    return str((value - _EPOCH) // _MILLISECOND)


_OPTIONAL_DATETIMES = (dt.datetime | None, typing.Optional[dt.datetime])  # noqa: UP045 - both spellings reach the hook


def _is_optional_datetime(t: Any) -> bool:
    return t in _OPTIONAL_DATETIMES


# -- enums ----------------------------------------------------------------------


def _structure_enum(value: Any, enum_type: type[WireEnum]) -> WireEnum:
    if isinstance(value, bool):
        raise TypeError(f"expected an integer {enum_type.__name__}, got {value!r}")
    return enum_type(int(value))


def _is_wire_enum(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, WireEnum)


def _structure_int(value: Any, cl: type[int]) -> int:
    # Registered for int, so bool (an int subclass) dispatches here as well.
    if isinstance(value, bool) and cl is not bool:
        raise TypeError(f"expected an integer, got {value!r}")
    return cl(value)


# The value hooks, by predicate; the generated decoders look a field's type up here too.
_VALUE_HOOKS: tuple[tuple[Callable[[Any], bool], StructureHook, Callable[..., Any]], ...] = (
    (_is_optional_datetime, _structure_millis, _unstructure_millis),
    (_is_wire_enum, _structure_enum, int),
)
for _predicate, _structure_hook, _unstructure_hook in _VALUE_HOOKS:
    converter.register_structure_hook_func(_predicate, _structure_hook)
    converter.register_unstructure_hook_func(_predicate, _unstructure_hook)
# cattrs looks a class up by its MRO before it tries predicates: a wire enum would find
# int's hook (``State(True)`` is SUBMITTED) unless its own is registered by class too.
# A boolean is no integer either (``int(True)`` is 1), for an enum or an int field.
converter.register_structure_hook(WireEnum, _structure_enum)
converter.register_structure_hook(int, _structure_int)


def _value_hook(t: Any) -> StructureHook | None:
    for predicate, structure_hook, _ in _VALUE_HOOKS:
        if predicate(t):
            return structure_hook
    return None


# -- the humming result: an object or a list of objects -----------------------


def _structure_humming(
    value: Any, _: Any
) -> MusicComposerHummingResult | tuple[MusicComposerHummingResult, ...]:
    if isinstance(value, list):
        return tuple(structure(item, MusicComposerHummingResult) for item in value)
    return structure(value, MusicComposerHummingResult)


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

    def structure_slowly(data: Any, _: Any) -> WireModel:
        if not isinstance(data, Mapping):
            raise TypeError(f"expected a JSON object for {cl.__name__}, got {type(data).__name__}")
        if is_lenient():
            model: WireModel = generated(data, cl)
        else:
            with lenient():
                model = generated(data, cl)
        if not known_keys.issuperset(data):
            extra = {key: value for key, value in data.items() if key not in known_keys}
            # Frozen after construction; extra keys are only known once the known ones are read.
            object.__setattr__(model, "extra", extra)
        return model

    def structure_model(data: Any, _: Any) -> WireModel:
        decode = _decoders.decoder(cl)
        if decode is not None:
            try:
                model: WireModel = decode(data)
                return model
            except _NOT_TAKEN:  # the cattrs path coerces it or names the problem
                pass
        return structure_slowly(data, cl)

    _SLOW_HOOKS[cl] = structure_slowly
    return structure_model


_SLOW_HOOKS: dict[type[Any], StructureHook] = {}
"""Each model's cattrs path without its decoder, once the converter has built its hook."""


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


_NOT_TAKEN: tuple[type[Exception], ...] = (
    Mismatch,  # not the plain JSON shape the decoder takes
    TypeError,  # a value hook refused a value's type (a boolean for an enum, ...)
    ValueError,  # ... or its value (a timestamp that is no number)
    ArithmeticError,  # a timestamp too far out for a datetime (OverflowError)
    cattrs.BaseValidationError,  # a nested structure hook (the humming result) refused it
)
"""What a generated decoder raises for data it does not take: the cattrs path then
coerces the data or names the problem. Anything else is a bug, and is not hidden."""

_decoders = DecoderFactory(
    is_model=_is_wire_model,
    wire_name=wire_name,
    custom_hook=_value_hook,
    int_enum_hook=_structure_enum,
    fallback_hook=converter.get_structure_hook,
    field_hooks=_FIELD_HOOKS,
)


converter.register_structure_hook_factory(_is_wire_model, _structure_factory)
converter.register_unstructure_hook_factory(_is_wire_model, _unstructure_factory)


# -- entry points ---------------------------------------------------------------


def structure(data: Any, cl: type[T]) -> T:
    """Build a ``cl`` from wire data, as answers are parsed (no construction checks)."""
    decode = _decoders.decoder(cl)
    if decode is None:
        with lenient():
            return converter.structure(data, cl)
    try:
        model: T = decode(data)
        return model
    except _NOT_TAKEN:  # the cattrs path below coerces it or names the problem
        pass
    # Straight to cattrs, not the decoder a second time (its hook would try it first).
    slow = _SLOW_HOOKS.get(cl)
    if slow is None:
        converter.get_structure_hook(cl)  # builds the model's hooks, its slow one included
        slow = _SLOW_HOOKS[cl]
    with lenient():
        slowly: T = slow(data, cl)
    return slowly


@contextmanager
def decoders_off() -> Iterator[None]:
    """Parse through the cattrs hooks alone while the block runs (tests, benchmarks).

    Process-wide, not per task: for comparing the two paths, not for production.
    """
    was = _decoders.enabled
    _decoders.enabled = False
    try:
        yield
    finally:
        _decoders.enabled = was


def unstructure(model: Any) -> Any:
    """The wire form (JSON-ready dicts and lists) of a model."""
    return converter.unstructure(model)


def parse_job(data: bytes | str | Mapping[str, Any]) -> Job:
    """Parse a job from JSON text or bytes, or a mapping: a callback body, a stored job.

    Raises ``ResponseError`` when the data is not a job.
    """
    if isinstance(data, (bytes, bytearray, memoryview, str)):
        try:
            data = json.loads(_json_text(data))
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            raise ResponseError(f"not a job: invalid JSON ({exc.__class__.__name__})") from None
    if data.__class__ is not dict and not isinstance(data, Mapping):
        raise ResponseError(f"not a job: expected a JSON object, got {type(data).__name__}")
    try:
        return structure(data, Job)
    except Exception as exc:
        raise ResponseError(f"not a job: {describe_structure_error(exc)}") from None


def _json_text(data: bytes | bytearray | memoryview | str) -> bytes | str:
    """What ``json.loads`` is given: the text itself when it is plainly UTF-8, as an object is."""
    if isinstance(data, str):
        return data
    data = bytes(data)
    if data[:1] == b"{" and data[1:2] != b"\0":
        # json.detect_encoding's answer for these first bytes; it costs more than the decoding.
        return data.decode("utf-8", "surrogatepass")
    return data


def describe_structure_error(exc: BaseException) -> str:
    """A short, one-line description of why wire data did not fit a model."""
    if isinstance(exc, cattrs.ClassValidationError):
        notes = cattrs.transform_error(exc)
        return "; ".join(notes[:3]) if notes else str(exc)
    return f"{type(exc).__name__}: {exc}"
