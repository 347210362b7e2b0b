"""Durable tasks in SQLite, shared by every server process on the machine that uses the same data dir.

One file, WAL, synchronous=FULL: a task acknowledged to the agent survives a killed process. Every change is one
`BEGIN IMMEDIATE` transaction, so two processes claiming the same task cannot both win: the claim is an UPDATE whose
WHERE says the task is open or its lease has lapsed, and only one of them changes a row. A lease is a time, not a
process: a claimer that dies simply lets it lapse, and the task is open again without anyone cleaning up.

Tasks belong to a project (the dbt project's name); one store may hold several projects' tasks.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.wal import WalDatabase

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project TEXT NOT NULL,
    kind TEXT NOT NULL,              -- delegation | escalation
    status TEXT NOT NULL,            -- open | claimed | done | failed | cancelled (a lapsed claim reads as open)
    rank INTEGER NOT NULL,           -- list order: critical and high escalations first
    level TEXT NOT NULL,             -- a delegation's priority, an escalation's severity
    from_agent TEXT NOT NULL,
    to_agent TEXT,
    title TEXT NOT NULL,
    details TEXT,
    related_nodes TEXT NOT NULL,     -- JSON list of unique ids (or names dbt does not know yet)
    run TEXT,                        -- JSON: {run_id, failing: [{unique_id, status, message}]}
    claimed_by TEXT,
    lease_until REAL,
    result TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_queue ON tasks (project, status, rank DESC, id);
CREATE TABLE IF NOT EXISTS notes (
    task_id INTEGER NOT NULL REFERENCES tasks(id),
    at REAL NOT NULL,
    agent TEXT,
    status TEXT,
    text TEXT
);
CREATE INDEX IF NOT EXISTS notes_task ON notes (task_id);
CREATE TABLE IF NOT EXISTS auto_escalations (  -- a failing test escalated once, until it passes again
    project TEXT NOT NULL,
    node TEXT NOT NULL,
    task_id INTEGER NOT NULL,
    PRIMARY KEY (project, node)
);
"""

PRIORITY_RANK = {"low": 1, "normal": 4, "high": 6}
SEVERITY_RANK = {"low": 2, "medium": 5, "high": 9, "critical": 10}
CLOSED = ("done", "failed", "cancelled")
# The status a reader sees: a claim whose lease has lapsed is open again.
EFFECTIVE = "(CASE WHEN status = 'claimed' AND lease_until < :now THEN 'open' ELSE status END)"


