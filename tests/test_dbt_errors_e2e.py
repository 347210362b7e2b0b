"""Bad input and failures through a real MCP client: typed errors with hints, failing runs as results. The recovery test
runs on DuckDB and on PostgreSQL (tests/pg.py)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from conftest import error, ok, run_server_cli, stdio_session, node_statuses
from pg import Warehouse

pytestmark = pytest.mark.e2e

# Queries that run for hours, in each database's own functions (PostgreSQL materializes a set-returning function's rows,
# so its query crosses two small ones instead of counting to 5e10).
SLOW_SQL = {"duckdb": "select sum(hash(i)) from range(50000000000) t(i)",
            "postgres": "select count(*) from generate_series(1, 1000000) as a(i), generate_series(1, 1000000) as b(j)"}
# The database's own line for a column that does not exist.
NO_COLUMN = {"duckdb": "Binder Error", "postgres": 'column "no_such_column" does not exist'}


async def left_running(warehouse: Warehouse, project: Path, within_s: float = 10) -> list[tuple[int, str]]:
    """Queries of the slow kind still running in the warehouse `within_s` after the call ended. DuckDB runs in the worker
    process, which the server kills; a PostgreSQL server runs a query on until it notices or is told to stop."""
    if warehouse.duckdb:
        return []
    left: list[tuple[int, str]] = []
    for _ in range(int(within_s * 10)):
        left = warehouse.query(project, "select pid, query from pg_stat_activity where state = 'active' "
                                        "and pid <> pg_backend_pid() and query like '%generate_series%'")
        if not left:
            break
        await anyio.sleep(0.1)
    return left


async def test_bad_input_failures_and_worker_recovery(warehouse: Warehouse, built_shop_on: Path, data_dir: Path) -> None:
    shop = built_shop_on
    slow_sql = SLOW_SQL[warehouse.target]
    (shop / "tests" / "assert_always_fails.sql").write_text("select order_id from {{ ref('fct_orders') }} limit 1\n")
    async with warehouse.session(shop, data_dir) as client:
        # A failing data test is a result (success=false, failing node first), not a tool error.
        built = ok(await client.call_tool("dbt_build", {"select": "fct_orders+"}))
        assert built["success"] is False and node_statuses(built)["fct_orders"] == "success"
        assert built["nodes"][0]["unique_id"] == "test.shop.assert_always_fails"
        assert built["nodes"][0]["status"] == "fail" and built["counts"]["ERROR"] == 1
        raw_test = await client.call_tool("dbt_test", {"select": "assert_always_fails"})
        tested = ok(raw_test)
        assert tested["success"] is False and tested["nodes"][0]["failures"] == 1
        assert "next: dbt_show model='assert_always_fails'" in raw_test.content[0].text
        assert "failing rows (1 of 1): order_id" in raw_test.content[0].text

        # Unknown model, flag injection, DDL in dbt_show, both sql and model.
        assert error(await client.call_tool("dbt_run", {"select": "no_such_model"}))["code"] == "model_not_found"
        assert error(await client.call_tool("dbt_show", {"model": "no_such_model"}))["code"] == "model_not_found"
        assert error(await client.call_tool("dbt_compile", {"sql": "select * from {{ ref('no_such_model') }}"}))["code"] == "model_not_found"
        injected = error(await client.call_tool("dbt_run", {"select": "--full-refresh"}))
        assert injected["code"] == "invalid_input" and "flag" in injected["message"]
        assert error(await client.call_tool("dbt_build", {"exclude": ["ok", "-x"]}))["code"] == "invalid_input"
        assert error(await client.call_tool("dbt_run", {"target": "--help"}))["code"] == "invalid_input"
        assert error(await client.call_tool("dbt_show", {"sql": "drop table main.fct_orders"}))["code"] == "not_read_only"
        assert error(await client.call_tool("dbt_show", {"sql": "select 1; delete from main.fct_orders"}))["code"] == "not_read_only"
        assert error(await client.call_tool("dbt_show", {"sql": "select 1", "model": "fct_orders"}))["code"] == "invalid_input"
        assert error(await client.call_tool("dbt_list", {"cursor": "abc"}))["code"] == "invalid_input"
        still_there = ok(await client.call_tool("dbt_show", {"sql": "select count(*) as n from {{ ref('fct_orders') }}"}))
        assert still_there["rows"] == [[36]]
        foreign = error(await client.call_tool("dbt_show", {"sql": "select * from no_such_table"}))
        assert foreign["code"] == "relation_not_allowed" and "no_such_table" in foreign["message"]
        db_error = error(await client.call_tool("dbt_show", {"sql": "select no_such_column from {{ ref('fct_orders') }}"}))
        assert db_error["code"] == "dbt_database_error" and "no_such_column" in db_error["message"]

        # A model the database rejects: the text carries the database's own line under dbt's, and the next step.
        (shop / "models" / "marts" / "fct_missing_column.sql").write_text("select no_such_column from {{ ref('fct_orders') }}\n")
        rejected = await client.call_tool("dbt_run", {"select": "fct_missing_column"})
        text = rejected.content[0].text
        assert ok(rejected)["success"] is False and NO_COLUMN[warehouse.target] in text and "no_such_column" in text, text
        assert "next: fix in models/marts/fct_missing_column.sql, then dbt_build select='fct_missing_column+'" in text, text
        (shop / "models" / "marts" / "fct_missing_column.sql").unlink()

        # A compile error in a model file is a typed error naming the file.
        broken = shop / "models" / "marts" / "broken_model.sql"
        broken.write_text("select {{ not_a_macro() }} as x\n")
        compile_error = error(await client.call_tool("dbt_compile", {"select": "broken_model"}))
        assert compile_error["code"] in ("dbt_compilation_error", "dbt_parse_error")
        assert "broken_model" in compile_error["message"]
        broken.unlink()

        # Broken target: debug reports it; a run is a typed connection error.
        debug = ok(await client.call_tool("dbt_debug", {"target": "broken"}))
        assert debug["connection_ok"] is False
        assert error(await client.call_tool("dbt_run", {"target": "broken", "select": "stg_orders"}))["code"] == "connection_error"

        # Timeout: the worker is killed and restarted; the next call works. (The worker has parsed: the query is running.)
        assert ok(await client.call_tool("dbt_show", {"sql": "select 1 as one"}))["rows"] == [[1]]
        timed_out = error(await client.call_tool("dbt_show", {"sql": slow_sql, "timeout_seconds": 2}))
        assert timed_out["code"] == "timeout"
        assert await left_running(warehouse, shop) == [], "the timed-out query still runs in the database"
        assert ok(await client.call_tool("dbt_list", {"resource_types": ["model"]}))["total"] == 10

        # Cancellation from the client: same recovery.
        with anyio.move_on_after(3) as scope:
            await client.call_tool("dbt_show", {"sql": slow_sql})
        assert scope.cancelled_caught
        assert await left_running(warehouse, shop) == [], "the cancelled query still runs in the database"
        assert ok(await client.call_tool("dbt_show", {"sql": "select 42 as answer"}))["rows"] == [[42]]

        # A run that times out: its query stops in the database too (the worker cancels it before it goes; PostgreSQL
        # would run it on to the end). A cancelled call stops the worker the same way (engine.py: kill on both).
        slow_model = shop / "models" / "marts" / "slow_model.sql"
        slow_model.write_text(slow_sql + "\n")
        assert error(await client.call_tool("dbt_run", {"select": "slow_model", "timeout_seconds": 4}))["code"] == "timeout"
        assert await left_running(warehouse, shop) == [], "the timed-out run's query still runs in the database"
        slow_model.unlink()
        assert ok(await client.call_tool("dbt_show", {"sql": "select 43 as answer"}))["rows"] == [[43]]

        # A profiles.yml someone broke by hand: a typed profile error, not a crash.
        (shop / "profiles.yml").write_text("shop:\n  target: dev\n  outputs: [broken\n")
        assert error(await client.call_tool("dbt_list", {}))["code"] == "profile_error"


async def test_missing_project_dir_still_initializes(tmp_path: Path, data_dir: Path) -> None:
    missing = tmp_path / "does-not-exist"
    async with stdio_session(missing, data_dir) as client:
        assert {t.name for t in (await client.list_tools()).tools} >= {"dbt_build", "dbt_debug"}
        failure = error(await client.call_tool("dbt_build", {}))
        assert failure["code"] == "project_not_found" and "--project-dir" in failure["hint"]


def test_doctor_reports_and_says_what_to_fix(shop: Path, data_dir: Path, tmp_path: Path) -> None:
    good = run_server_cli("doctor", "--project-dir", str(shop), "--data-dir", str(data_dir), timeout=300)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "all checks passed" in good.stdout and "[ok  ] connection" in good.stdout and "[ok  ] parse" in good.stdout
    bad = run_server_cli("doctor", "--project-dir", str(tmp_path / "missing"), "--data-dir", str(data_dir), timeout=300)
    assert bad.returncode == 1 and "[FAIL] project" in bad.stdout and "fix: pass --project-dir" in bad.stdout
