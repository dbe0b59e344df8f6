"""Wire vocabulary shared by the fake's modules: names, error bodies and replies."""

from __future__ import annotations

import enum
import json
import random
import uuid
from typing import Any, Final

import attrs

__all__ = [
    "ACTION_PATHS",
    "CAPABILITIES",
    "DEFAULT_EPOCH_OFFSET_MS",
    "HUMMING",
    "IMAGE_BGM",
    "JSON_HEADERS",
    "SEPARATE",
    "SINGING",
    "Disconnect",
    "Reply",
    "ServiceError",
    "capability_of",
    "dumps",
    "error_reply",
    "invalid",
    "missing",
    "random_uuid",
]

#: Each action and the last path segment it is served at.
ACTION_PATHS: Final = {
    "CreateJob": "job",
    "GetJob": "job",
    "ListJobs": "job",
    "ListModels": "music_model",
}

IMAGE_BGM: Final = "imageBgmGeneration"
HUMMING: Final = "musicComposerHumming"
SINGING: Final = "singingCloning"
SEPARATE: Final = "musicSeperate"  # sic: the vendor's spelling is the wire name
CAPABILITIES: Final = (IMAGE_BGM, HUMMING, SINGING, SEPARATE)

#: Where clock zero lands on the epoch, so timestamps look like real ones (2023-11-14).
DEFAULT_EPOCH_OFFSET_MS: Final = 1_700_000_000_000

JSON_HEADERS: Final = (("content-type", "application/json"),)


class ServiceError(Exception):
    """A request the service refuses: becomes an HTTP error with a JSON error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def invalid(message: str) -> ServiceError:
    """Refuse a parameter with a bad value (400)."""
    return ServiceError(400, "InvalidParameter", message)


def missing(message: str) -> ServiceError:
    """Refuse a request that lacks a required parameter (400)."""
    return ServiceError(400, "MissingParameter", message)


class Disconnect(enum.Enum):
    """How a reply ends the connection instead of being delivered."""

    BEFORE_PROCESSING = "before"
    AFTER_PROCESSING = "after"


@attrs.frozen
class Reply:
    """One HTTP answer of the fake, independent of how it is carried."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = JSON_HEADERS
    disconnect: Disconnect | None = None


def dumps(obj: Any) -> bytes:
    """Encode compact JSON, as the service does."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def error_reply(
    request_id: str, status: int, code: str, message: str, headers: tuple[tuple[str, str], ...] = ()
) -> Reply:
    """Build an HTTP error whose body is ``{"requestId", "error": {"code", "message"}}``."""
    body = dumps({"requestId": request_id, "error": {"code": code, "message": message}})
    return Reply(status, body, JSON_HEADERS + headers)


def random_uuid(rng: random.Random) -> str:
    """Draw a uuid4-shaped string from ``rng``, so a seeded run repeats its ids."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def capability_of(descriptor: dict[str, Any]) -> str:
    """Return the capability key of a validated ``smartContentDescriptor``."""
    return next(key for key in CAPABILITIES if descriptor.get(key) is not None)
