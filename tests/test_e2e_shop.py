"""The demo project's life cycle through a real MCP client over stdio: seed, build, batch 2, snapshot, docs; on DuckDB and
on PostgreSQL (tests/pg.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import all_pages, apply_batch2, ok, registered_tools, rows, run_server_cli, node_statuses
from pg import Warehouse

pytestmark = pytest.mark.e2e



async def test_shop_lifecycle(warehouse: Warehouse, shop_on: Path, data_dir: Path) -> None:
    shop = shop_on
    async with warehouse.session(shop, data_dir) as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(listed) == registered_tools() and len(registered_tools("dbt")) == 14
        assert listed["dbt_show"].annotations.read_only_hint is True
        assert listed["dbt_build"].annotations.destructive_hint is None  # the spec default: destructive
        assert listed["dbt_build"].output_schema == {"type": "object"}
        assert "select" in listed["dbt_run"].input_schema["properties"]
        assert listed["dbt_run"].input_schema["properties"]["select"].get("description")

        debug = ok(await client.call_tool("dbt_debug", {}))
        assert debug["connection_ok"] is True and any(warehouse.adapter in line for line in debug["output"]), debug

        seeded = ok(await client.call_tool("dbt_seed", {}))
        assert seeded["success"] and seeded["counts"]["PASS"] == 4

        progress: list[str] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append(message or "")

        built = ok(await client.call_tool("dbt_build", {}, progress_callback=on_progress))
        assert built["success"], built
        assert built["counts"]["ERROR"] == 0 and built["counts"]["PASS"] >= 60
        assert any("model.shop.fct_orders" in m for m in progress), "no per-node progress for fct_orders"
        first = await rows(client, "select count(*) as n, count(distinct order_id) as d from {{ ref('fct_orders') }}")
        assert first == [{"n": 36, "d": 36}]
        # column types are the database's own names
        shown = ok(await client.call_tool("dbt_show", {"model": "stg_customers", "limit": 3}))
        types = dict(zip(shown["columns"], shown["column_types"]))
        assert len(shown["rows"]) == 3 and (types["customer_id"], types["city"]) == {
            "duckdb": ("INTEGER", "VARCHAR"), "postgres": ("integer", "character varying")}[warehouse.target], types
        typed = ok(await client.call_tool("dbt_show", {"sql": "select cast(1.25 as numeric(10,2)) as amount, cast('x' as varchar(20)) as code"}))
        assert typed["column_types"] == {"duckdb": ["DECIMAL(10,2)", "VARCHAR"],
                                         "postgres": ["numeric(10,2)", "character varying(20)"]}[warehouse.target], typed

        # sqlfluff reads the project in the target's dialect (the demo project has no .sqlfluff)
        assert ok(await client.call_tool("sql_lint", {"path": "models/marts/fct_orders.sql"}))["dialect"] == warehouse.target

        compiled = ok(await client.call_tool("dbt_compile", {"select": "fct_orders"}))
        assert [n["unique_id"] for n in compiled["nodes"]] == ["model.shop.fct_orders"]
        node = compiled["nodes"][0]
        assert "int_order_totals" in node["compiled_sql"] and "{{" not in node["compiled_sql"]
        assert Path(node["compiled_path"]).is_file()

        inline = ok(await client.call_tool("dbt_compile", {"sql": "select order_id from {{ ref('fct_orders') }}"}))
        assert '"main"."fct_orders"' in inline["nodes"][0]["compiled_sql"]

        page1 = ok(await client.call_tool("dbt_list", {"resource_types": ["model"], "limit": 4}))
        assert page1["total"] == 10 and len(page1["items"]) == 4 and page1["next_cursor"] == "4"
        pages = await all_pages(client, "dbt_list", {"resource_types": ["model"], "limit": 4})
        names = [i["name"] for page in pages for i in ok(page)["items"]]
        assert len(pages) == 3
        assert len(names) == len(set(names)) == 10 and "fct_orders" in names

        fresh = ok(await client.call_tool("dbt_source_freshness", {}))
        assert len(fresh["nodes"]) == 3  # products has freshness: null
        assert all(n["age_s"] > 0 and n["status"] in ("error", "warn") for n in fresh["nodes"])
        assert fresh["success"] is False  # the demo data is old: stale is a result, not a tool error

        assert ok(await client.call_tool("dbt_snapshot", {}))["success"]

        # Batch 2: changed and late rows go through the incremental merge and the snapshot.
        apply_batch2(shop)
        assert ok(await client.call_tool("dbt_seed", {}))["success"]
        rebuilt = ok(await client.call_tool("dbt_build", {"exclude": "resource_type:snapshot"}))
        assert rebuilt["success"], rebuilt
        merged = ok(await client.call_tool("dbt_list", {"select": "fct_orders", "resource_types": ["model"]}))
        assert merged["items"][0]["materialized"] == "incremental"
        assert await rows(client, "select count(*) as n, count(distinct order_id) as d from {{ ref('fct_orders') }}") == [{"n": 40, "d": 40}]
        status = {
            r["order_id"]: r["status"]
            for r in await rows(client, "select order_id, status from {{ ref('fct_orders') }} where order_id in (12, 31, 34, 35, 37, 38)")
        }
        # 37 and 38 arrive late in batch 2 (batches/batch2/raw_orders.csv) and are merged in with their own statuses.
        assert status == {12: "returned", 31: "completed", 34: "shipped", 35: "shipped", 37: "completed", 38: "shipped"}
        changed_line = await rows(client, "select order_total_cents from {{ ref('fct_orders') }} where order_id = 36")
        assert changed_line == [{"order_total_cents": 20600}]

        assert ok(await client.call_tool("dbt_snapshot", {}))["success"]
        history = await rows(
            client,
            "select customer_id, dbt_valid_to is null as is_current from {{ ref('customers_snapshot') }} "
            "where customer_id in (3, 7) order by customer_id, dbt_valid_from",
        )
        assert history == [
            {"customer_id": 3, "is_current": False}, {"customer_id": 3, "is_current": True},
            {"customer_id": 7, "is_current": False}, {"customer_id": 7, "is_current": True},
        ]

        docs = ok(await client.call_tool("dbt_docs", {}))
        assert Path(docs["extra"]["paths"]["index.html"]).is_file()
        assert Path(docs["extra"]["paths"]["catalog.json"]).is_file()
        assert docs["extra"]["catalog"]["nodes"] >= 10

        parsed = ok(await client.call_tool("dbt_parse", {}))
        assert parsed["extra"]["counts"]["model"] == 10


def test_demo_session_runs_clean(tmp_path: Path) -> None:
    """`make demo`'s job: the agent-style session over stdio ends with every step as expected."""
    import json

    run = run_server_cli("demo", "--workdir", str(tmp_path / "demo"))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "12/12 steps as expected" in run.stdout and "call dbt_build" in run.stdout
    assert "call data_quality_test" in run.stdout and "call vector_search" in run.stdout
    assert "dbt-analytics-engineer/shop/fct-orders-config" in run.stdout.split("call vector_search", 1)[1]

    # The results themselves, not the demo's own verdict.
    steps = json.loads((tmp_path / "demo" / "demo-results.json").read_text())
    results = [(step["tool"], step["is_error"], step["result"]) for step in steps]
    assert [tool for tool, _, _ in results] == [
        "dbt_debug", "dbt_list", "dbt_seed", "dbt_build", "dbt_compile", "data_quality_test", "data_quality_test", "dbt_test",
        "dbt_show", "dbt_source_freshness", "memory_store", "vector_search"]
    assert not any(is_error for _, is_error, _ in results)
    by_step = [result for _, _, result in results]
    assert by_step[0]["connection_ok"] is True
    assert by_step[1]["total"] == 10 and "fct_orders" in {item["name"] for item in by_step[1]["items"]}
    assert by_step[2]["success"] and by_step[2]["counts"]["PASS"] == 4
    assert by_step[3]["success"] and by_step[3]["counts"]["ERROR"] == 0 and by_step[3]["counts"]["PASS"] >= 60
    assert by_step[4]["nodes"][0]["unique_id"] == "model.shop.fct_orders" and "int_order_totals" in by_step[4]["nodes"][0]["compiled_sql"]
    assert by_step[5]["dry_run"] is True and by_step[6]["dry_run"] is False
    assert any(f["path"] == "models/marts/_marts.yml" for f in by_step[6]["files"])
    assert by_step[7]["success"] and any("not_constant" in name for name in node_statuses(by_step[7]))
    shown = {row[0]: row[1] for row in by_step[8]["rows"]}
    assert sum(shown.values()) == 36 and shown["completed"] == 25  # every order of batch 1, by status
    assert by_step[9]["success"] is False and by_step[9]["counts"]["TOTAL"] == 3  # the demo data is stale on purpose
    assert by_step[10]["count"] == 1
    assert by_step[11]["memories"][0]["key"] == "dbt-analytics-engineer/shop/fct-orders-config"
