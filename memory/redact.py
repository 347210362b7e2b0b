"""Secrets never reach the store: passwords, tokens, keys and connection-string credentials are masked."""

from __future__ import annotations

import re

MASK = "[REDACTED]"

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # -----BEGIN ... PRIVATE KEY----- blocks
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL), MASK),
    # scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]+:)(\S+)(@[^\s@]+)"), r"\1" + MASK + r"\3"),
    # Bearer/Basic credentials first, so that "Authorization: Bearer x" masks the token, not the word Bearer
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + MASK),
    # key = value / key: value / "key": "value" (quoted values may hold spaces) for secret-looking names
    (re.compile(
        r"(?i)(\b[\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|client[_-]?secret|auth)[\w.-]*\b"
        r"[\"']?\s*[:=]\s*)(\"[^\"\n]*\"|'[^'\n]*'|(?!\[REDACTED\])[^\s\"',;}]+)"
    ), r"\1" + MASK),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), MASK),  # AWS access key id
    (re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{20,}\b"), MASK),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b"), MASK),  # Slack
    (re.compile(r"\bsk-[A-Za-z0-9_-]{20,}\b"), MASK),  # OpenAI/Anthropic-style secret keys
    (re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\b"), MASK),  # JWT
]


def redact_secrets(text: str) -> tuple[str, int]:
    """Returns the text with secrets masked and how many were masked."""
    count = 0
    for pattern, replacement in _PATTERNS:
        text, n = pattern.subn(replacement, text)
        count += n
    return text, count
