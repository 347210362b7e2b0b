"""The task store behind the delegation tools (tools/delegation/store.py), on a real SQLite file: exclusive claims,
leases that lapse, urgency order, who may change a task, and the once-per-failure automatic escalation. Time is a
clock the test moves; the two-process claim race runs real processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.delegation.escalation import auto_escalate, run_reference
from tools.delegation.store import NewTask, TaskError, TaskStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> TaskStore:
    return TaskStore(tmp_path / "tasks.sqlite3", "shop", clock=clock)


def delegation(level: str = "normal", to: str = "sql-database-specialist", title: str = "Optimize fct_orders") -> NewTask:
    return NewTask(kind="delegation", level=level, from_agent="dbt-analytics-engineer", to_agent=to, title=title)


def escalation(level: str, title: str = "orders late") -> NewTask:
    return NewTask(kind="escalation", level=level, from_agent="dbt-analytics-engineer", to_agent=None, title=title)


def refused(code: str, fn, *args, **kwargs) -> TaskError:  # type: ignore[no-untyped-def]
    with pytest.raises(TaskError) as raised:
        fn(*args, **kwargs)
    assert raised.value.code == code, raised.value.message
    return raised.value


def test_a_claim_is_exclusive_until_its_lease_lapses(store: TaskStore, clock: Clock) -> None:
    task = store.create(delegation())
    assert task is not None and task.status == "open"
    claimed = store.claim(task.id, "sql-database-specialist", 60)
    assert (claimed.status, claimed.claimed_by, claimed.lease_until) == ("claimed", "sql-database-specialist", clock.now + 60)
    err = refused("task_claimed", store.claim, task.id, "cicd-engineer", 60)
    assert err.details["claimed_by"] == "sql-database-specialist"
    clock.now += 30
    assert store.claim(task.id, "sql-database-specialist", 60).lease_until == clock.now + 60  # the holder renews
    clock.now += 59
    assert store.get(task.id).status == "claimed"
    clock.now += 2  # lapsed: open again, for anyone, without anybody cleaning up
    assert store.get(task.id).status == "open" and store.get(task.id).claimed_by is None
    assert [t.id for t in store.list(status="open").tasks] == [task.id]
    assert store.claim(task.id, "cicd-engineer", 60).claimed_by == "cicd-engineer"
    refused("task_not_found", store.claim, 999, "cicd-engineer", 60)


def test_high_severity_escalations_list_first_then_by_urgency_and_age(store: TaskStore) -> None:
    ids = {name: store.create(task).id for name, task in [  # type: ignore[union-attr]
        ("normal", delegation()), ("medium", escalation("medium")), ("high", escalation("high")),
        ("urgent", delegation("high")), ("critical", escalation("critical")), ("low", escalation("low")),
        ("normal2", delegation()),
    ]}
    order = [t.id for t in store.list().tasks]
    assert order == [ids[n] for n in ("critical", "high", "urgent", "medium", "normal", "normal2", "low")]
    page = store.list(limit=2, offset=2)
    assert [t.id for t in page.tasks] == [ids["urgent"], ids["medium"]] and page.total == 7
    assert [t.id for t in store.list(kind="escalation").tasks] == [ids[n] for n in ("critical", "high", "medium", "low")]
    # for an agent: its own tasks and those for anyone, not another agent's
    other = store.create(delegation(to="cicd-engineer"))
    assert other is not None and other.id not in [t.id for t in store.list(agent="sql-database-specialist", limit=100).tasks]
    assert other.id in [t.id for t in store.list(agent="cicd-engineer", limit=100).tasks]


def test_only_the_holder_changes_a_claimed_task_and_closed_stays_closed(store: TaskStore, clock: Clock) -> None:
    task = store.create(delegation())
    assert task is not None
    store.claim(task.id, "sql-database-specialist", 600)
    refused("task_claimed", store.update, task.id, status="done", agent="cicd-engineer", result="x", note=None)
    refused("task_claimed", store.update, task.id, status="done", agent=None, result=None, note=None)
    noted = store.update(task.id, status=None, agent="cicd-engineer", result=None, note="I can help")  # a note is fine
    assert noted.status == "claimed" and noted.notes[-1]["text"] == "I can help"
    released = store.update(task.id, status="open", agent="sql-database-specialist", result=None, note="not mine")
    assert released.status == "open" and released.claimed_by is None
    store.claim(task.id, "cicd-engineer", 600)
    done = store.update(task.id, status="done", agent="cicd-engineer", result="added an index", note=None)
    assert (done.status, done.result, done.claimed_by) == ("done", "added an index", "cicd-engineer")
    refused("task_closed", store.update, task.id, status="open", agent="cicd-engineer", result=None, note=None)
    refused("task_closed", store.claim, task.id, "cicd-engineer", 600)
    assert [n["status"] for n in store.get(task.id).notes if "status" in n] == ["open", "claimed", "open", "claimed", "done"]
    assert store.list().tasks == [] and [t.id for t in store.list(status="done").tasks] == [task.id]


def test_tasks_belong_to_their_project(tmp_path: Path, store: TaskStore) -> None:
    task = store.create(delegation())
    assert task is not None
    elsewhere = TaskStore(store.path, "other_project")
    assert elsewhere.list().total == 0
    refused("task_not_found", elsewhere.get, task.id)
    refused("task_not_found", elsewhere.claim, task.id, "cicd-engineer", 60)
    refused("task_not_found", elsewhere.update, task.id, status="cancelled", agent=None, result=None, note="x")
    assert store.get(task.id).status == "open" and len(store.get(task.id).notes) == 1  # nothing changed


def _test(name: str, status: str) -> dict:
    return {"unique_id": f"test.shop.{name}", "name": name, "resource_type": "test", "status": status, "failures": 2,
            "message": "Got 2 results, configured to fail if != 0\nmore"}


def test_auto_escalation_once_per_failure_until_it_passes(store: TaskStore, tmp_path: Path) -> None:
    def run(command: str, *nodes: dict) -> list[str]:
        return [t.title for t in auto_escalate(store, to_agent="data-governance-agent", from_agent="dbt-analytics-engineer",
                                                command=command, nodes=list(nodes), run_id="1800000000000-abcd", project_dir=tmp_path)]

    model = {"unique_id": "model.shop.stg_orders", "name": "stg_orders", "resource_type": "model", "status": "error"}
    assert run("build", _test("unique_x", "fail"), _test("not_null_y", "pass"), model) == ["Test failing: unique_x"]
    assert run("test", _test("unique_x", "fail")) == []  # still failing: no second escalation
    assert run("run", _test("unique_x", "pass")) == []  # only build and test count
    assert run("test", _test("unique_x", "fail"), _test("not_null_y", "error")) == ["Test failing: not_null_y"]
    assert run("build", _test("unique_x", "pass")) == []  # passes: the next failure escalates again
    assert run("build", _test("unique_x", "fail")) == ["Test failing: unique_x"]
    tasks = store.list(kind="escalation").tasks
    assert len(tasks) == 3 and {t.level for t in tasks} == {"high"} and {t.to_agent for t in tasks} == {"data-governance-agent"}
    first = store.get(tasks[0].id)
    assert first.run == {"run_id": "1800000000000-abcd", "command": first.run["command"],  # type: ignore[index]
                         "failing": [{"unique_id": first.related_nodes[0], "status": first.run["failing"][0]["status"],  # type: ignore[index]
                                      "message": "Got 2 results, configured to fail if != 0", "failures": 2}]}
    assert "dbt://run/1800000000000-abcd" in (first.details or "")


def test_run_reference_keeps_the_failing_nodes_of_a_stored_run() -> None:
    stored = json.dumps({"run_id": "1800000000000-abcd", "command": "build", "all_nodes": [
        {"unique_id": "model.shop.a", "status": "success"}, _test("unique_x", "fail"),
        {"unique_id": "model.shop.b", "status": "error", "message": "Binder Error: x\nLINE 1"}]})
    ref = run_reference(stored, "1800000000000-abcd")
    assert ref["command"] == "build" and [f["unique_id"] for f in ref["failing"]] == ["test.shop.unique_x", "model.shop.b"]
    assert ref["failing"][1]["message"] == "Binder Error: x"


CLAIMER = """
import sys, time
from pathlib import Path
from tools.delegation.store import TaskError, TaskStore
store = TaskStore(Path(sys.argv[1]), "shop")
start = float(sys.argv[3])
while time.time() < start:
    time.sleep(0.001)
won = []
for task_id in range(1, 41):
    try:
        store.claim(task_id, sys.argv[2], 600)
        won.append(task_id)
    except TaskError as exc:
        assert exc.code == "task_claimed", exc.code
print(",".join(map(str, won)))
"""


def test_two_processes_racing_for_the_same_tasks_never_both_win(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    from conftest import REPO

    path = tmp_path / "tasks.sqlite3"
    store = TaskStore(path, "shop")
    for n in range(40):
        store.create(delegation(title=f"task {n}"))
    start = str(time.time() + 2.0)
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, str(path), agent, start], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for agent in ("agent-a", "agent-b")]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    won = [set(map(int, filter(None, o[0].strip().split(",")))) for o in outs]
    assert not (won[0] & won[1]) and won[0] | won[1] == set(range(1, 41)), won
    holders = {t.id: t.claimed_by for t in store.list(limit=100).tasks}
    assert all(holders[i] == "agent-a" for i in won[0]) and all(holders[i] == "agent-b" for i in won[1])
