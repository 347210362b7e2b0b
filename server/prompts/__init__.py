"""MCP prompts: the seed prompt's workflows and recovery patterns as ready-made, argument-filled instructions.

Plain text templates (server/prompts/catalog.py), registered by build_app without importing any toolset or dbt, so
`initialize` stays cheap. A prompt is listed only when every toolset it names is registered (and, in --read-only mode,
only if it needs no tool that writes): its text never names a tool the server does not offer. Argument completion for
prompts is in server/completion.py (each argument's `kind` below picks the completer)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from string import Template
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.prompts.base import (
    Message,
    Prompt,
    PromptArgument,
    UserMessage,
)
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS
from pydantic import Field

from server.icons import icon_for


@dataclass(frozen=True)
class Arg:
    """One prompt argument. `kind` names its completer in server/completion.py (None: no completion)."""

    name: str
    description: str
    required: bool = False
    default: str = ""
    kind: str | None = None


@dataclass(frozen=True)
class PromptSpec:
    """One prompt: its name, title, description, arguments, and the text with ${argument} placeholders."""

    name: str
    title: str
    description: str
    args: tuple[Arg, ...]
    text: str
    toolsets: frozenset[str]  # every toolset whose tools the text names
    writes: bool  # names a tool that writes: not listed in --read-only mode
    icon: str  # a one- or two-letter badge

    def render(self, arguments: dict[str, Any]) -> str:
        known = {arg.name for arg in self.args}
        unknown = sorted(set(arguments) - known)
        if unknown:
            raise ValueError(f"unknown argument(s) {', '.join(map(repr, unknown))}; {self.name} takes: {', '.join(sorted(known))}")
        given = {arg.name: str(arguments.get(arg.name) or "") for arg in self.args}
        # a default may name another argument (select defaults to "${model}+")
        values = {name: value or Template(arg.default).safe_substitute(given)
                  for arg in self.args for name, value in [(arg.name, given[arg.name])]}
        return Template(self.text).substitute(values).strip()


class TemplatePrompt(Prompt):
    """A catalog prompt. A missing or unknown argument is the client's mistake: an invalid-params error that says which
    (the SDK's own check would answer 'Internal server error')."""

    spec: Any = Field(default=None, exclude=True)

    async def render(self, arguments: dict[str, Any] | None, context: Any) -> list[Message]:  # type: ignore[override]
        given = {k: v for k, v in (arguments or {}).items() if v is not None}
        missing = [arg.name for arg in self.spec.args if arg.required and not given.get(arg.name)]
        if missing:
            raise MCPError(INVALID_PARAMS, f"prompt {self.name}: missing required argument(s) {', '.join(missing)}; "
                                           f"it takes {_takes(self.spec)}")
        try:
            return [UserMessage(self.spec.render(given))]
        except ValueError as exc:
            raise MCPError(INVALID_PARAMS, f"prompt {self.name}: {exc}") from None


def _takes(spec: PromptSpec) -> str:
    return ", ".join(arg.name + ("" if arg.required else " (optional)") for arg in spec.args)


def _prompt(spec: PromptSpec) -> Prompt:
    async def render(**arguments: Any) -> list[UserMessage]:  # not called: TemplatePrompt.render renders
        return [UserMessage(spec.render(arguments))]

    return TemplatePrompt(spec=spec, name=spec.name, title=spec.title, description=spec.description, fn=render, icons=[icon_for(spec.icon)],
                  arguments=[PromptArgument(name=a.name, description=a.description, required=a.required) for a in spec.args])


def available(specs: Iterable[PromptSpec], toolsets: Iterable[str], read_only: bool) -> list[PromptSpec]:
    """The prompts whose tools a server with these toolsets (and read-only mode) registers."""
    enabled = set(toolsets)
    return [spec for spec in specs if spec.toolsets <= enabled and not (read_only and spec.writes)]


def register_prompts(app: MCPServer, toolsets: Iterable[str], read_only: bool) -> list[str]:
    """Add the prompts this server's tools can carry out; returns their names."""
    from server.completion import register_prompt_arguments
    from server.prompts.catalog import PROMPTS

    chosen = available(PROMPTS, toolsets, read_only)
    for spec in chosen:
        app.add_prompt(_prompt(spec))
        register_prompt_arguments(spec.name, {arg.name: arg.kind for arg in spec.args if arg.kind})
    return [spec.name for spec in chosen]
