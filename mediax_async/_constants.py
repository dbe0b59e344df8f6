"""Every default in one place: hosts, timeouts, retries, polling, limits."""

from __future__ import annotations

__all__ = [
    "BODY_EXCERPT_CHARS",
    "CUSTOM_ID_PREFIX",
    "DEFAULT_BASE_URL",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "DEFAULT_WAITER_CONCURRENCY",
    "DEFAULT_WAITER_LEASE",
    "ENV_BASE_URL",
    "ENV_SECRET_ID",
    "ENV_SECRET_KEY",
    "LEGACY_BASE_URL",
    "LIST_MODELS_MAX_LIMIT",
    "LIST_MODELS_TYPE_SINGING",
    "RETRY_INITIAL_DELAY",
    "RETRY_MAX_DELAY",
    "RETRY_MAX_RETRY_AFTER",
    "RETRY_MULTIPLIER",
]

DEFAULT_BASE_URL = "https://api.mediax.tencent.com"
"""The current host; jobs at ``/job``, models at ``/music_model``."""

LEGACY_BASE_URL = "https://service-mqk0mc83-1257411467.bj.apigw.tencentcs.com/release"
"""The legacy API gateway; jobs at ``/release/job``, models at ``/release/music_model``."""

ENV_SECRET_ID = "MEDIAX_SECRET_ID"
ENV_SECRET_KEY = "MEDIAX_SECRET_KEY"
ENV_BASE_URL = "MEDIAX_BASE_URL"

DEFAULT_TIMEOUT = 30.0
"""Seconds one attempt may take in all (connect, send, wait, read)."""

DEFAULT_CONNECT_TIMEOUT = 10.0
"""Seconds to open a connection."""

DEFAULT_MAX_RETRIES = 3
"""Retries after the first attempt, for connection errors, timeouts, 429 and 5xx."""

DEFAULT_MAX_CONNECTIONS = 100
"""Pooled connections of a client the library creates itself."""

DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
"""The most an answer may hold once decompressed (32 MiB; the largest real one is a few KiB)."""

DEFAULT_WAITER_CONCURRENCY = 16
"""Polls a waiter keeps in flight at once, unless told otherwise."""

DEFAULT_WAITER_LEASE = 120.0
"""Seconds a claimed job (or submission) stays with its worker before anyone may take it."""

RETRY_INITIAL_DELAY = 0.5
RETRY_MAX_DELAY = 30.0
RETRY_MULTIPLIER = 2.0
RETRY_MAX_RETRY_AFTER = 120.0
"""A Retry-After longer than this is not waited out inside one call: the 429 is raised."""

LIST_MODELS_MAX_LIMIT = 100
LIST_MODELS_TYPE_SINGING = 2

BODY_EXCERPT_CHARS = 200
"""How much of an unexpected body an error keeps (after redaction)."""

CUSTOM_ID_PREFIX = "mxa-"
"""Prefix of the custom ids the client gives CreateJob requests that have none."""
