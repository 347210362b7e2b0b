"""Assembles the MCP server: settings, the shared dbt engine, and the toolsets chosen by --toolsets."""

from __future__ import annotations

import logging
import sys
import threading
from functools import partial
from importlib import import_module

from mcp.server.mcpserver import MCPServer

from server.completion import install_completion
from server.context import AppContext
from server.http_security import auth_options, http_run_options
from server.prompts import register_prompts
from server.registration import ToolServer
from server.resources import register_resources
from server.settings import Settings
from tools.dbt.engine.engine import DbtEngine

log = logging.getLogger("dbt_ae_mcp")

# toolset name -> module with register(app, ctx)
TOOLSET_MODULES = {
    "dbt": "tools.dbt.tools",
    "authoring": "tools.authoring.tools",
    "quality": "tools.quality.tools",
    "lineage": "tools.lineage.tools",
    "files": "tools.files.tools",
    "git": "tools.git.tools",
    "memory": "memory.tools",
    "delegation": "tools.delegation.tools",
}

INSTRUCTIONS = """dbt-ae-mcp: the toolkit of a senior dbt analytics engineer for one dbt project.
Start with dbt_debug (set-up) and dbt_list (what exists). Prove changes with dbt_build on a narrow
selection (e.g. select='+fct_orders'). Preview data with dbt_show (read-only, limit 10).
A run with failing nodes returns success=false with the failing nodes first; errors carry a code and a hint."""


def configure_logging(settings: Settings) -> None:
    """Logs go to stderr and data_dir/logs/server.log, never stdout (stdout is the MCP transport in stdio mode)."""
    root = logging.getLogger()
    if any(getattr(h, "_dbt_ae", False) for h in root.handlers):
        return
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    try:
        log_dir = settings.data_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_dir / "server.log", encoding="utf-8"))
    except OSError:
        pass
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in handlers:
        handler.setFormatter(formatter)
        handler._dbt_ae = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    logging.getLogger("sqlfluff").setLevel(logging.WARNING)  # it logs whole parse trees at INFO


def build_app(settings: Settings) -> tuple[MCPServer, AppContext]:
    """The server and its context. Cheap (no toolset imported, no schema built): the toolsets register on first need."""
    engine = DbtEngine(settings.project_dir, settings.effective_profiles_dir, settings.target)
    ctx = AppContext(settings=settings, engine=engine)
    app = ToolServer("dbt-ae-mcp", instructions=INSTRUCTIONS, version=_version(), log_level=settings.log_level.upper(),
                    **auth_options(settings))
    for toolset in settings.toolsets:  # registered on the first tools/list or tools/call: initialize needs no tool
        app.defer(partial(_register_toolset, app, ctx, toolset, TOOLSET_MODULES[toolset]))
    if settings.auto_escalate_to:
        ctx.run_listeners.append(partial(_auto_escalate, ctx))
    register_resources(app, ctx)  # dbt://, memory:// (server/resources/): cheap, their readers import what they need
    register_prompts(app, settings.toolsets, settings.read_only)  # plain text templates (server/prompts/): no toolset imported
    completion = install_completion(app, settings.project_dir)  # completion/complete for prompt and template arguments
    ctx.shared("completion", lambda: completion)
    return app, ctx


def _register_toolset(app: ToolServer, ctx: AppContext, toolset: str, module_name: str) -> None:
    """Import a toolset (its services, inputs and results) and register its tools."""
    names = import_module(module_name).register(app, ctx)
    log.debug("toolset %s: %s", toolset, ", ".join(names))


def _auto_escalate(ctx: AppContext, command: str, nodes: list[dict], run_id: str | None) -> list[str]:
    """The opt-in setting auto_escalate_to: each failing test of a dbt_build/dbt_test escalates once (tools/delegation)."""
    from tools.delegation.escalation import auto_escalate
    from tools.delegation.service import task_store

    assert ctx.settings.auto_escalate_to
    opened = auto_escalate(task_store(ctx), to_agent=ctx.settings.auto_escalate_to, from_agent=ctx.settings.agent_name,
                           command=command, nodes=nodes, run_id=run_id, project_dir=ctx.settings.project_dir)
    return [f"task {t.id} ({t.title}) -> {t.to_agent}" for t in opened]


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("dbt-ae-mcp")
    except Exception:
        return "0.0.0"


async def serve(settings: Settings) -> None:
    """Run the server on stdio (default) or streamable HTTP; the dbt worker starts in the background at once."""
    app, ctx = build_app(settings)
    ctx.serving = True
    # A big project's manifest takes ~0.2 s to read: read it now, so the first completion answers in milliseconds.
    threading.Thread(target=ctx.existing("completion").get, name="completion-warm-up", daemon=True).start()
    if {"dbt", "authoring", "quality", "lineage", "files"} & set(settings.toolsets):
        ctx.engine.start()
    try:
        if settings.http:
            await app.run_streamable_http_async(**http_run_options(settings))
        else:
            await app.run_stdio_async()
    finally:
        await ctx.engine.shutdown()
        for hook in ctx.exit_hooks:
            try:
                hook()
            except Exception:
                log.warning("exit hook %r failed", hook, exc_info=True)
