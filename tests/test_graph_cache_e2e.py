"""The dbt worker keeps dbt's linked graph while its manifest is unchanged (tools/dbt/engine/graph_cache.py): every
command that selects by graph must still see an edge an edit added or removed, build's test edges included, and an
inline query's node must reach the graph of its own call only. Real dbt on the demo project."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from conftest import node_statuses, ok, run_python, stdio_session

pytestmark = pytest.mark.e2e

DBT_ONLY = ("--toolsets", "dbt")
UNREF = "select 2 as id\n"
REF = "select id from {{ ref('graph_a') }}\n"
PROBES_YML = """version: 2
models:
  - name: graph_a
    columns:
      - name: id
        data_tests: [not_null]
  - name: graph_b
    columns:
      - name: id
        data_tests: [not_null]
"""


def write(project: Path, relative: str, text: str) -> None:
    path = project / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def add_probes(project: Path) -> None:
    write(project, "models/probes/graph_a.sql", "select 1 as id\n")
    write(project, "models/probes/graph_b.sql", UNREF)
    write(project, "models/probes/_probes.yml", PROBES_YML)


async def listed(client: Client, select: str, *resource_types: str) -> set[str]:
    args = {"select": select} | ({"resource_types": list(resource_types)} if resource_types else {})
    return {item["name"] for item in ok(await client.call_tool("dbt_list", args))["items"]}


async def ran(client: Client, tool: str, select: str) -> dict[str, str]:
    result = ok(await client.call_tool(tool, {"select": select}))
    assert result["success"] is True, result
    return node_statuses(result)


async def test_graph_selection_sees_an_edit_that_adds_or_removes_a_ref(shop: Path, data_dir: Path) -> None:
    add_probes(shop)
    tests = {"a": "not_null_graph_a_id", "b": "not_null_graph_b_id"}
    async with stdio_session(shop, data_dir, *DBT_ONLY) as client:
        # Unrelated models: each call after the first is served the graph linked for this manifest.
        assert await listed(client, "+graph_b", "model") == {"graph_b"}
        assert ok(await client.call_tool("dbt_compile", {"select": "graph_b"}))["nodes"][0]["compiled_sql"].strip() == UNREF.strip()
        assert await ran(client, "dbt_run", "graph_a+") == {"graph_a": "success"}
        assert await ran(client, "dbt_test", "graph_a+") == {tests["a"]: "pass"}
        assert await ran(client, "dbt_build", "+graph_b") == {"graph_b": "success", tests["b"]: "pass"}
        assert await ran(client, "dbt_build", "+graph_b") == {"graph_b": "success", tests["b"]: "pass"}

        # An edit adds a ref: the worker parses again, and every graph selection sees the new edge.
        write(shop, "models/probes/graph_b.sql", REF)
        assert await listed(client, "+graph_b", "model") == {"graph_a", "graph_b"}
        assert await ran(client, "dbt_run", "graph_a+") == {"graph_a": "success", "graph_b": "success"}
        assert await ran(client, "dbt_test", "graph_a+") == {tests["a"]: "pass", tests["b"]: "pass"}
        assert await ran(client, "dbt_build", "+graph_b") == {"graph_a": "success", tests["a"]: "pass", "graph_b": "success",
                                                              tests["b"]: "pass"}
        assert await ran(client, "dbt_build", "graph_a+") == {"graph_a": "success", tests["a"]: "pass", "graph_b": "success",
                                                              tests["b"]: "pass"}

        # Inline queries add a node for their own call; the project's graph keeps none of it.
        inline = ok(await client.call_tool("dbt_compile", {"sql": "select id from {{ ref('graph_a') }}"}))
        assert "graph_a" in inline["nodes"][0]["compiled_sql"]
        shown = ok(await client.call_tool("dbt_show", {"sql": "select count(*) as n from {{ ref('graph_b') }}"}))
        assert shown["rows"] == [[1]], shown
        inline = ok(await client.call_tool("dbt_compile", {"sql": "select id from {{ ref('graph_b') }}"}))
        assert "graph_b" in inline["nodes"][0]["compiled_sql"]
        assert await listed(client, "graph_a+") == {"graph_a", "graph_b", tests["a"], tests["b"]}

        # An edit removes the ref: the edge is gone for every command.
        write(shop, "models/probes/graph_b.sql", UNREF)
        assert await listed(client, "+graph_b", "model") == {"graph_b"}
        assert await ran(client, "dbt_run", "graph_a+") == {"graph_a": "success"}
        assert await ran(client, "dbt_build", "graph_a+") == {"graph_a": "success", tests["a"]: "pass"}
        assert await ran(client, "dbt_test", "graph_a+") == {tests["a"]: "pass"}


# The worker itself (tools/dbt/engine/worker.py, its real request handling and dbt), in a process of its own: every
# graph the cache hands dbt is compared with the one dbt's own Compiler.compile links for the same manifest.
SAME_GRAPHS = r"""
import json, sys
from pathlib import Path
from tools.dbt.engine import graph_cache, worker as w
from dbt.compilation import Compiler

