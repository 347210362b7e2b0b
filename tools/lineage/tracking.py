"""Focused-change tracking: durable baselines of files, and what an edit changed against them (analyze_changes)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from server.errors import ToolFailure
from server.registration import ProgressReporter
from tools.authoring.files import project_path, read_text
from tools.authoring.project import profile_dialect
from tools.lineage import changes as change_logic
from tools.lineage.base import LineageBase
from tools.lineage.inputs import AnalyzeChangesInput, StopInput, TrackInput
from tools.lineage.results import ChangesResult, FileChanges, TrackResult


class ChangeTracking(LineageBase):
    def _load(self) -> dict[str, Any]:
        try:
            return json.loads(self.baselines.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def _save(self, data: dict[str, Any]) -> None:
        self.baselines.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.baselines.with_suffix(".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self.baselines)

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
        graph = await self.graph()
        dialect = profile_dialect(self.root, self.ctx.settings.effective_profiles_dir, self.ctx.settings.target)
        files = []
        for rel in wanted:
            current = read_text(self.root / rel) or ""
            report = change_logic.analyze(data[rel]["content"], current, rel, dialect, inp.target)
            node = next((u for u, n in graph.nodes.items() if n.get("path") == rel and n["resource_type"] in ("model", "snapshot", "seed")), None)
            downstream: dict[str, list[str]] = {}
            broken: list[str] = []
            contract = False
            if node is not None:
                below, _ = graph.walk(node, 0, 50)
                for item in below:
                    if item["distance"] > 0:
                        downstream.setdefault(item["resource_type"] + "s", []).append(item["unique_id"])
                for item in below:  # what reads this node directly: models, snapshots, singular tests (SQL files)
                    child_path = item.get("path") or ""
                    if item["distance"] == 1 and child_path.endswith(".sql"):
                        text = read_text(self.root / child_path) or ""
                        if any(_mentions(text, c) for c in report.columns_removed):
                            broken.append(item["unique_id"])
                contract = bool(graph.nodes.get(node, {}).get("contract_enforced"))
            reasons = change_logic.breaking_reasons(report, contract)
            if broken:
                reasons.append(f"read by {', '.join(graph.nodes[b]['name'] for b in broken)}")
            name = graph.nodes[node]["name"] if node else None
            files.append(FileChanges(
                filepath=rel, node=node, diff=report.diff, hunks=[vars(h) for h in report.hunks], lines_added=report.lines_added,
                lines_removed=report.lines_removed, focus_score=report.focus_score, target=report.target, touched_ctes=report.touched_ctes,
                columns_before=report.columns_before, columns_after=report.columns_after, columns_added=report.columns_added,
                columns_removed=report.columns_removed, columns_retyped={k: list(v) for k, v in report.columns_retyped.items()},
                config_changes={k: list(v) for k, v in report.config_changes.items()},
                breaking=bool(broken) or (contract and bool(reasons)), breaking_reasons=reasons, broken_downstream=broken,
                downstream=downstream, build_select=f"{name}+" if name else None,
            ))
        return ChangesResult(files=files)


def _mentions(sql: str, column: str) -> bool:
    import re

    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(column)}(?![A-Za-z0-9_])", sql, re.I) is not None

