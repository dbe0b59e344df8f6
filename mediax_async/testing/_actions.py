"""The four actions: turn a checked request object into the encoded response object.

Jobs are encoded once per change (``MediaXState.encode``) and spliced into the
answer, so the hot path (GetJob) does no JSON encoding of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import attrs

from ._state import MediaXState
from ._validation import validate_get_job, validate_list_jobs, validate_list_models
from ._wire import dumps

__all__ = ["ACTIONS", "Action"]


def _create_job(state: MediaXState, owner: str, request: Any, now: float) -> bytes:
    job = state.create_job(owner, request, now)
    return b'{"job":' + state.encode(job) + b"}"


def _get_job(state: MediaXState, owner: str, request: Any, now: float) -> bytes:
    job = state.get_job(owner, validate_get_job(request))
    return b'{"job":' + state.encode(job) + b"}"


def _list_jobs(state: MediaXState, owner: str, request: Any, now: float) -> bytes:
    jobs = state.list_jobs(owner, validate_list_jobs(request))
    encoded = b",".join(state.encode(job) for job in jobs)
    return b'{"jobs":[' + encoded + b'],"total":' + str(len(jobs)).encode() + b"}"


def _list_models(state: MediaXState, owner: str, request: Any, now: float) -> bytes:
    offset, limit = validate_list_models(request)
    total, models = state.list_models(owner, offset, limit)
    return dumps({"total": total, "models": models})


@attrs.frozen
class Action:
    """One action: where its parameters are, and how it is answered."""

    request_key: str
    """The body's key for the action's parameters, e.g. ``createJobRequest``."""
    response_key: bytes
    """The answer's ``"<action>Response":`` key, encoded, with the quotes and colon."""
    handle: Callable[[MediaXState, str, Any, float], bytes]
    """(state, account id, request object, now) -> the encoded response object."""


def _action(camel: str, handle: Callable[[MediaXState, str, Any, float], bytes]) -> Action:
    return Action(f"{camel}Request", f'"{camel}Response":'.encode(), handle)


ACTIONS: Final = {
    "CreateJob": _action("createJob", _create_job),
    "GetJob": _action("getJob", _get_job),
    "ListJobs": _action("listJobs", _list_jobs),
    "ListModels": _action("listModels", _list_models),
}
