"""Output budgets: no result may exceed the configured size. Tokens are estimated as chars / 4."""

from __future__ import annotations

CHARS_PER_TOKEN = 4


def budget_chars(tokens: int) -> int:
    return tokens * CHARS_PER_TOKEN


def cut_text(text: str, limit: int, rest: str = "") -> tuple[str, bool]:
    """Cut text to at most `limit` characters, on a line boundary where one is near; the marker says where the rest
    is when `rest` names it. Returns (text, truncated)."""
    if len(text) <= limit:
        return text, False
    marker = f"\n… [truncated: {rest}]" if rest else "\n… [truncated]"
    keep = max(0, limit - len(marker))
    head = text[:keep]
    newline = head.rfind("\n")
    if newline > keep * 0.8:
        head = head[:newline]
    return head + marker, True
