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
    ToolSpec("sql_lint", "Lint SQL or a file with sqlfluff (the project's dialect and .sqlfluff; jinja templater). Per "
                         "violation: code, line, position, description, fixable.",
             LintInput, LintResult, "lint", READ_ONLY, False),
    ToolSpec("sql_fix", "Fix what sqlfluff can fix: returns the fixed SQL and a unified diff; writes the file (atomically) only with write=true.",
             FixInput, FixResult, "fix", EDITS, True),
    ToolSpec("analyze_file", "Connascence analysis of a model: position, meaning (magic literals), name (hard-coded relations), "
                             "algorithm (logic copied across models), identity, timing; with lines and fixes.",
             AnalyzeInput, AnalyzeResult, "analyze", READ_ONLY, False),
    ToolSpec("project_check", "Check the project (or one model) against the guardrails (select *, hard-coded filters, keys tested, "
                              "docs, incremental logic, layering, freshness, naming, tests). Rule ids as dbt-project-evaluator.", CheckInput, CheckResult, "check", READ_ONLY, False),
    ToolSpec("project_metrics", "The seed prompt's metrics (builds, tests, freshness, schema compliance, docs coverage, incremental "
                                "ratio, query efficiency, impact, MTTR) and a per-model breakdown.", MetricsInput, MetricsResult, "metrics", READ_ONLY, False),
]


def register(app: MCPServer, ctx: AppContext) -> list[str]:
    tools = QualityTools(ctx)
    return register_tools(app, TOOLS, lambda spec: getattr(tools, spec.method), read_only=ctx.settings.read_only,
                          token_budget=ctx.token_budget)