class TaskError(Exception):
    """A task operation refused: `code` is the tool error code; the service adds the hint."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


@dataclass
class Task:
    id: int
    project: str
    kind: str
    status: str
    level: str
    from_agent: str
    to_agent: str | None
    title: str
    details: str | None
    related_nodes: list[str]
    run: dict[str, Any] | None
    claimed_by: str | None
    lease_until: float | None
    result: str | None
    created_at: float
    updated_at: float
    notes: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class NewTask:
    kind: str
    level: str
    from_agent: str
    to_agent: str | None
    title: str
    details: str | None = None
    related_nodes: tuple[str, ...] = ()
    run: dict[str, Any] | None = None

    @property
    def rank(self) -> int:
        return (SEVERITY_RANK if self.kind == "escalation" else PRIORITY_RANK)[self.level]


@dataclass(frozen=True)
class Page:
    tasks: list[Task]
    total: int


class TaskStore:
    def __init__(self, path: Path, project: str, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.project = project
        self.clock = clock
        self._wal = WalDatabase(path, SCHEMA, timeout=30, rows_by_name=True)

    # -- reads -------------------------------------------------------------------------------------------------
    def get(self, task_id: int, with_notes: bool = True) -> Task:
        db = self._wal.connection()
        row = db.execute(f"SELECT *, {EFFECTIVE} AS seen FROM tasks WHERE id = :id AND project = :project",
                         {"id": task_id, "project": self.project, "now": self.clock()}).fetchone()
        if row is None:
            raise TaskError("task_not_found", f"No task {task_id} in project {self.project!r}.")
        task = _task(row)
        if with_notes:
            task.notes = [{k: v for k, v in dict(n).items() if v is not None}
                          for n in db.execute("SELECT at, agent, status, text FROM notes WHERE task_id = ? ORDER BY rowid", (task_id,))]
        return task

    def list(self, *, agent: str | None = None, status: str | None = None, kind: str | None = None,
             offset: int = 0, limit: int = 20) -> Page:
        """This project's tasks, most urgent first (critical and high escalations before everything), then oldest.
        `agent` matches the agent a task is for or the one holding it; without `status`, closed tasks are left out."""
        where = ["project = :project"]
        params: dict[str, Any] = {"project": self.project, "now": self.clock(), "agent": agent, "status": status,
                                  "kind": kind, "limit": limit, "offset": offset}
        if agent is not None:
            where.append("(to_agent = :agent OR to_agent IS NULL OR claimed_by = :agent)")
        where.append(f"{EFFECTIVE} = :status" if status is not None else f"{EFFECTIVE} NOT IN ('done', 'failed', 'cancelled')")
        if kind is not None:
            where.append("kind = :kind")
        clause = " AND ".join(where)
        db = self._wal.connection()
        total = int(db.execute(f"SELECT count(*) FROM tasks WHERE {clause}", params).fetchone()[0])
        rows = db.execute(f"SELECT *, {EFFECTIVE} AS seen FROM tasks WHERE {clause} ORDER BY rank DESC, id LIMIT :limit OFFSET :offset",
                          params).fetchall()
        return Page([_task(r) for r in rows], total)

    def ids(self, open_only: bool = True, limit: int = 200) -> list[int]:
        """Task ids for completion, most urgent first."""
        clause = f"AND {EFFECTIVE} NOT IN ('done', 'failed', 'cancelled')" if open_only else ""
        rows = self._wal.connection().execute(f"SELECT id FROM tasks WHERE project = :project {clause} ORDER BY rank DESC, id LIMIT :limit",
                                  {"project": self.project, "now": self.clock(), "limit": limit}).fetchall()
        return [int(r[0]) for r in rows]

    def agents(self) -> list[str]:
        """Agents named in this project's tasks, most recent first (for completion)."""
        rows = self._wal.connection().execute(
            "SELECT name FROM (SELECT to_agent AS name, max(updated_at) AS t FROM tasks WHERE project = ? AND to_agent IS NOT NULL "
            "GROUP BY to_agent UNION ALL SELECT from_agent, max(updated_at) FROM tasks WHERE project = ? GROUP BY from_agent) "
            "GROUP BY name ORDER BY max(t) DESC LIMIT 100", (self.project, self.project)).fetchall()
        return [r[0] for r in rows]

    # -- writes ------------------------------------------------------------------------------------------------
    def create(self, new: NewTask, *, auto_node: str | None = None) -> Task | None:
        """A new open task. With auto_node (a failing test's unique id), only if that node has no escalation since it
        last passed: None when it has one."""
        now = self.clock()
        with self._wal.write() as db:
            if auto_node is not None and db.execute("SELECT 1 FROM auto_escalations WHERE project = ? AND node = ?",
                                                    (self.project, auto_node)).fetchone():
                return None
            cursor = db.execute(
                "INSERT INTO tasks (project, kind, status, rank, level, from_agent, to_agent, title, details, related_nodes, run, "
                "created_at, updated_at) VALUES (?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.project, new.kind, new.rank, new.level, new.from_agent, new.to_agent, new.title, new.details,
                 json.dumps(list(new.related_nodes)), json.dumps(new.run) if new.run else None, now, now))
            task_id = int(cursor.lastrowid or 0)
            if auto_node is not None:
                db.execute("INSERT INTO auto_escalations (project, node, task_id) VALUES (?, ?, ?)", (self.project, auto_node, task_id))
            db.execute("INSERT INTO notes (task_id, at, agent, status, text) VALUES (?, ?, ?, 'open', ?)",
                       (task_id, now, new.from_agent, f"{new.kind} created"))
        return self.get(task_id)

    def passed_again(self, nodes: list[str]) -> int:
        """Tests that pass again may escalate again when they next fail."""
        if not nodes:
            return 0
        with self._wal.write() as db:
            return sum(db.execute("DELETE FROM auto_escalations WHERE project = ? AND node = ?", (self.project, node)).rowcount
                       for node in nodes)

    def escalated_nodes(self) -> set[str]:
        return {r[0] for r in self._wal.connection().execute("SELECT node FROM auto_escalations WHERE project = ?", (self.project,))}

    def claim(self, task_id: int, agent: str, lease_seconds: float) -> Task:
        """Exclusive: the task must be open (or its lease lapsed), or already held by this agent (the lease is renewed)."""
        now = self.clock()
        with self._wal.write() as db:
            changed = db.execute(
                "UPDATE tasks SET status = 'claimed', claimed_by = :agent, lease_until = :until, updated_at = :now "
                "WHERE id = :id AND project = :project AND (status = 'open' OR (status = 'claimed' AND (lease_until < :now OR claimed_by = :agent)))",
                {"agent": agent, "until": now + lease_seconds, "now": now, "id": task_id, "project": self.project}).rowcount
            if not changed:
                self._refuse_claim(db, task_id, now)
            db.execute("INSERT INTO notes (task_id, at, agent, status, text) VALUES (?, ?, ?, 'claimed', ?)",
                       (task_id, now, agent, f"lease {lease_seconds:g} s"))
        return self.get(task_id)

    def _refuse_claim(self, db: sqlite3.Connection, task_id: int, now: float) -> None:
        row = db.execute("SELECT status, claimed_by, lease_until FROM tasks WHERE id = ? AND project = ?", (task_id, self.project)).fetchone()
        if row is None:
            raise TaskError("task_not_found", f"No task {task_id} in project {self.project!r}.")
        if row["status"] == "claimed":
            raise TaskError("task_claimed", f"Task {task_id} is claimed by {row['claimed_by']} for {row['lease_until'] - now:.0f} s more.",
                            claimed_by=row["claimed_by"], lease_until=row["lease_until"])
        raise TaskError("task_closed", f"Task {task_id} is {row['status']}.", status=row["status"])

    def update(self, task_id: int, *, status: str | None, agent: str | None, result: str | None, note: str | None) -> Task:
        """Close, release ('open') or annotate a task. A task held under a live lease changes only by its holder; a
        closed task takes notes but no new status."""
        now = self.clock()
        with self._wal.write() as db:
            row = db.execute("SELECT status, claimed_by, lease_until FROM tasks WHERE id = ? AND project = ?",
                             (task_id, self.project)).fetchone()
            if row is None:
                raise TaskError("task_not_found", f"No task {task_id} in project {self.project!r}.")
            held = row["status"] == "claimed" and row["lease_until"] >= now
            if held and agent != row["claimed_by"] and (status is not None or result is not None):
                raise TaskError("task_claimed", f"Task {task_id} is claimed by {row['claimed_by']} for {row['lease_until'] - now:.0f} s more"
                                + (f"; {agent} does not hold it." if agent else "; name the agent that holds it."),
                                claimed_by=row["claimed_by"], lease_until=row["lease_until"])
            if row["status"] in CLOSED and status is not None and status != row["status"]:
                raise TaskError("task_closed", f"Task {task_id} is {row['status']}; its status cannot change.", status=row["status"])
            sets = ["updated_at = :now"]
            if status == "open":
                sets += ["status = 'open'", "claimed_by = NULL", "lease_until = NULL"]
            elif status is not None:
                sets += ["status = :status", "lease_until = NULL"]
            if result is not None:
                sets.append("result = :result")
            db.execute(f"UPDATE tasks SET {', '.join(sets)} WHERE id = :id",
                       {"now": now, "status": status, "result": result, "id": task_id})
            db.execute("INSERT INTO notes (task_id, at, agent, status, text) VALUES (?, ?, ?, ?, ?)",
                       (task_id, now, agent, status, note))
        return self.get(task_id)


def _task(row: sqlite3.Row) -> Task:
    return Task(
        id=row["id"], project=row["project"], kind=row["kind"], status=row["seen"], level=row["level"], from_agent=row["from_agent"],
        to_agent=row["to_agent"], title=row["title"], details=row["details"], related_nodes=json.loads(row["related_nodes"]),
        run=json.loads(row["run"]) if row["run"] else None,
        claimed_by=row["claimed_by"] if row["seen"] != "open" else None,
        lease_until=row["lease_until"] if row["seen"] == "claimed" else None,
        result=row["result"], created_at=row["created_at"], updated_at=row["updated_at"])
