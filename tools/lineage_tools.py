"""The lineage toolset: model_lineage, and focused-change tracking (start_tracking, analyze_changes, stop_tracking)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from server.context import AppContext
from server.errors import ToolFailure
from server.registration import ProgressReporter, ToolResult, add_tools
from tools.authoring.files import project_path, read_text
from tools.authoring.project import profile_dialect
from tools.lineage import changes as change_logic
from tools.lineage.graph import TYPES, LineageGraph, mermaid, svg

READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
TRACK = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LineageInput(Strict):
    model: str = Field(description="A model, seed, snapshot or exposure name, 'source_name.table', or a unique_id.", examples=["fct_orders"])
    upstream: int = Field(default=2, ge=0, le=50, description="Parent hops to include.")
    downstream: int = Field(default=1, ge=0, le=50, description="Child hops to include.")
    resource_types: list[Literal[TYPES]] | None = Field(default=None, description="Only show these types (others are walked through).")  # type: ignore[valid-type]
    format: Literal["structured", "mermaid", "image"] = Field(
        default="mermaid", description="structured: nodes+edges only; mermaid: plus a Mermaid diagram; image: plus an SVG picture (MCP image content).")


class TrackInput(Strict):
    filepath: str = Field(description="The file to track, relative to the project.", examples=["models/marts/fct_orders.sql"])
    content: str | None = Field(default=None, description="The baseline text; default: the file as it is now.")


class AnalyzeChangesInput(Strict):
    filepath: str | None = Field(default=None, description="One tracked file; default: every tracked file.")
    target: str | None = Field(default=None, description="What the change is meant to touch: 'cte:orders', 'column:order_total', 'config', or a name.")


class ColumnLineageInput(Strict):
    model: str = Field(description="The model (or seed/snapshot) whose column to trace.", examples=["fct_orders"])
    column: str = Field(description="The column.", examples=["order_total"])
    direction: Literal["upstream", "downstream", "both"] = Field(default="upstream", description="Where the values come from, where they go, or both.")
    depth: int = Field(default=3, ge=1, le=20, description="Model hops to follow.")


class StopInput(Strict):
    filepath: str = Field(description="The tracked file to forget.")


class LineageResult(ToolResult):
    focus: str
    nodes: list[dict[str, Any]] = Field(description="unique_id, name, resource_type, materialized, path, distance (negative = upstream).")
    edges: list[list[str]] = Field(description="[parent, child] pairs among the listed nodes.")
    mermaid: str | None = None
    manifest_generated_at: str | None = None
    image_svg: str | None = Field(default=None, description="(format=image) the SVG, also sent as image content.")

    def summary(self) -> str:
        listed = "\n".join(f"- {n['resource_type']} {n['name']} ({n['distance']:+d})" for n in self.nodes[:60])
        return f"lineage of {self.focus}: {len(self.nodes)} node(s), {len(self.edges)} edge(s)\n{listed}\n" + (self.mermaid or "")

    def extra_content(self) -> list[Any]:
        if not self.image_svg:
            return []
        from mcp_types import ImageContent

        return [ImageContent(type="image", data=base64.b64encode(self.image_svg.encode()).decode(), mime_type="image/svg+xml")]


class TrackResult(ToolResult):
    filepath: str
    tracking: bool
    baseline_sha256: str | None = None
    tracked: list[str] = Field(default_factory=list, description="Every file tracked now.")

    def summary(self) -> str:
        return f"{'tracking' if self.tracking else 'stopped tracking'} {self.filepath}; tracked: {', '.join(self.tracked) or 'none'}"


class FileChanges(BaseModel):
    filepath: str
    node: str | None
    diff: str
    hunks: list[dict[str, int]]
    lines_added: int
    lines_removed: int
    focus_score: float | None = Field(description="Share of changed lines inside the target (1.0 = all on target); null without target.")
    target: str | None
    touched_ctes: list[str]
    columns_before: list[str]
    columns_after: list[str]
    columns_added: list[str]
    columns_removed: list[str]
    columns_retyped: dict[str, list[str | None]]
    config_changes: dict[str, list[Any]]
    breaking: bool
    breaking_reasons: list[str]
    broken_downstream: list[str] = Field(description="Direct downstream models, snapshots and singular tests whose SQL uses a removed column.")
    downstream: dict[str, list[str]] = Field(description="Affected nodes by type (models, tests, exposures, …), all hops.")
    build_select: str | None = Field(description="The dbt build --select that covers the blast radius.")


class ChangesResult(ToolResult):
    files: list[FileChanges]

    def summary(self) -> str:
        lines = []
        for f in self.files:
            lines.append(f"{f.filepath}: +{f.lines_added}/-{f.lines_removed}, focus {f.focus_score}, "
                         f"{'BREAKING: ' + '; '.join(f.breaking_reasons) if f.breaking else 'not breaking'}; "
                         f"config {f.config_changes or 'unchanged'}; build: {f.build_select}")
        return "\n".join(lines) or "no tracked files"


class ColumnLineageResult(ToolResult):
    focus: str
    edges: list[dict[str, Any]] = Field(description="from_node, from_column, to_node, to_column, transformation ('direct' or the SQL).")
    unresolved: list[str] = Field(description="Where the trace stopped (unknown relation columns, SQL sqlglot could not read).")
    columns_source: str = Field(description="catalog (target/catalog.json) or manifest (documented columns).")

    def summary(self) -> str:
        lines = [f"column lineage of {self.focus}: {len(self.edges)} edge(s) (columns from {self.columns_source})"]
        lines += [f"- {e['from_node'].split('.')[-1]}.{e['from_column']} -> {e['to_node'].split('.')[-1]}.{e['to_column']} ({e['transformation'][:60]})"
                  for e in self.edges[:40]]
        return "\n".join(lines + [f"- stopped: {u}" for u in self.unresolved[:10]])


class LineageService:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.root = ctx.engine.project_dir.resolve()
        self._graph: LineageGraph | None = None
        self._stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        self.baselines = ctx.settings.data_dir / "tracking" / f"{self.root.name}-{digest}.json"

    async def graph(self) -> LineageGraph:
        path = self.root / "target" / "manifest.json"
        if not path.is_file():  # the worker writes it with its first parse; wait for that once
            await self.ctx.engine.invoke(["describe"], timeout=self.ctx.settings.timeout_seconds)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ToolFailure("manifest_missing", "No target/manifest.json after parsing.", "Call dbt_parse and read its error.") from None
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            if self._graph is None or stamp != self._stamp:
                self._graph, self._stamp = LineageGraph.load(path), stamp
            return self._graph

    # -- lineage -------------------------------------------------------------------------------------------------
    async def lineage(self, inp: LineageInput, progress: ProgressReporter) -> LineageResult:
        graph = await self.graph()
        start = graph.resolve(inp.model, self._project_name(graph))
        if start is None:
            raise ToolFailure("model_not_found", f"Nothing named {inp.model} in the manifest.", "Call dbt_list for names (dbt_parse if you just added it).")
        nodes, edges = graph.walk(start, inp.upstream, inp.downstream, set(inp.resource_types) if inp.resource_types else None)
        result = LineageResult(focus=start, nodes=nodes, edges=[list(e) for e in edges], manifest_generated_at=graph.generated_at)
        if inp.format in ("mermaid", "image"):
            result.mermaid = mermaid(nodes, edges, start)
        if inp.format == "image":
            result.image_svg = svg(nodes, edges, start)
        return result

    async def column_lineage(self, inp: ColumnLineageInput, progress: ProgressReporter) -> ColumnLineageResult:
        from tools.lineage.columns import ColumnTrace, norm, output_columns, schema_for, upstream_of

        graph = await self.graph()
        start = graph.resolve(inp.model, self._project_name(graph))
        if start is None or graph.nodes[start]["resource_type"] not in ("model", "snapshot", "seed"):
            raise ToolFailure("model_not_found", f"No model named {inp.model}.", "Call dbt_list for names.")
        name = graph.nodes[start]["name"]
        selector = {"upstream": f"+{name}", "downstream": f"{name}+", "both": f"+{name}+"}[inp.direction]
        reply = await self.ctx.engine.invoke(["compile", "--select", selector], timeout=self.ctx.settings.timeout_seconds, progress=progress)
        compiled = {n["unique_id"]: n.get("compiled_sql") or "" for n in reply.payload.get("nodes", []) if n.get("compiled_sql")}
        dialect = profile_dialect(self.root, self.ctx.settings.effective_profiles_dir, self.ctx.settings.target)
        relations: dict[str, str] = {}
        for uid, node in graph.nodes.items():
            if node.get("relation_name"):
                relations[norm(*node["relation_name"].split("."))] = uid
        catalog_path = self.root / "target" / "catalog.json"
        columns: dict[str, list[str]] = {}
        source = "manifest"
        try:
            catalog = json.loads(catalog_path.read_text())
            for section in ("nodes", "sources"):
                for uid, entry in (catalog.get(section) or {}).items():
                    columns[uid] = list((entry.get("columns") or {}).keys())
            source = "catalog"
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        for uid, node in graph.nodes.items():
            if not columns.get(uid):
                columns[uid] = node.get("columns") or (output_columns(compiled[uid], dialect) if uid in compiled else [])
        schema = schema_for(relations, columns)
        trace = ColumnTrace()
        if inp.direction in ("upstream", "both"):
            frontier, seen = [(start, inp.column)], {(start, inp.column)}
            for _ in range(inp.depth):
                nxt = []
                for uid, col in frontier:
                    if uid not in compiled:
                        continue
                    step = upstream_of(uid, col, compiled[uid], dialect, relations, schema)
                    trace.edges += step.edges
                    trace.unresolved += step.unresolved
                    nxt += [(e.from_node, e.from_column) for e in step.edges if (e.from_node, e.from_column) not in seen]
                    seen.update(nxt)
                frontier = nxt
        if inp.direction in ("downstream", "both"):
            frontier, seen = [(start, inp.column)], {(start, inp.column)}
            for _ in range(inp.depth):
                nxt = []
                targets = set(frontier)
                for child in {c for uid, _ in frontier for c in graph.children.get(uid, []) if c in compiled}:
                    for out_col in output_columns(compiled[child], dialect):
                        step = upstream_of(child, out_col, compiled[child], dialect, relations, schema)
                        hits = [e for e in step.edges if (e.from_node, e.from_column.lower()) in {(u, c.lower()) for u, c in targets}]
                        trace.edges += hits
                        for e in hits:
                            if (child, out_col) not in seen:
                                seen.add((child, out_col))
                                nxt.append((child, out_col))
                frontier = nxt
        return ColumnLineageResult(focus=f"{start}.{inp.column}", edges=[vars(e) for e in trace.edges], unresolved=trace.unresolved, columns_source=source)

    @staticmethod
    def _project_name(graph: LineageGraph) -> str | None:
        for node in graph.nodes.values():
            if node["resource_type"] == "model":
                return node.get("package")
        return None

    # -- tracking ------------------------------------------------------------------------------------------------
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


def register(app: MCPServer, ctx: AppContext) -> list[str]:
    service = LineageService(ctx)
    specs: list[tuple[str, str, type[BaseModel], type[ToolResult], Any, ToolAnnotations]] = [
        ("model_lineage", "Upstream and downstream of a model (or source, seed, snapshot, exposure) to N hops: de-duplicated nodes "
         "(type, materialization, path, distance) and edges, as data, a Mermaid diagram, or an SVG picture. From the warm "
         "manifest: no dbt call per query.", LineageInput, LineageResult, service.lineage, READ),
        ("column_lineage", "Trace a column through compiled SQL (sqlglot, the project's dialect): the upstream columns it is computed "
         "from and/or the downstream columns computed from it, hop by hop, with the transforming expression.",
         ColumnLineageInput, ColumnLineageResult, service.column_lineage, READ),
        ("start_tracking", "Record a durable baseline of a file before editing it (the focused-change tracker).", TrackInput, TrackResult, service.start, TRACK),
        ("analyze_changes", "Compare tracked files with their baselines: diff and hunks, focus score on a stated target (cte:, column:, "
         "config), touched CTEs, output columns added/removed/retyped, config changes, breaking changes with the downstream "
         "models they break, every affected node, and the dbt build --select for the blast radius.",
         AnalyzeChangesInput, ChangesResult, service.analyze, READ),
        ("stop_tracking", "Forget a file's baseline.", StopInput, TrackResult, service.stop, TRACK),
    ]
    return add_tools(app, [(*spec, False) for spec in specs], read_only=False, token_budget=ctx.token_budget)
