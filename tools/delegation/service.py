"""The delegation tools over the task store: validate, resolve node names, turn store refusals into typed errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio.to_thread

from memory.redact import redact_secrets
from server.context import AppContext
from server.errors import ToolFailure
from server.registration import ProgressReporter
from tools.delegation.escalation import run_reference
from tools.delegation.inputs import (
    DelegateInput,
    EscalateInput,
    TaskClaimInput,
    TaskGetInput,
    TaskListInput,
    TaskUpdateInput,
)
from tools.delegation.results import TaskListResult, TaskResult, TaskView
from tools.delegation.store import NewTask, TaskError, TaskStore

HINTS = {
    "task_not_found": "Call task_list to see this project's tasks and their ids.",
    "task_claimed": "Pick another task from task_list, or wait for the lease to lapse (the holder may renew it).",
    "task_closed": "A closed task stays closed: create a new one with agent_delegate or agent_escalate.",
    "run_not_found": "Call a dbt tool first, or use a run_id from a recent result (the last 20 are kept).",
}


def project_name(project_dir: Path) -> str:
    """The dbt project's name (dbt_project.yml), so clones of one project in different folders share their tasks."""
    try:
        import yaml

        name = (yaml.safe_load((project_dir / "dbt_project.yml").read_text(encoding="utf-8")) or {}).get("name")
        if isinstance(name, str) and name.strip():
            return name.strip()
    except Exception:
        pass
    return project_dir.name


def task_store(ctx: AppContext) -> TaskStore:
    """The app's one store (tools, resources, completion and auto-escalation share it)."""
    return ctx.shared("task_store", lambda: TaskStore(ctx.settings.data_dir / "delegation" / "tasks.sqlite3",
                                                      project_name(ctx.settings.project_dir)))


def redacted(text: str | None) -> str | None:
    """Tasks are read by other agents: a secret pasted into one is masked as memories are (memory/redact.py)."""
    return None if text is None else redact_secrets(text)[0]


def resolve_nodes(project_dir: Path, names: list[str]) -> tuple[list[str], list[str]]:
    """Names to unique ids through the last manifest; names dbt does not know (yet) are kept as given and listed."""
    from server.manifest import read_manifest

    manifest = read_manifest(project_dir) or {}
    nodes: dict[str, Any] = {**(manifest.get("nodes") or {}), **(manifest.get("sources") or {}), **(manifest.get("exposures") or {})}
    by_name: dict[str, list[str]] = {}
    for uid, node in nodes.items():
        if node.get("resource_type") == "source":
            by_name.setdefault(f"{node.get('source_name')}.{node.get('name')}", []).append(uid)
        else:
            by_name.setdefault(str(node.get("name")), []).append(uid)
    resolved, unknown = [], []
    for name in names:
        if name in nodes:
            resolved.append(name)
        elif len(found := by_name.get(name, [])) == 1:
            resolved.append(found[0])
        else:
            resolved.append(name)
            unknown.append(name)
    return list(dict.fromkeys(resolved)), unknown


class DelegationService:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.store = task_store(ctx)

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """A store call in a worker thread (a write may wait on another process's transaction), errors typed."""
        try:
            return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))
        except TaskError as exc:
            raise ToolFailure(exc.code, exc.message, HINTS.get(exc.code, "Call task_list and try again."), exc.details) from None

    def _nodes(self, names: list[str] | None) -> tuple[tuple[str, ...], str | None]:
        if not names:
            return (), None
        resolved, unknown = resolve_nodes(self.ctx.settings.project_dir, names)
        note = f"not in the project's last manifest (kept as given): {', '.join(unknown[:10])}" if unknown else None
        return tuple(resolved), note

    async def delegate(self, inp: DelegateInput, progress: ProgressReporter) -> TaskResult:
        nodes, note = self._nodes(inp.related_nodes)
        task = await self._call(self.store.create, NewTask(
            kind="delegation", level=inp.priority, from_agent=self.ctx.settings.agent_name, to_agent=inp.to_agent,
            title=redacted(inp.task), details=redacted(inp.context), related_nodes=nodes))
        return TaskResult(task=TaskView.of(task), note=note)

    async def escalate(self, inp: EscalateInput, progress: ProgressReporter) -> TaskResult:
        nodes, note = self._nodes(inp.related_nodes)
        run = self._run(inp.run_id) if inp.run_id else None
        if run and not nodes:  # what failed is what the escalation is about
            nodes = tuple(str(f["unique_id"]) for f in run["failing"][:20])
        task = await self._call(self.store.create, NewTask(
            kind="escalation", level=inp.severity, from_agent=self.ctx.settings.agent_name, to_agent=inp.to_agent,
            title=redacted(inp.subject), details=redacted(inp.evidence), related_nodes=nodes, run=run))
        return TaskResult(task=TaskView.of(task), note=note)

    def _run(self, run_id: str) -> dict[str, Any]:
        from tools.dbt.runs import RunStore

        runs = RunStore(self.ctx.settings.data_dir, self.ctx.settings.project_dir)
        wanted = runs.latest() if run_id == "latest" else run_id
        text = runs.load(wanted) if wanted else None
        if text is None:
            raise ToolFailure("run_not_found", f"No stored dbt call {run_id!r} for this project.", HINTS["run_not_found"])
        return run_reference(text, wanted or run_id)

    async def list(self, inp: TaskListInput, progress: ProgressReporter) -> TaskListResult:
        offset = int(inp.cursor or 0)
        page = await self._call(self.store.list, agent=inp.agent, status=inp.status, kind=inp.kind, offset=offset, limit=inp.limit)
        more = offset + len(page.tasks) < page.total
        return TaskListResult(tasks=[TaskView.of(t, full=False) for t in page.tasks], total=page.total,
                              next_cursor=str(offset + len(page.tasks)) if more else None)

    async def claim(self, inp: TaskClaimInput, progress: ProgressReporter) -> TaskResult:
        return TaskResult(task=TaskView.of(await self._call(self.store.claim, inp.id, inp.agent, inp.lease_seconds)))

    async def update(self, inp: TaskUpdateInput, progress: ProgressReporter) -> TaskResult:
        if inp.status is None and inp.result is None and inp.note is None:
            raise ToolFailure("invalid_input", "Nothing to update: give status, result or note.",
                              "E.g. task_update id=3 status='done' result='…' agent='<you>'.")
        task = await self._call(self.store.update, inp.id, status=inp.status, agent=inp.agent, result=redacted(inp.result),
                                note=redacted(inp.note))
        return TaskResult(task=TaskView.of(task))

    async def get(self, inp: TaskGetInput, progress: ProgressReporter) -> TaskResult:
        return TaskResult(task=TaskView.of(await self._call(self.store.get, inp.id)))
