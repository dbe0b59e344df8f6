"""The wire protocol, pure: request bodies, and answers turned into models or errors.

Nothing here does I/O. An answer is its status, headers and bytes; parsing it
gives a model and the request id, or raises the error the DESIGN names:
``AuthenticationError``, ``NotFoundError``, ``RateLimitError``,
``ServerError``, ``APIError`` or ``ResponseError``, each keeping the status,
code, message, request id and a short redacted excerpt of the body.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
from collections.abc import Mapping
from typing import Any

import attrs

from . import _constants as C
from ._converter import describe_structure_error, structure, unstructure
from ._exceptions import (
    APIError,
    AuthenticationError,
    NotFoundError,
    RateLimitError,
    RequestValidationError,
    ResponseError,
    ServerError,
)
from ._models import CreateJobRequest, Job, JobList, ModelPage
from ._redact import REDACTED, Redactor

__all__ = [
    "ACTION_PATHS",
    "Answer",
    "Credentials",
    "EncodedBody",
    "RequestBody",
    "create_job_payload",
    "echoes_request",
    "encode_body",
    "get_job_payload",
    "list_jobs_payload",
    "list_models_payload",
    "parse_job_answer",
    "parse_jobs_answer",
    "parse_model_page_answer",
    "parse_payload",
    "parse_retry_after",
    "request_body",
]

ACTION_PATHS: Mapping[str, str] = {
    "CreateJob": "job",
    "GetJob": "job",
    "ListJobs": "job",
    "ListModels": "music_model",
}
"""The path (under the base URL) each action is posted to."""

_AUTH_CODE_HINTS = ("auth", "secret", "signature", "unauthorized", "forbidden", "credential")
_NOT_FOUND_HINTS = ("notfound", "not_found", "nosuch")
_RATE_HINTS = ("limitexceeded", "ratelimit", "throttl", "toomany")
_SERVER_HINTS = ("internalerror", "internal_error", "unavailable", "servererror")


@attrs.frozen
class Credentials:
    """A secret id and key. The key never shows in ``repr``."""

    secret_id: str
    secret_key: str = attrs.field(repr=False)

    def __repr__(self) -> str:
        return f"Credentials(secret_id={self.secret_id!r}, secret_key='***')"


@attrs.frozen
class Answer:
    """One HTTP answer: status, headers (lower-case names) and body bytes."""

    status: int
    headers: Mapping[str, str]
    content: bytes


# -- requests -------------------------------------------------------------------
#
# A request body holds the secret key. Error reporters (Sentry, rich, ``pytest -l``,
# ``traceback.TracebackException(capture_locals=True)``) record the repr of every local
# of every frame an error passes through: the sending code's locals hold the body, so
# the body, decoded and encoded, is of types whose repr never shows the key.


class RequestBody(dict[str, Any]):
    """The whole body of a request, as a dict; its ``repr`` shows ``secretKey`` as ``***``."""

    __slots__ = ()

    def __repr__(self) -> str:
        shown = {key: REDACTED if key == "secretKey" else value for key, value in self.items()}
        return f"RequestBody({shown!r})"


class EncodedBody(bytes):
    """A request body as the bytes sent; its ``repr`` and ``str`` give only its size."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<request body: {len(self)} bytes, not shown>"

    __str__ = __repr__


def request_body(action: str, credentials: Credentials, payload: Mapping[str, Any]) -> RequestBody:
    """The whole body of ``action``: common parameters and ``<action>Request``."""
    return RequestBody(
        {
            "action": action,
            "secretId": credentials.secret_id,
            "secretKey": credentials.secret_key,
            _lower_first(action) + "Request": payload,
        }
    )


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
"""One shared encoder: ``json.dumps`` with options builds a new one per call (about 1 us)."""


def encode_body(body: Mapping[str, Any]) -> EncodedBody:
    """Compact UTF-8 JSON, as bytes that do not show themselves in a ``repr``."""
    return EncodedBody(_ENCODER.encode(body).encode())


