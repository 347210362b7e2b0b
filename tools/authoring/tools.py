"""The authoring toolset's MCP registration: dbt_model, incremental_model, dbt_source, dbt_macro, data_quality_test,
exposure_define, dbt_package. (dbt_seed and dbt_snapshot define new seeds and snapshots when given a name; they live
in the dbt toolset because without a name they load seeds and run snapshots.)"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.mcpserver import MCPServer

from server.annotations import CREATES, EDITS, INSTALLS
from server.context import AppContext
from server.registration import ProgressReporter, ToolSpec, register_tools
from tools.authoring.inputs import DataQualityInput, ExposureInput, IncrementalInput, MacroInput, ModelInput, PackageInput, SourceInput
from tools.authoring.results import AuthoringResult
from tools.authoring.service import AuthoringService

TOOLS = [
    ToolSpec("dbt_model", "Create a model in models/<layer>/ with its YAML; layering and naming enforced. From sql, or columns "
                          "+ from_source/from_ref. Validated by dbt and a zero-row query; rolled back on failure.",
     ModelInput, AuthoringResult, "model", CREATES, True),
    ToolSpec("incremental_model", "Create an incremental model (merge, append, delete+insert) with an is_incremental() filter on "
                                  "updated_at and a tested unique_key. Validated by dbt; dry_run shows the diff.", IncrementalInput, AuthoringResult, "incremental_model", CREATES, True),
    ToolSpec("dbt_source", "Define or extend a source (schema, tables, loaded_at_field, freshness) in the sources YAML, keeping "
                           "comments. Validated by dbt.", SourceInput, AuthoringResult, "source", EDITS, True),
    ToolSpec("dbt_macro", "Create a macro file and its properties entry (description, arguments). Proved by a dbt parse.", MacroInput, AuthoringResult, "macro", CREATES, True),
    ToolSpec("data_quality_test", "Add tests to a model or its columns (unique, not_null, accepted_values, relationships, "
                                  "accepted_range, not_constant, unique_combination_of_columns, recency, equal_rowcount).",
     DataQualityInput, AuthoringResult, "data_quality_test", EDITS, True),
    ToolSpec("exposure_define", "Define an exposure (dashboard, notebook, analysis, ml, application) with its models, owner, maturity "
                                "and url.", ExposureInput, AuthoringResult, "exposure", EDITS, True),
    ToolSpec("dbt_package", "Add a package to packages.yml (hub name+version, git+revision, or local) and run dbt deps; put back "
                            "if the install fails.", PackageInput, AuthoringResult, "package", INSTALLS, True),
]


def register(app: MCPServer, ctx: AppContext) -> list[str]:
    """Every authoring tool writes files, so none is registered in read-only mode."""
    service = ctx.shared("authoring", lambda: AuthoringService(ctx))
    return register_tools(app, TOOLS, lambda spec: _serialized(service, getattr(service, spec.method)),
                          read_only=ctx.settings.read_only, token_budget=ctx.token_budget)


def _serialized(service: AuthoringService, method: Callable[[Any, ProgressReporter], Awaitable[AuthoringResult]]) -> Callable[..., Awaitable[AuthoringResult]]:
    async def handler(inp: Any, progress: ProgressReporter) -> AuthoringResult:
        async with service.lock:  # plan, write and validate see no other authoring call in between
            return await method(inp, progress)
    return handler
