"""The lineage toolset's logic: lineage from the warm manifest and column lineage through compiled SQL (tracking.py has
the focused-change tracker)."""

from __future__ import annotations

import json

from server.errors import ToolFailure
from server.registration import ProgressReporter
from tools.authoring.project import profile_dialect
from tools.lineage.graph import mermaid, svg
from tools.lineage.inputs import ColumnLineageInput, LineageInput
from tools.lineage.results import ColumnLineageResult, LineageResult
from tools.lineage.tracking import ChangeTracking


class LineageService(ChangeTracking):
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
