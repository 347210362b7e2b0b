"""Turns plain tool logic into MCP tools: pydantic input models, typed results, errors, budgets, progress."""

from __future__ import annotations

import difflib
import inspect
import logging
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.mcpserver.tools import ToolManager
from mcp_types import (
    CallToolResult,
    Icon,
    InputRequiredResult,
    TextContent,
    ToolAnnotations,
)
from mcp_types import Tool as MCPTool
from pydantic import BaseModel, Field, ValidationError

from server.budget import budget_chars, cut_text
from server.errors import ToolFailure
from server.heap import SettleSoon
from server.schemas import compact_annotations, compact_input, compact_output

log = logging.getLogger("dbt_ae_mcp.tools")
HEAP = SettleSoon()  # the process's heap, settled after tool calls (server/heap.py)

InputT = TypeVar("InputT", bound=BaseModel)


class ToolResult(BaseModel):
    """Base of every tool result: structured content plus a one-screen text summary."""

    def summary(self) -> str:  # pragma: no cover - every result overrides it
        raise NotImplementedError

    def fit(self, limit_chars: int) -> ToolResult:
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


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The valid name an agent most likely meant by `name`, for a 'did you mean' hint."""
    found = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def _quoted(name: str) -> str:
    """An agent-chosen name, shortened so a huge key cannot flood the error."""
    return repr(name if len(name) <= 80 else name[:77] + "...")


def _schema_type(prop: dict[str, Any]) -> str:
    if "anyOf" in prop:
        return " or ".join(_schema_type(p) for p in prop["anyOf"])
    if "enum" in prop:
        return "one of " + ", ".join(map(str, prop["enum"]))
    kind = prop.get("type", "object")
    if kind == "array" and isinstance(prop.get("items"), dict):
        return f"array of {_schema_type(prop['items'])}"
    return str(kind)


def _expected(name: str, properties: dict[str, Any]) -> str | None:
    prop = properties.get(name)
    if not isinstance(prop, dict):
        return None
    description = str(prop.get("description") or "").rstrip(".")
    description = description if len(description) <= 120 else description[:117] + "..."
    return f"{name}: {_schema_type(prop)}" + (f" ({description})" if description else "")


def _problem(err: Any) -> str:
    where = ".".join(str(p) for p in err["loc"]) or "input"
    if err["type"] == "missing":
        return f"missing required argument {where!r}"
    value = err.get("input")
    got = f" (got {value!r})" if isinstance(value, str | int | float | bool) and len(repr(value)) <= 60 else ""
    return f"{where}: {err['msg']}{got}"


def _validation_failure(exc: ValidationError, properties: dict[str, Any] | None = None) -> ToolFailure:
    """Pydantic's errors as one typed invalid_input; the hint is a validator's own (ctx 'hint') or the expected types."""
    errors = exc.errors(include_url=False)
    problems = "; ".join(_problem(err) for err in errors)
    own = dict.fromkeys(str(err["ctx"]["hint"]) for err in errors if isinstance(err.get("ctx"), dict) and err["ctx"].get("hint"))
    named = dict.fromkeys(str(err["loc"][0]) for err in errors if err["loc"])
    expected = [e for name in list(named)[:3] if (e := _expected(name, properties or {}))]
    types = "Expected " + "; ".join(expected) + ". " if expected else ""
    hint = " ".join(own) if own else types + "Fix the named arguments and call again."
    return ToolFailure("invalid_input", f"Invalid arguments: {problems}", hint)


def unknown_tool_failure(name: str, known: Iterable[str]) -> ToolFailure:
    guess = closest(name, known)
    message = f"unknown tool {_quoted(name)}" + (f"; did you mean {guess!r}?" if guess else "")
    hint = (f"Call {guess} instead" if guess else "tools/list shows the tools this server offers") + \
        "; --toolsets and --read-only choose which tools are registered."
    return ToolFailure("unknown_tool", message, hint, {"did_you_mean": guess} if guess else {})


def unknown_arguments_failure(tool: str, unknown: list[str], valid: list[str]) -> ToolFailure:
    """Refused rather than ignored: a dropped typo (selct) would silently widen what a command runs on."""
    guesses = {arg: closest(arg, valid) for arg in unknown[:5]}
    parts = [f"unknown argument {_quoted(arg)}" + (f"; did you mean {guess!r}?" if guess else ".") for arg, guess in guesses.items()]
    more = f" And {len(unknown) - 5} more." if len(unknown) > 5 else ""
    takes = f"{tool} takes: {', '.join(valid)}." if valid else f"{tool} takes no arguments."
    fixes = [f"{guess!r} instead of {_quoted(arg)}" for arg, guess in guesses.items() if guess]
    hint = (f"Call again with {', '.join(fixes)}. " if fixes else "Remove the unknown arguments and call again. ") + takes
    return ToolFailure("invalid_input", " ".join(parts) + more + " Nothing was run.", hint,
                       {"unknown_arguments": [a[:80] for a in unknown[:20]],
                        "did_you_mean": {a[:80]: g for a, g in guesses.items() if g}})


def call_problem(name: str, arguments: dict[str, Any], schemas: dict[str, dict[str, Any]]) -> ToolFailure | None:
    """Why a tools/call must be refused before the SDK validates it (an unknown tool or argument), or None."""
    schema = schemas.get(name)
    if schema is None:
        return unknown_tool_failure(name, schemas)
    valid = list(schema.get("properties", {}))
    unknown = [arg for arg in arguments if arg not in valid]
    return unknown_arguments_failure(name, unknown, valid) if unknown else None


def _sql_failure(exc: Exception) -> ToolFailure | None:
    """sqlglot's parse and tokenizer errors on an agent's SQL are the agent's to fix: a safety net for any tool that
    lets one escape. sqlglot is never imported here: an exception can only be its own if it is already loaded."""
    errors = sys.modules.get("sqlglot.errors")
    if errors is None or not isinstance(exc, (errors.ParseError, errors.TokenError)):
        return None
    first = (str(exc).splitlines() or [type(exc).__name__])[0]
    return ToolFailure("invalid_sql", f"The SQL could not be read: {first}",
                       "Fix the SQL (an unclosed quote, bracket or comment? /* */ comments do not nest) and call again.")


class ToolServer(MCPServer):
    """The MCPServer the toolsets register on. tools/call refuses an unknown tool or argument before anything runs
    (the SDK would drop an unknown argument silently), and the SDK's own argument validation comes back as our typed
    error instead of raw pydantic text. tools/list says so: every input schema has additionalProperties false.

    Toolsets register on first need: build_app only records each toolset's registration (`defer`), and the first read
    of the tool manager (tools/list, tools/call, the HTTP transport's schema look-up, anything else) runs them in order.
    `initialize` needs no tool, so start-up imports no toolset and builds no schema."""

    _schemas: dict[str, dict[str, Any]] | None = None
    _pending: list[Callable[[], None]] | None = None
    _registering = False
    _registration_error: Exception | None = None

    def defer(self, register: Callable[[], None]) -> None:
        """Run `register` (which adds tools) when the tools are first needed, after the registrations deferred before it."""
        if self._pending is None:
            self._pending = []
        self._pending.append(register)

    @property  # type: ignore[override]
    def _tool_manager(self) -> ToolManager:
        """The SDK's tool manager, with every deferred registration run first."""
        self._register_pending()
        return self.__dict__["_tools"]

    @_tool_manager.setter
    def _tool_manager(self, manager: ToolManager) -> None:
        self.__dict__["_tools"] = manager

    def _register_pending(self) -> None:
        if self._registering:  # a registration adding its own tools
            return
        if self._registration_error is not None:  # a toolset that failed to register fails every listing, not only the first
            raise self._registration_error
        if not self._pending:
            return
        self._registering = True
        try:
            while self._pending:
                self._pending.pop(0)()
        except Exception as exc:
            self._registration_error = exc
            raise
        finally:
            self._registering = False

    def add_tool(self, *args: Any, **kwargs: Any) -> None:
        super().add_tool(*args, **kwargs)
        self._schemas = None

    def remove_tool(self, name: str) -> None:
        super().remove_tool(name)
        self._schemas = None

    async def _input_schemas(self) -> dict[str, dict[str, Any]]:
        if self._schemas is None:
            self._schemas = {tool.name: tool.input_schema for tool in await super().list_tools()}
        return self._schemas

    async def list_tools(self) -> list[MCPTool]:
        """Compact schemas (server/schemas.py): what a model needs to call each tool and what a client validates."""
        return [tool.model_copy(update={"input_schema": {**compact_input(tool.input_schema), "additionalProperties": False},
                                        "output_schema": compact_output(tool.output_schema),
                                        "annotations": compact_annotations(tool.annotations)})
                for tool in await super().list_tools()]

    async def get_prompt(self, name: str, arguments: dict[str, Any] | None = None, context: Context[Any, Any] | None = None) -> Any:
        """An unknown prompt is the client's mistake: -32602 with a code and a hint (the SDK answers 'Internal error')."""
        if self._prompt_manager.get_prompt(name) is None:
            from mcp.shared.exceptions import MCPError
            from mcp_types import INVALID_PARAMS

            known = [p.name for p in self._prompt_manager.list_prompts()]
            guess = closest(name, known)
            raise MCPError(code=INVALID_PARAMS, message=f"unknown prompt {_quoted(name)}" + (f"; did you mean {guess!r}?" if guess else ""),
                           data={"code": "prompt_not_found", "hint": "prompts/list shows this server's prompts; --toolsets and "
                                 "--read-only choose which are listed.", **({"did_you_mean": guess} if guess else {})})
        return await super().get_prompt(name, arguments, context)

    async def call_tool(self, name: str, arguments: dict[str, Any],
                        context: Context[Any, Any] | None = None) -> CallToolResult | InputRequiredResult:
        schemas = await self._input_schemas()
        failure = call_problem(name, arguments, schemas)
        if failure is not None:
            log.info("tools/call %r refused: %s", name[:80], failure.message)
            return error_result(failure)
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc, UnexpectedToolError) or not isinstance(exc.__cause__, ValidationError):
                raise
            return error_result(_validation_failure(exc.__cause__, schemas[name].get("properties", {})))


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
    text, _ = cut_text(fitted.summary(), limit // 5, "the rest is in the structured content")
    content: list[Any] = [TextContent(type="text", text=text), *fitted.extra_content()]
    # No null or default-valued fields: an agent pays for every byte, and an absent field means its default.
    return CallToolResult(content=content, structured_content=fitted.model_dump(mode="json", exclude_none=True, exclude_defaults=True))


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
    title: str | None = None,
    icons: list[Icon] | None = None,
) -> None:
    """Register `handler` as tool `name`, with the input model's fields as the tool's flat arguments."""

    async def tool_fn(ctx: Context, **kwargs: Any) -> CallToolResult:
        HEAP.before_call()
        try:
            return await call(ctx, **kwargs)
        finally:
            HEAP.after_call()

    async def call(ctx: Context, **kwargs: Any) -> CallToolResult:
        try:
            args = input_model.model_validate(kwargs)
        except ValidationError as exc:
            return error_result(_validation_failure(exc, input_model.model_json_schema().get("properties", {})))
        try:
            result = await handler(args, ProgressReporter(ctx))
        except ToolFailure as failure:
            log.info("tool %s failed: %s %s", name, failure.code, failure.message)
            return error_result(failure)
        except Exception as exc:  # every failure reaches the agent typed, never as a bare exception
            if (sql_failure := _sql_failure(exc)) is not None:
                log.info("tool %s: unreadable SQL: %s", name, sql_failure.message)
                return error_result(sql_failure)
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
        if isinstance(field.json_schema_extra, dict):
            extra["json_schema_extra"] = field.json_schema_extra
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
    app.add_tool(tool_fn, name=name, title=title, description=description, annotations=annotations, icons=icons)