def create_job_payload(request: CreateJobRequest) -> dict[str, Any]:
    """The ``createJobRequest`` object."""
    payload: dict[str, Any] = unstructure(request)
    return payload


def get_job_payload(job_id: str) -> dict[str, Any]:
    """The ``getJobRequest`` object."""
    if not isinstance(job_id, str) or not job_id:
        raise RequestValidationError("job_id", f"must be a non-empty string, got {job_id!r}")
    return {"id": job_id}


def list_jobs_payload(custom_id: str) -> dict[str, Any]:
    """The ``listJobsRequest`` object."""
    if not isinstance(custom_id, str) or not custom_id:
        raise RequestValidationError("custom_id", f"must be a non-empty string, got {custom_id!r}")
    if len(custom_id) >= 64:
        raise RequestValidationError(
            "custom_id", f"must be shorter than 64 characters, got {len(custom_id)}"
        )
    return {"customId": custom_id}


def list_models_payload(offset: int, limit: int) -> dict[str, Any]:
    """The ``listModelsRequest`` object (type is always 2, singing models)."""
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise RequestValidationError("offset", f"must be an integer >= 0, got {offset!r}")
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise RequestValidationError("limit", f"must be an integer from 1 to 100, got {limit!r}")
    if not 1 <= limit <= C.LIST_MODELS_MAX_LIMIT:
        raise RequestValidationError(
            "limit", f"must be from 1 to {C.LIST_MODELS_MAX_LIMIT}, got {limit}"
        )
    return {"offset": offset, "limit": limit, "type": C.LIST_MODELS_TYPE_SINGING}


def echoes_request(job: Job, request: CreateJobRequest) -> bool:
    """Whether ``job`` is what ``request`` would create: same custom id, inputs and outputs.

    The service may fill in defaults it was not sent (a destination, a
    switch), so every value the request sent must be echoed; extra values in
    the job do not count against it.
    """
    if job.custom_id != request.custom_id:
        return False
    sent = unstructure(request)
    echoed = unstructure(job)
    for output in echoed.get("outputs", []):
        output.pop("smartContentResult", None)
    return all(
        _contains(echoed.get(key), sent[key]) for key in ("inputs", "outputs") if key in sent
    )


def _contains(echoed: Any, sent: Any) -> bool:
    if isinstance(sent, dict):
        return isinstance(echoed, dict) and all(
            key in echoed and _contains(echoed[key], value) for key, value in sent.items()
        )
    if isinstance(sent, list):
        return (
            isinstance(echoed, list)
            and len(echoed) == len(sent)
            and all(_contains(e, s) for e, s in zip(echoed, sent, strict=True))
        )
    return bool(echoed == sent)


# -- answers --------------------------------------------------------------------


def parse_job_answer(
    action: str, answer: Answer, redactor: Redactor, *, job_id: str | None = None
) -> tuple[Job, str | None]:
    """A job from a CreateJob or GetJob answer (``<action>Response.job``).

    With ``job_id`` (GetJob), an answer about any other job is a
    ``ResponseError``: it is never taken for the job asked for.
    """
    payload, request_id = parse_payload(action, answer, redactor)
    job: Job = _structure_field(payload, "job", Job, action, answer, request_id, redactor)
    if job_id is not None and job.id != job_id:
        reason = f"it is about job {_shown(job.id)}, not {_shown(job_id)}"
        raise _shape_error(action, answer, request_id, redactor, redactor(reason))
    return job, request_id


