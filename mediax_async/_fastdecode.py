"""Generated decoders: wire dicts straight into models, the converter's fast path.

For each model class, one Python function is generated (once, from
``attrs.fields`` and the type hints, so a new field needs no change here)
that reads each wire key with ``data.get``, checks or converts its value with
code specialised to the field's type, sets the slots of a new instance
directly and keeps the keys it does not know in ``extra``. Nested models are
generated inline, in the same function.

The decoders only take data in its plain JSON shape (a ``dict``, a ``str``
for a ``str`` field, an ``int`` for an ``int`` or enum field, a ``list`` for
a tuple, ...). Anything else raises, and the caller falls back to the cattrs
hooks, which coerce what they can and name the path of what they cannot: so
a decoder returns exactly what cattrs would, or fails.

Instances are built without ``__init__``: parsing runs no construction
checks (see ``_validation.lenient``), and the models' validators and
``__attrs_post_init__`` only check. attrs converters do run, on the value
and on a default, as ``__init__`` would run them. A class whose fields need
``__init__`` (``init=False``, a ``Factory`` taking ``self``, an
``attrs.Converter``) gets no decoder.
"""

from __future__ import annotations

import enum
import itertools
import linecache
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

import attrs

__all__ = ["Decoder", "DecoderFactory", "Mismatch", "StructureHook"]

Decoder = Callable[[Any], Any]
"""A generated decoder: wire data in, a model out (or an exception)."""

StructureHook = Callable[[Any, Any], Any]
"""A cattrs structure hook: ``hook(value, type)``."""

_LEAVES = (str, int, float, bool)
_NONE_TYPE = type(None)
_UNIONS = (typing.Union, types.UnionType)
_MISSING = object()
_MAX_INLINE_DEPTH = 8
_serial = itertools.count()


class Mismatch(Exception):
    """Data not in the plain JSON shape a decoder takes; the caller falls back to cattrs."""


class DecoderFactory:
    """Generates and caches one decoder per model class.

    ``custom_hook(type)`` gives the structure hook registered for a type (or
    None): such types are structured by that hook, except for types whose
    hook is ``int_enum_hook`` (``hook(value, E)`` must be ``E(value)`` for an
    ``int``), decoded through a table of the enum's members. ``field_hooks[(class, name)]``
    may hold a field's ``"struct_hook"``, called as cattrs would call it.
    ``fallback_hook(type)`` gives the hook for any other type the generator
    does not specialise.
    """

    def __init__(
        self,
        *,
        is_model: Callable[[Any], bool],
        wire_name: Callable[[str], str],
        custom_hook: Callable[[Any], StructureHook | None],
        int_enum_hook: StructureHook,
        fallback_hook: Callable[[Any], StructureHook],
        field_hooks: Mapping[tuple[type[Any], str], Mapping[str, Any]],
    ) -> None:
        self._is_model = is_model
        self._wire_name = wire_name
        self._custom_hook = custom_hook
        self._int_enum_hook = int_enum_hook
        self._fallback_hook = fallback_hook
        self._field_hooks = field_hooks
        self._decoders: dict[Any, Decoder | None] = {}
        self.enabled = True
        """False: ``decoder`` gives None, so the caller's slow path does all the work."""

    def decoder(self, cl: Any) -> Decoder | None:
        """The decoder of model class ``cl``, or None (not a model, one it cannot build, or off)."""
        if not self.enabled:
            return None
        try:
            return self._decoders[cl]
        except KeyError:
            pass
        except TypeError:  # an unhashable type argument
            return None
        if not self._is_model(cl):
            self._decoders[cl] = None
            return None

        def forward(data: Any) -> Any:
            # A class that refers to itself, directly or not, finds its own decoder through this.
            decoder = self._decoders[cl]
            if decoder is None or decoder is forward:  # not buildable, or still being built
                raise Mismatch
            return decoder(data)

        self._decoders[cl] = forward
        try:
            built = _Generator(self, cl).build()
        except BaseException:
            del self._decoders[cl]
            raise
        self._decoders[cl] = built
        return built


