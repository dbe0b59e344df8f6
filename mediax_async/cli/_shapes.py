"""How jobs and models look in ``--json`` output and in tables. Pure.

``--json`` jobs are the service's job object (camelCase wire names, as in
the vendor's documents) with three changes for ``jq``: ``stateName`` beside
the ``state`` number, ``kind`` as the command line names it
(``separation``, ...), and ``timing`` dates as ISO 8601 with a time zone
(``null`` for "not yet") instead of epoch-millisecond strings. A callback
URL has its token replaced by ``***``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .._callbacks import redact_callback_url
from .._capabilities import ImageBgmGeneration, MusicComposerHumming, MusicSeparate, SingingCloning
from .._converter import unstructure
from .._enums import SingingCloningType
from .._models import Job, SingingModel

__all__ = ["iso", "job_files", "job_json", "kind_name", "model_json"]

_TIMING_KEYS = {"createdAt": "created_at", "startedAt": "started_at", "completedAt": "completed_at"}


def kind_name(job: Job) -> str:
    """A job's kind as the command line names it (``separation``, ``singing_training``, ...)."""
    capability = job.capability
    if isinstance(capability, ImageBgmGeneration):
        return "image_to_music"
    if isinstance(capability, MusicComposerHumming):
        return "humming"
    if isinstance(capability, SingingCloning):
        training = capability.type == SingingCloningType.TRAIN_MODEL
        return "singing_training" if training else "singing"
    if isinstance(capability, MusicSeparate):
        return "separation"
    return job.kind or "?"


def iso(value: dt.datetime | None) -> str | None:
    """An ISO 8601 date with its time zone (UTC when the date has none), or None."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")


def job_files(job: Job) -> list[str]:
    """Each output file of a job as ``content_id:path`` (a trained model as ``model:NAME``)."""
    files = [f"{f.content_id or '-'}:{f.path}" for f in job.output_files()]
    if job.trained_model_name:
        files.append(f"model:{job.trained_model_name}")
    return files


def job_json(job: Job) -> dict[str, Any]:
    """A job as ``--json`` shows it (see the module's docstring)."""
    wire = unstructure(job)
    shaped: dict[str, Any] = {}
    for key, value in wire.items():
        shaped[key] = value
        if key == "state":
            shaped["stateName"] = job.state.name
            shaped["kind"] = kind_name(job)
    shaped.setdefault("stateName", job.state.name)
    shaped.setdefault("kind", kind_name(job))
    if isinstance(shaped.get("callback"), str) and shaped["callback"]:
        shaped["callback"] = redact_callback_url(shaped["callback"])
    timing = job.timing
    if timing is not None and isinstance(shaped.get("timing"), dict):
        shaped["timing"] = {
            key: iso(getattr(timing, name)) if key in _TIMING_KEYS else value
            for key, value in shaped["timing"].items()
            for name in (_TIMING_KEYS.get(key, ""),)
        }
    return shaped


def model_json(model: SingingModel) -> dict[str, Any]:
    """A singing model as ``--json`` shows it: its wire fields, ``createdAt`` in ISO 8601."""
    shaped = dict(unstructure(model))
    if "createdAt" in shaped:
        shaped["createdAt"] = iso(model.created_at)
    return shaped
