"""The public API type-checks as users write it, under ``mypy --strict``."""

from __future__ import annotations

from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api")

ROOT = Path(__file__).parents[1]
USAGE = Path(__file__).parent / "typing_usage.py"


def test_typing_usage_passes_mypy_strict() -> None:
    """User code (client, builders, waiting, models, errors) has exact types; misuse fails."""
    stdout, stderr, status = api.run(
        [
            "--strict",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--no-error-summary",
            "--hide-error-context",
            str(USAGE),
        ]
    )
    assert (stdout, stderr, status) == ("", "", 0)


def test_mypy_catches_a_wrong_type(tmp_path: Path) -> None:
    """The check is live: a wrong ``assert_type`` in user code is reported."""
    wrong = tmp_path / "wrong_usage.py"
    wrong.write_text(
        "from typing_extensions import assert_type\n"
        "from mediax_async import Job, parse_job\n"
        "assert_type(parse_job(b'{}').id, int)\n",
        encoding="utf-8",
    )
    stdout, _, status = api.run(
        ["--strict", "--config-file", str(ROOT / "pyproject.toml"), str(wrong)]
    )
    assert status == 1
    assert "assert-type" in stdout
