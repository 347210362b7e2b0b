"""What an agent sends is cleaned before it is stored: secrets masked, credential-like keys and unsafe characters refused.

Redaction is a safety net for a secret pasted by mistake (a profile, a log line, a connection string, a sentence),
not a wall against an agent set on hiding one: a secret spelled another way passes. The rules keep dbt prose as
written ("passwords table", "the token_count column", "the key is order_id").
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

MASK = "[REDACTED]"

_PEM = r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:.*?-----END [A-Z0-9 ]*PRIVATE KEY-----|.*)"
# A name that holds a secret when something is assigned to it: DB_PASSWORD, client_secret, x-api-key,
# private_key_passphrase, aws_secret_access_key. It must end there: token_count, password_hash, max_tokens are data.
_SECRET_NAME = (r"(?:password|passwd|pwd|passphrase|secret|token|api[_-]?key|access[_-]?key|secret[_-]?key|private[_-]?key"
                r"|(?:session|signing|encryption|master)[_-]?key)")
# The same words as prose says them: "the prod db password is hunter2", "the api key for snowflake: abc".
_SPOKEN_NAME = r"(?:password|passwd|pwd|passphrase|secret|token|api[ _-]?key|(?:access|secret|private)[ _-]?key)"
_ASSIGNED_VALUE = r"[^\s\"',;&}]+"
_SPOKEN_VALUE = r"[^\s\"'`,;&]*[^\s\"'`,;&.:)\]}]"  # a sentence's full stop is not part of the secret
# Values that name where a secret comes from, or that a writer uses instead of one: not secrets.
_PLACEHOLDER = re.compile(
    r"(?:|\"\"|''|(?i:null|none|nil|true|false|x{3,})|~|\*+|\.{3}|<[^>]*>|\[REDACTED\].*|.*\{\{.*|.*env_var\(.*"
    r"|[\"']?\$\{?[A-Z_][A-Z0-9_]*\}?[\"']?)"
)
# Words that follow "password is" in prose about a password rather than in one.
_PROSE_WORDS = frozenset("""
a an the this that it its to in on at of for from by with via not no now set stored kept held read loaded passed given
provided supplied defined configured required optional needed mandatory missing empty blank unset null none wrong
invalid valid correct incorrect expired rotated managed hidden masked redacted encrypted hashed same different also
still never always only being used available unavailable sensitive there here handled injected fetched pulled
retrieved generated taken changed updated reset ok fine too very what which where how why when because either neither
both all any per each one your my our their his her
""".split())


def _mixed(value: str) -> bool:
    return any(c.isupper() for c in value) and any(c.islower() for c in value) and any(c.isdigit() or c in "/+" for c in value)


@dataclass(frozen=True)
class Rule:
    """One kind of secret: `group` of a match is the secret; `keep` says a match is not one after all."""

    name: str
    pattern: re.Pattern[str]
    group: int = 0
    keep: Callable[[str], bool] | None = None


# Secrets that say what they are by their shape; also refused as key segments.
TOKEN_RULES: tuple[Rule, ...] = (
    Rule("AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    Rule("GitHub token", re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{20,}")),
    Rule("GitLab token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    Rule("Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    Rule("API secret key", re.compile(r"\b(?:sk-[A-Za-z0-9_-]{20,}|[sr]k_(?:live|test)_[A-Za-z0-9]{16,})")),
    Rule("Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    Rule("npm token", re.compile(r"\bnpm_[A-Za-z0-9]{36}")),
    Rule("JWT", re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")),
)

RULES: tuple[Rule, ...] = (
    Rule("private key", re.compile(_PEM, re.DOTALL)),
    Rule("URL password", re.compile(r"(?i)\b[a-z][a-z0-9+.-]{0,30}://[^\s:/@]{1,256}:(\S{1,256})@[^\s@]+"), 1, lambda v: bool(_PLACEHOLDER.fullmatch(v))),
    *TOKEN_RULES,
    Rule("authorization header", re.compile(
        r"(?i)\bauthorization[\"']?[ \t]*[:=][ \t]*[\"']?(?:[a-z]+[ \t]+)?([A-Za-z0-9._~+/=-]{6,})"), 1),
    Rule("bearer token", re.compile(r"(?i)\bbearer[ \t]+((?=[A-Za-z]*[0-9._~+/=-])[A-Za-z0-9._~+/=-]{8,})"), 1),
    Rule("AWS secret access key", re.compile(
        r"(?i)\b(?:aws|secret)[^\n]{0,60}?(?<![A-Za-z0-9/+])([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"), 1, lambda v: not _mixed(v)),
    Rule("assigned secret", re.compile(
        rf"(?i){_SECRET_NAME}(?![\w-])[\"']?[ \t]*[:=][ \t]*(\"[^\"\n]*\"|'[^'\n]*'|{_ASSIGNED_VALUE})"),
        1, lambda v: bool(_PLACEHOLDER.fullmatch(v))),
    Rule("secret in prose", re.compile(
        rf"(?i)\b{_SPOKEN_NAME}(?![\w-])(?:\s+(?:for|of|on)\s+(?:the\s+)?[\w.@:/-]+)?(?:[ \t]+(?:is|was)[ \t]+|[ \t]*[:=][ \t]*)"
        rf"(?:set[ \t]+to[ \t]+|now[ \t]+)?[\"'`]?({_SPOKEN_VALUE})"),
        1, lambda v: bool(_PLACEHOLDER.fullmatch(v)) or v.lower() in _PROSE_WORDS or bool(re.fullmatch(r"[a-z]+(?:ed|ing|ly)", v))),
)


def _apply(rule: Rule, text: str) -> tuple[str, int]:
    count = 0

    def mask(match: re.Match[str]) -> str:
        nonlocal count
        secret = match.group(rule.group)
        if match.string.startswith(MASK, match.start(rule.group)) or (rule.keep is not None and rule.keep(secret)):
            return match.group(0)
        count += 1
        start, end = match.start(rule.group) - match.start(), match.end(rule.group) - match.start()
        return match.group(0)[:start] + MASK + match.group(0)[end:]

    return rule.pattern.sub(mask, text), count


def redact_secrets(text: str) -> tuple[str, int]:
    """Returns the text with secrets masked and how many were masked."""
    total = 0
    for rule in RULES:
        text, count = _apply(rule, text)
        total += count
    return text, total


# -- credential-like key segments -------------------------------------------------------------------------------
def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _wordy(run: str) -> bool:
    """Most letters sit in pronounceable words (FctOrdersConfigV2, snapshot2024), as in a name, not in a random string."""
    words = [w for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])", run)
             if len(w) >= 4 and sum(c in "aeiouyAEIOUY" for c in w) / len(w) >= 0.25]
    return sum(map(len, words)) >= 0.5 * sum(c.isalpha() for c in run)


def random_looking(segment: str) -> bool:
    """A long hex run (a 32+ digit hash or token) or a 16+ character run of letters and digits that reads as random.

    Measured on random strings: base62 runs of 20 chars are caught ~93 % of the time, 32 chars ~98 %; dbt-style names
    (stg_payments_fix, FctOrdersConfigV2, ga4_events_2023_12_31, a UUID) are not."""
    if re.search(r"[0-9a-fA-F]{32,}", segment):
        return True
    for run in re.split(r"[._-]", segment):
        digits = sum(c.isdigit() for c in run)
        if len(run) >= 16 and digits >= 1 and len(run) - digits >= 4 and _entropy(run) >= 3.3 and not _wordy(run):
            return True
    return False


def secret_kind(segment: str) -> str | None:
    """What kind of credential a key segment looks like, or None: keys are stored and shown in clear."""
    for rule in TOKEN_RULES:
        if rule.pattern.search(segment):
            return rule.name
    return "random-looking string" if random_looking(segment) else None


# -- characters -------------------------------------------------------------------------------------------------
# Bidirectional overrides, isolates and marks: they make text display in another order than it is stored
# (Trojan Source, CVE-2021-42574). Zero-width and line separators hide or split a label.
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_LABEL_FORBIDDEN = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}\u200b\u2028\u2029\u2060\ufeff]")
_TEXT_FORBIDDEN = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")
_C0_NAMES = {0x00: "NUL", 0x07: "BEL", 0x08: "BACKSPACE", 0x09: "TAB", 0x0A: "LINE FEED", 0x0D: "CARRIAGE RETURN",
             0x1B: "ESC", 0x7F: "DELETE"}


def describe(char: str) -> str:
    code = ord(char)
    name = _C0_NAMES.get(code) or unicodedata.name(char, "control character")
    return f"U+{code:04X} ({name})"


def forbidden_character(text: str, multiline: bool) -> tuple[int, str] | None:
    """The first control or bidi character (position, description); a text may hold newlines and tabs, a label not."""
    found = (_TEXT_FORBIDDEN if multiline else _LABEL_FORBIDDEN).search(text)
    return None if found is None else (found.start(), describe(found.group()))
