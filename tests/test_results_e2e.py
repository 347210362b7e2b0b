"""Issue 14: dbt results an agent can afford and act on, through a real client on the demo project.

A passing build is compact (passing nodes by name, the slowest five, rows); a failing node's text carries the
database's own error; a failing test shows what it found (offending values, orphan keys); a stale source names its
loaded_at field and threshold; an incremental model says whether it ran incrementally and how many rows it merged.
Each test runs on DuckDB and on PostgreSQL (tests/pg.py)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from conftest import BATCH2, apply_batch2, node_statuses, ok
from pg import Warehouse

pytestmark = pytest.mark.e2e
DBT_ONLY = ("--toolsets", "dbt")
INT_VIEWS = ["int_customer_order_history", "int_order_items_enriched", "int_order_totals"]


def compact(structured: dict) -> int:
    return len(json.dumps(structured, separators=(",", ":")))


def nulls(value: object, path: str = "") -> list[str]:
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in nulls(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in nulls(v, f"{path}[{i}]")]
    return []


def changed_orders_in_batch2() -> int:
    """Orders batch 2 changes or adds (their own row or one of their lines), read from the CSVs, not from dbt."""
    orders, items = BATCH2 / "raw_orders.csv", BATCH2 / "raw_order_items.csv"
    return duckdb.sql(f"select count(*) from (select id from read_csv('{orders}') where updated_at >= '2025-01-01' "
                      f"union select order_id from read_csv('{items}') where updated_at >= '2025-01-01')").fetchall()[0][0]


async def test_results_are_compact_and_say_what_happened(warehouse: Warehouse, built_shop_on: Path, data_dir: Path) -> None:
    built_shop = built_shop_on
    async with warehouse.session(built_shop, data_dir, *DBT_ONLY) as client:
        raw = await client.call_tool("dbt_build", {})
        build = ok(raw)
        total = build["counts"]["TOTAL"]
        assert build["success"] and total > 60
        # Passing nodes collapse to names; nothing null or default-valued is sent.
        assert "nodes" not in build and sum(map(len, build["passed"].values())) == total
        assert compact(build) <= 3000 * total / 50, compact(build)
        assert not nulls(build), nulls(build)
        assert "truncated" not in build
        assert len(build["slowest"]) == 5 and all(s["s"] > 0 for s in build["slowest"])
        # Tables and seeds say how many rows they hold now; the demo's incremental model was already built.
        assert build["rows_affected"]["raw_orders"] == 36 and build["rows_affected"]["dim_customers"] == 15
        assert build["incremental"] == {"fct_orders": "incremental"} and build["rows_affected"]["fct_orders"] == 0

        apply_batch2(built_shop)
        raw = await client.call_tool("dbt_build", {})
        second = ok(raw)
        assert second["success"] and second["incremental"] == {"fct_orders": "incremental"}
        assert second["rows_affected"]["fct_orders"] == changed_orders_in_batch2() == 9
        assert "fct_orders incremental (9 rows)" in raw.content[0].text

        rebuilt = ok(await client.call_tool("dbt_run", {"select": "fct_orders", "full_refresh": True}))
        assert rebuilt["incremental"] == {"fct_orders": "full_refresh"} and rebuilt["rows_affected"]["fct_orders"] == 40

        # Rebuilding a view alone: PostgreSQL drops the views that read it (dbt replaces it, then DROP ... CASCADE), a
        # view nobody made with dbt included; the result says which are gone and how to get them back. DuckDB drops none.
        if warehouse.postgres:
            warehouse.execute(built_shop, "create view main.report_orders as select * from main.int_order_totals")

        async def views() -> list[str]:
            shown = [v for v in INT_VIEWS if not (await client.call_tool("dbt_show", {"sql": f"select 1 from {{{{ ref('{v}') }}}}"})).is_error]
            if warehouse.postgres:  # a view of the team's own, not a dbt node (read directly: previews read project relations only)
                shown += [r[0] for r in warehouse.query(built_shop, "select table_name from information_schema.views where table_name = 'report_orders'")]
            return shown

        before = await views()
        alone = ok(await client.call_tool("dbt_run", {"select": "stg_orders"}))
        dropped = [w for w in alone.get("warnings", []) if "dependent view" in w]
        after = await views()
        if warehouse.postgres:
            assert before == [*INT_VIEWS, "report_orders"] and after == ["int_order_items_enriched"], (before, after)
            assert len(dropped) == 1 and "dropped 3 dependent view(s)" in dropped[0], dropped
            assert "int_order_totals" in dropped[0] and "int_customer_order_history" in dropped[0]
            assert "main.report_orders (not a dbt node)" in dropped[0]
            assert "select='int_customer_order_history int_order_totals'" in dropped[0], dropped[0]
        else:
            assert before == after == INT_VIEWS and not dropped, (before, after, dropped)
        again = ok(await client.call_tool("dbt_run", {"select": "stg_orders+", "exclude": "fct_orders"}))
        assert again["success"] and not [w for w in again.get("warnings", []) if "dependent view" in w], again
        assert await views() == INT_VIEWS


async def test_failures_carry_the_database_error_and_what_the_test_found(warehouse: Warehouse, built_shop_on: Path,
                                                                          data_dir: Path) -> None:
    built_shop = built_shop_on
    with open(built_shop / "seeds/raw_orders.csv", "a") as csv:
        csv.write("901,777,2024-01-12 08:13:00,lost,2024-01-16 19:13:00\n"
                  "902,778,2024-01-12 08:13:00,lost,2024-01-16 19:13:00\n"
                  "903,2,2024-01-12 08:13:00,misplaced,2024-01-16 19:13:00\n")
    (built_shop / "models/marts/broken_mart.sql").write_text("select no_such_column from {{ ref('dim_customers') }}\n")
    async with warehouse.session(built_shop, data_dir, *DBT_ONLY) as client:
        raw = await client.call_tool("dbt_run", {"select": "broken_mart"})
        assert ok(raw)["success"] is False and node_statuses(ok(raw)) == {"broken_mart": "error"}
        # the database's own message, not only dbt's "Runtime Error in model" wrapper
        own = {"duckdb": 'Binder Error: Referenced column "no_such_column" not found',
               "postgres": 'column "no_such_column" does not exist'}[warehouse.target]
        assert own in raw.content[0].text, raw.content[0].text
        assert "next: fix in models/marts/broken_mart.sql, then dbt_build select='broken_mart+'" in raw.content[0].text

        raw = await client.call_tool("dbt_build", {"select": ["raw_orders", "stg_orders"]})
        build, text = ok(raw), raw.content[0].text
        assert build["success"] is False and node_statuses(build)["stg_orders"] == "success"
        # accepted_values: the values it does not accept, with their counts
        assert "values not accepted (2 of 2): lost (2 rows), misplaced (1 rows)" in text
        # relationships: the orphan keys and where they were looked for
        assert "orphan keys (2 of 2): customer_id = 777, 778: not found in ref('stg_customers').customer_id" in text
        failed = {n["name"]: n for n in build["nodes"] if n["status"] == "fail"}
        orphans = failed["relationships_stg_orders_customer_id__customer_id__ref_stg_customers_"]
        assert sorted(row[0] for row in orphans["failing_rows"]["rows"]) == [777, 778]
        # the query that shows them all is one call away, and it works
        assert "next: dbt_show model='relationships_stg_orders_customer_id__customer_id__ref_stg_customers_'" in text
        shown = ok(await client.call_tool("dbt_show", {"model": "relationships_stg_orders_customer_id__customer_id__ref_stg_customers_"}))
        assert sorted(row[0] for row in shown["rows"]) == [777, 778]

        # A stale source names the field, its newest value and the threshold it broke.
        raw = await client.call_tool("dbt_source_freshness", {"select": "source:raw.orders"})
        assert ok(raw)["success"] is False
        assert "max(updated_at) = 2024-11-24T01:48:00" in raw.content[0].text
        assert "threshold: warn_after 12 hour, error_after 2 day" in raw.content[0].text
