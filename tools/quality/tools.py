"""The quality toolset's registration table: sql_lint, sql_fix (sqlfluff), analyze_file (connascence), project_check
(guardrails), project_metrics."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from server.annotations import EDITS, READ_ONLY
from server.context import AppContext
from server.registration import ToolSpec, register_tools
from tools.quality.inputs import AnalyzeInput, CheckInput, FixInput, LintInput, MetricsInput
from tools.quality.results import AnalyzeResult, CheckResult, FixResult, LintResult, MetricsResult
from tools.quality.service import QualityTools

TOOLS = [
    ToolSpec("sql_lint", "Lint SQL or a file with sqlfluff (project dialect and .sqlfluff).",
             LintInput, LintResult, "lint", READ_ONLY, False, title="Lint SQL"),
    ToolSpec("sql_fix", "sqlfluff fix: returns the fixed SQL and a diff; writes only with write=true.",
             FixInput, FixResult, "fix", EDITS, True, title="Fix SQL Lint"),
    ToolSpec("analyze_file", "Connascence analysis of a model (magic literals, hard-coded relations, copied logic...), with fixes.",
             AnalyzeInput, AnalyzeResult, "analyze", READ_ONLY, False, title="Analyze Model Coupling"),
    ToolSpec("project_check", "Check the project or a model against guardrails (select *, hard-coded filters, untested keys, docs, layering, naming).",
             CheckInput, CheckResult, "check", READ_ONLY, False, title="Check Guardrails"),
    ToolSpec("project_metrics", "Builds, tests, freshness, docs coverage, incremental ratio, MTTR..., overall and per model.",
             MetricsInput, MetricsResult, "metrics", READ_ONLY, False, title="Project Metrics"),
]


def register(app: MCPServer, ctx: AppContext) -> list[str]:
    tools = QualityTools(ctx)
    return register_tools(app, TOOLS, lambda spec: getattr(tools, spec.method), read_only=ctx.settings.read_only,
                          token_budget=ctx.token_budget, toolset="quality")
