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
    ToolSpec("model_lineage", "A node's upstream and downstream to N hops: nodes, edges, picture.", LineageInput, LineageResult, "lineage", READ_ONLY, False, title="Model Lineage"),
    ToolSpec("column_lineage", "Trace a column up/downstream through CTEs and select *, with transforming expressions.",
             ColumnLineageInput, ColumnLineageResult, "column_lineage", READ_ONLY, False, title="Column Lineage"),
    ToolSpec("start_tracking", "Record a file's baseline before editing it.",
             TrackInput, TrackResult, "start", EDITS, False, title="Start Tracking"),
    ToolSpec("analyze_changes", "Diff tracked files vs baselines: focus on target, column/config changes, readers of removed columns, selector.",
             AnalyzeChangesInput, ChangesResult, "analyze", READ_ONLY, False, title="Analyze Changes"),
    ToolSpec("stop_tracking", "Forget a file's baseline.", StopInput, TrackResult, "stop", EDITS, False, title="Stop Tracking"),
]


def register(app: MCPServer, ctx: AppContext) -> list[str]:
    service = LineageService(ctx)
    return register_tools(app, TOOLS, lambda spec: getattr(service, spec.method), read_only=ctx.settings.read_only,
                          token_budget=ctx.token_budget, toolset="lineage")
