"""The authoring toolset's MCP registration: dbt_model, incremental_model, dbt_source, dbt_macro, data_quality_test,
exposure_define, dbt_package. (dbt_seed and dbt_snapshot define new seeds and snapshots when given a name; they live
in the dbt toolset because without a name they load seeds and run snapshots.)"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations
from pydantic import BaseModel

from server.context import AppContext
from server.registration import ProgressReporter, add_tool
from tools.authoring.inputs import DataQualityInput, ExposureInput, IncrementalInput, MacroInput, ModelInput, PackageInput, SourceInput
from tools.authoring.results import AuthoringResult
from tools.authoring.service import AuthoringService

WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)
MERGES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
INSTALLS = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True)

TOOLS: list[tuple[str, str, type[BaseModel], str, ToolAnnotations]] = [
    ("dbt_model", "Create a model in models/<layer>/ with its properties entry: explicit final columns, ref()/source() only, "
     "layering (staging reads sources, no joins; intermediate/marts read refs) and naming (stg_/int_/fct_/dim_) enforced; "
     "proved by a dbt parse + compile, rolled back on failure. From sql, or from columns + from_source/from_ref. dry_run shows the diff.",
     ModelInput, "model", WRITES),
    ("incremental_model", "Create an incremental model (merge | append | delete+insert) with a correct is_incremental() filter "
     "against {{ this }}, unique_key tested unique/not_null, on_schema_change, adapter options (partition_by, cluster_by) "
     "passed through config. Proved by dbt; dry_run shows the diff.", IncrementalInput, "incremental_model", WRITES),
    ("dbt_source", "Define or extend a source (database, schema, tables, loaded_at_field, freshness warn/error) in the project's "
     "sources YAML, keeping comments and layout. Proved by a dbt parse.", SourceInput, "source", MERGES),
    ("dbt_macro", "Create a macro file and its properties entry (description, arguments). Proved by a dbt parse.", MacroInput, "macro", WRITES),
    ("data_quality_test", "Add tests to a model's columns or to the model: unique, not_null, accepted_values, relationships, "
     "accepted_range, not_constant, unique_combination_of_columns, recency, equal_rowcount (dbt_utils' ones are shipped as "
     "project generic tests, or dbt_utils' own when installed). Merges into the model's properties file; other columns untouched.",
     DataQualityInput, "data_quality_test", MERGES),
    ("exposure_define", "Define an exposure (dashboard, notebook, analysis, ml, application) with its models, owner, maturity "
     "and url. Proved by a dbt parse.", ExposureInput, "exposure", MERGES),
    ("dbt_package", "Add a package to packages.yml (hub name+version, git+revision, or a local folder) and run dbt deps; "
     "packages.yml is put back if the install fails.", PackageInput, "package", INSTALLS),
]


def register(app: MCPServer, ctx: AppContext) -> list[str]:
    """Every authoring tool writes files, so none is registered in read-only mode."""
    if ctx.settings.read_only:
        return []
    service = ctx.shared("authoring", lambda: AuthoringService(ctx))
    names = []
    for name, description, input_model, method, tool_annotations in TOOLS:
        handler = _serialized(service, getattr(service, method))
        add_tool(app, name=name, description=description, input_model=input_model, output_model=AuthoringResult,
                 handler=handler, annotations=tool_annotations, token_budget=ctx.token_budget)
        names.append(name)
    return names


def _serialized(service: AuthoringService, method: Callable[[Any, ProgressReporter], Awaitable[AuthoringResult]]) -> Callable[..., Awaitable[AuthoringResult]]:
    async def handler(inp: Any, progress: ProgressReporter) -> AuthoringResult:
        async with service.lock:  # plan, write and validate see no other authoring call in between
            return await method(inp, progress)
    return handler