def parse_jobs_answer(answer: Answer, redactor: Redactor) -> tuple[JobList, str | None]:
    """The jobs of a ListJobs answer (``listJobsResponse.jobs``; none is an empty list).

    They come as a ``JobList`` whose ``total`` is ``listJobsResponse.total``
    (at least the jobs listed; their number when the answer has none): a total
    above the jobs listed says the answer is incomplete. A total that is not
    a count is a ``ResponseError``, since completeness cannot be told then.
    """
    payload, request_id = parse_payload("ListJobs", answer, redactor)
    raw = payload.get("jobs")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise _shape_error("ListJobs", answer, request_id, redactor, "jobs is not a list")
    total = payload.get("total")
    if isinstance(total, str) and total.isdigit():
        total = int(total)
    if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
        reason = redactor(f"total is not a count: {_shown(json.dumps(total))}")
        raise _shape_error("ListJobs", answer, request_id, redactor, reason)
    jobs = [_structure_value(item, Job, "ListJobs", answer, request_id, redactor) for item in raw]
    return JobList(jobs, None if total is None else max(total, len(jobs))), request_id


def parse_model_page_answer(answer: Answer, redactor: Redactor) -> tuple[ModelPage, str | None]:
    """A page of models from a ListModels answer."""
    payload, request_id = parse_payload("ListModels", answer, redactor)
    page = _structure_value(payload, ModelPage, "ListModels", answer, request_id, redactor)
    return page, request_id


def parse_payload(
    action: str, answer: Answer, redactor: Redactor
) -> tuple[dict[str, Any], str | None]:
    """The ``<action>Response`` object of a successful answer, and the request id.

    Raises the typed error for an error answer, whatever shape it takes.
    """
    document = _decode_json(answer.content)
    request_id = _request_id(document, answer.headers)
    if answer.status >= 300 or answer.status < 200:
        raise _error_for(action, answer, document, request_id, redactor)
    if not isinstance(document, dict):
        reason = "the body is not JSON" if document is _NOT_JSON else "the body is not an object"
        raise _shape_error(action, answer, request_id, redactor, reason)
    key = _lower_first(action) + "Response"
    payload = document.get(key)
    if isinstance(payload, dict):
        return payload, request_id
    if _error_fields(document) is not None:
        raise _error_for(action, answer, document, request_id, redactor)
    raise _shape_error(action, answer, request_id, redactor, f"the answer has no {key} object")


