"""file_edit's exact replacement: old_text must occur exactly expected_count times (non-overlapping, as str.count)."""

from __future__ import annotations

from server.errors import ToolFailure


def replace_exact(text: str, old: str, new: str, expected: int, path: str) -> str:
    if not old:
        raise ToolFailure("invalid_input", "old_text is empty.", "Give the exact text to replace (file_read shows it).")
    found = text.count(old)
    if found != expected:
        where = ""
        if found:
            lines = [text.count("\n", 0, i) + 1 for i in _starts(text, old)][:10]
            where = f" (at line {', '.join(map(str, lines))})"
        hint = ("Copy old_text exactly from file_read (whitespace and line ends count), without the line numbers."
                if not found else f"Give more surrounding text so it occurs {expected} time(s), or expected_count={found}.")
        raise ToolFailure("text_not_found" if not found else "text_count_mismatch",
                          f"old_text occurs {found} time(s) in {path}{where}, expected {expected}. Nothing was written.", hint,
                          {"found": found})
    return text.replace(old, new)


def _starts(text: str, old: str) -> list[int]:
    out, at = [], text.find(old)
    while at != -1:
        out.append(at)
        at = text.find(old, at + len(old))
    return out
