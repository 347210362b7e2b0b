"""Issue 13: everything the authoring tools generate passes the project's own `sql_lint` at its configured rules (the
shop project has no .sqlfluff: sqlfluff's defaults, duckdb from the profile). Each generator is called once through a
real MCP client, then every .sql file the call wrote is linted by the same server."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import copy_shop, ok, stdio_session
from mcp import Client

pytestmark = pytest.mark.e2e

TOOLSETS = ("--toolsets", "dbt,authoring,quality")  # no embedding model to load

# Agent-written SQL, itself lint-clean: what the server adds around it (config block, incremental filter) is under test.
CLEAN_SQL = "select\n    order_id,\n    customer_id,\n    updated_at\nfrom {{ ref('stg_orders') }}\n"
CLEAN_ITEMS_SQL = "select\n    order_item_id,\n    order_id,\n    quantity,\n    updated_at\nfrom {{ ref('stg_order_items') }}\n"


def staging_only(shop: Path) -> Path:
    """The shop project with its sources and staging SQL only: no project generic test, so data_quality_test installs
    every shipped one (accepted_range included)."""
    for folder in ("tests", "snapshots", "models/intermediate", "models/marts"):
        shutil.rmtree(shop / folder)
    (shop / "models/staging/_staging.yml").unlink()
    macros = shop / "macros/_macros.yml"
    macros.write_text(macros.read_text().split("  - name: test_accepted_range")[0])
    return shop


async def written_sql(client: Client, tool: str, args: dict[str, Any]) -> list[str]:
    result = ok(await client.call_tool(tool, args))
    return [f["path"] for f in result["files"] if f["path"].endswith(".sql") and f["action"] in ("created", "modified")]


async def violations(client: Client, path: str) -> list[str]:
    linted = ok(await client.call_tool("sql_lint", {"path": path}))
    return [f"{v['code']} L{v['line']}:{v['position']} {v['description']}" for v in linted["violations"]]


async def test_every_generated_sql_file_passes_sql_lint(tmp_path: Path) -> None:
    project = staging_only(copy_shop(tmp_path))
    (tmp_path / "data").mkdir()
    calls: list[tuple[str, dict[str, Any], set[str]]] = [
        ("dbt_model", {  # columns with expressions, simple ones after a calculation (ST06), from a source
            "name": "stg_shop_orders", "layer": "staging", "from_source": "raw.orders",
            "columns": [{"name": "order_id", "expression": "cast(id as integer)"}, {"name": "status", "expression": "lower(status)"},
                        {"name": "customer_id", "expression": "cast(customer_id as integer)"},
                        {"name": "updated_at", "expression": "cast(updated_at as timestamp)"}],
        }, {"models/staging/stg_shop_orders.sql"}),
        ("dbt_model", {  # from_ref, one column (LT09), with a materialization (config block)
            "name": "int_order_keys", "layer": "intermediate", "from_ref": "stg_orders", "materialization": "table",
            "columns": [{"name": "order_id"}],
        }, {"models/intermediate/int_order_keys.sql"}),
        ("dbt_model", {  # the agent's SQL with a config block added
            "name": "int_order_customers", "layer": "intermediate", "sql": CLEAN_SQL, "materialization": "view",
        }, {"models/intermediate/int_order_customers.sql"}),
        ("incremental_model", {  # generated select with the is_incremental() filter (the model)
            "name": "fct_order_updates", "unique_key": "order_id", "updated_at": "updated_at", "from_ref": "stg_orders",
            "columns": [{"name": "order_id"}, {"name": "status"}, {"name": "updated_at"}],
        }, {"models/marts/fct_order_updates.sql"}),
        ("incremental_model", {  # composite unique_key (installs unique_combination_of_columns), filter around the agent's SQL
            "name": "fct_order_item_updates", "unique_key": ["order_id", "order_item_id"], "incremental_strategy": "delete+insert",
            "updated_at": "updated_at", "sql": CLEAN_ITEMS_SQL,
        }, {"models/marts/fct_order_item_updates.sql", "tests/generic/unique_combination_of_columns.sql"}),
        ("dbt_macro", {
            "name": "percent_of", "parameters": ["numerator", "denominator"],
            "body": "({{ numerator }} * 100.0 / nullif({{ denominator }}, 0))",
        }, {"macros/percent_of.sql"}),
        ("data_quality_test", {
            "model": "stg_shop_orders",
            "columns": [{"column": "order_id", "tests": [{"accepted_range": {"min_value": 1}}]}, {"column": "status", "tests": ["not_constant"]}],
            "tests": [{"recency": {"datepart": "day", "field": "updated_at", "interval": 36500}},
                      {"equal_rowcount": {"compare_model": "ref('stg_orders')"}}],
        }, {f"tests/generic/{n}.sql" for n in ("accepted_range", "not_constant", "recency", "equal_rowcount")}),
    ]
    failures: list[str] = []
    async with stdio_session(project, tmp_path / "data", *TOOLSETS) as client:
        for tool, args, expected in calls:
            paths = await written_sql(client, tool, args)
            assert set(paths) == expected, (tool, paths)
            for path in paths:
                found = await violations(client, path)
                if found:
                    failures.append(f"{tool} wrote {path} with {len(found)} violation(s):\n  " + "\n  ".join(found)
                                    + "\n--- " + path + "\n" + (project / path).read_text())
    assert not failures, "\n\n".join(failures)
