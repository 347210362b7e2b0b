"""The git toolset's registration table: git_status, git_diff, git_log, git_commit, and git_push (only with --allow-push)."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

from server.annotations import CREATES, READ_ONLY
from server.context import AppContext
from server.registration import ToolSpec, register_tools
from tools.git.inputs import CommitInput, DiffInput, LogInput, PushInput, StatusInput
from tools.git.results import GitCommitResult, GitDiffResult, GitLogResult, GitPushResult, GitStatusResult
from tools.git.service import GitTools

# Sends commits to another repository (open world); a push of the same commits again changes nothing; never forced.
PUSHES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True)

TOOLS = [
    ToolSpec("git_status", "Changed project files grouped by dbt node.", StatusInput, GitStatusResult, "status", READ_ONLY, False, title="Git Status"),
    ToolSpec("git_diff", "Project diff, each hunk with its dbt nodes.", DiffInput, GitDiffResult, "diff", READ_ONLY, False, title="Git Diff"),
    ToolSpec("git_log", "Recent commits of the project or a path.", LogInput, GitLogResult, "log", READ_ONLY, False, title="Git Log"),
    ToolSpec("git_commit", "Commit only these paths; author from git config.", CommitInput, GitCommitResult, "commit", CREATES, True, title="Git Commit"),
    ToolSpec("git_push", "Push a branch to a remote (never forced).", PushInput, GitPushResult, "push", PUSHES, True, title="Git Push"),
]


def register(app: MCPServer, ctx: AppContext) -> list[str]:
    tools = GitTools(ctx)
    specs = [spec for spec in TOOLS if spec.name != "git_push" or ctx.settings.allow_push]
    return register_tools(app, specs, lambda spec: getattr(tools, spec.method), read_only=ctx.settings.read_only,
                          token_budget=ctx.token_budget, toolset="git")
