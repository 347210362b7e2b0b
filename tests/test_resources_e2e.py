"""The project as MCP resources (issue 16 item 3), through a real client over stdio on copies of the shop project:
every resource and template resolves, a dbt result cut by the output budget links to its whole self, unknown names
fail typed, and no crafted name reads anything outside the data dir or the project."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import copy_built, held_session, ok, stdio_session
from mcp.shared.exceptions import MCPError
from mcp_types import ResourceLink

pytestmark = pytest.mark.e2e

BUDGET_TOKENS = 1000
MEMORY_KEY = "dbt-analytics-engineer/shop/fct-orders-config"


async def read_json(client: Any, uri: str) -> dict[str, Any]:
    result = await client.read_resource(uri, cache_mode="bypass")
    assert len(result.contents) == 1, result
    content = result.contents[0]
    assert content.mime_type == "application/json" and str(content.uri) == uri
    return json.loads(content.text)


async def read_error(client: Any, uri: str) -> MCPError:
    with pytest.raises(MCPError) as raised:
        await client.read_resource(uri, cache_mode="bypass")
    return raised.value


@pytest.fixture(scope="module")
def demo(built_shop_template: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(project, data dir): a built copy of the demo project, with a file in the data dir no resource may read."""
    root = tmp_path_factory.mktemp("resources")
    project = copy_built(built_shop_template, root)
    (root / "data").mkdir()
    (root / "data" / "secret.json").write_text('{"secret": "data-dir-file"}')
    return project, root / "data"


@pytest.fixture(scope="module")
async def client(demo: tuple[Path, Path]) -> AsyncIterator[Any]:
    """One default server (every toolset) on `demo`, shared by the tests below that do not change its settings. The
    first test must stay first: it reads dbt://run/latest before anything ran through this server."""
    async for session in held_session(*demo):
        yield session


async def test_every_resource_and_template_resolves_on_the_demo_project(client: Any) -> None:
    listed = {str(r.uri): r for r in (await client.list_resources()).resources}
    assert {"dbt://project", "dbt://run/latest"} <= set(listed), sorted(listed)
    templates = {t.uri_template: t for t in (await client.list_resource_templates()).resource_templates}
    assert {"dbt://node/{name}", "dbt://run/{run_id}", "memory://{+key}"} <= set(templates), sorted(templates)
    for item in [*listed.values(), *templates.values()]:
        assert item.title and item.description and item.icons and item.mime_type == "application/json", item

    # Nothing has run through this server yet: latest is a typed miss, not an empty document.
    missing = await read_error(client, "dbt://run/latest")
    assert missing.data["code"] == "run_not_found" and missing.data["hint"]

    project = await read_json(client, "dbt://project")
    assert project["adapter"] == "duckdb" and project["project"] == "shop"
    assert project["counts"]["model"] >= 8 and project["counts"]["seed"] >= 1 and project["counts"]["test"] > 10
    assert "last_run" not in project

    build = ok(await client.call_tool("dbt_build", {"select": "stg_orders"}))
    assert build["success"] is True and build["run_id"]
    by_id = await read_json(client, f"dbt://run/{build['run_id']}")
    latest = await read_json(client, "dbt://run/latest")
    assert by_id == latest and by_id["run_id"] == build["run_id"] and by_id["command"] == "build"
    assert {n["unique_id"] for n in by_id["all_nodes"]} >= {"model.shop.stg_orders"}
    assert len(by_id["all_nodes"]) == build["counts"]["TOTAL"]

    project = await read_json(client, "dbt://project")
    assert project["last_run"]["command"] == "build" and project["last_run"]["success"] is True
    assert project["latest_result"] == f"dbt://run/{build['run_id']}"

    node = await read_json(client, "dbt://node/fct_orders")
    assert node["unique_id"] == "model.shop.fct_orders" and node["resource_type"] == "model"
    assert "ref(" in node["raw_sql"] and "ref(" not in node["compiled_sql"] and "select" in node["compiled_sql"].lower()
    assert node["config"]["materialized"] in ("table", "incremental", "view")
    names = [c["name"] for c in node["columns"]]
    assert "order_id" in names and all(c.get("type") for c in node["columns"]), node["columns"]
    assert node["columns_from"] in ("catalog", "sql", "database") and "columns_unresolved" not in node
    assert node["description"]
    assert node["tests"] and all(t["unique_id"].startswith(("test.", "unit_test.")) for t in node["tests"])
    assert any(t.get("column") == "order_id" for t in node["tests"])
    assert node["parents"] and all(not p.startswith("test.") for p in node["children"])
    assert await read_json(client, "dbt://node/model.shop.fct_orders") == node

    source = await read_json(client, "dbt://node/" + next(p for p in node["parents"] if p.startswith("model.")))
    assert "model.shop.fct_orders" in source["children"]

    stored = ok(await client.call_tool("memory_store", {"key": MEMORY_KEY, "value": "fct_orders is incremental on order_id."}))
    assert stored
    memory = await read_json(client, f"memory://{MEMORY_KEY}")
    assert memory["key"] == MEMORY_KEY and "incremental on order_id" in memory["text"]