class _Generator:
    """The source of one class's decoder, and the objects it refers to.

    Nested models are generated inline (a call per nested object costs as much
    as reading two fields), with names numbered by depth: ``o2`` is the model
    being built two levels down, ``v2`` the value of its current field.
    """

    def __init__(self, factory: DecoderFactory, cl: type[Any]) -> None:
        self.factory = factory
        self.cl = cl
        self.namespace: dict[str, Any] = {
            "_Mismatch": Mismatch,
            "_MISSING": _MISSING,
            "_new": object.__new__,
            "_dict": dict,
            "_list": list,
            "_tuple": tuple,
            "_map": map,
        }
        self.helpers: list[str] = []
        self.inlining: list[type[Any]] = []

    def bind(self, value: Any, prefix: str) -> str:
        """A fresh global name in the generated code for ``value``."""
        name = f"_{prefix}{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def build(self) -> Decoder | None:
        if not _buildable(self.cl):
            return None
        body = [*self.model_lines(self.cl, "data", 1), "return o1"]
        name = f"decode_{self.cl.__name__}"
        source = "\n".join([*self.helpers, f"def {name}(data):", *_indent(body)])
        filename = f"<mediax_async decoder {self.cl.__qualname__} {next(_serial)}>"
        exec(compile(source, filename, "exec"), self.namespace)
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        decoder: Decoder = self.namespace[name]
        return decoder

    def model_lines(self, cl: type[Any], data: str, depth: int) -> list[str]:
        """Lines that build a ``cl`` from the wire dict in ``data`` into ``o{depth}``."""
        attrs.resolve_types(cl)
        instance = f"o{depth}"
        lines = [
            f"if {data}.__class__ is not _dict:",
            "    raise _Mismatch",
            f"{instance} = _new({self.bind(cl, 'cls')})",
        ]
        known: set[str] = set()
        extra: attrs.Attribute[Any] | None = None
        self.inlining.append(cl)
        for field in attrs.fields(cl):
            if field.name == "extra":
                extra = field
                continue
            key = self.factory._wire_name(field.name)
            known.add(key)
            lines += self.field_lines(cl, field, key, data, depth)
        self.inlining.pop()
        if extra is not None:
            value = f"v{depth}"
            names = self.bind(frozenset(known), "known")
            lines += [
                f"if {names}.issuperset({data}):",
                *_indent(self.default_lines(extra, value)),
                "else:",
                f"    {value} = {{k: x for k, x in {data}.items() if k not in {names}}}",
                f"{self.setter(cl, extra)}({instance}, {value})",
            ]
        return lines

    def setter(self, cl: type[Any], field: attrs.Attribute[Any]) -> str:
        """A name for the fastest way to set the field on a new instance: its slot's ``__set__``."""
        slot = getattr(cl, field.name, None)
        if isinstance(slot, types.MemberDescriptorType):
            return self.bind(slot.__set__, "set")
        name = field.name
        return self.bind(lambda obj, value: object.__setattr__(obj, name, value), "set")

    def default_lines(self, field: attrs.Attribute[Any], var: str) -> list[str]:
        default: Any = field.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]  # attrs types Factory as a function
            return [f"{var} = {self.bind(default.factory, 'factory')}()"]
        return [f"{var} = {self.bind(default, 'default')}"]

    def field_lines(
        self, cl: type[Any], field: attrs.Attribute[Any], key: str, data: str, depth: int
    ) -> list[str]:
        """Lines that read one field from ``data`` and set it on ``o{depth}``."""
        v = f"v{depth}"
        hook = self.factory._field_hooks.get((cl, field.name), {}).get("struct_hook")
        inner = _optional_inner(field.type) if self.custom(field.type) is None else None
        if hook is not None:
            value = [f"{v} = {self.bind(hook, 'hook')}({v}, {self.bind(field.type, 'type')})"]
        elif field.default is None and inner is not None:
            # The common case, an optional field left out: one lookup, no sentinel.
            value = self.value_lines(inner, v, depth)
            lines = [f"{v} = {data}.get({key!r})"]
            lines += [f"if {v} is not None:", *_indent(value)] if value else []
            return self.finish(cl, field, lines, depth)
        else:
            value = self.value_lines(field.type, v, depth)
        lines = [f"{v} = {data}.get({key!r}, _MISSING)"]
        if field.default is attrs.NOTHING and value and value[0].startswith(f"if {v}.__class__"):
            lines += value  # The sentinel fails the value's own class check.
        elif field.default is attrs.NOTHING:
            lines += [f"if {v} is _MISSING:", "    raise _Mismatch", *value]
        else:
            lines += [f"if {v} is _MISSING:", *_indent(self.default_lines(field, v))]
            lines += ["else:", *_indent(value)] if value else []
        return self.finish(cl, field, lines, depth)

    def finish(
        self, cl: type[Any], field: attrs.Attribute[Any], lines: list[str], depth: int
    ) -> list[str]:
        """``lines`` (which leave the field's value in ``v{depth}``), then convert and set it."""
        v = f"v{depth}"
        if field.converter is not None:
            lines.append(f"{v} = {self.bind(field.converter, 'convert')}({v})")
        lines.append(f"{self.setter(cl, field)}(o{depth}, {v})")
        return lines

    def custom(self, tp: Any) -> StructureHook | None:
        return self.factory._custom_hook(tp)

    def inlinable(self, tp: Any) -> bool:
        return (
            self.factory._is_model(tp)
            and tp not in self.inlining
            and len(self.inlining) < _MAX_INLINE_DEPTH
            and _buildable(tp)
        )

    def value_lines(self, tp: Any, var: str, depth: int) -> list[str]:
        """Lines that turn ``var`` from wire data into a ``tp`` in place, or raise."""
        custom = self.custom(tp)
        if custom is self.factory._int_enum_hook and isinstance(tp, enum.EnumMeta):
            members: list[Any] = list(tp.__members__.values())
            table = {m.value: m for m in members}
            member = f"e{depth}"
            return [
                f"if {var}.__class__ is not {self.bind(int, 'int')}:",
                "    raise _Mismatch",
                f"{member} = {self.bind(table.get, 'members')}({var})",
                f"{var} = {self.bind(tp, 'enum')}({var}) if {member} is None else {member}",
            ]
        if custom is not None:
            return [f"{var} = {self.bind(custom, 'hook')}({var}, {self.bind(tp, 'type')})"]
        if self.inlinable(tp):
            return [*self.model_lines(tp, var, depth + 1), f"{var} = o{depth + 1}"]
        decoder = self.factory.decoder(tp)
        if decoder is not None:
            return [f"{var} = {self.bind(decoder, 'decode')}({var})"]
        inner = _optional_inner(tp)
        if inner is not None:
            lines = self.value_lines(inner, var, depth)
            return [f"if {var} is not None:", *_indent(lines)] if lines else []
        if tp in _LEAVES:
            return [f"if {var}.__class__ is not {self.bind(tp, 'leaf')}:", "    raise _Mismatch"]
        if tp is Any:
            return []
        item = _homogeneous_tuple_item(tp)
        if item is not None:
            return [
                f"if {var}.__class__ is not _list:",
                "    raise _Mismatch",
                *self.items_lines(item, var, depth),
            ]
        hook = self.factory._fallback_hook(tp)
        return [f"{var} = {self.bind(hook, 'hook')}({var}, {self.bind(tp, 'type')})"]

    def items_lines(self, item: Any, var: str, depth: int) -> list[str]:
        """Lines that turn the list ``var`` into a tuple of ``item``."""
        if item is Any:
            return [f"{var} = _tuple({var})"]
        custom = self.custom(item)
        if item in _LEAVES and custom is None:
            leaf = self.bind(item, "leaf")
            return [
                f"for x{depth} in {var}:",
                f"    if x{depth}.__class__ is not {leaf}:",
                "        raise _Mismatch",
                f"{var} = _tuple({var})",
            ]
        if custom is None and self.inlinable(item):
            return [
                f"l{depth} = []",
                f"for x{depth} in {var}:",
                *_indent(self.model_lines(item, f"x{depth}", depth + 1)),
                f"    l{depth}.append(o{depth + 1})",
                f"{var} = _tuple(l{depth})",
            ]
        name = f"_item{len(self.namespace)}"
        self.namespace[name] = None
        self.helpers += [
            f"def {name}(x):",
            *_indent(self.value_lines(item, "x", 1)),
            "    return x",
        ]
        return [f"{var} = _tuple(_map({name}, {var}))"]


