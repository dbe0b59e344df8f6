"""Help texts built from the library's own tables, so they cannot drift from it. Pure."""

from __future__ import annotations

import textwrap
from pathlib import Path

from .._batch import BATCH_KIND_SPECS, default_results_path
from .._enums import SwitchOption

__all__ = ["BATCH_DESCRIPTION", "RESULTS_HELP", "batch_kinds_help"]

_EXAMPLE = Path("jobs.jsonl")

BATCH_DESCRIPTION = (
    "Run one job per line of FILE, e.g. "
    '{"kind": "separation", "song": "https://...", "content_id": "repo", '
    '"method": "four_stems"}. Results go to OUT, one line per input line; run '
    "again with the same OUT to resume. --check checks every line and sends nothing."
)

RESULTS_HELP = (
    "results file (default: FILE's name with its extension replaced, "
    f"{_EXAMPLE} -> {default_results_path(_EXAMPLE)})"
)


def batch_kinds_help(width: int = 78) -> str:
    """The kinds a batch line may have, each with its keys, and the enum values they take."""
    lines = ["line kinds and their keys (* required; the first is the job's input):"]
    for kind, spec in BATCH_KIND_SPECS.items():
        keys = [f"{spec.input_key}*", *(f"{k}*" for k in spec.required), *spec.optional]
        lines.extend(
            textwrap.wrap(
                ", ".join(keys),
                width,
                initial_indent=f"  {kind:<17} ",
                subsequent_indent=" " * 20,
                break_on_hyphens=False,
            )
        )
    lines.extend(
        textwrap.wrap(
            'an input is a URL, {"content_id": ..., "path": ...} or {"url": ...}; singing '
            'also takes {"source_data": "text to sing"} (at most 512 characters), and '
            "singing_training a list of recordings",
            width,
            break_on_hyphens=False,
        )
    )
    lines.append("values by name (any case) or number:")
    for kind, spec in BATCH_KIND_SPECS.items():
        for key, enums in spec.enums.items():
            if SwitchOption in enums:
                values = "true or false (on, off)"
            else:
                values = ", ".join(name.lower() for name in enums[0].__members__)
            lines.extend(
                textwrap.wrap(
                    values,
                    width,
                    initial_indent=f"  {kind + '.' + key:<30} ",
                    subsequent_indent=" " * 33,
                )
            )
    return "\n".join(lines)
