"""Focused-change tracking: durable baselines of files, and what an edit changed against them (analyze_changes)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.errors import ToolFailure
from server.registration import ProgressReporter
from tools.authoring.files import project_path, read_text
from tools.lineage import changes as change_logic
from tools.lineage.base import LineageBase
from tools.lineage.column_model import ColumnRead, NodeColumns
from tools.lineage.column_service import ColumnView
from tools.lineage.graph import LineageGraph
from tools.lineage.inputs import AnalyzeChangesInput, StopInput, TrackInput
from tools.lineage.results import ChangesResult, FileChanges, TrackResult


class ChangeTracking(LineageBase):
    def _load(self) -> dict[str, Any]:
        """The baselines; a file that is not what _save writes (cut, overwritten, hand-edited) is moved aside and reported
        as `tracking_baselines_corrupt`, never read as "nothing tracked" (the next save would erase it for good)."""
        try:
            raw = self.baselines.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(raw.decode("utf-8"))
            if not isinstance(data, dict) or not all(isinstance(v, dict) and isinstance(v.get("content"), str) for v in data.values()):
                raise ValueError("not a baselines object")
            return data
        except ValueError:  # JSONDecodeError and UnicodeDecodeError too
            aside = self.baselines.with_name(f"{self.baselines.stem}.corrupt-{time.time_ns()}.json")
            try:
                os.replace(self.baselines, aside)
            except FileNotFoundError:  # another call moved it first
                pass
            raise ToolFailure("tracking_baselines_corrupt", f"The focused-change baselines ({len(raw)} bytes) could not be read and were "
                              f"moved aside to {aside}; no file is tracked now.",
                              "Call start_tracking again for the files you are editing (content= their state before your edit), "
                              "then analyze_changes.") from None

    def _save(self, data: dict[str, Any]) -> None:
        """Written to a unique temporary sibling, flushed and renamed: a process killed mid-write leaves the old file."""
        self.baselines.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.baselines.name}.", suffix=".tmp", dir=self.baselines.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(json.dumps(data).encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.baselines)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _rel(self, filepath: str) -> tuple[Path, str]:
        path = project_path(self.root, filepath)
        return path, path.relative_to(self.root).as_posix()

    async def start(self, inp: TrackInput, progress: ProgressReporter) -> TrackResult:
        path, rel = self._rel(inp.filepath)
        content = inp.content if inp.content is not None else read_text(path)
        if content is None:
            raise ToolFailure("file_not_found", f"No file {inp.filepath} to take a baseline from.", "Give the file's current content as content, or a path that exists.")
        with self._lock:
            data = self._load()
            data[rel] = {"content": content, "started_at": time.time()}
            self._save(data)
        return TrackResult(filepath=rel, tracking=True, baseline_sha256=hashlib.sha256(content.encode()).hexdigest(), tracked=sorted(data))

    async def stop(self, inp: StopInput, progress: ProgressReporter) -> TrackResult:
        _, rel = self._rel(inp.filepath)
        with self._lock:
            data = self._load()
            if rel not in data:
                raise ToolFailure("not_tracked", f"{rel} is not tracked.", "start_tracking it first; tracked files: " + (", ".join(sorted(data)) or "none"))
            del data[rel]
            self._save(data)
        return TrackResult(filepath=rel, tracking=False, tracked=sorted(data))

    async def analyze(self, inp: AnalyzeChangesInput, progress: ProgressReporter) -> ChangesResult:
        data = self._load()
        if inp.filepath is not None:
            _, rel = self._rel(inp.filepath)
            if rel not in data:
                raise ToolFailure("not_tracked", f"{rel} is not tracked.", "Call start_tracking before editing it.")
            wanted = [rel]
        else:
            wanted = sorted(data)
        graph = await self.graph(fresh=True)
        files = []
        for rel in wanted:
            current = read_text(self.root / rel) or ""
            baseline = data[rel]["content"]
            node = next((u for u, n in graph.nodes.items() if n.get("path") == rel and n["resource_type"] in ("model", "snapshot")), None)
            impact = await self._column_impact(graph, node, baseline, current, progress) if node else None
            empty = change_logic.OutputColumns([], {})
            report = change_logic.analyze(baseline, current, rel, impact.before if impact else empty, impact.after if impact else empty, inp.target)
            downstream: dict[str, list[str]] = {}
            contract = False
            if node is not None:
                below, _ = graph.walk(node, 0, 50)
                for item in below:
                    if item["distance"] > 0:
                        downstream.setdefault(item["resource_type"] + "s", []).append(item["unique_id"])
                contract = bool(graph.nodes.get(node, {}).get("contract_enforced"))
            reasons = change_logic.breaking_reasons(report, contract)
            broken = sorted({r["node"] for r in impact.broken}) if impact else []
            if broken:
                reasons.append(f"read by {', '.join(graph.nodes[b]['name'] for b in broken)}")
            name = graph.nodes[node]["name"] if node else None
            files.append(FileChanges(
                filepath=rel, node=node, diff=report.diff, hunks=[vars(h) for h in report.hunks], lines_added=report.lines_added,
                lines_removed=report.lines_removed, focus_score=report.focus_score, target=report.target, touched_ctes=report.touched_ctes,
                columns_before=report.columns_before, columns_after=report.columns_after, columns_added=report.columns_added,
                columns_removed=report.columns_removed, columns_renamed=report.columns_renamed,
                columns_retyped={k: list(v) for k, v in report.columns_retyped.items()},
                columns_unresolved=impact.unresolved if impact else None,
                config_changes={k: list(v) for k, v in report.config_changes.items()},
                breaking=bool(reasons), breaking_reasons=reasons, broken_downstream=broken, broken_reads=impact.broken if impact else [],
                downstream=downstream, build_select=f"{name}+" if name else None,
            ))
        return ChangesResult(files=files)

    async def _column_impact(self, graph: LineageGraph, node: str, baseline: str, current: str, progress: ProgressReporter) -> ColumnImpact:
        """The node's output columns before (its baseline compiled as inline SQL) and now, and what downstream reads a
        column it no longer outputs: through every level of stars, from each node's compiled SQL."""
        from tools.lineage.column_model import infer, parent_schema

        service = self.column_service()
        below, _ = graph.walk(node, 0, 50, {"model", "snapshot"})
        descendants = [n["unique_id"] for n in below if n["distance"] > 0]
        view = await service.view(graph, [node, *descendants], progress=progress)
        facts, now = view.facts[node], view.columns[node]
        after = service.output_of(facts.compiled_sql, view.dialect, parent_schema(facts, view.columns, view.facts)) if facts.compiled_sql else ([], {}, now.unresolved)
        impact = ColumnImpact(before=change_logic.OutputColumns(list(now.names), dict(after[1])),
                              after=change_logic.OutputColumns(list(now.names), dict(after[1])), unresolved=now.unresolved)
        if baseline == current or not now.known:
            return impact
        compiled, problem = await service.compile_text(baseline)
        if compiled is None:
            impact.unresolved = f"the baseline did not compile: {problem}"
            return impact
        names, types, why = service.output_of(compiled, view.dialect, parent_schema(facts, view.columns, view.facts))
        if why is not None:
            impact.unresolved = f"baseline: {why}"
            return impact
        impact.before = change_logic.OutputColumns(names, types)
        then = infer(view.facts, view.dialect, known={node: NodeColumns(names, types, "sql")}, memo=service.memo)
        impact.broken = broken_reads(self.root, graph, view, then, node, descendants, service.reads_of)
        return impact


