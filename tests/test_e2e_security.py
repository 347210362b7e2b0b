"""Issue 10's findings 1-5 with their exact inputs, on a default and on a --read-only server over one built project.

Each hostile call must come back as a typed error, leave every table as it was, write no file anywhere, and leave
the project's files byte for byte unchanged. The database is read directly (duckdb, psycopg2) after the server stopped.
The default server's tests run on DuckDB and on PostgreSQL (tests/pg.py), with each database's own hostile functions
besides; the read-only server differs only in the tools it registers, and runs on DuckDB.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from conftest import copy_built, error, node_statuses, ok, stdio_session
from pg import Warehouse, built_copy

pytestmark = pytest.mark.e2e

PWN_FILES = [Path("/tmp/pwn.csv"), Path("/tmp/pwn_seed.csv"), Path("/tmp/pwn_compile.csv"), Path("/tmp/pwn_model.csv")]

# A project macro that runs a statement: the agent's Jinja names nothing denied, so only the worker's statement
# guard (second wall) can stop it.
SNEAKY_MACRO = """{% macro sneaky() %}{% do run_query("create table main.sneaky as select 1 as x") %}{% endmacro %}\n"""

SHOW_STATEMENTS = [
    # 1. several statements behind strings the old regex did not know
    "select x'41' as c, E'\\'' as a ; copy (select 'pwned' as x) to '/tmp/pwn.csv' ; select E'\\'' as b",
    "select x'41' as c, E'\\'' as a ; drop table main.fct_orders ; select E'\\'' as b",
    "select x'41' as c, E'\\'' as a ; create table main.pwned (y varchar) ; select E'\\'' as b",
    # 2. files and the server's settings
    "select content from read_text('/etc/passwd')",
    "select * from read_csv('/etc/passwd')",
    "select * from glob('/etc/*')",
    "select * from duckdb_settings()",
    "select current_setting('home_directory') as home",
    "select * from information_schema.tables",
    # Jinja that runs statements, inline
    "{% do run_query('drop table main.fct_orders') %}select 1 as x",
    "select 1 as x {{ sneaky() }}",
]
# PostgreSQL's own ways to reach files, settings, other sessions and writes from one query.
SHOW_STATEMENTS_PG = [
    "select pg_read_file('/etc/passwd')",
    "select * from pg_ls_dir('/etc')",
    "select set_config('transaction_read_only', 'off', false)",
    "select pg_terminate_backend(pid) from pg_stat_activity",
    "select lo_import('/etc/passwd')",
    "select * from pg_settings",
    "with d as (delete from {{ ref('fct_orders') }} returning *) select * from d",
    # the parser lets FOR UPDATE through (a query that only reads); PostgreSQL refuses it in a read-only transaction
    "select * from {{ ref('stg_orders') }} for update",
]
COMPILE_STATEMENTS = [
    # 3. dbt_compile is read-only: it may not run statements from Jinja
    "{% do run_query(\"copy (select 'pwned' as x) to '/tmp/pwn_compile.csv'\") %}select 1 as x",
    "select {{ run_query('drop table main.fct_orders') }} as x",
    "{% set a = adapter %}select {{ a['exe' ~ 'cute']('drop table main.fct_orders') }} as x",
    "select 1 as x {{ sneaky() }}",
]


def project_state(project: Path) -> dict[str, str]:
    """sha256 of every project file but build products and the database."""
    return {
        p.relative_to(project).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(project.rglob("*"))
        if p.is_file() and not {"target", "logs"} & set(p.relative_to(project).parts) and ".duckdb" not in p.name
    }


@pytest.fixture(scope="module")
def built(request: pytest.FixtureRequest, module_warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(project, data dir): a copy of the built demo project with a project macro that writes, shared by the module."""
    root = tmp_path_factory.mktemp("security")
    project = built_copy(request, module_warehouse, root)
    (project / "macros" / "sneaky.sql").write_text(SNEAKY_MACRO)
    (root / "data").mkdir()
    return project, root / "data"


@pytest.fixture(scope="module")
def built_on_duckdb(tmp_path_factory: pytest.TempPathFactory, built_shop_template: Path) -> tuple[Path, Path]:
    """`built` on DuckDB only, for the read-only server."""
    root = tmp_path_factory.mktemp("security-read-only")
    project = copy_built(built_shop_template, root)
    (project / "macros" / "sneaky.sql").write_text(SNEAKY_MACRO)
    (root / "data").mkdir()
    return project, root / "data"


