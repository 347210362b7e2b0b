"""The files toolset's registration table: project_files, file_read, file_search (read), file_write, file_edit
(left out in read-only mode)."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from server.annotations import BUILDS, EDITS, READ_ONLY, REPLACES
from server.context import AppContext
from server.registration import ToolSpec, register_tools
from tools.files.inputs import (  # node_rename, node_delete
    EditInput,
    FilesInput,
    ModelUpdateInput,
    NodeDeleteInput,
    NodePropertiesInput,
    NodeRenameInput,
    ReadInput,
    SearchInput,
    WriteInput,
)
from tools.files.node_changes import NodeChanges
from tools.files.node_moves import NodeMoves
from tools.files.results import (
    FilesResult,
    NodeChangeResult,
    NodePropertiesResult,
    ReadResult,
    SearchResult,
    WriteResult,
)
from tools.files.service import FilesService

# file_write replaces a file (the same call again changes nothing more); file_edit replaces text and is not idempotent
# (BUILDS' hints: destructive, not idempotent, closed world).
TOOLS = [
    ToolSpec("project_files", "List project files with size and dbt resources (ignored/build folders skipped).",
             FilesInput, FilesResult, "list_files", READ_ONLY, False, title="List Files"),
    ToolSpec("file_read", "Read a project file with line numbers.", ReadInput, ReadResult, "read", READ_ONLY, False, title="Read File"),
    ToolSpec("file_search", "Grep project files: file:line:text.", SearchInput, SearchResult, "search", READ_ONLY, False, title="Search Files"),
    ToolSpec("file_write", "Write a file; dbt files are validated or rolled back.",
             WriteInput, WriteResult, "write", REPLACES, True, title="Write File"),
    ToolSpec("file_edit", "Replace exact text in a file; validated as file_write.",
             EditInput, WriteResult, "edit", BUILDS, True, title="Edit File"),
]
# dbt-aware changes to existing nodes (tools/files/node_changes.py): the same call again writes the same files.
TOOLS += [
    ToolSpec("model_update", "Set a model's SQL and/or config() keys, YAML kept; validated or rolled back.",
             ModelUpdateInput, WriteResult, "model_update", REPLACES, True, title="Update Model"),
    ToolSpec("node_properties", "Document and test a node in its YAML; comments kept, validated by dbt.",
             NodePropertiesInput, NodePropertiesResult, "node_properties", EDITS, True, title="Node Properties"),
]

# node_rename / node_delete (tools/files/node_moves.py): a second identical rename is refused; a delete ends the same way.
TOOLS += [
    ToolSpec("node_rename", "Rename a node: file, refs, YAML.",
             NodeRenameInput, NodeChangeResult, "node_rename", BUILDS, True, title="Rename Node"),
    ToolSpec("node_delete", "Delete a node unless used.",
             NodeDeleteInput, NodeChangeResult, "node_delete", REPLACES, True, title="Delete Node"),
]


def register(app: MCPServer, ctx: AppContext) -> list[str]:
    service = FilesService(ctx)
    nodes = NodeChanges(service)  # model_update, node_properties (tools/files/node_changes.py)
    return register_tools(app, TOOLS, lambda spec: getattr(service, spec.method, None) or getattr(nodes, spec.method, None)
                          or getattr(NodeMoves(service), spec.method),
                          read_only=ctx.settings.read_only,
                          token_budget=ctx.token_budget, toolset="files")