def _buildable(cl: type[Any]) -> bool:
    """Whether instances of ``cl`` can be built without ``__init__``."""
    for field in attrs.fields(cl):
        if not field.init or isinstance(field.converter, attrs.Converter):
            return False
        factory: Any = field.default
        # attrs types Factory as a function, so isinstance needs the Any above.
        # attrs types Factory as a function, so mypy refuses it as isinstance()'s class.
        if isinstance(factory, attrs.Factory) and factory.takes_self:  # type: ignore[arg-type]
            return False
    return True


def _indent(lines: list[str]) -> list[str]:
    return ["    " + line for line in lines]


def _optional_inner(tp: Any) -> Any | None:
    """``X`` for ``X | None``, else None."""
    if typing.get_origin(tp) not in _UNIONS:
        return None
    args = typing.get_args(tp)
    rest = [arg for arg in args if arg is not _NONE_TYPE]
    if len(rest) != 1 or len(args) != 2:
        return None
    return rest[0]


def _homogeneous_tuple_item(tp: Any) -> Any | None:
    """``X`` for ``tuple[X, ...]``, else None."""
    if typing.get_origin(tp) is not tuple:
        return None
    args = typing.get_args(tp)
    if len(args) != 2 or args[1] is not Ellipsis:
        return None
    return args[0]
