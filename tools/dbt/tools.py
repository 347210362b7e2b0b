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
    ToolSpec("dbt_run", "Run models (dbt run) on the warm dbt worker. Results per node, failing nodes first; progress per node.", RunInput, DbtCommandResult, "run", BUILDS, True),
    ToolSpec("dbt_test", "Run data and unit tests (dbt test). A failing test is success=false with the failing node first, not an error.", TestInput, DbtCommandResult, "test", READ_ONLY, False),
    ToolSpec("dbt_build", "Seed, run, snapshot and test in DAG order (dbt build). The usual way to prove a change.", BuildInput, DbtCommandResult, "build", BUILDS, True),
    ToolSpec("dbt_compile", "Compile models, a selection, or inline SQL with Jinja/ref/source; returns the compiled SQL per node.", CompileInput, DbtCommandResult, "compile", READ_ONLY, False),
    ToolSpec("dbt_seed", "Load seed CSVs into the warehouse (dbt seed).", SeedInput, DbtCommandResult, "seed", REPLACES, True),
    ToolSpec("dbt_snapshot", "Run snapshots (SCD type 2) (dbt snapshot).", SnapshotInput, DbtCommandResult, "snapshot", BUILDS, True),
    ToolSpec("dbt_source_freshness", "Check source freshness against each source's warn_after/error_after (dbt source freshness).", FreshnessInput, DbtCommandResult, "source_freshness", READ_ONLY, False),
    ToolSpec("dbt_docs", "Generate the docs site and catalog (dbt docs generate); serve=true serves it on 127.0.0.1:port until "
                         "stop=true.", DocsInput, DbtCommandResult, "docs", READ_ONLY, False),
    ToolSpec("dbt_debug", "Check the profile, connection and project set-up (dbt debug); credentials are redacted.", DebugInput, DebugResult, "debug", READ_ONLY, False),
    ToolSpec("dbt_list", "List project nodes (dbt ls) by selection and resource type, paginated with cursor/limit.", ListInput, ListResult, "list", READ_ONLY, False),
    ToolSpec("dbt_show", "Preview rows of one query or a model (dbt show), default limit 10. Runs on a read-only database connection over project relations.", ShowInput, ShowResult, "show", READ_ONLY, False),
    ToolSpec("dbt_retry", "Re-run the nodes that failed or were skipped in the previous call (dbt retry).", RetryInput, DbtCommandResult, "retry", BUILDS, True),
    ToolSpec("dbt_parse", "Parse the project and refresh the warm manifest (dbt parse); returns node counts.", ParseInput, DbtCommandResult, "parse", READ_ONLY, False),
    ToolSpec("dbt_deps", "Install the packages of packages.yml (dbt deps).", DepsInput, DbtCommandResult, "deps", REPLACES, True),
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
                          token_budget=ctx.token_budget, annotations_for=lambda spec: truthful_annotations(spec, ctx))
