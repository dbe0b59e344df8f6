"""A store's state as JSON-able data, and back: watched jobs and submissions. Pure.

The format is versioned; jobs are kept in their wire form so a saved state
reads back with the same converter as an answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._converter import converter, parse_job
from .._enums import State
from ._store import PendingJob, Submission

__all__ = ["SNAPSHOT_VERSION", "dump_state", "load_state"]

SNAPSHOT_VERSION = 1


def dump_state(
    pending: Sequence[PendingJob],
    unresolved: Sequence[Submission],
    created: Sequence[tuple[str, str, str]],
) -> dict[str, Any]:
    """Watched jobs, unresolved submissions and created ones' attributions as JSON-able data."""
    return {
        "version": SNAPSHOT_VERSION,
        "jobs": [
            {
                "id": job.job_id,
                "tag": job.tag,
                "kind": job.kind,
                "state": int(job.state) if job.state is not None else None,
                "polls": job.polls,
                "key": job.key,
                "job": converter.unstructure(job.job) if job.job is not None else None,
            }
            for job in pending
        ],
        "submissions": [
            {"key": s.key, "customId": s.custom_id, "request": dict(s.request)} for s in unresolved
        ],
        "created": [
            {"key": key, "customId": custom_id, "id": job_id} for key, custom_id, job_id in created
        ],
    }


def load_state(
    data: Mapping[str, Any],
) -> tuple[list[PendingJob], list[Submission], list[tuple[str, str, str]]]:
    """What ``dump_state`` gave; ``ValueError`` naming the problem for anything else."""
    if not isinstance(data, Mapping) or data.get("version") != SNAPSHOT_VERSION:
        raise ValueError(f"not a saved waiter state (version {SNAPSHOT_VERSION})")
    try:
        pending = [
            PendingJob(
                _text(item["id"]),
                _optional_text(item.get("tag")),
                _optional_text(item.get("kind")),
                State(item["state"]) if item.get("state") is not None else None,
                int(item.get("polls") or 0),
                _optional_text(item.get("key")),
                parse_job(item["job"]) if item.get("job") is not None else None,
            )
            for item in data.get("jobs", ())
        ]
        unresolved = [
            Submission(_text(item["key"]), _text(item["customId"]), dict(item["request"]))
            for item in data.get("submissions", ())
        ]
        created = [
            (_text(item["key"]), _text(item["customId"]), _text(item["id"]))
            for item in data.get("created", ())
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"a saved waiter state that cannot be read: {exc!r}") from None
    return pending, unresolved, created


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)
