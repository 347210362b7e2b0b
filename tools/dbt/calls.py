"""Shared plumbing of the dbt command tools: one call on the warm worker, its result per node, and the checks every
command makes (selection matched, agent Jinja guarded)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from server.context import AppContext
from server.errors import ToolFailure
from server.registration import ProgressReporter
from tools.dbt.engine.engine import WorkerReply
from tools.dbt.engine.jinja_guard import agent_text_findings, blocking
from tools.dbt.engine.serialize import redact
from tools.dbt.history import RunHistory
from tools.dbt.inputs import (
    SelectionInput,
    TargetInput,
    ToolInput,
)
from tools.dbt.results import DbtCommandResult, NodeResult
from tools.dbt.runs import RunStore
from tools.dbt.warnings import agent_warnings

log = logging.getLogger("dbt_ae_mcp.dbt")


class DbtCalls:
    """What every dbt command tool shares; the commands themselves are in execution.py and inspection.py."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.engine = ctx.engine
        self.history = RunHistory(ctx.settings.data_dir, ctx.engine.project_dir)
        self.runs = RunStore(ctx.settings.data_dir, ctx.engine.project_dir)  # full results, read back as dbt://run/{id}
        self._deprecations_reported: set[str] = set()  # tools/dbt/warnings.py: each kind once per process

    @property
    def target_dir(self) -> Path:
        return self.engine.project_dir / "target"

    @property
    def guarded(self) -> bool:
        """Whether statements dbt sends during read-type commands must be read-only queries (the default)."""
        return not self.ctx.settings.jinja_statements_allowed

    async def _invoke(self, args: list[str], inp: ToolInput, progress: ProgressReporter, reuse_manifest: bool = True,
                      guard: bool = False, options: dict[str, Any] | None = None) -> WorkerReply:
        target = getattr(inp, "target", None)
        vars_json = inp.vars_json() if isinstance(inp, TargetInput) else None
        timeout = inp.timeout_seconds or self.ctx.settings.timeout_seconds
        return await self.engine.invoke(
            args, target=target, vars_json=vars_json, timeout=timeout, progress=progress, reuse_manifest=reuse_manifest,
            options={**(options or {}), "guard": guard and self.guarded},
        )

    def _check_agent_jinja(self, text: str, what: str) -> None:
        """Agent-sent Jinja may not run statements, import, write or add hooks (unless the setting allows it)."""
        found = blocking(agent_text_findings(text, inline=True), self.ctx.settings.jinja_statements_allowed)
        if found:
            raise ToolFailure(
                "jinja_not_allowed", f"The {what} uses Jinja that could run statements: " + "; ".join(f.describe() for f in found[:5]) + ".",
                "Use ref(), source(), var() and project macros only; change data through models and dbt_build "
                "(the server setting DBT_AE_ALLOW_SQL_IN_JINJA=true lifts this).")

    def _check_selection(self, reply: WorkerReply, inp: SelectionInput) -> None:
        nothing = any(e.get("name") == "NoNodesForSelectionCriteria" for e in reply.events)
        if inp.has_selection and nothing and not reply.payload.get("nodes") and not reply.payload.get("items"):
            raise ToolFailure(
                "model_not_found",
                f"Nothing in the project matches select={inp.select!r}" + (f" selector={inp.selector!r}" if inp.selector else "") + ".",
                "Call dbt_list to see node names; selection syntax: name, +name, path:models/x, tag:x.",
            )

    def _result(self, command: str, reply: WorkerReply, keep_sql: bool = False) -> DbtCommandResult:
        nodes = []
        for raw in reply.payload.get("nodes", []):
            node = NodeResult(**{k: v for k, v in raw.items() if k in NodeResult.model_fields})
            if not keep_sql and not node.failed:
                node.compiled_sql = None
            nodes.append(node)
        artifact = self.target_dir / ("sources.json" if command == "source freshness" else "run_results.json")
        warnings = agent_warnings(reply.events, self._deprecations_reported)
        error = reply.payload.get("exception")
        success = reply.success and not any(n.failed for n in nodes)
        self.history.record(command, success, float(reply.payload.get("elapsed_s", 0.0)), [n.model_dump() for n in nodes])
        result = DbtCommandResult.of_nodes(
            command,
            nodes,
            success=success,
            elapsed_s=float(reply.payload.get("elapsed_s", 0.0)),
            artifact_path=str(artifact) if artifact.exists() else None,
            warnings=[redact(w) for w in warnings],
            error=error,
        )
        # The whole result, every node in full (before any cut by the output budget), for the resource dbt://run/{id}.
        full = result.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        all_nodes = [n.model_dump(mode="json", exclude_none=True, exclude_defaults=True) for n in nodes]
        result.run_id = self.runs.save({**full, "all_nodes": all_nodes})
        for listener in self.ctx.run_listeners:
            try:
                said = listener(command, all_nodes, result.run_id)
            except Exception:  # a listener (auto-escalation) never fails the dbt call it follows
                log.warning("after %s: %r failed", command, listener, exc_info=True)
                continue
            if said:
                result.extra.setdefault("escalated", []).extend(said)
        return result

    async def _execution(self, command: list[str], inp: SelectionInput, progress: ProgressReporter, extra_args: list[str],
                         guard: bool = False) -> DbtCommandResult:
        reply = await self._invoke([*command, *extra_args], inp, progress, guard=guard)
        self._check_selection(reply, inp)
        return self._result(" ".join(command), reply)
