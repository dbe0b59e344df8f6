"""The sending seam: a request goes down, its answer comes back up, and each layer keeps to its job.

Read from the modules' imports (their AST), not from behaviour: the HTTP
backends and the transport move bytes and never build a body or parse an
answer; the client hands no parser to anything; retries and CreateJob
reconciliation live in ``_calls`` and ``_create`` only.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import mediax_async
from mediax_async._create import Creator

PACKAGE = Path(mediax_async.__file__).parent

BYTES_ONLY = ["_transport", "_http_common", "_http_httpx", "_http_aiohttp"]
PROTOCOL_TYPES = {"Answer", "ACTION_PATHS"}
"""All that a layer moving bytes may take from the protocol: the answer's shape, the paths."""


def imported(module: str) -> dict[str, set[str]]:
    """The names ``module`` imports from each of the package's modules (``from .x import y``)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text("utf-8"))
    found: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            found.setdefault(node.module, set()).update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("module", BYTES_ONLY)
def test_the_transport_and_backends_neither_build_bodies_nor_parse_answers(module: str) -> None:
    """Below ``_calls`` only bytes and ``Answer`` travel: no body building, no parsing, no retry."""
    names = imported(module)
    assert names.get("_protocol", set()) <= PROTOCOL_TYPES
    assert "_policies" not in names  # no retry policy below the layer that retries
    assert "_models" not in names


def test_the_client_hands_no_parser_or_sender_down() -> None:
    """The client calls actions on the layer below: it parses nothing, builds no closure."""
    names = imported("_client")
    assert not {name for name in names.get("_protocol", set()) if name.startswith("parse_")}
    assert "_create" not in names
    assert names.get("_transport", set()) <= {"Transport", "classify_failure", "logger"}


def test_a_creator_sends_through_one_object_not_closures() -> None:
    """``Creator`` takes the layer it sends through, not send/list/backoff callables."""
    parameters = inspect.signature(Creator).parameters
    assert "attempts" in parameters
    assert not {"send", "list_jobs", "backoff"} & set(parameters)