@dataclass
class ColumnImpact:
    before: change_logic.OutputColumns
    after: change_logic.OutputColumns
    unresolved: str | None = None
    broken: list[dict[str, Any]] = field(default_factory=list)


def broken_reads(root: Path, graph: LineageGraph, view: ColumnView, then: dict[str, NodeColumns], changed: str,
                 descendants: list[str], reads_of: Callable[..., list[ColumnRead]] | None = None) -> list[dict[str, Any]]:
    """Downstream nodes that name a column their parent outputs at the baseline (`then`) but no longer outputs now
    (`view`), with the source file's line; and data tests on such a column. `reads_of` is column_model.columns_read or
    a cached one (ColumnService.reads_of)."""
    from tools.lineage.column_model import columns_read, parent_relations, parent_schema

    reads_of = reads_of or columns_read

    lost = {uid: {c.lower() for c in then[uid].names} - {c.lower() for c in view.columns[uid].names}
            for uid in [changed, *descendants] if uid in then and uid in view.columns and view.columns[uid].known}
    out: list[dict[str, Any]] = []
    for uid in descendants:
        facts = view.facts.get(uid)
        if facts is None or not facts.compiled_sql or not any(lost.get(p) for p in facts.parents):
            continue
        reads = reads_of(facts.compiled_sql, view.dialect, parent_schema(facts, then, view.facts), parent_relations(facts, view.facts))
        for read in reads:
            if read.column.lower() in lost.get(read.parent, set()):
                path = graph.nodes[uid].get("path") or ""
                out.append({"node": uid, "name": graph.nodes[uid]["name"], "column": read.column, "from": read.parent, "path": path,
                            "line": source_line(root / path, read.column) or read.line})
    for uid, columns in lost.items():
        for test in graph.children.get(uid, []):
            node = graph.nodes.get(test, {})
            if node.get("resource_type") == "test" and (node.get("column_name") or "").lower() in columns:
                path = node.get("path") or ""
                out.append({"node": test, "name": node["name"], "column": node["column_name"], "from": uid, "path": path,
                            "line": source_line(root / path, node["column_name"], yaml_entry=True)})
    return out


def source_line(path: Path, column: str, yaml_entry: bool = False) -> int | None:
    """The first line of the source file that names the column (compiled SQL lines are not the file's); in YAML, the
    column's `- name:` entry."""
    text = read_text(path) or ""
    name = rf"(?<![A-Za-z0-9_]){re.escape(column)}(?![A-Za-z0-9_])"
    word = re.compile(rf"name:\s*['\"]?{name}" if yaml_entry else name, re.I)
    return next((n + 1 for n, line in enumerate(text.splitlines()) if word.search(line)), None)
