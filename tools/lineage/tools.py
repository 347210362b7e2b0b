"""The lineage toolset's registration table: model_lineage, column_lineage, and focused-change tracking
(start_tracking, analyze_changes, stop_tracking). Tracking writes only to the server's data dir, so every tool stays
registered in read-only mode."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from server.annotations import EDITS, READ_ONLY
from server.context import AppContext
from server.registration import ToolSpec, register_tools
from tools.lineage.inputs import (
    AnalyzeChangesInput,
    ColumnLineageInput,
    LineageInput,
    StopInput,
    TrackInput,
)
from tools.lineage.results import (
    ChangesResult,
    ColumnLineageResult,
    LineageResult,
    TrackResult,
)
from tools.lineage.service import LineageService

TOOLS = [
    ToolSpec("model_lineage", "Upstream and downstream of a node to N hops: nodes (type, materialization, path, distance) and "
                              "edges, with a picture (PNG, SVG or Mermaid). From the warm manifest.", LineageInput, LineageResult, "lineage", READ_ONLY, False),
    ToolSpec("column_lineage", "Trace a column upstream (what it is computed from) and/or downstream (what is computed from it), "
                               "through CTEs and select * levels, with the transforming expression.",
             ColumnLineageInput, ColumnLineageResult, "column_lineage", READ_ONLY, False),
    ToolSpec("start_tracking", "Record a durable baseline of a file before editing it (the focused-change tracker).",
             TrackInput, TrackResult, "start", EDITS, False),
    ToolSpec("analyze_changes", "Compare tracked files with their baselines: diff, focus score on a target, output columns "
                                "added/removed/renamed, config changes, what downstream reads a removed column (file:line), the build "
                                "selector.",
             AnalyzeChangesInput, ChangesResult, "analyze", READ_ONLY, False),
    ToolSpec("stop_tracking", "Forget a file's baseline.", StopInput, TrackResult, "stop", EDITS, False),
]


def register(app: MCPServer, ctx: AppContext) -> list[str]:
    service = LineageService(ctx)
    return register_tools(app, TOOLS, lambda spec: getattr(service, spec.method), read_only=ctx.settings.read_only,
                          token_budget=ctx.token_budget)
