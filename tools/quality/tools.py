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
    ToolSpec("sql_lint", "Lint SQL with sqlfluff (dialect from the project, jinja templater with dbt builtins; the project's .sqlfluff "
             "applies). Per violation: code, rule, line, position, description, severity, fixable. Cached by content and config.",
             LintInput, LintResult, "lint", READ_ONLY, False),
    ToolSpec("sql_fix", "Fix what sqlfluff can fix: returns the fixed SQL and a unified diff; writes the file (atomically) only with write=true.",
             FixInput, FixResult, "fix", EDITS, True),
    ToolSpec("analyze_file", "Connascence analysis of a model: position (GROUP BY 1, select *), meaning (magic literals), name (hard-coded "
             "relations), algorithm (logic copied across models), identity (untested incremental key), timing (now()) with lines and fixes.",
             AnalyzeInput, AnalyzeResult, "analyze", READ_ONLY, False),
    ToolSpec("project_check", "Check the project (or one model) against the guardrails: no select *, no hard-coded filters, primary keys "
             "tested, descriptions, incremental logic, layering, source freshness, naming, test coverage. Rule ids follow "
             "dbt-project-evaluator; counts per rule; no warehouse needed.", CheckInput, CheckResult, "check", READ_ONLY, False),
    ToolSpec("project_metrics", "The seed prompt's metrics: models_built, models_failed, build_duration_avg/p95, test_pass_rate, "
             "data_freshness_sla, schema_compliance, documentation_coverage, incremental_models_ratio, query_efficiency, from dbt's "
             "artifacts, the manifest and this server's run history.", MetricsInput, MetricsResult, "metrics", READ_ONLY, False),
]


def register(app: MCPServer, ctx: AppContext) -> list[str]:
    tools = QualityTools(ctx)
    return register_tools(app, TOOLS, lambda spec: getattr(tools, spec.method), read_only=ctx.settings.read_only,
                          token_budget=ctx.token_budget)