async def test_unknown_and_crafted_names_fail_typed_and_read_nothing(client: Any, demo: tuple[Path, Path]) -> None:
    assert (demo[1] / "secret.json").is_file()  # in the server's data dir: no crafted name may read it
    ok(await client.call_tool("dbt_build", {"select": "stg_orders"}))
    unknown = await read_error(client, "dbt://node/fct_ordres")
    assert unknown.data["code"] == "model_not_found" and unknown.data["did_you_mean"] == "fct_orders"
    assert "dbt_list" in unknown.data["hint"]
    assert (await read_error(client, "dbt://run/1700000000000-abcd")).data["code"] == "run_not_found"
    bad_key = await read_error(client, "memory://only-two/segments")
    assert bad_key.data["code"] == "invalid_key"
    assert (await read_error(client, f"memory://{MEMORY_KEY}-never-stored")).data["code"] == "memory_not_found"

    hostile = [
        "dbt://node/../../etc/passwd", "dbt://node/..%2F..%2Fetc%2Fpasswd", "dbt://node/%2Fetc%2Fpasswd",
        "dbt://node/..", "dbt://node/target%2Fmanifest.json", "dbt://node/profiles.yml",
        "dbt://run/../x", "dbt://run/..%2Fx", "dbt://run/..%2F..%2Fsecret", "dbt://run/%2Fetc%2Fpasswd",
        "dbt://run/latest%00", "dbt://run/..", "dbt://run/.%2E%2Fsecret",
        "memory://../../etc/passwd", "memory://a/b/../../../etc/passwd", "memory://%2Fetc%2Fpasswd/a/b",
        "dbt://node/x%00y",
    ]
    for uri in hostile:
        failure = await read_error(client, uri)
        assert failure.code == -32602, (uri, failure.code, failure.message)
        assert "root:" not in json.dumps(failure.data) and "data-dir-file" not in json.dumps(failure.data)


async def test_a_cut_build_result_links_to_the_whole_result(built_shop_template: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBT_AE_OUTPUT_BUDGET_TOKENS", str(BUDGET_TOKENS))
    project = copy_built(built_shop_template, tmp_path)
    (project / "tests" / "assert_resource_probe_fails.sql").write_text("select 1 as failing_row\n")
    (tmp_path / "data").mkdir()
    async with stdio_session(project, tmp_path / "data", "--toolsets", "dbt") as client:
        raw = await client.call_tool("dbt_build", {})
        build = ok(raw)
        assert build["truncated"] is True and build["omitted_nodes"] > 0 and build["success"] is False
        link = raw.content[-1]
        assert isinstance(link, ResourceLink), raw.content
        assert link.uri == f"dbt://run/{build['run_id']}" and link.mime_type == "application/json"
        whole = await read_json(client, link.uri)
        run_results = json.loads((project / "target" / "run_results.json").read_text())
        every = {r["unique_id"] for r in run_results["results"]}
        assert len(every) == build["counts"]["TOTAL"] > 60
        assert {n["unique_id"] for n in whole["all_nodes"]} == every
        assert whole["counts"] == build["counts"] and not whole.get("truncated") and not whole.get("omitted_nodes")
        failing = next(n for n in whole["all_nodes"] if n["unique_id"] == "test.shop.assert_resource_probe_fails")
        assert failing["status"] == "fail"

        # An uncut result carries no link.
        small = await client.call_tool("dbt_build", {"select": "stg_orders"})
        assert not ok(small).get("truncated") and not any(isinstance(c, ResourceLink) for c in small.content)


async def test_node_template_argument_completes_node_names(client: Any) -> None:
    from mcp_types import ResourceTemplateReference

    done = await client.complete(ResourceTemplateReference(type="ref/resource", uri="dbt://node/{name}"),
                                 {"name": "name", "value": "fct_"})
    assert "fct_orders" in done.completion.values and all("fct_" in v for v in done.completion.values)
