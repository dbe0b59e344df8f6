"""Batches: many jobs from a JSON Lines file, submitted, watched, and recorded.

One input line is one job, e.g.
``{"kind": "separation", "song": "https://...", "content_id": "repo", "method": "four_stems"}``:
``kind`` names the builder, the other keys are its keyword arguments (enum
values by name, any case, or by number), and the input goes under the
builder's first parameter name (``image``, ``humming``, ``song``,
``recordings``) as a URL, ``{"content_id": ..., "path": ...}``, ``{"url": ...}``
or ``{"source_data": ...}``.

The results file is JSON Lines too: a header ``{"batch": TAG, "source": NAME}``,
then one record per input line, each written whole and flushed when its line
finishes. Every job of a batch is created with ``custom_id=TAG``; running the
batch again with the same results file skips finished lines, finds the jobs
of unfinished lines with ``ListJobs(TAG)`` (matching requests with
``echoes_request``) and watches them, and submits only the lines that have
no job yet, so no line is ever submitted twice.
"""

from __future__ import annotations

from ._lines import (
    BATCH_KIND_SPECS,
    BATCH_KINDS,
    BATCH_TAG_PREFIX,
    BatchLine,
    BatchLineError,
    KindSpec,
    parse_batch_line,
    read_batch_file,
)
from ._results import (
    BatchFileError,
    LineResult,
    ResultsFile,
    default_results_path,
    new_batch_tag,
)
from ._runner import BatchObserver, BatchRunner, BatchSummary

__all__ = [
    "BATCH_KINDS",
    "BATCH_KIND_SPECS",
    "BATCH_TAG_PREFIX",
    "BatchFileError",
    "BatchLine",
    "BatchLineError",
    "BatchObserver",
    "BatchRunner",
    "BatchSummary",
    "KindSpec",
    "LineResult",
    "ResultsFile",
    "default_results_path",
    "new_batch_tag",
    "parse_batch_line",
    "read_batch_file",
]
