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
    ToolSpec("dbt_model", "Create a model + YAML in models/<layer>/ (naming, layering enforced); validated by dbt, else rolled back.",
     ModelInput, AuthoringResult, "model", CREATES, True, title="Create dbt Model"),
    ToolSpec("incremental_model", "Create an incremental model: is_incremental() on updated_at, tested unique_key; validated by dbt.",
     IncrementalInput, AuthoringResult, "incremental_model", CREATES, True, title="Incremental Model"),
    ToolSpec("dbt_source", "Define or extend a source in its YAML, comments kept; validated by dbt.",
     SourceInput, AuthoringResult, "source", EDITS, True, title="Define dbt Source"),
    ToolSpec("dbt_macro", "Create a macro file and its properties entry; checked by dbt parse.",
     MacroInput, AuthoringResult, "macro", CREATES, True, title="Create dbt Macro"),
    ToolSpec("data_quality_test", "Add tests to a model or its columns (unique, not_null, accepted_values, relationships, accepted_range, not_constant).",
     DataQualityInput, AuthoringResult, "data_quality_test", EDITS, True, title="Add Data Tests"),
    ToolSpec("exposure_define", "Define an exposure: what consumes which models.",
     ExposureInput, AuthoringResult, "exposure", EDITS, True, title="Define Exposure"),
    ToolSpec("dbt_package", "Add a package to packages.yml and run dbt deps; reverted if the install fails.",
     PackageInput, AuthoringResult, "package", INSTALLS, True, title="Add dbt Package"),
]


def register(app: MCPServer, ctx: AppContext) -> list[str]:
    """Every authoring tool writes files, so none is registered in read-only mode."""
    service = ctx.shared("authoring", lambda: AuthoringService(ctx))
    return register_tools(app, TOOLS, lambda spec: _serialized(service, getattr(service, spec.method)),
                          read_only=ctx.settings.read_only, token_budget=ctx.token_budget, toolset="authoring")


def _serialized(service: AuthoringService, method: Callable[[Any, ProgressReporter], Awaitable[AuthoringResult]]) -> Callable[..., Awaitable[AuthoringResult]]:
    async def handler(inp: Any, progress: ProgressReporter) -> AuthoringResult:
        async with service.lock:  # plan, write and validate see no other authoring call in between
            return await method(inp, progress)
    return handler
