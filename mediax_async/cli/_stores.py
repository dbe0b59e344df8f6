"""``--store URL``: where a batch's state lives when several processes share it."""

from __future__ import annotations

import importlib.util
import re
from urllib.parse import parse_qsl, urlencode, urlsplit

from .._exceptions import ConfigurationError
from .._waiter import PendingStore

__all__ = ["DEFAULT_NAMESPACE", "open_store", "store_label"]

DEFAULT_NAMESPACE = "mediax"
"""The namespace of ``--store`` when ``--namespace`` is not given."""

_REDIS_SCHEMES = ("redis", "rediss", "unix")
_SECRET_KEY = re.compile(r"pass|pwd|secret|token|auth|cred|key", re.IGNORECASE)
"""Query-string keys whose values are hidden (``password=``, ``api_token=``, ...)."""


def open_store(url: str, namespace: str, lease: float | None = None) -> PendingStore:
    """The store at ``url`` (``redis://host:port/db``, ``rediss://``, ``unix://``).

    With ``lease`` (``--lease``), results a dead reader took and never
    acknowledged go to another reader after that long, as its claims do.
    """
    scheme = urlsplit(url).scheme
    if scheme not in _REDIS_SCHEMES:
        raise ConfigurationError(
            f"--store must be a Redis URL (redis://, rediss:// or unix://), got {store_label(url)}"
        )
    if importlib.util.find_spec("coredis") is None:
        raise ConfigurationError("--store needs the redis extra: pip install 'mediax-async[redis]'")
    from ..redis import RedisStore

    if lease is None:
        return RedisStore.from_url(url, namespace=namespace)
    return RedisStore.from_url(url, namespace=namespace, claim_idle=lease)


def store_label(url: str) -> str:
    """``url`` without its secrets, to show: the password, and secret-looking query values."""
    parts = urlsplit(url)
    if parts.password is not None:
        netloc = parts.netloc.rsplit("@", 1)[-1]
        user = f"{parts.username}:***@" if parts.username else ":***@"
        parts = parts._replace(netloc=user + netloc)
    if parts.query:
        query = [
            (key, "***" if _SECRET_KEY.search(key) else value)
            for key, value in parse_qsl(parts.query, keep_blank_values=True)
        ]
        parts = parts._replace(query=urlencode(query, safe="*"))
    return parts.geturl()
