"""Reads `git diff` output (unified, no colour, no external diff): the files it changes and each hunk's line ranges."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "r": "\r", "v": "\v"}


@dataclass(frozen=True)
class Hunk:
    header: str
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    changed: list[int] = field(default_factory=list, compare=False)  # new-file lines added, or next to a deletion

    @property
    def new_lines(self) -> tuple[int, int]:
        """The lines of the new file this hunk changes (context lines left out); a deletion touches the line before it."""
        if self.changed:
            return min(self.changed), max(self.changed)
        first = max(self.new_start, 1)
        return first, max(first, self.new_start + self.new_count - 1)


@dataclass
class FileDiff:
    path: str  # the new path, or the old one when the file is deleted
    status: str = "modified"  # modified, added, deleted, renamed, binary
    hunks: list[Hunk] = field(default_factory=list)


def unquote(path: str) -> str:
    """A path as git prints it: C-quoted ("a\\tb", octal bytes) when it has special characters."""
    if not (len(path) >= 2 and path[0] == path[-1] == '"'):
        return path
    out = bytearray()
    body, i = path[1:-1], 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in "01234567" and i + 3 < len(body) + 1 and re.fullmatch(r"[0-7]{3}", body[i + 1:i + 4]):
                out.append(int(body[i + 1:i + 4], 8))
                i += 4
                continue
            out += _ESCAPES.get(nxt, nxt).encode()
            i += 2
            continue
        out += char.encode()
        i += 1
    return out.decode("utf-8", "replace")


def _side(line: str, prefix: str) -> str | None:
    value = unquote(line[4:].rstrip("\n"))
    if value == "/dev/null":
        return None
    return value[len(prefix):] if value.startswith(prefix) else value


def _header_path(rest: str) -> str:
    """The path of a `diff --git a/P b/P` line when both sides are the same path (binary files have no ---/+++ lines)."""
    if rest.startswith('"'):
        end = rest.find('" ', 1)
        first = unquote(rest[: end + 1]) if end > 0 else ""
        return first[2:] if first.startswith("a/") else ""
    n = (len(rest) - 5) // 2
    if n > 0 and rest[:2] == "a/" and rest[2 + n:5 + n] == " b/" and rest[2:2 + n] == rest[5 + n:]:
        return rest[2:2 + n]
    return ""


def parse_diff(text: str) -> list[FileDiff]:
    files: list[FileDiff] = []
    current: FileDiff | None = None
    old: str | None = None
    new_no = 0
    for line in text.splitlines():
        if current is not None and current.hunks and line[:1] in (" ", "+", "-"):
            hunk = current.hunks[-1]
            if line[0] == "+":
                hunk.changed.append(new_no)
            elif line[0] == "-":
                hunk.changed.append(max(new_no - 1, 1))
            new_no += line[0] != "-"
            continue
        if line.startswith("diff --git "):
            current, old = FileDiff(path=_header_path(line[len("diff --git "):])), None
            files.append(current)
        elif current is None:
            continue
        elif line.startswith("--- ") and not current.hunks:
            old = _side(line, "a/")
            current.path = old or current.path
        elif line.startswith("+++ ") and not current.hunks:
            new = _side(line, "b/")
            if new is None:
                current.status = "deleted"
            else:
                current.path = new
                current.status = "added" if old is None else ("renamed" if old != new else current.status)
        elif line.startswith("rename to ") and not current.hunks:
            current.path, current.status = unquote(line[len("rename to "):]), "renamed"
        elif line.startswith("Binary files ") and not current.hunks:
            current.status = "binary"
        else:
            match = _HUNK.match(line)
            if match:
                a, b, c, d = match.groups()
                current.hunks.append(Hunk(line[: match.end()], int(a), int(b if b is not None else 1),
                                          int(c), int(d if d is not None else 1)))
                new_no = int(c) + (d == "0")  # an empty new side names the line before it
    return [f for f in files if f.path]
