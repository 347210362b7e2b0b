"""The project as MCP resources (issue 16 item 3): `dbt://project`, `dbt://node/{name}`, `dbt://run/latest`,
`dbt://run/{run_id}`, `memory://{+key}` and `task://{id}`; completion for their arguments.

Registered by build_app with the SDK's decorators: cheap, no toolset imported. Each reader imports what it needs (the
lineage graph, the column service, the memory store) when a client first reads it, so start-up stays light
(tests/test_startup.py). Why under server/: a resource reads across toolsets (dbt results, lineage's graph and column
model, memory), which only the app assembly may name; the readers themselves are thin, over the toolsets' own services.

Errors are typed: a JSON-RPC error (-32602 for what does not exist) whose data carries our `code`, `hint` and the uri.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer

from server.context import AppContext
from server.icons import toolset_icon

DBT_TOOLSETS = {"dbt", "authoring", "quality", "lineage", "files"}  # those that run on the dbt engine (server/app.py)

# One badge per toolset, as on the tools (server/icons.py).
DBT_ICON = [toolset_icon("dbt")]
MEMORY_ICON = [toolset_icon("memory")]
JSON = "application/json"


def register_resources(app: MCPServer, ctx: AppContext) -> list[str]:
    """Add the resources and templates for the chosen toolsets; returns their URIs (templates as templates)."""
    added: list[str] = []
    if DBT_TOOLSETS & set(ctx.settings.toolsets):
        from server.resources.dbt_resources import DbtResources

        dbt = DbtResources(ctx)

        @app.resource("dbt://project", name="dbt-project", title="dbt project summary", mime_type=JSON, icons=DBT_ICON,
                      description="The project: adapter, node counts by resource type, the last dbt run.")
        async def project() -> str:
            return await dbt.project()

        @app.resource("dbt://node/{name}", name="dbt-node", title="dbt node", mime_type=JSON, icons=DBT_ICON,
                      description="One node by unique_id or name: raw and compiled SQL, config, columns with types, "
                                  "description, tests, parents and children.")
        async def node(name: str) -> str:
            return await dbt.node(name)

        @app.resource("dbt://run/latest", name="dbt-run-latest", title="Latest dbt call result", mime_type=JSON, icons=DBT_ICON,
                      description="The full result of the last dbt call this server made (every node in full).")
        async def run_latest() -> str:
            return dbt.run("latest")

        @app.resource("dbt://run/{run_id}", name="dbt-run", title="dbt call result", mime_type=JSON, icons=DBT_ICON,
                      description="The full result of one dbt call (the last 20 are kept); a result cut by the output "
                                  "budget links here.")
        def run(run_id: str) -> str:
            return dbt.run(run_id)

        added += ["dbt://project", "dbt://node/{name}", "dbt://run/latest", "dbt://run/{run_id}"]
        from server.completion import matching, register_template_argument
        from tools.dbt.runs import RunStore

        runs = RunStore(ctx.settings.data_dir, ctx.settings.project_dir)
        register_template_argument("dbt://node/{name}", "name", "node")  # models, seeds, snapshots, sources by name
        register_template_argument("dbt://run/{run_id}", "run_id", lambda value: matching(reversed(runs.ids()), value))
    if "memory" in ctx.settings.toolsets:
        from server.resources.memory_resource import read_memory

        # {+key}: a memory key has slashes ({agent}/{project}/{data_type}); a plain {key} stops at the first '/'.
        @app.resource("memory://{+key}", name="memory", title="Memory", mime_type=JSON, icons=MEMORY_ICON,
                      description="One memory by its exact key, e.g. memory://dbt-analytics-engineer/shop/fct-orders-config.")
        async def memory(key: str) -> str:
            return await read_memory(ctx, key)

        added.append("memory://{+key}")
        from server.completion import matching, register_template_argument
        from server.resources.memory_resource import known_keys

        register_template_argument("memory://{+key}", "key", lambda value: matching(known_keys(ctx), value))
    if "delegation" in ctx.settings.toolsets:
        from server.resources.task_resource import agent_names, read_task, task_ids

        @app.resource("task://{id}", name="task", title="Task", mime_type=JSON, icons=[toolset_icon("delegation")],
                      description="One delegated or escalated task with its notes, e.g. task://3.")
        async def task(id: str) -> str:
            return await read_task(ctx, id)

        added.append("task://{id}")
        from server.completion import (
            matching,
            register_kind,
            register_template_argument,
        )

        register_template_argument("task://{id}", "id", lambda value: matching(task_ids(ctx), value))
        register_kind("agent", lambda value: matching(agent_names(ctx), value))
    return added


def not_found(code: str, message: str, hint: str, **details: Any) -> Exception:
    """A typed resource error: -32602 (what the SDK sends for an unknown resource) with our code and hint in data."""
    from mcp.shared.exceptions import MCPError
    from mcp_types.jsonrpc import INVALID_PARAMS

    return MCPError(code=INVALID_PARAMS, message=message, data={"code": code, "hint": hint, **details})
