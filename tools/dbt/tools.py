"""The dbt toolset's registration table: every dbt command as a typed tool on the warm dbt worker."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

from server.annotations import BUILDS, EDITS, READ_ONLY, REPLACES
from server.context import AppContext
from server.registration import ToolSpec, register_tools
from tools.dbt.commands import DbtCommands
from tools.dbt.inputs import (
    BuildInput,
    CompileInput,
    DebugInput,
    DepsInput,
    DocsInput,
    FreshnessInput,
    ListInput,
    ParseInput,
    RetryInput,
    RunInput,
    SeedInput,
    ShowInput,
    SnapshotInput,
    TestInput,
)
from tools.dbt.results import DbtCommandResult, DebugResult, ListResult, ShowResult

TOOLS = [
    ToolSpec("dbt_run", "dbt run. Results per node, failing nodes first.", RunInput, DbtCommandResult, "run", BUILDS, True, title="Run dbt Models"),
    ToolSpec("dbt_test", "dbt test. A failing test is success=false, not an error.", TestInput, DbtCommandResult, "test", READ_ONLY, False, title="Run dbt Tests"),
    ToolSpec("dbt_build", "dbt build in DAG order: the usual way to prove a change.", BuildInput, DbtCommandResult, "build", BUILDS, True, title="Build dbt Project"),
    ToolSpec("dbt_compile", "dbt compile: nodes or inline sql.", CompileInput, DbtCommandResult, "compile", READ_ONLY, False, title="Compile dbt SQL"),
    ToolSpec("dbt_seed", "dbt seed, or define a new seed.", SeedInput, DbtCommandResult, "seed", REPLACES, True, title="Load dbt Seeds"),
    ToolSpec("dbt_snapshot", "dbt snapshot (SCD2), or define a new one.", SnapshotInput, DbtCommandResult, "snapshot", BUILDS, True, title="Run dbt Snapshots"),
    ToolSpec("dbt_source_freshness", "dbt source freshness (warn_after/error_after).", FreshnessInput, DbtCommandResult, "source_freshness", READ_ONLY, False, title="Source Freshness"),
    ToolSpec("dbt_docs", "dbt docs generate; can serve the site.", DocsInput, DbtCommandResult, "docs", READ_ONLY, False, title="Generate dbt Docs"),
    ToolSpec("dbt_debug", "dbt debug: profile, connection, setup; credentials redacted.", DebugInput, DebugResult, "debug", READ_ONLY, False, title="Check dbt Setup"),
    ToolSpec("dbt_list", "dbt ls, paginated.", ListInput, ListResult, "list", READ_ONLY, False, title="List dbt Nodes"),
    ToolSpec("dbt_show", "dbt show: preview rows of a query or model, on a read-only connection.", ShowInput, ShowResult, "show", READ_ONLY, False, title="Preview Query Results"),
    ToolSpec("dbt_retry", "dbt retry: re-run failed or skipped nodes of the last call.", RetryInput, DbtCommandResult, "retry", BUILDS, True, title="Retry Failed Nodes"),
    ToolSpec("dbt_parse", "dbt parse: refresh the manifest; returns node counts.", ParseInput, DbtCommandResult, "parse", READ_ONLY, False, title="Parse dbt Project"),
    ToolSpec("dbt_deps", "dbt deps: install packages.yml.", DepsInput, DbtCommandResult, "deps", REPLACES, True, title="Install Packages"),
]


def truthful_annotations(spec: ToolSpec, ctx: AppContext) -> ToolAnnotations:
    """A tool is read-only only while nothing it runs can write: agent Jinja is guarded, and dbt_test stores no failures."""
    if spec.annotations is not READ_ONLY:
        return spec.annotations
    if spec.method == "test" and (ctx.settings.jinja_statements_allowed or not ctx.settings.read_only):
        return EDITS
    if ctx.settings.jinja_statements_allowed:
        return REPLACES
    return spec.annotations


def register(app: MCPServer, ctx: AppContext) -> list[str]:
    """Register the dbt command tools; in read-only mode only those that write nothing."""
    commands = DbtCommands(ctx)
    return register_tools(app, TOOLS, lambda spec: getattr(commands, spec.method), read_only=ctx.settings.read_only,
                          token_budget=ctx.token_budget, toolset="dbt", annotations_for=lambda spec: truthful_annotations(spec, ctx))
