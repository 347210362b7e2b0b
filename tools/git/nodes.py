"""Which dbt nodes a changed file, or one hunk of it, touches. From target/manifest.json when it is there (every node's
original_file_path and patch_path), else from dbt_project.yml's folders and the file's name. A YAML properties file
is split into its entries (`- name:` under models:, sources:, seeds: ...) so a hunk maps to the entries it changes;
a macro file into its `{% macro %}` blocks."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from server.manifest import read_manifest

PROJECT_FILES = frozenset({"dbt_project.yml", "packages.yml", "dependencies.yml", "selectors.yml", "profiles.yml"})
FOLDERS = {"model-paths": ("model", ["models"]), "seed-paths": ("seed", ["seeds"]), "snapshot-paths": ("snapshot", ["snapshots"]),
           "macro-paths": ("macro", ["macros"]), "test-paths": ("test", ["tests"]), "analysis-paths": ("analysis", ["analyses"])}
SECTIONS = {"models": "model", "sources": "source", "seeds": "seed", "snapshots": "snapshot", "macros": "macro",
            "exposures": "exposure", "metrics": "metric", "semantic_models": "semantic_model", "saved_queries": "saved_query",
            "unit_tests": "unit_test", "analyses": "analysis", "groups": "group"}
OTHER = "other"
PROJECT = "project"
_ENTRY = re.compile(r"^(\s*)-\s+name:\s*['\"]?([^'\"\s#]+)")
_SECTION = re.compile(r"^([A-Za-z_]+):")
_MACRO = re.compile(r"\{%-?\s*(?:macro|test|materialization)\s+([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Span:
    """Lines first..last (1-based, inclusive) of one entry of a properties file or one macro block."""

    kind: str
    name: str
    first: int
    last: int
    parent: str | None = None  # a source table's source


def yaml_spans(text: str) -> list[Span]:
    """The entries of a dbt properties file with their line ranges. A source's own span is its header (the lines before
    its first table); each of its tables is an entry of its own."""
    spans: list[list[Any]] = []  # kind, name, first, last (None while open), parent
    section: str | None = None
    entry_indent: int | None = None
    entry: list[Any] | None = None
    table: list[Any] | None = None
    lines = text.splitlines()

    def close(span: list[Any] | None, last: int) -> None:
        if span is not None and span[3] is None:
            span[3] = max(span[2], last)

    for number, line in enumerate(lines, 1):
        if _SECTION.match(line):
            close(table, number - 1)
            close(entry, number - 1)
            section, entry_indent, entry, table = _SECTION.match(line).group(1), None, None, None  # type: ignore[union-attr]
            continue
        match = _ENTRY.match(line)
        if not match or section not in SECTIONS:
            continue
        indent = len(match.group(1))
        entry_indent = indent if entry_indent is None else entry_indent
        if indent == entry_indent:
            close(table, number - 1)
            close(entry, number - 1)
            entry, table = [SECTIONS[section], match.group(2), number, None, None], None
            spans.append(entry)
        elif section == "sources" and entry is not None and indent > entry_indent and _in_tables(lines, number, entry_indent):
            close(table, number - 1)
            close(entry, number - 1)  # the source's header ends at its first table
            table = ["source_table", match.group(2), number, None, entry[1]]
            spans.append(table)
    close(table, len(lines))
    close(entry, len(lines))
    return [Span(kind, name, first, last, parent) for kind, name, first, last, parent in spans]


def _in_tables(lines: list[str], number: int, source_indent: int) -> bool:
    """Whether the `- name:` on line `number` is an item of a source's `tables:` list (not a column's)."""
    indent = len(lines[number - 1]) - len(lines[number - 1].lstrip())
    for line in reversed(lines[: number - 1]):
        stripped = line.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        own = len(line) - len(stripped)
        if own < indent and not stripped.startswith("-"):
            return stripped.startswith("tables:")
        if own <= source_indent:
            return False
    return False


def macro_spans(text: str) -> list[Span]:
    starts = [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in _MACRO.finditer(text)]
    total = text.count("\n") + 1
    return [Span("macro", name, first, (starts[i + 1][0] - 1) if i + 1 < len(starts) else total)
            for i, (first, name) in enumerate(starts)]


@dataclass
class NodeIndex:
    """Project-relative file -> unique ids, and (resource type, name) -> unique id, for the root project."""

    project_name: str
    folders: list[tuple[str, str]]  # (folder prefix 'models/', resource type), longest first
    by_file: dict[str, list[str]] = field(default_factory=dict)
    by_name: dict[tuple[str, str], str] = field(default_factory=dict)
    from_manifest: bool = False

    @classmethod
    def load(cls, project: Path) -> "NodeIndex":
        config = _project_config(project)
        name = str(config.get("name") or project.name)
        folders = []
        for key, (kind, default) in FOLDERS.items():
            value = config.get(key) or default
            for folder in value if isinstance(value, list) else [value]:
                if isinstance(folder, str) and folder.strip("/. "):
                    folders.append((folder.strip("/") + "/", kind))
        index = cls(name, sorted(folders, key=lambda f: -len(f[0])))
        data = read_manifest(project)
        if data is None:
            return index
        index.from_manifest = True
        for group in ("nodes", "sources", "macros", "exposures", "metrics", "semantic_models", "saved_queries", "unit_tests", "seeds"):
            for unique_id, node in (data.get(group) or {}).items():
                if not isinstance(node, dict) or node.get("package_name") not in (None, name):
                    continue
                kind = str(node.get("resource_type") or unique_id.split(".", 1)[0])
                for path in (node.get("original_file_path"), str(node.get("patch_path") or "").split("://", 1)[-1]):
                    if path:
                        index.by_file.setdefault(Path(path).as_posix(), []).append(unique_id)
                key = (kind, f"{node.get('source_name')}.{node.get('name')}" if kind == "source" else str(node.get("name")))
                index.by_name.setdefault(key, unique_id)
        return index

    def kind_of(self, path: str) -> str:
        """What a project file is to dbt, by its folder: model, seed, ..., 'project' or 'other'."""
        if path in PROJECT_FILES:
            return PROJECT
        for folder, kind in self.folders:
            if path.startswith(folder):
                return kind
        return OTHER

    def uid(self, kind: str, name: str) -> str:
        key = ("source", name) if kind == "source_table" else (kind, name)
        return self.by_name.get(key) or f"{key[0]}.{self.project_name}.{name}"

    def file_nodes(self, path: str, text: str | None) -> list[str]:
        """Every node a file defines or documents (the whole file changed: added, deleted, untracked)."""
        return self.nodes_in(path, text, None)

    def nodes_in(self, path: str, text: str | None, lines: tuple[int, int] | None) -> list[str]:
        """The nodes a range of lines (first, last; None: the whole file) of a project file touches; [] when none is
        known. `text` is the file's content the line numbers refer to (None when it is gone)."""
        kind = self.kind_of(path)
        suffix = Path(path).suffix.lower()
        if kind in (PROJECT, OTHER) and suffix not in (".yml", ".yaml"):
            return []
        if suffix in (".yml", ".yaml") and text is not None:
            spans = yaml_spans(text)
            found = self._touched(spans, lines)
            if not found and lines is None:
                return list(dict.fromkeys(self.by_file.get(path, [])))
            ids = []
            for span in found:
                if span.kind == "source":  # the source's header: every table of it, or the source when it lists none
                    tables = [t for t in spans if t.parent == span.name]
                    ids += [self.uid("source_table", f"{span.name}.{t.name}") for t in tables] or [self.uid("source", span.name)]
                elif span.kind == "source_table":
                    ids.append(self.uid("source_table", f"{span.parent}.{span.name}"))
                else:
                    ids.append(self.uid(span.kind, span.name))
            return list(dict.fromkeys(ids))
        known = list(dict.fromkeys(self.by_file.get(path, [])))
        if kind == "macro" and text is not None and suffix == ".sql":
            spans = self._touched(macro_spans(text), lines)
            return [self.uid("macro", s.name) for s in spans] or known
        if known:
            return known
        if kind in (PROJECT, OTHER) or suffix not in (".sql", ".py", ".csv"):
            return []
        return [self.uid(kind, Path(path).stem)]

    @staticmethod
    def _touched(spans: list[Span], lines: tuple[int, int] | None) -> list[Span]:
        if lines is None:
            return spans
        first, last = lines
        return [s for s in spans if s.first <= last and first <= s.last]


def _project_config(project: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load((project / "dbt_project.yml").read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def resource_of(index: NodeIndex, path: str, nodes: list[str]) -> list[str]:
    """The groups a changed file is listed under: its nodes, else 'project' or 'other'."""
    if nodes:
        return nodes
    return [PROJECT] if index.kind_of(path) == PROJECT else [OTHER]