project = Path(sys.argv[1])
wk = w.Worker(project, project)
served = Compiler.compile
compared = []

def shape(g):
    return sorted(g.nodes), sorted((a, b, d.get("edge_type")) for a, b, d in g.edges(data=True))

def spy(self, manifest, write=True, add_test_edges=False):
    got = served(self, manifest, write, add_test_edges)
    fresh = graph_cache._original_compile(self, manifest, False, add_test_edges)
    compared.append({"command": self.config.args.which, "test_edges": add_test_edges, "same": shape(got.graph) == shape(fresh.graph),
                     "same_order": list(got.graph.nodes) == list(fresh.graph.nodes), "nodes": got.graph.number_of_nodes(),
                     "inline": sorted(n for n in got.graph.nodes if n.startswith("sql_operation."))})
    return got

Compiler.compile = spy

def call(*args, **extra):
    reply = wk.handle({"id": 1, "op": "invoke", "args": list(args), **extra})
    assert reply.get("ok") and reply.get("success"), reply
    return reply["payload"]

steps = []
def step(name, payload=None):
    steps.append({"step": name, "hits": wk.graph_cache.hits, "misses": wk.graph_cache.misses,
                  "listed": sorted(item["name"] for item in (payload or {}).get("items", []))})

call("compile", "--select", "graph_b"); step("compile")
call("compile", "--select", "graph_b"); step("compile again")
call("build", "--select", "+graph_b"); step("build")
call("build", "--select", "+graph_b"); step("build again")
call("compile", "--inline", "select id from {{ ref('graph_a') }}"); step("inline")
wk.handle({"id": 1, "op": "invoke", "args": ["preview"], "options": {"sql": "select id from {{ ref('graph_b') }}", "limit": 1}}); step("preview")
(project / "models" / "probes" / "graph_b.sql").write_text("select id from {{ ref('graph_a') }}\n")
call("compile", "--inline", "select 1 as one"); step("inline after the edit")
step("listed", call("list", "--select", "+graph_b", "--resource-type", "model", "--output", "json", "--output-keys", "name"))
call("build", "--select", "+graph_b"); step("build after the edit")
# An in-place re-parse that changes an edge bumps the graph generation (Worker.note_graph): the graph follows it.
wk.manifest.nodes["model.shop.graph_a"].depends_on.nodes.append("model.shop.stg_orders")
wk.graph_generation += 1
step("in place", call("list", "--select", "+graph_a", "--resource-type", "model", "--output", "json", "--output-keys", "name"))
sys.stdout.flush()
w.send({"compared": compared, "steps": steps})
"""


def test_worker_graphs_equal_dbts_own_and_are_reused(built_shop: Path) -> None:
    add_probes(built_shop)
    out = run_python(SAME_GRAPHS, str(built_shop), timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    report: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    compared, steps = report["compared"], {s["step"]: s for s in report["steps"]}
    assert compared and all(c["same"] for c in compared), compared
    assert all(c["same_order"] for c in compared if not c["inline"]), compared
    # One link per manifest generation; build's test edges and inline queries reuse it.
    assert (steps["compile"]["misses"], steps["compile"]["hits"]) == (1, 0)
    assert (steps["compile again"]["misses"], steps["compile again"]["hits"]) == (1, 1)
    assert (steps["build again"]["misses"], steps["build again"]["hits"]) == (1, 3)
    assert steps["preview"]["hits"] == 5 and steps["preview"]["misses"] == 1
    assert [c["inline"] for c in compared if c["inline"]] == [["sql_operation.shop.inline_query"]] * 3
    assert [c["test_edges"] for c in compared] == [False, False, True, True, False, False, False, False, True, False]
    # The edit is a new generation: linked again (here by an inline query, whose node stays out of what is kept), and
    # the new edge is there.
    assert steps["inline after the edit"]["misses"] == 2
    assert steps["listed"]["misses"] == 2 and steps["listed"]["listed"] == ["graph_a", "graph_b"]
    assert steps["build after the edit"]["misses"] == 2 and steps["build after the edit"]["hits"] == 7
    assert steps["in place"]["misses"] == 3 and steps["in place"]["listed"] == ["graph_a", "stg_orders"]