async def _hostile_dbt_calls(client: Any, warehouse: Warehouse) -> None:
    for sql in SHOW_STATEMENTS + (SHOW_STATEMENTS_PG if warehouse.postgres else []):
        failure = error(await client.call_tool("dbt_show", {"sql": sql}))
        assert failure["code"] in ("not_read_only", "relation_not_allowed", "invalid_sql", "jinja_not_allowed"), (sql, failure)
    for sql in COMPILE_STATEMENTS:
        failure = error(await client.call_tool("dbt_compile", {"sql": sql}))
        assert failure["code"] in ("not_read_only", "jinja_not_allowed"), (sql, failure)
    # The second wall by itself: the project macro's statement is refused before it reaches the database.
    sneaky = error(await client.call_tool("dbt_compile", {"sql": "select 1 as x {{ sneaky() }}"}))
    assert sneaky["code"] == "not_read_only" and "CREATE" in sneaky["message"]
    # What previews are for still works, on the read-only connection.
    shown = ok(await client.call_tool("dbt_show", {"sql": "select count(*) as n from {{ ref('fct_orders') }}"}))
    assert shown["rows"] == [[36]]
    assert ok(await client.call_tool("dbt_show", {"model": "dim_customers", "limit": 3}))["row_count"] == 3
    compiled = ok(await client.call_tool("dbt_compile", {"sql": "select * from {{ ref('fct_orders') }}"}))
    assert "fct_orders" in compiled["nodes"][0]["compiled_sql"]


async def _hostile_protocol_calls(client: Any) -> None:
    """Finding 7: typos and input the SDK or sqlglot rejects come back typed, and nothing runs."""
    typo = error(await client.call_tool("dbt_list", {"selct": "fct_orders"}))
    assert typo["code"] == "invalid_input" and "'select'" in typo["message"]
    assert error(await client.call_tool("dbt_show", {"sql": "select 1 /* /* */ as a"}))["code"] == "invalid_sql"
    assert error(await client.call_tool("sql_lint", {"sql": "select 1", "dialect": "; rm -rf /"}))["code"] == "invalid_input"
    assert error(await client.call_tool("dbt_lst", {}))["code"] == "unknown_tool"
    # Finding 6 on any server: a key with control characters is refused by every memory tool.
    assert error(await client.call_tool("memory_retrieve", {"key": "dbt-analytics-engineer/shop\u0000/x"}))["code"] in ("invalid_key", "invalid_input")


async def test_hostile_inputs_on_a_default_server(built: tuple[Path, Path], module_warehouse: Warehouse) -> None:
    project, data_dir = built
    warehouse = module_warehouse
    for path in PWN_FILES:
        path.unlink(missing_ok=True)
    files_before, db_before = project_state(project), warehouse.tables(project)
    async with warehouse.session(project, data_dir) as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert listed["dbt_show"].annotations.read_only_hint is True
        assert listed["dbt_compile"].annotations.read_only_hint is True
        assert not listed["dbt_test"].annotations.read_only_hint  # store_failures writes tables
        await _hostile_dbt_calls(client, warehouse)
        if warehouse.duckdb:  # the protocol's hostile cases do not touch the warehouse: once (suite time)
            await _hostile_protocol_calls(client)
        if warehouse.postgres:  # every preview's read-only transaction was rolled back, refused or not
            assert warehouse.query(project, "select count(*) from pg_stat_activity where state like 'idle in transaction%'") == [(0,)]
        typo_build = error(await client.call_tool("dbt_build", {"selct": "stg_orders"}))
        assert typo_build["code"] == "invalid_input"

        if warehouse.duckdb:  # memory does not touch the warehouse: once (no embedding model to load on PostgreSQL)
            # 6. memory keeps no secrets, and refuses keys that look like one
            stored = ok(await client.call_tool("memory_store", {"text": "the prod db password is hunter2", "metadata": {
                "key": "dbt-analytics-engineer/shop/db-notes", "intent": "token=ghp_0123456789abcdefghijklmnopqrstuvwxyzAB"}}))
            assert stored["redactions"] == 2
            kept = ok(await client.call_tool("memory_retrieve", {"key": "dbt-analytics-engineer/shop/db-notes"}))
            assert "hunter2" not in str(kept) and "ghp_0123" not in str(kept)
            assert error(await client.call_tool("memory_store", {
                "key": "dbt-analytics-engineer/AKIAIOSFODNN7EXAMPLE/notes", "value": "x"}))["code"] == "invalid_key"
            assert error(await client.call_tool("memory_store", {"text": "x", "metadata": {
                "key": "dbt-analytics-engineer/shop/x", "namespace": "n" * 1_000_000}}))["code"] == "invalid_input"

        # 4. authoring does not run (or keep) the agent's statements
        model = error(await client.call_tool("dbt_model", {
            "name": "fct_pwned", "layer": "marts",
            "sql": "{% do run_query('drop table main.fct_orders') %}\nselect order_id from {{ ref('fct_orders') }}"}))
        assert model["code"] == "jinja_not_allowed" and "run_query" in model["message"]
        hooked = error(await client.call_tool("dbt_model", {
            "name": "fct_hooked", "layer": "marts", "sql": "select order_id from {{ ref('fct_orders') }}",
            "config": {"post_hook": "copy (select 1) to '/tmp/pwn_model.csv'"}}))
        assert hooked["code"] == "jinja_not_allowed" and "post_hook" in hooked["message"]
        macro = error(await client.call_tool("dbt_macro", {"name": "evil", "body": "{% do run_query('drop table main.fct_orders') %}"}))
        assert macro["code"] == "jinja_not_allowed"

        # 5. seed column types reach CREATE TABLE: a type grammar refuses SQL
        injected = error(await client.call_tool("dbt_seed", {
            "name": "pwn_seed", "csv": "code\nx\n",
            "column_types": {"code": "varchar); copy (select 'pwned' as x) to '/tmp/pwn_seed.csv'; create table x (y varchar"}}))
        assert injected["code"] == "invalid_input" and "column type" in injected["message"]
        failed_load = error(await client.call_tool("dbt_seed", {"name": "typed_seed", "csv": "a\n1\n", "column_types": {"a": "not_a_type"}}))
        assert failed_load["code"] == "dbt_database_error" and "put back" in failed_load["message"]
        assert not (project / "seeds" / "typed_seed.csv").exists()
    assert project_state(project) == files_before
    assert warehouse.tables(project) == db_before
    assert not [p for p in PWN_FILES if p.exists()]

    # Defining a seed loads that seed only.
    async with warehouse.session(project, data_dir) as client:
        defined = ok(await client.call_tool("dbt_seed", {"name": "country_codes", "rows": [{"code": "GB"}, {"code": "FR"}]}))
        assert defined["success"] and node_statuses(defined) == {"country_codes": "success"}


