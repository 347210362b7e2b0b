"""file_search's matching: a literal substring, or a regex run by the `regex` module with a time limit.

An agent's catastrophic regex (`(a+)+$` on a long line) would hold Python's `re` for hours and, since `re` keeps the
GIL, block the event loop even from a thread. `regex` takes a `timeout` per call and releases the GIL while it
matches (`concurrent=True`): the search runs in a worker thread, every line gets what is left of one deadline for the
whole search, and a search that runs out is refused (search_timeout) instead of returning a partial answer.
Files over MAX_FILE_BYTES and binary files are skipped (counted), and lines are cut to LINE_CHARS in the output.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import regex

from server.errors import ToolFailure

MAX_PATTERN_CHARS = 1000
MAX_FILE_BYTES = 2_000_000
MAX_MATCHES = 2000  # found in all; the pages hand them out
LINE_CHARS = 240
SEARCH_SECONDS = 5.0


def matcher(pattern: str, is_regex: bool) -> Callable[[str, float], bool]:
    """line, seconds left -> whether it matches. A bad or huge regex is a typed error before anything is read."""
    if not pattern:
        raise ToolFailure("invalid_input", "pattern is empty.", "Give the text to find.")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ToolFailure("invalid_input", f"pattern is {len(pattern)} characters (at most {MAX_PATTERN_CHARS}).", "Search for a shorter pattern.")
    if not is_regex:
        return lambda line, _left: pattern in line
    try:
        compiled = regex.compile(pattern, regex.VERSION0)
    except (regex.error, OverflowError, RecursionError, ValueError) as exc:
        raise ToolFailure("invalid_regex", f"pattern is not a valid regex: {str(exc)[:200]}",
                          "Fix the regex, or call with regex=false to search for the text as it is.") from None

    def match(line: str, left: float) -> bool:
        return compiled.search(line, timeout=max(left, 0.001), concurrent=True) is not None

    return match


@dataclass
class Found:
    matches: list[str] = field(default_factory=list)  # file:line:text
    files_searched: int = 0
    skipped: list[str] = field(default_factory=list)  # binary or too large
    capped: bool = False


def search(root: Path, files: Iterable[tuple[str, int]], match: Callable[[str, float], bool], seconds: float = SEARCH_SECONDS,
           cap: int = MAX_MATCHES) -> Found:
    """Every matching line of the files, in file order, until `cap` matches; refused when it takes over `seconds`."""
    found = Found()
    deadline = time.monotonic() + seconds
    for rel, size in files:
        if size > MAX_FILE_BYTES:
            found.skipped.append(rel)
            continue
        try:
            data = (root / rel).read_bytes()
            text = data.decode("utf-8")
        except (OSError, UnicodeDecodeError):
            found.skipped.append(rel)
            continue
        if "\x00" in text:
            found.skipped.append(rel)
            continue
        found.files_searched += 1
        for number, line in enumerate(text.splitlines(), 1):
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                hit = match(line, left)
            except TimeoutError:
                raise ToolFailure("search_timeout", f"The search took over {seconds:g} s (at {rel}:{number}) and was stopped.",
                                  "Use a simpler regex (no nested repetition like (a+)+), a literal pattern, or a narrower glob.") from None
            if hit:
                shown = line if len(line) <= LINE_CHARS else line[:LINE_CHARS] + "…"
                found.matches.append(f"{rel}:{number}:{shown}")
                if len(found.matches) >= cap:
                    found.capped = True
                    return found
    return found
