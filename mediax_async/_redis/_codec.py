"""What ``RedisStore`` writes for settlements and news, and reads back. Pure.

Jobs travel in their wire form (read back with the same converter as an
answer). An error that ended a wait travels as its type name, message and
plain attributes, and comes back as the same ``mediax_async`` error type
(``MediaXError`` for any other), so ``isinstance`` checks still hold in
another process.
"""

from __future__ import annotations

import json
from typing import Any

from .. import _exceptions
from .._converter import converter, parse_job
from .._models import Job
from .._waiter import News, Settlement

__all__ = ["decode_error", "decode_news", "decode_settlement", "encode_news", "encode_outcome"]

_PLAIN = (str, int, float, bool, type(None))


def encode_outcome(job: Job | None, error: BaseException | None) -> str:
    """The body of a settlement: its terminal job, or its error."""
    if job is not None:
        return json.dumps({"job": converter.unstructure(job)}, separators=(",", ":"))
    assert error is not None  # a settlement has one or the other
    return json.dumps({"error": encode_error(error)}, separators=(",", ":"))


def encode_error(error: BaseException) -> dict[str, Any]:
    """An error as JSON-able data: type, message and plain attributes."""
    attributes = {k: v for k, v in vars(error).items() if isinstance(v, _PLAIN)}
    message = error.args[0] if error.args and isinstance(error.args[0], str) else str(error)
    return {"type": type(error).__name__, "message": message, "attributes": attributes}


def decode_error(data: Any) -> BaseException:
    """An error back from ``encode_error``'s data."""
    name = str(data.get("type", "")) if isinstance(data, dict) else ""
    found = getattr(_exceptions, name, None)
    cls = found if isinstance(found, type) and issubclass(found, _exceptions.MediaXError) else None
    message = str(data.get("message", "")) if isinstance(data, dict) else ""
    if cls is None:
        return _exceptions.MediaXError(f"{name}: {message}" if name else message)
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    attributes = data.get("attributes") or {}
    if isinstance(attributes, dict):
        error.__dict__.update(attributes)
    error.__dict__.setdefault("message", message)
    return error


def decode_settlement(job_id: str, key: str, body: str) -> Settlement:
    """A settlement from its parts as the store keeps them.

    ``ValueError`` (or the ``ResponseError`` of a job that is not one) for
    anything ``encode_outcome`` did not write.
    """
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("a settlement body is a JSON object")
    if data.get("job") is not None:
        return Settlement(job_id, parse_job(data["job"]), None, key or None)
    if not isinstance(data.get("error"), dict):
        raise ValueError("a settlement body has a job or an error")
    return Settlement(job_id, None, decode_error(data["error"]), key or None)


def encode_news(news: News) -> str:
    """Early news, as the store keeps it until its job is watched."""
    job = converter.unstructure(news.job) if news.job is not None else None
    fields = {"job": job, "trusted": news.trusted, "settles": news.settles}
    return json.dumps(fields, separators=(",", ":"))


def decode_news(job_id: str, text: str) -> News:
    """News back from ``encode_news``."""
    data = json.loads(text)
    job = parse_job(data["job"]) if data.get("job") is not None else None
    return News(job_id, job, bool(data.get("trusted")))
