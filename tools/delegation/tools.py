"""The delegation toolset's registration table: agent_delegate, agent_escalate, task_list, task_claim, task_update,
task_get. Tasks live in the server's data dir (not the project or the warehouse), so the toolset stays registered in
read-only mode, like focused-change tracking."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from server.annotations import CREATES, EDITS, READ_ONLY
from server.context import AppContext
from server.registration import ToolSpec, register_tools
from tools.delegation.inputs import (
    DelegateInput,
    EscalateInput,
    TaskClaimInput,
    TaskGetInput,
    TaskListInput,
    TaskUpdateInput,
)
from tools.delegation.results import TaskListResult, TaskResult
from tools.delegation.service import DelegationService

TOOLS = [
    ToolSpec("agent_delegate", "Hand a task to another agent.",
             DelegateInput, TaskResult, "delegate", CREATES, False, title="Delegate to Agent"),
    ToolSpec("agent_escalate", "Raise a problem for an agent or a person.",
             EscalateInput, TaskResult, "escalate", CREATES, False, title="Escalate Problem"),
    ToolSpec("task_list", "Tasks, most urgent first.", TaskListInput, TaskListResult, "list", READ_ONLY, False,
             title="List Tasks"),
    ToolSpec("task_claim", "Take a task; a lapsed lease reopens it.", TaskClaimInput, TaskResult,
             "claim", EDITS, False, title="Claim Task"),
    ToolSpec("task_update", "Close, release or annotate a task.", TaskUpdateInput, TaskResult,
             "update", EDITS, False, title="Update Task"),
    ToolSpec("task_get", "A task in full.", TaskGetInput, TaskResult, "get", READ_ONLY, False, title="Get Task"),
]


def register(app: MCPServer, ctx: AppContext) -> list[str]:
    service = DelegationService(ctx)
    return register_tools(app, TOOLS, lambda spec: getattr(service, spec.method), read_only=ctx.settings.read_only,
                          token_budget=ctx.token_budget, toolset="delegation")
