"""A plan of file changes and what it adds: the unit every authoring tool shows (dry_run) or writes."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from tools.authoring import rules
from tools.authoring.files import FileChange, read_text
from tools.authoring.project import ProjectIndex
from tools.dbt.engine.jinja_guard import JinjaFinding, agent_text_findings


@dataclass
class Plan:
    changes: list[FileChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    compile_select: str | None = None  # compile this after parsing (model SQL)
    next_step: str | None = None
    expect: Callable[[ProjectIndex], list[str]] | None = None  # post-parse check: returns the unique_ids, raises if missing
    finish: Callable[[], Awaitable[None]] | None = None  # last step after validation (e.g. load a seed); its failure rolls back

    def write(self, path: Path, content: str | None) -> None:
        for n, change in enumerate(self.changes):
            if change.path == path:
                self.changes[n] = FileChange(path, content)
                return
        self.changes.append(FileChange(path, content))

    def pending(self, path: Path) -> str | None:
        """The content this plan already gives `path`, else the file on disk."""
        for change in self.changes:
            if change.path == path:
                return change.content
        return read_text(path)


def added_text(before: str | None, after: str | None) -> str:
    """What a change adds to a file: all of a new file, else its added lines (the agent's part of the text)."""
    if after is None:
        return ""
    if before is None:
        return after
    import difflib

    # Line opcodes, not ndiff: ndiff pairs every replaced line with every similar one to mark changes inside lines, which
    # took minutes (blocking the server) for a 300 KB file whose lines all changed.
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    return "".join(line for tag, _, _, j1, j2 in difflib.SequenceMatcher(None, old, new).get_opcodes()
                   if tag in ("replace", "insert") for line in new[j1:j2])


def plan_jinja_findings(changes: list[FileChange]) -> list[tuple[str, JinjaFinding]]:
    """Statements, hooks and unlexable Jinja in what a plan adds to project files."""
    found = []
    for change in changes:
        added = added_text(read_text(change.path), change.content)
        if added:
            yaml = change.path.suffix in (".yml", ".yaml")
            found += [(change.path.name, f) for f in agent_text_findings(added, yaml=yaml)]
    return found


def properties_file(folder: Path, section: str, default_name: str) -> Path:
    """The YAML file in `folder` that already has a top-level `section:`; else a new one named by convention."""
    if folder.is_dir():
        for candidate in sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]):
            text = read_text(candidate) or ""
            if re.search(rf"^{section}:", text, re.M):
                return candidate
    return folder / default_name


def relation_jinja(text: str, index: ProjectIndex) -> tuple[str, str]:
    """'raw.orders' / "source('raw','orders')" / 'stg_orders' / "ref('stg_orders')" -> (jinja-free form for YAML, kind)."""
    text = text.strip()
    found = rules.relations(text)
    if text.startswith("source(") and found.sources:
        source, table = found.sources[0]
        return f"source('{source}', '{table}')", "source"
    if text.startswith("ref(") and found.refs:
        return f"ref('{found.refs[0]}')", "ref"
    if "." in text and (text.split(".", 1)[0], text.split(".", 1)[1]) in index.sources:
        source, table = text.split(".", 1)
        return f"source('{source}', '{table}')", "source"
    return f"ref('{text}')", "ref"


