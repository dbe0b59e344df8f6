"""The public surface: ``__all__`` lists exactly the public names, and each is documented."""

from __future__ import annotations

import ast
import importlib
import inspect
import itertools
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mediax_async
import mediax_async.stores
import mediax_async.testing

PUBLIC = sorted(name for name in mediax_async.__all__ if not name.startswith("__"))


def public_names(module: types.ModuleType) -> set[str]:
    """Names a user can import from ``module`` that do not start with ``_``.

    Submodules (``testing``, ``cli``, once imported) and the ``__future__``
    feature flag are not API.
    """
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and type(value).__module__ != "__future__"
    }


def test_all_equals_the_public_names() -> None:
    """``from mediax_async import *`` gives exactly the names the package documents, once each."""
    assert len(mediax_async.__all__) == len(set(mediax_async.__all__))
    assert set(mediax_async.__all__) - {"__version__"} == public_names(mediax_async)


def test_every_exported_name_exists() -> None:
    """Every name in ``__all__`` can be imported."""
    for name in mediax_async.__all__:
        assert hasattr(mediax_async, name), name


def test_version_is_a_string() -> None:
    """``__version__`` names the installed version."""
    assert isinstance(mediax_async.__version__, str)
    assert mediax_async.__version__


def attribute_docstrings() -> dict[str, str]:
    """Docstrings written under module-level assignments (``NAME = ...`` then a string)."""
    found: dict[str, str] = {}
    for path in Path(mediax_async.__file__).parent.rglob("*.py"):
        body = ast.parse(path.read_text(encoding="utf-8")).body
        for statement, following in itertools.pairwise(body):
            targets: list[Any] = []
            if isinstance(statement, ast.Assign):
                targets = statement.targets
            elif isinstance(statement, ast.AnnAssign):
                targets = [statement.target]
            if (
                isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                for target in targets:
                    if isinstance(target, ast.Name):
                        found[target.id] = following.value.value
    return found


def own_docstring(value: Any) -> str | None:
    """The docstring a class or function defines itself (not one it inherits)."""
    if inspect.isclass(value):
        doc = vars(value).get("__doc__")
        return doc if isinstance(doc, str) else None
    return getattr(value, "__doc__", None)


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_has_a_docstring(name: str) -> None:
    """Every public name explains itself in ``help()`` or in its source."""
    value = getattr(mediax_async, name)
    if inspect.isclass(value) or inspect.isroutine(value):
        doc = own_docstring(value)
    else:
        doc = attribute_docstrings().get(name)
    assert doc, f"{name} has no docstring"
    assert doc.strip()


@pytest.mark.parametrize("name", [n for n in PUBLIC if inspect.isclass(getattr(mediax_async, n))])
def test_public_methods_and_properties_have_docstrings(name: str) -> None:
    """Each public method and property of an exported class is documented."""
    cls = getattr(mediax_async, name)
    missing = []
    for klass in cls.__mro__:
        if not klass.__module__.startswith("mediax_async"):
            continue
        for attribute, value in vars(klass).items():
            if attribute.startswith("_"):
                continue
            function = value.fget if isinstance(value, property) else value
            if isinstance(function, (classmethod, staticmethod)):
                function = function.__func__
            if inspect.isfunction(function) and not (function.__doc__ or "").strip():
                missing.append(f"{klass.__name__}.{attribute}")
    assert missing == []


# -- each module's __all__ is the one list of its public names --------------------------------

PACKAGE_DIR = Path(mediax_async.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = {
    module_name(path): path
    for path in sorted(PACKAGE_DIR.rglob("*.py"))
    if path.name != "__main__.py"
}


def uses_of_other_modules(path: Path) -> Iterator[tuple[str, str, int]]:
    """``(module, name, line)`` for each name this file takes from another of the package.

    ``from .m import name`` (``name`` not itself a module) and ``alias.name`` for a
    module imported as ``from . import m as alias``.
    """
    me = module_name(path)
    package = me.split(".") if path.name == "__init__.py" else me.split(".")[:-1]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            target = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                if f"{target}.{alias.name}" in SOURCES:  # a module
                    aliases[alias.asname or alias.name] = f"{target}.{alias.name}"
                elif alias.name != "*":  # a star import takes just the module's __all__
                    yield target, alias.name, node.lineno
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
        ):
            yield aliases[node.value.id], node.attr, node.lineno


@pytest.mark.parametrize("module", sorted(SOURCES))
def test_every_module_lists_its_public_names_in_all(module: str) -> None:
    """``__all__`` exists, names only what the module has, and nothing private."""
    imported = importlib.import_module(module)
    names = imported.__all__
    assert len(names) == len(set(names)), f"{module}.__all__ repeats a name"
    assert [name for name in names if not hasattr(imported, name)] == []
    assert [name for name in names if name.startswith("_") and name != "__version__"] == []


def test_modules_take_from_each_other_only_what_they_list_in_all() -> None:
    """A name one module imports from another is in that one's ``__all__``: it cannot drift."""
    unlisted = []
    for path in SOURCES.values():
        for target, name, line in uses_of_other_modules(path):
            listed = importlib.import_module(target).__all__
            if name not in listed and name != "__all__":
                unlisted.append(f"{path.relative_to(PACKAGE_DIR)}:{line}: {target}.{name}")
    assert unlisted == []


def test_the_package_all_is_built_from_the_modules_all() -> None:
    """``mediax_async.__all__`` is made of its modules' lists, not written a second time."""
    tree = ast.parse((PACKAGE_DIR / "__init__.py").read_text(encoding="utf-8"))
    literal: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if isinstance(node.value, ast.List) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in targets
            ):
                literal += [e.value for e in node.value.elts if isinstance(e, ast.Constant)]
    whole = [
        module
        for module in SOURCES
        if set(importlib.import_module(module).__all__) <= set(mediax_async.__all__)
        and module.count(".") == 1
        and importlib.import_module(module).__all__
    ]
    # Names written out are those of modules that also list internal names.
    for module in whole:
        assert not set(importlib.import_module(module).__all__) & set(literal), module
    assert len(literal) < len(mediax_async.__all__) / 4