async def test_hostile_inputs_on_a_read_only_server(built_on_duckdb: tuple[Path, Path]) -> None:
    project, data_dir = built_on_duckdb
    warehouse = Warehouse("duckdb")
    for path in PWN_FILES:
        path.unlink(missing_ok=True)
    files_before, db_before = project_state(project), warehouse.tables(project)
    async with stdio_session(project, data_dir, "--read-only") as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert not {"dbt_model", "dbt_macro", "dbt_seed", "dbt_build"} & set(listed)
        assert all(tool.annotations.read_only_hint for name, tool in listed.items() if name.startswith("dbt_"))
        assert "memory_store" not in listed
        await _hostile_dbt_calls(client, warehouse)
        if warehouse.duckdb:  # the protocol's hostile cases do not touch the warehouse: once (suite time)
            await _hostile_protocol_calls(client)
    assert project_state(project) == files_before
    assert warehouse.tables(project) == db_before
    assert not [p for p in PWN_FILES if p.exists()]


async def test_allowing_sql_in_jinja_is_explicit_and_listed(built: tuple[Path, Path], module_warehouse: Warehouse) -> None:
    project, data_dir = built
    warehouse = module_warehouse
    async with warehouse.session(project, data_dir, "--allow-sql-in-jinja", "--toolsets", "dbt,authoring") as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert not listed["dbt_compile"].annotations.read_only_hint
        assert not listed["dbt_show"].annotations.read_only_hint
        planned = ok(await client.call_tool("dbt_model", {
            "name": "fct_hooked", "layer": "marts", "sql": "select order_id from {{ ref('fct_orders') }}",
            "config": {"post_hook": "select 1"}, "dry_run": True}))
        assert any("post_hook" in note and "every build" in note for note in planned["notes"]), planned
        # Allowed means allowed: the macro's statement runs while dbt renders (the widening the README names),
        # while the preview query itself still runs on the read-only connection.
        assert ok(await client.call_tool("dbt_show", {"sql": "select 1 as x {{ sneaky() }}"}))["rows"] == [[1]]
        written = error(await client.call_tool("dbt_show", {"sql": "select 1 as x; drop table main.fct_orders"}))
        assert written["code"] in ("not_read_only", "invalid_sql")
    state = warehouse.tables(project)
    assert state["main.fct_orders"] == 36
    if warehouse.postgres:
        # it ran in dbt's open transaction, which the preview rolls back before its own read-only one: nothing stays
        assert "main.sneaky" not in state, state
        return
    assert state["main.sneaky"] == 1
    warehouse.execute(project, "drop table main.sneaky")
