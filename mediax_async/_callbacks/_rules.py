"""The pure decisions of a callback receiver: the token, the route, the body. No I/O.

Each check returns ``None`` (go on) or a ``Rejection`` that names the reason
and the HTTP status to answer with. Nothing here ever puts a token into a
message, a repr or an exception.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import re
import secrets
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any, Final

from .._converter import parse_job
from .._exceptions import ResponseError
from .._models import Job
from .._redact import REDACTED

__all__ = [
    "DEFAULT_CALLBACK_PATH",
    "DEFAULT_MAX_BODY_SIZE",
    "MIN_TOKEN_LENGTH",
    "Rejection",
    "build_callback_url",
    "check_content_length",
    "check_route",
    "check_token",
    "new_callback_token",
    "normalize_path",
    "parse_callback_body",
    "redact_callback_url",
    "route_path",
    "token_digest",
]

DEFAULT_MAX_BODY_SIZE: Final = 1024 * 1024
"""The largest callback body accepted, in bytes (1 MiB): a job is a few kilobytes."""

DEFAULT_CALLBACK_PATH: Final = "/callbacks"
"""Where a receiver takes callbacks: ``<path>/<token>`` (or ``<path>?token=<token>``)."""

MIN_TOKEN_LENGTH: Final = 16
"""A shorter token could be guessed; ``new_callback_token()`` makes 43 characters."""

MAX_TOKEN_LENGTH: Final = 256

_TOKEN_CHARACTERS: Final = re.compile(r"[A-Za-z0-9._~-]+")
# A token in a callback URL this module built: a path segment after "callbacks", or ?token=.
_PATH_TOKEN: Final = re.compile(r"(/callbacks/)[^/?#]+")
_QUERY_TOKEN: Final = re.compile(r"([?&]token=)[^&#]*")


class Rejection(enum.Enum):
    """Why a callback request was refused; ``status`` is the HTTP answer."""

    NOT_FOUND = "not_found"
    """404: not the receiver's path."""
    BAD_TOKEN = "bad_token"
    """401: no token, or the wrong one."""
    METHOD_NOT_ALLOWED = "method_not_allowed"
    """405: not a POST."""
    TOO_LARGE = "too_large"
    """413: a body (declared or streamed) over the limit."""
    MALFORMED = "malformed"
    """400: not JSON, or a bad Content-Length."""
    NOT_A_JOB = "not_a_job"
    """400: JSON, but not a job."""

    @property
    def status(self) -> int:
        """The HTTP status this rejection is answered with."""
        return _STATUS[self]


_STATUS: Final = {
    Rejection.NOT_FOUND: 404,
    Rejection.BAD_TOKEN: 401,
    Rejection.METHOD_NOT_ALLOWED: 405,
    Rejection.TOO_LARGE: 413,
    Rejection.MALFORMED: 400,
    Rejection.NOT_A_JOB: 400,
}


# -- tokens -------------------------------------------------------------------------


def new_callback_token() -> str:
    """A fresh random token for callback URLs: 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


def check_token(token: str) -> str:
    """``token`` if it is fit to be a callback token; ``ValueError`` (without it) if not."""
    if not isinstance(token, str):
        raise TypeError("a callback token must be a string")
    if not MIN_TOKEN_LENGTH <= len(token) <= MAX_TOKEN_LENGTH:
        raise ValueError(
            f"a callback token must have {MIN_TOKEN_LENGTH} to {MAX_TOKEN_LENGTH} characters "
            f"(got {len(token)}); new_callback_token() makes one"
        )
    if not _TOKEN_CHARACTERS.fullmatch(token):
        raise ValueError("a callback token may hold only letters, digits and . _ ~ -")
    return token


def token_digest(token: str) -> bytes:
    """What a receiver keeps to compare tokens with: equal lengths, so no length leaks."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def _token_matches(given: str | None, expected: bytes) -> bool:
    if given is None:
        # Compare anyway, so a missing token takes as long as a wrong one.
        hmac.compare_digest(token_digest(""), expected)
        return False
    return hmac.compare_digest(token_digest(given), expected)


# -- the route ----------------------------------------------------------------------


