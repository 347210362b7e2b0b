"""Output budgets: no result may exceed the configured size. Tokens are estimated as chars / 4."""

from __future__ import annotations

CHARS_PER_TOKEN = 4


def budget_chars(tokens: int) -> int:
    return tokens * CHARS_PER_TOKEN


def cut_text(text: str, limit: int) -> tuple[str, bool]:
    """Cut text to at most `limit` characters, on a line boundary where one is near. Returns (text, truncated)."""
    if len(text) <= limit:
        return text, False
    marker = "\n… [truncated]"
    keep = max(0, limit - len(marker))
    head = text[:keep]
    newline = head.rfind("\n")
    if newline > keep * 0.8:
        head = head[:newline]
    return head + marker, True
