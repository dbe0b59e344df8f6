"""The public surface: ``__all__`` lists exactly the public names, and each is documented."""

from __future__ import annotations

import ast
import inspect
import itertools
import types
from pathlib import Path
from typing import Any

import pytest

import mediax_async

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
