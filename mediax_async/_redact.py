"""Keep the secret key out of everything a user or a log can see."""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["REDACTED", "Redactor", "Secret"]

REDACTED = "***"

# A "secretKey" field in any JSON-ish text, whatever its value.
_SECRET_FIELD = re.compile(r'("secret_?key"\s*:\s*)"(?:[^"\\]|\\.)*"', re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
_SCAN_BYTES = 64 * 1024
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


class Secret:
    """A string that does not show itself: ``repr`` and ``str`` give ``'***'``.

    ``reveal()`` gives the value, for the one place that must send it.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value itself."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret is not picklable")


class Redactor:
    """Removes known secrets, and any ``secretKey`` field, from text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Very short "secrets" would blank out ordinary text; they are caught by the field rule.
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        text = _SECRET_FIELD.sub(rf'\1"{REDACTED}"', text)
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def excerpt(self, body: bytes, limit: int) -> str:
        """A short, single-line, redacted excerpt of a body (the title of an HTML page)."""
        if not body:
            return ""
        text = self._drop_cut_secret(self(body[:_SCAN_BYTES].decode("utf-8", errors="replace")))
        if text.lstrip()[:1] == "<" and ">" in text:
            title = _TITLE.search(text)
            text = title.group(1) if title else _TAG.sub(" ", text)
        text = _SPACE.sub(" ", text).strip()
        if len(text) > limit:
            text = text[: limit - 1] + "…"
        return text

    def _drop_cut_secret(self, text: str) -> str:
        """Remove the start of a secret that the scan limit cut in two."""
        for secret in self._secrets:
            for size in range(min(len(secret) - 1, len(text)), 3, -1):
                if text.endswith(secret[:size]):
                    return text[:-size] + REDACTED
        return text

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secret(s))"
