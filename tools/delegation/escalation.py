"""What an escalation carries from a dbt run, and the opt-in automatic escalation of failing tests.

An escalation may point at a stored dbt call (`dbt://run/{id}`, tools/dbt/runs.py): its failing nodes are copied into
the task by reference (unique id, status, dbt's first line), so the agent that picks it up sees what failed and can
read the whole run. Automatic escalation (setting `auto_escalate_to`) follows every dbt_build / dbt_test: each failing
test opens one escalation, and no other while it keeps failing; once it passes, its next failure escalates again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tools.dbt.results import FAILED
from tools.delegation.store import NewTask, Task, TaskStore

log = logging.getLogger("dbt_ae_mcp.delegation")

MAX_FAILING = 50
AUTO_COMMANDS = frozenset({"build", "test"})


def first_line(text: str | None, limit: int = 300) -> str | None:
    line = next((ln.strip() for ln in (text or "").splitlines() if ln.strip()), "")
    return (line if len(line) <= limit else line[: limit - 3] + "...") or None


def failing_of(nodes: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The failing nodes of a run, as an escalation keeps them."""
    failing = []
    for node in nodes:
        if node.get("status") in FAILED:
            entry = {"unique_id": node.get("unique_id"), "status": node.get("status"), "message": first_line(node.get("message")),
                     "failures": node.get("failures")}
            failing.append({k: v for k, v in entry.items() if v is not None})
    return failing[:MAX_FAILING]


def run_reference(run_json: str, run_id: str) -> dict[str, Any]:
    """{run_id, command, failing} from a stored run's JSON (tools/dbt/runs.py: every node under all_nodes)."""
    data = json.loads(run_json)
    nodes = data.get("all_nodes") or data.get("nodes") or []
    return {"run_id": data.get("run_id", run_id), "command": data.get("command"), "failing": failing_of(nodes)}


def tested_nodes(manifest: dict[str, Any] | None, test_id: str) -> list[str]:
    """The model (or seed, snapshot, source) a test is attached to, from the manifest: what the escalation is about."""
    node = ((manifest or {}).get("nodes") or {}).get(test_id) or {}
    attached = node.get("attached_node")
    if attached:
        return [attached]
    return [n for n in (node.get("depends_on") or {}).get("nodes") or [] if not n.startswith("macro.")][:5]


def auto_escalate(store: TaskStore, *, to_agent: str, from_agent: str, command: str, nodes: list[dict[str, Any]],
                  run_id: str | None, project_dir: Path) -> list[Task]:
    """Escalate each failing test of a dbt_build/dbt_test once, until it passes again. Returns the tasks opened."""
    if command not in AUTO_COMMANDS:
        return []
    tests = [n for n in nodes if n.get("resource_type") == "test"]
    escalated = store.escalated_nodes()  # a read: most builds clear nothing, and need no write transaction
    store.passed_again([str(n["unique_id"]) for n in tests if n.get("status") == "pass" and n["unique_id"] in escalated])
    failing = [n for n in tests if n.get("status") in FAILED]
    if not failing:
        return []
    from server.manifest import read_manifest

    manifest = read_manifest(project_dir)
    opened = []
    for node in failing:
        uid = str(node["unique_id"])
        name = node.get("name") or uid
        failures = node.get("failures")
        details = "\n".join(filter(None, [
            f"dbt {command}: test {name} {node.get('status')}" + (f" with {failures} failing row(s)" if failures else ""),
            first_line(node.get("message"), 1000),
            f"Full run: dbt://run/{run_id}" if run_id else None,
            f"Reproduce: dbt_test select='{name}'; see the failing rows: dbt_show model='{name}' limit=100",
        ]))
        task = store.create(NewTask(
            kind="escalation", level="high", from_agent=from_agent, to_agent=to_agent, title=f"Test failing: {name}",
            details=details, related_nodes=tuple([uid, *tested_nodes(manifest, uid)]),
            run={"run_id": run_id, "command": command, "failing": failing_of([node])} if run_id else None,
        ), auto_node=uid)
        if task is not None:
            opened.append(task)
    if opened:
        log.info("auto-escalated %d failing test(s) to %s: %s", len(opened), to_agent, ", ".join(f"task {t.id}" for t in opened))
    return opened
