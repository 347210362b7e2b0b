"""Many clients (issue 17, item 3): 20 MCP clients over streamable HTTP for 60 s of mixed calls on one server, and two
server processes sharing one `chroma run` server and one delegation store.

The load is bench/bench_load.py's (the same clients, mix and table): builds and runs on stg_orders, dbt_show and
dbt_list queued behind them, lineage, lint, memory and delegation calls. No call may fail other than by the dbt
engine's typed queue timeout; every error is typed; the read-only tools that never wait on dbt are answered while
builds run. Their p95 (the issue's target: <= 100 ms) is a benchmark figure (bench/bench_load.py, bench/RESULTS.md),
not an assertion. The table goes to stderr in every run (past pytest's capture), so CI logs show it."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest
from mcp import Client

from conftest import FIXTURE, REPO, copy_fixture, error, free_port, http_serving, listening, ok


def _bench_load() -> ModuleType:
    """bench/bench_load.py (bench/ is not a package): the load is defined once, there."""
    spec = importlib.util.spec_from_file_location("bench_load", REPO / "bench" / "bench_load.py")
    assert spec is not None and spec.loader is not None
    module = sys.modules.setdefault("bench_load", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(module)
    return module


bench_load = _bench_load()

pytestmark = pytest.mark.e2e
DURATION = float(os.environ.get("DBT_AE_LOAD_SECONDS", "60"))
# An agent pauses between tool calls for its model's turn (seconds); 1 s on average here (uniform 0-2 s). With no
# pause, 17 closed loops on 2 shared cores measure CPU saturation (bench/RESULTS.md has both).
THINK_MS = float(os.environ.get("DBT_AE_LOAD_THINK_MS", "1000"))


@pytest.mark.slow
async def test_twenty_clients_over_http(built_shop: Path, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with http_serving(built_shop, data_dir, stderr_path=tmp_path / "server.log") as url:
        await bench_load.warm(url)
        load = await bench_load.run_load(url, DURATION, clients=20, builders=3, dbt_readers=5, think_ms=THINK_MS)
    summary = bench_load.table(load)
    with capsys.disabled():  # in the log of every run, passing or not
        print("\n" + summary, file=sys.stderr)
    calls = load.calls
    tools = {c.tool for c in calls}
    assert {"dbt_build", "dbt_run", "dbt_show", "dbt_list", "model_lineage", "sql_lint", "memory_store", "memory_retrieve",
            "agent_delegate", "task_list", "task_claim"} <= tools, summary
    failed = load.failures()
    assert not failed, "\n".join(f"{c.tool}: {c.outcome}: {c.message}" for c in failed[:10]) + "\n" + summary
    assert not [c for c in calls if c.outcome in ("untyped",) or c.outcome.startswith("exception")], summary
    assert len(load.builds()) >= 4, summary  # builds really ran throughout
    during = load.during_builds([c for c in calls if c.tool in bench_load.READ_ONLY])
    assert len(during) >= 100, summary  # read-only tools were answered while builds ran (none waited behind dbt)
    # Their latency is a performance target, measured by bench/bench_load.py (bench/RESULTS.md), not asserted here:
    # a test's timing depends on whatever else the machine runs.


@pytest.fixture
def chroma_server(tmp_path: Path):
    """`chroma run` on a free local port (no network needed); skipped, with the reason, if it cannot start here."""
    chroma = Path(sys.executable).parent / "chroma"
    if not chroma.exists():
        pytest.skip(f"no `chroma` command at {chroma} (the memory extra installs chromadb)")
    port = free_port()
    log = tmp_path / "chroma.log"
    try:
        with listening([str(chroma), "run", "--path", str(tmp_path / "chroma-server"), "--host", "127.0.0.1", "--port", str(port)],
                       port, timeout=30, stderr_path=log):
            yield f"http://127.0.0.1:{port}"
    except RuntimeError as exc:
        if "did not listen" in str(exc):
            pytest.skip(f"`chroma run` could not start here: {exc}")
        raise


async def test_two_servers_share_memory_and_tasks(tmp_path: Path, chroma_server: str) -> None:
    """Two server processes on one data dir (one delegation store) and one chroma server see each other's writes."""
    shared = tmp_path / "data"
    shared.mkdir()
    toolsets = ("--toolsets", "memory,delegation", "--memory-url", chroma_server)
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir(), b_dir.mkdir()
    project_a, project_b = copy_fixture(FIXTURE, a_dir), copy_fixture(FIXTURE, b_dir)  # two clones: tasks go by project name
    with http_serving(project_a, shared, *toolsets, stderr_path=tmp_path / "a.log") as url_a, \
            http_serving(project_b, shared, *toolsets, stderr_path=tmp_path / "b.log") as url_b:
        async with Client(url_a) as a, Client(url_b) as b:
            for client in (a, b):  # both on the chroma server, not the on-disk store in the data dir they also share
                assert ok(await client.call_tool("memory_stats", {}))["location"] == chroma_server
            key = "dbt-analytics-engineer/shop/shared-note"
            ok(await a.call_tool("memory_store", {"key": key, "value": "fct_orders is rebuilt nightly from stg_orders"}))
            found = ok(await b.call_tool("memory_retrieve", {"key": key}))
            assert [m["text"] for m in found["memories"]] == ["fct_orders is rebuilt nightly from stg_orders"]
            ok(await b.call_tool("memory_store", {"key": key, "value": "fct_orders is rebuilt hourly"}))  # B's upsert, seen by A
            assert [m["text"] for m in ok(await a.call_tool("memory_retrieve", {"key": key}))["memories"]] == ["fct_orders is rebuilt hourly"]

            task = ok(await a.call_tool("agent_delegate", {"to_agent": "sql-database-specialist", "task": "Check fct_orders totals"}))["task"]
            listed = ok(await b.call_tool("task_list", {"agent": "sql-database-specialist"}))
            assert task["id"] in [t["id"] for t in listed.get("tasks", [])], listed
            claimed = ok(await b.call_tool("task_claim", {"id": task["id"], "agent": "sql-database-specialist"}))["task"]
            assert claimed["status"] == "claimed"
            again = error(await a.call_tool("task_claim", {"id": task["id"], "agent": "cicd-engineer"}))  # A sees B's claim
            assert again["code"] == "task_claimed"
