"""Remove secrets from any text before it is stored, printed or posted.

Two sources: the values the configuration marks as secret (tier env, probe headers, `${...TOKEN}` and the like,
URL passwords), and token shapes that are secrets wherever they appear (JWTs, Slack tokens, bearer credentials).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"

# Token shapes that are secrets wherever they appear.
_TOKEN_SHAPES = (
    re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+"),  # JWT: base64url header "{"...
    re.compile(r"\bxox[abeoprs]-[A-Za-z0-9-]{6,}"),  # Slack bot/user/refresh tokens
    re.compile(r"\bxapp-[A-Za-z0-9-]{6,}"),  # Slack app-level (Socket Mode) tokens
    re.compile(r"(?i)(?<=\bbearer\s)[A-Za-z0-9._~+/=-]{6,}"),  # Authorization: Bearer <credential>
)
# scheme://user:password@host: keep the user, mask the password.
_URL_PASSWORD = re.compile(r"(?P<prefix>\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<password>[^@\s/]+)(?=@)")
# Secrets shorter than this are not redacted as plain values: masking "1" or "on" everywhere would mangle output.
_MIN_SECRET_LENGTH = 4


class Redactor:
    """Mask configured secret values and well-known token shapes in text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = sorted({s for s in secrets if len(s) >= _MIN_SECRET_LENGTH}, key=len, reverse=True)
        # Longest first, so a secret that contains another is masked whole.
        self._values = re.compile("|".join(re.escape(v) for v in values)) if values else None

    def __call__(self, text: str) -> str:
        return self.redact(text)

    def redact(self, text: str) -> str:
        """Return `text` with every secret replaced by `***`."""
        if not text:
            return text
        if self._values is not None:
            text = self._values.sub(MASK, text)
        for shape in _TOKEN_SHAPES:
            text = shape.sub(MASK, text)
        return _URL_PASSWORD.sub(lambda m: m.group("prefix") + MASK, text)

    def redact_optional(self, text: str | None) -> str | None:
        return None if text is None else self.redact(text)
