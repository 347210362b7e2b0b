"""The key convention `{agent}/{project}/{data_type}`; a key with `*` segments is a pattern."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any

from memory.redact import forbidden_character, secret_kind

SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
PATTERN_SEGMENT = re.compile(r"^[A-Za-z0-9*][A-Za-z0-9._*-]{0,127}$")
SEGMENT_FIELDS = ("key_agent", "key_project", "key_type")


class KeyError_(ValueError):
    """A key or pattern that breaks the convention; the message says how, the hint (when set) what to do instead."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


SECRET_HINT = ("Keys are stored and shown in clear: name what the memory is about (e.g. "
               "'dbt-analytics-engineer/shop/aws-credentials-setup'), never the credential itself.")
HOW = "keys are '{agent}/{project}/{data_type}', e.g. 'dbt-analytics-engineer/shop/fct-orders-config' (letters, digits, . _ -)"


@dataclass(frozen=True)
class MemoryKey:
    agent: str
    project: str
    data_type: str

    def __str__(self) -> str:
        return f"{self.agent}/{self.project}/{self.data_type}"

    def metadata(self) -> dict[str, str]:
        return dict(zip(SEGMENT_FIELDS, (self.agent, self.project, self.data_type)))


def _shown(text: str) -> str:
    return repr(text if len(text) <= 120 else text[:120] + "…")


def _segments(text: str) -> list[str]:
    if not isinstance(text, str) or not text.strip():
        raise KeyError_(f"empty key; {HOW}")
    bad = forbidden_character(text, multiline=False)
    if bad is not None:
        raise KeyError_(f"the key contains {bad[1]} at position {bad[0]}; {HOW}",
                        f"Remove the {bad[1].split(' ', 1)[0]} character from the key and call again.")
    parts = text.strip().split("/")
    if len(parts) != 3:
        raise KeyError_(f"{_shown(text)} has {len(parts)} segment(s), not 3; {HOW}")
    return parts


def parse_key(text: str) -> MemoryKey:
    parts = _segments(text)
    for n, part in enumerate(parts, 1):
        if not SEGMENT.fullmatch(part):
            raise KeyError_(f"segment {_shown(part)} of {_shown(text)} is not allowed; {HOW}")
        kind = secret_kind(part)
        if kind is not None:  # the segment is not echoed: it may be a live credential
            raise KeyError_(f"segment {n} of the key looks like a credential ({kind}); memory keys must not hold secrets", SECRET_HINT)
    return MemoryKey(*parts)


@dataclass(frozen=True)
class KeyPattern:
    """An exact key or a pattern: `*` as a whole segment matches any value; inside a segment, a glob."""

    segments: tuple[str, str, str]

    @property
    def is_exact(self) -> bool:
        return not any("*" in s for s in self.segments)

    def where(self) -> dict[str, Any]:
        """Chroma has no glob: exact segments become metadata equality filters; globs are checked afterwards."""
        return {field: seg for field, seg in zip(SEGMENT_FIELDS, self.segments) if "*" not in seg}

    def matches(self, key: str) -> bool:
        parts = key.split("/")
        return len(parts) == 3 and all(fnmatch.fnmatchcase(p, s) for p, s in zip(parts, self.segments))

    def __str__(self) -> str:
        return "/".join(self.segments)


def parse_pattern(text: str) -> KeyPattern:
    parts = _segments(text)
    for part in parts:
        if not PATTERN_SEGMENT.fullmatch(part):
            raise KeyError_(f"segment {_shown(part)} of {_shown(text)} is not allowed; {HOW}; '*' matches a whole segment")
    return KeyPattern((parts[0], parts[1], parts[2]))