def normalize_path(path: str) -> str:
    """A receiver path as compared: ``""`` (the mount root) or ``/a/b`` without a final ``/``."""
    path = path.strip().rstrip("/")
    if path and not path.startswith("/"):
        path = "/" + path
    if "?" in path or "#" in path:
        raise ValueError("a callback path holds no query or fragment")
    return path


def route_path(scope: Mapping[str, Any]) -> str:
    """The request path below where the receiver is mounted (Starlette's rule for root_path)."""
    path = str(scope.get("path", ""))
    root_path = str(scope.get("root_path", "") or "")
    if not root_path or not path.startswith(root_path):
        return path
    if path == root_path:
        return ""
    if path[len(root_path)] == "/":
        return path[len(root_path) :]
    return path


def _query_token(query_string: bytes) -> str | None:
    values = urllib.parse.parse_qs(query_string.decode("latin-1"), keep_blank_values=True).get(
        "token", []
    )
    return values[0] if len(values) == 1 else None


def check_route(
    *, path: str, query_string: bytes, method: str, prefix: str, expected: bytes
) -> Rejection | None:
    """404 for another path, then 401 for a missing or wrong token, then 405 for a non-POST.

    ``path`` is the route path (``route_path``), ``prefix`` the receiver's
    path (``normalize_path``), ``expected`` the ``token_digest`` of its token.
    The token is the one path segment after ``prefix``, or else ``?token=``.
    Authentication comes before the method, so a caller without the token
    learns nothing more than that the path exists.
    """
    if path in (prefix, prefix + "/"):
        given = _query_token(query_string)
    elif path.startswith(prefix + "/") and "/" not in path[len(prefix) + 1 :]:
        given = path[len(prefix) + 1 :]
    else:
        return Rejection.NOT_FOUND
    if not _token_matches(given, expected):
        return Rejection.BAD_TOKEN
    if method != "POST":
        return Rejection.METHOD_NOT_ALLOWED
    return None


# -- the body -----------------------------------------------------------------------


def check_content_length(headers: Iterable[tuple[bytes, bytes]], limit: int) -> Rejection | None:
    """413 when the declared Content-Length is over ``limit``; 400 when it is not a number."""
    declared: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"content-length":
            declared.add(value.strip())
    if not declared:
        return None  # chunked: the streamed bytes are counted instead
    if len(declared) > 1:
        return Rejection.MALFORMED
    (value,) = declared
    if not value.isdigit():
        return Rejection.MALFORMED
    return Rejection.TOO_LARGE if int(value) > limit else None


def parse_callback_body(body: bytes) -> Job | Rejection:
    """The job a callback body carries, or why it carries none.

    The documented body is the Job object itself; ``{"job": {...}}`` is taken
    too. Not JSON (or nested too deep) is ``MALFORMED``; JSON that is not a
    job with an id is ``NOT_A_JOB``.
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return Rejection.MALFORMED
    if isinstance(data, dict) and "id" not in data and isinstance(data.get("job"), dict):
        data = data["job"]
    if not isinstance(data, dict):
        return Rejection.NOT_A_JOB
    try:
        job = parse_job(data)
    except (ResponseError, RecursionError):
        return Rejection.NOT_A_JOB
    if not isinstance(job.id, str) or not job.id:
        return Rejection.NOT_A_JOB
    return job


# -- URLs ---------------------------------------------------------------------------


def build_callback_url(public_url: str, token: str, path: str = DEFAULT_CALLBACK_PATH) -> str:
    """``public_url`` + ``path`` + ``/`` + ``token``: the URL to give jobs as ``callback``.

    ``public_url`` is where the service reaches the receiver (scheme, host,
    port and any prefix a proxy strips), e.g. ``https://hooks.example.com``.
    """
    parts = urllib.parse.urlsplit(public_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        shown = redact_callback_url(public_url)
        raise ValueError(f"the public URL must be http(s)://host[:port][/prefix], got {shown!r}")
    if parts.query or parts.fragment:
        raise ValueError("the public URL must have no query or fragment")
    base = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    return f"{base}{normalize_path(path)}/{check_token(token)}"


def redact_callback_url(url: str) -> str:
    """``url`` with a callback token (a segment after ``/callbacks/``, or ``token=``) hidden."""
    return _QUERY_TOKEN.sub(rf"\1{REDACTED}", _PATH_TOKEN.sub(rf"\1{REDACTED}", url))