# -- every type in a public signature is exported ---------------------------------------------

PUBLIC_MODULES = [mediax_async, mediax_async.stores, mediax_async.testing]
EXPORTED_NAMES = {name for module in PUBLIC_MODULES for name in module.__all__}
EXPORTED_OBJECTS = {id(getattr(m, name)) for m in PUBLIC_MODULES for name in m.__all__}
NOT_YET = {"Transport"}  # MediaXClient.transport: exported by the transport work, in progress
BUILT_BY_THE_LIBRARY = {"CompletionStream", "ResultStream"}  # users never call their __init__


def public_functions(value: Any) -> Iterator[tuple[str, Any, type[Any] | None]]:
    """``(label, function, class)`` of a function, or of a class's public methods and properties."""
    if inspect.isfunction(value):
        yield value.__name__, value, None
        return
    if not inspect.isclass(value):
        return
    for klass in value.__mro__:
        if not klass.__module__.startswith("mediax_async"):
            continue
        for attribute, member in vars(klass).items():
            if attribute.startswith("_") and attribute != "__init__":
                continue
            if attribute == "__init__" and value.__name__ in BUILT_BY_THE_LIBRARY:
                continue
            function = member.fget if isinstance(member, property) else member
            if isinstance(function, (classmethod, staticmethod)):
                function = function.__func__
            if inspect.isfunction(function):
                yield f"{value.__name__}.{attribute}", function, klass


def classes_in(hint: Any) -> Iterator[type[Any]]:
    """Every class a resolved type hint refers to."""
    if isinstance(hint, type):
        yield hint
    if isinstance(hint, typing.TypeVar):
        for bound in (hint.__bound__, *hint.__constraints__):
            if bound is not None:
                yield from classes_in(bound)
    origin = typing.get_origin(hint)
    if isinstance(origin, type):
        yield origin
    for argument in typing.get_args(hint):
        for item in argument if isinstance(argument, (list, tuple)) else [argument]:
            yield from classes_in(item)


def defined_names() -> set[str]:
    """Public names defined (not imported) at the top level of any module of the package."""
    found: set[str] = set()
    for path in SOURCES.values():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                found.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                found.update(t.id for t in targets if isinstance(t, ast.Name))
    return {name for name in found if not name.startswith("_")}


def signature_problems(name: str) -> list[str]:
    value = getattr(mediax_async, name)
    ours = defined_names()
    problems = []
    for label, function, klass in public_functions(value):
        owners = [klass, *(klass.__mro__ if klass else ())] if klass else []
        namespace: dict[str, Any] = {}
        for owner in reversed([*owners, function]):
            module = sys.modules.get(getattr(owner, "__module__", "") or "")
            namespace.update(vars(module) if module else {})
        # Aliases (``StateHook``) vanish once resolved: check the names as written
        # (type variables, ``P`` of a ``ParamSpec``, are no names to import).
        unexported = ours - EXPORTED_NAMES - NOT_YET
        for annotation in function.__annotations__.values():
            text = annotation if isinstance(annotation, str) else ""
            for node in ast.walk(ast.parse(text or "None", mode="eval")):
                if (
                    isinstance(node, ast.Name)
                    and node.id in unexported
                    and not isinstance(namespace.get(node.id), (typing.TypeVar, typing.ParamSpec))
                ):
                    problems.append(f"{label}: {node.id}")
        try:
            hints = typing.get_type_hints(function, globalns=namespace, localns=vars(mediax_async))
        except NameError as exc:
            problems.append(f"{label}: {exc}")
            continue
        for hint in hints.values():
            for cls in classes_in(hint):
                if not cls.__module__.startswith("mediax_async") or cls.__name__ in NOT_YET:
                    continue
                if id(cls) not in EXPORTED_OBJECTS:
                    problems.append(f"{label}: {cls.__module__}.{cls.__qualname__}")
    return sorted(set(problems))


@pytest.mark.parametrize("name", PUBLIC)
def test_every_type_in_a_public_signature_is_exported(name: str) -> None:
    """What a public function or method takes or gives can be imported (and so annotated)."""
    assert signature_problems(name) == []


def test_the_waiter_hooks_and_refs_are_exported() -> None:
    """``JobRef``, ``StateHook`` and ``SettledHook`` (in the waiter's signatures) are exported."""
    assert {"JobRef", "StateHook", "SettledHook"} <= set(mediax_async.__all__)
    assert "on_state_change: StateHook | None" in inspect.signature(
        mediax_async.MediaXClient.waiter
    ).__str__().replace("'", "")
