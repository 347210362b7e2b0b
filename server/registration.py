"""Turns plain tool logic into MCP tools: pydantic input models, typed results, errors, budgets, progress."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field, ValidationError

from server.budget import budget_chars, cut_text
from server.errors import ToolFailure

log = logging.getLogger("dbt_ae_mcp.tools")

InputT = TypeVar("InputT", bound=BaseModel)


class ToolResult(BaseModel):
    """Base of every tool result: structured content plus a one-screen text summary."""

    def summary(self) -> str:  # pragma: no cover - every result overrides it
        raise NotImplementedError

    def fit(self, limit_chars: int) -> "ToolResult":
        """Return a version of this result whose JSON is at most limit_chars. Lists and long texts override."""
        return self

    def extra_content(self) -> list[Any]:
        """Content blocks sent after the text summary (e.g. an image); none by default."""
        return []


class ProgressReporter:
    """Sends MCP progress notifications for the current call; a no-op when the client asked for none."""

    def __init__(self, ctx: Context | None) -> None:
        self._ctx = ctx

    async def __call__(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        if self._ctx is None:
            return
        try:
            await self._ctx.report_progress(progress, total, message)
        except Exception:  # a client that went away must not fail the dbt call
            log.debug("progress notification failed", exc_info=True)


def _validation_failure(exc: ValidationError) -> ToolFailure:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'input'}: {err['msg']}" for err in exc.errors(include_url=False)
    )
    return ToolFailure("invalid_input", f"Invalid arguments: {problems}", "Fix the named arguments and call again.")


def error_result(failure: ToolFailure) -> CallToolResult:
    model = failure.to_model()
    model.message, _ = cut_text(model.message, 4000)
    return CallToolResult(
        content=[TextContent(type="text", text=model.text())],
        structured_content=model.model_dump(mode="json"),
        is_error=True,
    )


def render_result(result: ToolResult, token_budget: int) -> CallToolResult:
    limit = budget_chars(token_budget)
    fitted = result.fit(limit * 4 // 5)  # structured content and the text summary share the budget
    text, _ = cut_text(fitted.summary(), limit // 5)
    content: list[Any] = [TextContent(type="text", text=text), *fitted.extra_content()]
    return CallToolResult(content=content, structured_content=fitted.model_dump(mode="json"))


def add_tool(
    app: MCPServer,
    *,
    name: str,
    description: str,
    input_model: type[InputT],
    output_model: type[ToolResult],
    handler: Callable[[InputT, ProgressReporter], Awaitable[ToolResult]],
    annotations: ToolAnnotations,
    token_budget: int,
) -> None:
    """Register `handler` as tool `name`, with the input model's fields as the tool's flat arguments."""

    async def tool_fn(ctx: Context, **kwargs: Any) -> CallToolResult:
        try:
            args = input_model.model_validate(kwargs)
        except ValidationError as exc:
            return error_result(_validation_failure(exc))
        try:
            result = await handler(args, ProgressReporter(ctx))
        except ToolFailure as failure:
            log.info("tool %s failed: %s %s", name, failure.code, failure.message)
            return error_result(failure)
        except Exception as exc:  # every failure reaches the agent typed, never as a bare exception
            log.exception("tool %s raised", name)
            return error_result(ToolFailure(
                "internal_error", f"{type(exc).__name__}: {exc}",
                "This is a bug in dbt-ae-mcp; the server log has the traceback. Call again or report it.",
            ))
        return render_result(result, token_budget)

    params = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)]
    annotations_map: dict[str, Any] = {"ctx": Context}
    for field_name, field in input_model.model_fields.items():
        extra: dict[str, Any] = {"description": field.description}
        if field.examples:
            extra["examples"] = field.examples
        field_type = field.annotation
        if field_type == (str | None):
            # The SDK JSON-decodes string arguments of any type but plain `str`: text that looks like JSON must stay text.
            field_type = str
        annotation = Annotated[field_type, Field(**extra)]  # type: ignore[valid-type]
        default = inspect.Parameter.empty if field.is_required() else field.get_default(call_default_factory=True)
        params.append(inspect.Parameter(field_name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation))
        annotations_map[field_name] = annotation
    return_annotation = Annotated[CallToolResult, output_model]
    annotations_map["return"] = return_annotation
    tool_fn.__signature__ = inspect.Signature(params, return_annotation=return_annotation)  # type: ignore[attr-defined]
    tool_fn.__annotations__ = annotations_map
    tool_fn.__name__ = name
    app.add_tool(tool_fn, name=name, description=description, annotations=annotations)


def add_tools(app: MCPServer, specs: list[tuple[str, str, type[BaseModel], type[ToolResult], Any, ToolAnnotations, bool]],
              *, read_only: bool, token_budget: int) -> list[str]:
    """Register (name, description, input model, output model, handler, annotations, writes) specs; in read-only
    mode the ones that write are left out. Returns the registered names."""
    names = []
    for name, description, input_model, output_model, handler, tool_annotations, writes in specs:
        if read_only and writes:
            continue
        add_tool(app, name=name, description=description, input_model=input_model, output_model=output_model,
                 handler=handler, annotations=tool_annotations, token_budget=token_budget)
        names.append(name)
    return names
