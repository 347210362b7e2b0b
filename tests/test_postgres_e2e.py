"""Issue 17, item 1: the warehouse tools on a real PostgreSQL server, started by the tests (tests/pg.py).

The demo project builds on PostgreSQL unchanged (its SQL is what both DuckDB and PostgreSQL accept). Through one
server on the project's `postgres` target: a full build, previews in a read-only transaction that is rolled back
(PostgreSQL itself refuses a write the parser let through), a failing test's rows read the same way, the automatic
escalation of that failure, and authoring whose output columns and types come from PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import error, node_statuses, ok
from pg import Postgres, pg_database, pg_session, postgres  # noqa: F401  (fixtures)

pytestmark = pytest.mark.e2e

BAD_ROWS = ("901,777,2024-01-12 08:13:00,lost,2024-01-16 19:13:00\n"
            "902,778,2024-01-12 08:13:00,lost,2024-01-16 19:13:00\n")
STYLE_GUIDE_MART = """with customers as (
    select * from {{ ref('stg_customers') }}
),

final as (
    select customer_id, city, signup_date from customers
)

select * from final
"""


async def test_the_warehouse_tools_on_postgres(shop: Path, data_dir: Path, postgres: Postgres, pg_database: str) -> None:
    db = pg_database
    async with pg_session(shop, data_dir, postgres, db, "--toolsets", "dbt,authoring,lineage,files,quality,delegation",
                          "--auto-escalate-to", "data-governance-agent") as client:
        debug = ok(await client.call_tool("dbt_debug", {}))
        assert debug.get("success", True) is not False, debug

        # -- a full build through the warm worker, on PostgreSQL
        build = ok(await client.call_tool("dbt_build", {}))
        assert build["success"] is True and build["counts"]["ERROR"] == 0, build
        statuses = node_statuses(build)
        assert statuses["fct_orders"] == "success" and statuses["customers_snapshot"] == "success", statuses
        assert postgres.psql("select count(*) from main.fct_orders", db) == "36"

        # -- previews run in a read-only transaction that is rolled back; types are PostgreSQL's own
        shown = ok(await client.call_tool("dbt_show", {"sql": "select count(*) as n from {{ ref('fct_orders') }}"}))
        assert shown["rows"] == [[36]] and shown["column_types"] == ["bigint"], shown
        customers = ok(await client.call_tool("dbt_show", {"model": "stg_customers", "limit": 3}))
        assert len(customers["rows"]) == 3 and dict(zip(customers["columns"], customers["column_types"]))["city"] == "character varying"
        # the parser lets FOR UPDATE through (a query that only reads); PostgreSQL refuses it in a read-only transaction
        locked = error(await client.call_tool("dbt_show", {"sql": "select * from {{ ref('stg_orders') }} for update"}))
        assert locked["code"] == "not_read_only" and "read-only transaction" in locked["message"], locked
        for sql in ("with d as (delete from {{ ref('fct_orders') }} returning *) select * from d",
                    "select pg_read_file('/etc/passwd')", "select set_config('transaction_read_only', 'off', false)"):
            assert error(await client.call_tool("dbt_show", {"sql": sql}))["code"] in ("not_read_only", "relation_not_allowed"), sql
        assert postgres.psql("select count(*) from main.fct_orders", db) == "36"
        assert postgres.psql("select count(*) from pg_stat_activity where state = 'idle in transaction'", db) == "0"

        # -- a failing test: what it found is read in the same read-only transaction; the failure is escalated once
        seed = shop / "seeds/raw_orders.csv"
        seed.write_text(seed.read_text() + BAD_ROWS)
        raw = await client.call_tool("dbt_build", {"select": ["raw_orders", "stg_orders"]})
        failed, text = ok(raw), raw.content[0].text
        assert failed["success"] is False
        assert "orphan keys (2 of 2): customer_id = 777, 778: not found in ref('stg_customers').customer_id" in text, text
        assert len(failed["extra"]["escalated"]) == 2, failed.get("extra")
        again = ok(await client.call_tool("dbt_test", {"select": "stg_orders"}))
        assert again["success"] is False and "escalated" not in again.get("extra", {})

        # -- authoring: a style-guide mart (select * from final); its columns and types come from PostgreSQL
        created = ok(await client.call_tool("dbt_model", {"name": "dim_customer_cities", "layer": "marts", "sql": STYLE_GUIDE_MART}))
        assert created.get("validated") or created, created
        generated = ok(await client.call_tool("node_properties", {"name": "dim_customer_cities", "generate": True}))
        assert generated["added_columns"] == ["customer_id", "city", "signup_date"], generated
        lineage = ok(await client.call_tool("column_lineage", {"model": "dim_customer_cities", "column": "city"}))
        assert any("stg_customers" in str(edge) for edge in lineage.get("edges", [])), lineage
        # -- quality: sqlfluff and the checks read the project in PostgreSQL's dialect (the target's adapter)
        linted = ok(await client.call_tool("sql_lint", {"path": "models/marts/dim_customer_cities.sql"}))
        assert linted["dialect"] == "postgres", linted
        built = ok(await client.call_tool("dbt_build", {"select": "dim_customer_cities"}))
        assert built["success"] is True, built
        assert postgres.psql("select count(*) from main.dim_customer_cities", db) == postgres.psql("select count(*) from main.stg_customers", db)
