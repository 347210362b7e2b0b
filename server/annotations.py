"""MCP annotation presets: what a tool may do to files and the warehouse, said the same way by every toolset."""

from __future__ import annotations

from mcp_types import ToolAnnotations

# Reads only: the project, the warehouse and the memory store are as they were.
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
# Adds or merges (files, memories, tracking baselines); the same call again changes nothing more.
EDITS = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
# Creates something new each time (a model file): a second call is refused as a duplicate.
CREATES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)
# Installs code from outside the project (dbt packages).
INSTALLS = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True)
# Rebuilds warehouse relations (dbt run/build/snapshot): replaces data, and a second run can differ.
BUILDS = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)
# Replaces or deletes, to the same end each time (dbt seed, dbt deps, memory_delete).
REPLACES = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)
