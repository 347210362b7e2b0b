"""The lineage toolset's logic: lineage from the warm manifest and column lineage through compiled SQL (tracking.py has
the focused-change tracker)."""

from __future__ import annotations

import asyncio
import logging

from server.errors import ToolFailure
from server.registration import ProgressReporter
from tools.lineage.graph import mermaid, svg
from tools.lineage.inputs import ColumnLineageInput, LineageInput
from tools.lineage.picture import PictureUnavailable, png
from tools.lineage.results import ColumnLineageResult, LineageResult
from tools.lineage.tracking import ChangeTracking

log = logging.getLogger(__name__)


class LineageService(ChangeTracking):
    async def lineage(self, inp: LineageInput, progress: ProgressReporter) -> LineageResult:
        graph = await self.graph()
        start = graph.resolve(inp.model, self._project_name(graph))
        if start is None:
            raise ToolFailure("model_not_found", f"Nothing named {inp.model} in the manifest.", "Call dbt_list for names (dbt_parse if you just added it).")
        nodes, edges = graph.walk(start, inp.upstream, inp.downstream, set(inp.resource_types) if inp.resource_types else None)
        result = LineageResult(focus=start, nodes=nodes, edges=[list(e) for e in edges], manifest_generated_at=graph.generated_at)
        if inp.format == "mermaid":
            result.mermaid = mermaid(nodes, edges, start)
        elif inp.format == "svg":
            result.image_svg, result.image = svg(nodes, edges, start), "image/svg+xml"
        elif inp.format == "png":
            drawing = svg(nodes, edges, start)
            try:
                result.attach_png(await asyncio.to_thread(png, drawing))  # ~0.1-0.2 s for 50 nodes: off the event loop
            except PictureUnavailable as why:  # a client that cannot show the SVG still gets the Mermaid text
                result.image_svg, result.mermaid = drawing, mermaid(nodes, edges, start)
                result.image = f"image/svg+xml, not PNG: {why}; pip install resvg-py for a PNG"
                log.warning("model_lineage sent SVG: %s", why)
        return result

    async def column_lineage(self, inp: ColumnLineageInput, progress: ProgressReporter) -> ColumnLineageResult:
        from tools.lineage.column_model import lineage_schema, parent_relations
        from tools.lineage.columns import ColumnTrace

        graph = await self.graph()
        start = graph.resolve(inp.model, self._project_name(graph))
        if start is None or graph.nodes[start]["resource_type"] not in ("model", "snapshot", "seed", "source"):
            raise ToolFailure("model_not_found", f"No model named {inp.model}.", "Call dbt_list for names.")
        wanted = {start}
        if inp.direction in ("downstream", "both"):
            below, _ = graph.walk(start, 0, inp.depth, {"model", "snapshot"})
            wanted |= {n["unique_id"] for n in below}
        view = await self.column_service().view(graph, wanted, progress=progress)
        own = view.columns[start]
        column = next((c for c in own.names if c.lower() == inp.column.lower()), None)
        if column is None and own.known:
            raise ToolFailure("column_not_found", f"{graph.nodes[start]['name']} has no output column {inp.column}.",
                              f"Its columns: {', '.join(own.names[:60])}.")
        column = column or inp.column
        trace = ColumnTrace()
        if not own.known:
            trace.unresolved.append(f"{start}: {own.unresolved}")

        def step(uid: str, col: str) -> ColumnTrace:
            every = all_columns(uid)
            found = next((trace for name, trace in every.items() if name.lower() == col.lower()), None)
            return found or ColumnTrace(unresolved=every.get("", ColumnTrace()).unresolved)

        def all_columns(uid: str) -> dict[str, ColumnTrace]:
            facts = view.facts[uid]
            if not facts.compiled_sql:
                return {}
            return self.column_service().lineage_of(uid, facts.compiled_sql, view.dialect, parent_relations(facts, view.facts),
                                                    lineage_schema(facts, view.columns, view.facts))

        if inp.direction in ("upstream", "both"):
            frontier, seen = [(start, column)], {(start, column.lower())}
            for _ in range(inp.depth):
                nxt = []
                for uid, col in frontier:
                    found = step(uid, col)
                    trace.edges += found.edges
                    trace.unresolved += found.unresolved
                    for e in found.edges:
                        if (e.from_node, e.from_column.lower()) not in seen:
                            seen.add((e.from_node, e.from_column.lower()))
                            nxt.append((e.from_node, e.from_column))
                frontier = nxt
        if inp.direction in ("downstream", "both"):
            frontier, seen = [(start, column)], {(start, column.lower())}
            for _ in range(inp.depth):
                nxt = []
                targets = {(u, c.lower()) for u, c in frontier}
                for child in sorted({c for uid, _ in frontier for c in graph.children.get(uid, []) if c in view.facts}):
                    cols = view.columns[child]
                    if not cols.known:
                        trace.unresolved.append(f"{child}: {cols.unresolved}")
                    every = all_columns(child)
                    trace.unresolved += every.get("", ColumnTrace()).unresolved
                    for out_col in cols.names:
                        found = every.get(out_col) or ColumnTrace()
                        hits = [e for e in found.edges if (e.from_node, e.from_column.lower()) in targets]
                        trace.edges += hits
                        if hits and (child, out_col.lower()) not in seen:
                            seen.add((child, out_col.lower()))
                            nxt.append((child, out_col))
                frontier = nxt
        origins = sorted({view.columns[u].origin for u in view.facts if u in view.columns})
        return ColumnLineageResult(focus=f"{start}.{column}", edges=[vars(e) for e in trace.edges], unresolved=list(dict.fromkeys(trace.unresolved)),
                                   columns_source=", ".join(origins))
