"""The memory toolset's registration table: memory_store, vector_search, memory_retrieve, memory_delete, memory_list,
memory_stats."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from memory.inputs import DeleteInput, ListInput, RetrieveInput, SearchInput, StatsInput, StoreInput
from memory.results import DeleteResult, KeyListResult, MemoriesResult, StatsResult, StoreResult
from memory.service import MemoryService, MemoryTools
from server.annotations import EDITS, READ_ONLY, REPLACES
from server.context import AppContext
from server.registration import ToolSpec, register_tools

TOOLS = [
    ToolSpec("memory_store", "Store a memory; same key replaces, secrets redacted.",
             StoreInput, StoreResult, "store", EDITS, True, title="Store Memory"),
    ToolSpec("vector_search", "Find memories by meaning and exact dbt names (hybrid).", SearchInput, MemoriesResult, "search", READ_ONLY, False, title="Search Memories"),
    ToolSpec("memory_retrieve", "Get memories by key or '*' pattern, paginated.",
             RetrieveInput, MemoriesResult, "retrieve", READ_ONLY, False, title="Retrieve Memories"),
    ToolSpec("memory_delete", "Delete memories by key or pattern; dry_run (default) only lists.",
             DeleteInput, DeleteResult, "delete", REPLACES, True, title="Delete Memories"),
    ToolSpec("memory_list", "List memory keys with metadata, paginated.", ListInput, KeyListResult, "list", READ_ONLY, False, title="List Memories"),
    ToolSpec("memory_stats", "Counts by layer and project, embedding model, store path.",
             StatsInput, StatsResult, "stats", READ_ONLY, False, title="Memory Stats"),
]


def register(app: MCPServer, ctx: AppContext) -> list[str]:
    service = ctx.shared("memory", lambda: MemoryService(ctx.settings))  # one store per app: the memory:// resource reads it too
    if ctx.serving:  # an in-process app (tests, tools/list dumps) loads the model only when a memory tool needs it
        service.start_background()
    tools = MemoryTools(service, ctx.settings.memory_max_chars)
    return register_tools(app, TOOLS, lambda spec: getattr(tools, spec.method), read_only=ctx.settings.read_only,
                          token_budget=ctx.token_budget, toolset="memory")