@dataclass(frozen=True)
class ToolSpec:
    """One row of a toolset's registration table (its tools.py)."""

    name: str
    description: str
    input_model: type[BaseModel]
    output_model: type[ToolResult]
    method: str  # the handler: this method of the toolset's service, called as (input, progress)
    annotations: ToolAnnotations
    writes: bool  # left out in read-only mode
    title: str | None = None  # for people: clients show it in their tool lists and approval prompts


def register_tools(app: MCPServer, specs: list[ToolSpec], handler_for: Callable[[ToolSpec], Any], *, read_only: bool,
                   token_budget: int, annotations_for: Callable[[ToolSpec], ToolAnnotations] | None = None,
                   toolset: str | None = None) -> list[str]:
    """Register a toolset's table; in read-only mode the rows that write are left out. Returns the registered names.
    Every tool of a toolset carries the toolset's icon (server/icons.py)."""
    from server.icons import toolset_icon

    icons = [toolset_icon(toolset)] if toolset else None
    names = []
    for spec in specs:
        if read_only and spec.writes:
            continue
        add_tool(app, name=spec.name, description=spec.description, input_model=spec.input_model, output_model=spec.output_model,
                 handler=handler_for(spec), annotations=annotations_for(spec) if annotations_for else spec.annotations,
                 token_budget=token_budget, title=spec.title, icons=icons)
        names.append(spec.name)
    return names