def parse_retry_after(value: str | None, now: dt.datetime | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    A date is measured from ``now`` (the answer's own ``Date``, so client clock
    skew does not matter); without ``now`` a date gives None.
    """
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if now is None:
            return None
        # A "-0000" zone (RFC 5322: UTC, local zone unknown) parses as naive: read it as UTC.
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        if now.tzinfo is None:
            now = now.replace(tzinfo=dt.timezone.utc)
        seconds = (when - now).total_seconds()
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN or infinite
        return None
    return max(0.0, seconds)


# -- internals ------------------------------------------------------------------

_NOT_JSON = object()


def _server_now(answer: Answer) -> dt.datetime | None:
    value = answer.headers.get("date")
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None


def _shown(value: str, limit: int = 80) -> str:
    """``value`` quoted, shortened to about ``limit`` characters."""
    return repr(value if len(value) <= limit else value[: limit - 1] + "…")


def _lower_first(action: str) -> str:
    return action[:1].lower() + action[1:]


def _decode_json(content: bytes) -> Any:
    """The JSON document of a body, or ``_NOT_JSON``.

    JSON nested deeper than the decoder can recurse is not JSON either: it is
    an answer no service sends, and it must be a ``ResponseError`` like any
    other unreadable body (on CreateJob, an ambiguous one), never a
    ``RecursionError`` that escapes every handler.
    """
    if not content:
        return _NOT_JSON
    try:
        return json.loads(content)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return _NOT_JSON


def _request_id(document: Any, headers: Mapping[str, str]) -> str | None:
    if isinstance(document, dict):
        for holder in (document, document.get("Response"), document.get("error")):
            if isinstance(holder, dict):
                for key in ("requestId", "RequestId", "request_id"):
                    value = holder.get(key)
                    if isinstance(value, str) and value:
                        return value
    for header in ("x-request-id", "x-api-requestid", "x-tc-requestid"):
        value = headers.get(header)
        if value:
            return value
    return None


def _error_fields(document: Any) -> tuple[str | None, str | None] | None:
    """The (code, message) of an error body in any of the shapes seen, or None."""
    if not isinstance(document, dict):
        return None
    candidates = [document.get("error"), document.get("Error")]
    response = document.get("Response")
    if isinstance(response, dict):
        candidates.append(response.get("Error"))
    for holder in candidates:
        if isinstance(holder, dict):
            return _text(holder.get("code", holder.get("Code"))), _text(
                holder.get("message", holder.get("Message"))
            )
        if isinstance(holder, str):
            return None, holder
    code = document.get("code", document.get("Code"))
    message = document.get("message", document.get("Message", document.get("msg")))
    if code in (None, 0, "0", "", "Success", "OK") and message is None:
        return None
    if code in (0, "0") and message is not None:
        return None
    return _text(code), _text(message)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _error_for(
    action: str,
    answer: Answer,
    document: Any,
    request_id: str | None,
    redactor: Redactor,
) -> Exception:
    fields = _error_fields(document)
    code, message = fields if fields is not None else (None, None)
    excerpt = redactor.excerpt(answer.content, C.BODY_EXCERPT_CHARS)
    status = answer.status
    text = redactor(message) if message else _default_message(status, code)
    kwargs: dict[str, Any] = {
        "status_code": status,
        "code": redactor(code) if code else None,
        "request_id": request_id,
        "body_excerpt": excerpt,
        "action": action,
    }
    folded = (code or "").lower().replace(".", "")
    if status in (401, 403) or (status < 400 and any(h in folded for h in _AUTH_CODE_HINTS)):
        return AuthenticationError(text, **kwargs)
    retry_after = parse_retry_after(answer.headers.get("retry-after"), _server_now(answer))
    if status == 429 or (status < 400 and any(h in folded for h in _RATE_HINTS)):
        return RateLimitError(text, retry_after=retry_after, **kwargs)
    if status == 404 or (status < 400 and any(h in folded for h in _NOT_FOUND_HINTS)):
        return NotFoundError(text, **kwargs)
    if status >= 500 or (status < 400 and any(h in folded for h in _SERVER_HINTS)):
        return ServerError(text, retry_after=retry_after, **kwargs)
    if 200 <= status < 300 or fields is not None or status >= 400:
        return APIError(text, **kwargs)
    return ResponseError(
        f"unexpected HTTP status {status}",
        status_code=status,
        request_id=request_id,
        body_excerpt=excerpt,
        action=action,
    )


def _default_message(status: int, code: str | None) -> str:
    if code:
        return f"the service answered with error {code}"
    if status >= 400:
        return f"the service answered HTTP {status}"
    return "the service answered with an error"


def _shape_error(
    action: str, answer: Answer, request_id: str | None, redactor: Redactor, reason: str
) -> ResponseError:
    return ResponseError(
        f"cannot understand the {action} answer: {reason}",
        status_code=answer.status,
        request_id=request_id,
        body_excerpt=redactor.excerpt(answer.content, C.BODY_EXCERPT_CHARS),
        action=action,
    )


def _structure_field(
    payload: Mapping[str, Any],
    key: str,
    cl: type[Any],
    action: str,
    answer: Answer,
    request_id: str | None,
    redactor: Redactor,
) -> Any:
    if key not in payload:
        raise _shape_error(action, answer, request_id, redactor, f"the answer has no {key}")
    return _structure_value(payload[key], cl, action, answer, request_id, redactor)


def _structure_value(
    value: Any,
    cl: type[Any],
    action: str,
    answer: Answer,
    request_id: str | None,
    redactor: Redactor,
) -> Any:
    try:
        return structure(value, cl)
    except Exception as exc:
        reason = redactor(describe_structure_error(exc))
        raise _shape_error(action, answer, request_id, redactor, reason) from None
