"""Results of the delegation tools. A task as an agent reads it: times in ISO-8601 UTC, the lease only while live."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, Field

from server.registration import ToolResult
from tools.delegation.store import Task


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class TaskView(BaseModel):
    id: int
    kind: str
    status: str
    priority: str | None = None
    severity: str | None = None
    from_agent: str
    to_agent: str | None = None
    title: str
    details: str | None = None
    related_nodes: list[str] = Field(default_factory=list)
    run: dict[str, Any] | None = Field(default=None, description="run_id, command and the failing nodes of an attached dbt call.")
    claimed_by: str | None = None
    lease_until: str | None = None
    result: str | None = None
    created_at: str
    updated_at: str
    notes: list[dict[str, Any]] = Field(default_factory=list)

    @classmethod
    def of(cls, task: Task, full: bool = True) -> TaskView:
        level = {"priority": task.level} if task.kind == "delegation" else {"severity": task.level}
        notes = [{**n, "at": iso(n["at"])} for n in task.notes]
        return cls(
            id=task.id, kind=task.kind, status=task.status, **level, from_agent=task.from_agent, to_agent=task.to_agent,
            title=task.title, details=task.details if full else None, related_nodes=task.related_nodes,
            run=task.run if full else None, claimed_by=task.claimed_by, lease_until=iso(task.lease_until),
            result=task.result if full else None, created_at=iso(task.created_at) or "", updated_at=iso(task.updated_at) or "",
            notes=notes if full else [])

    def line(self) -> str:
        level = self.severity or self.priority
        who = f" -> {self.to_agent}" if self.to_agent else " -> anyone"
        held = f" by {self.claimed_by} until {self.lease_until}" if self.status == "claimed" else ""
        return f"task {self.id} [{self.kind}, {level}, {self.status}{held}]{who}: {self.title}"


class TaskResult(ToolResult):
    task: TaskView
    note: str | None = Field(default=None, description="What the server did besides, e.g. nodes it could not find.")

    def summary(self) -> str:
        t = self.task
        lines = [t.line(), f"resource: task://{t.id}"]
        if t.details:
            lines.append(t.details if len(t.details) <= 1500 else t.details[:1500] + " …")
        if t.run:
            failing = t.run.get("failing") or []
            lines.append(f"run {t.run.get('run_id')} ({t.run.get('command')}): {len(failing)} failing node(s)"
                         + "".join(f"\n  {f.get('status')} {f.get('unique_id')}: {f.get('message') or ''}" for f in failing[:10]))
        if t.result:
            lines.append(f"result: {t.result}")
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)

    def fit(self, limit_chars: int) -> TaskResult:
        fitted = self
        while len(fitted.model_dump_json()) > limit_chars and fitted.task.notes:
            fitted = fitted.model_copy(update={"task": fitted.task.model_copy(update={"notes": fitted.task.notes[1:]})})
        return fitted


class TaskListResult(ToolResult):
    tasks: list[TaskView] = Field(default_factory=list)
    total: int = 0
    next_cursor: str | None = Field(default=None, description="Pass as cursor for the next page.")

    def summary(self) -> str:
        more = f"; next_cursor={self.next_cursor}" if self.next_cursor else ""
        head = f"task_list: {self.total} task(s){more}" if self.tasks else "task_list: no task matches"
        return "\n".join([head] + [t.line() for t in self.tasks])
