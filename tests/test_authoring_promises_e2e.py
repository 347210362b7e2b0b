"""README promises of the authoring toolset that no other test checked (issue 12), through a real MCP client over stdio:
seeds defined from rows or CSV with their column types, a check-strategy snapshot, YAML edits that replace a test of
the same kind and keep the file's `tests:`/`data_tests:` spelling, package files put back when an install fails,
and the incremental defaults. One server and one copy of the shop project serve the whole module, once on DuckDB and
once on PostgreSQL (tests/pg.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import copy_shop, error, ok, rows
from mcp import Client
from pg import Warehouse

pytestmark = pytest.mark.e2e

TOOLSETS = ("--toolsets", "dbt,authoring")  # no embedding model to load


@pytest.fixture(scope="module")
def project(module_warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shop project, with its intermediate properties file spelled the old way (`tests:`)."""
    root = tmp_path_factory.mktemp("authoring_promises")
    shop = copy_shop(root)
    (root / "data").mkdir()
    intermediate = shop / "models/intermediate/_intermediate.yml"
    intermediate.write_text(intermediate.read_text().replace("data_tests:", "tests:"))
    return shop


@pytest.fixture(scope="module")
async def client(module_warehouse: Warehouse, project: Path) -> AsyncIterator[Client]:
    """One server for the module (per warehouse)."""
    async for session in module_warehouse.held(project, project.parent / "data", *TOOLSETS):
        yield session


def entry(path: Path, section: str, name: str) -> dict[str, Any]:
    found = [e for e in yaml.safe_load(path.read_text())[section] if e["name"] == name]
    assert len(found) == 1, found
    return found[0]


def column_of(model: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in model["columns"] if c["name"] == name)


def spellings(node: dict[str, Any]) -> set[str]:
    """The spellings of the test lists in one properties entry and its columns."""
    keys = {k for k in ("tests", "data_tests") if k in node}
    for column in node.get("columns") or []:
        keys |= {k for k in ("tests", "data_tests") if k in column}
    return keys


def planned_text(result: dict[str, Any], path: str) -> str:
    """A created file's text, from a dry run's diff."""
    diff = next(f["diff"] for f in result["files"] if f["path"] == path)
    return "".join(line[1:] + "\n" for line in diff.splitlines()[2:] if line.startswith("+"))


def authored(result: dict[str, Any]) -> dict[str, Any]:
    """The authoring part of a dbt_seed / dbt_snapshot result."""
    return result["extra"]["authoring"]


async def test_seed_from_rows_loads_with_declared_column_type(client: Client, project: Path, module_warehouse: Warehouse) -> None:
    seeded = ok(await client.call_tool("dbt_seed", {
        "name": "country_codes", "description": "Countries and their population in millions.",
        "rows": [{"code": "GB", "name": "United Kingdom", "population": 67}, {"code": "FR", "name": "France", "population": 68}],
        "column_types": {"population": "bigint"},
    }))
    assert seeded["success"] and seeded["passed"] == {"success": ["country_codes"]} and seeded["rows_affected"] == {"country_codes": 2}
    assert {(f["path"], f["action"]) for f in authored(seeded)["files"]} == {("seeds/country_codes.csv", "created"), ("seeds/_seeds.yml", "modified")}
    assert (project / "seeds/country_codes.csv").read_text() == "code,name,population\nGB,United Kingdom,67\nFR,France,68\n"
    props = entry(project / "seeds/_seeds.yml", "seeds", "country_codes")
    assert props["config"] == {"column_types": {"population": "bigint"}}
    assert props["description"].startswith("Countries")
    # DuckDB alone would read 67 as INTEGER (dbt-postgres as integer): BIGINT is the declared type
    typeof, bigint, text = {"duckdb": ("typeof", "BIGINT", "VARCHAR"), "postgres": ("pg_typeof", "bigint", "text")}[module_warehouse.target]
    loaded = await rows(client, f"select code, population, cast({typeof}(population) as varchar) as t, "
                                f"cast({typeof}(name) as varchar) as n from {{{{ ref('country_codes') }}}} order by code")
    assert loaded == [{"code": "FR", "population": 68, "t": bigint, "n": text},
                      {"code": "GB", "population": 67, "t": bigint, "n": text}]


async def test_seed_from_csv_and_check_snapshot_versions_on_checked_column(client: Client, project: Path,
                                                                           module_warehouse: Warehouse) -> None:
    seeded = ok(await client.call_tool("dbt_seed", {
        "name": "plan_tiers", "csv": "tier,label,monthly_fee\nbasic,Basic,5\npro,Pro,20\n", "column_types": {"monthly_fee": "decimal(10,2)"},
    }))
    assert seeded["success"] and seeded["rows_affected"] == {"plan_tiers": 2}
    assert (project / "seeds/plan_tiers.csv").read_text() == "tier,label,monthly_fee\nbasic,Basic,5\npro,Pro,20\n"
    assert entry(project / "seeds/_seeds.yml", "seeds", "plan_tiers")["config"] == {"column_types": {"monthly_fee": "decimal(10,2)"}}
    shown = ok(await client.call_tool("dbt_show", {"sql": "select monthly_fee from {{ ref('plan_tiers') }}"}))
    assert shown["column_types"] == [{"duckdb": "DECIMAL(10,2)", "postgres": "numeric(10,2)"}[module_warehouse.target]]

    made = ok(await client.call_tool("dbt_snapshot", {
        "name": "plan_tiers_snapshot", "relation": "plan_tiers", "unique_key": "tier", "strategy": "check", "check_cols": ["monthly_fee"],
    }))
    assert authored(made)["nodes"] == ["snapshot.shop.plan_tiers_snapshot"]
    config = entry(project / "snapshots/plan_tiers_snapshot.yml", "snapshots", "plan_tiers_snapshot")
    assert config["relation"] == "ref('plan_tiers')"
    assert config["config"] == {"schema": "snapshots", "unique_key": "tier", "strategy": "check", "check_cols": ["monthly_fee"],
                                "hard_deletes": "invalidate"}
    assert ok(await client.call_tool("dbt_snapshot", {"select": "plan_tiers_snapshot"}))["success"]
    # the checked column changes for pro; only an unchecked column changes for basic
    (project / "seeds/plan_tiers.csv").write_text("tier,label,monthly_fee\nbasic,Basic plan,5\npro,Pro,25\n")
    assert ok(await client.call_tool("dbt_seed", {"select": "plan_tiers"}))["success"]
    assert ok(await client.call_tool("dbt_snapshot", {"select": "plan_tiers_snapshot"}))["success"]
    history = await rows(client, "select tier, label, cast(monthly_fee as integer) as fee, dbt_valid_to is null as current "
                                 "from {{ ref('plan_tiers_snapshot') }} order by tier, dbt_valid_from")
    assert history == [{"tier": "basic", "label": "Basic", "fee": 5, "current": True},
                       {"tier": "pro", "label": "Pro", "fee": 20, "current": False},
                       {"tier": "pro", "label": "Pro", "fee": 25, "current": True}]


async def test_a_test_of_the_same_kind_is_replaced_not_duplicated(client: Client, project: Path) -> None:
    marts = project / "models/marts/_marts.yml"
    for values in (["placed", "shipped"], ["placed", "shipped", "completed"]):
        done = ok(await client.call_tool("data_quality_test", {
            "model": "fct_orders", "columns": [{"column": "status", "tests": [{"accepted_values": {"values": values}}]}],
        }))
        assert [f["path"] for f in done["files"]] == ["models/marts/_marts.yml"]
        assert len([n for n in done["nodes"] if "accepted_values_fct_orders_status" in n]) == 1, done["nodes"]
    status = column_of(entry(marts, "models", "fct_orders"), "status")
    assert status["data_tests"] == [{"accepted_values": {"arguments": {"values": ["placed", "shipped", "completed"]}}}]
    assert spellings(entry(marts, "models", "fct_orders")) == {"data_tests"}  # this file's spelling


async def test_a_file_spelled_tests_keeps_tests_on_a_column_that_has_them(client: Client, project: Path) -> None:
    intermediate = project / "models/intermediate/_intermediate.yml"
    done = ok(await client.call_tool("data_quality_test", {
        "model": "int_order_totals", "columns": [{"column": "order_id", "tests": [{"accepted_range": {"min_value": 1}}]}],
    }))
    assert [f["path"] for f in done["files"]] == ["models/intermediate/_intermediate.yml"]
    order_id = column_of(entry(intermediate, "models", "int_order_totals"), "order_id")
    assert order_id["tests"] == ["unique", "not_null", {"accepted_range": {"arguments": {"min_value": 1}}}]
    assert "data_tests" not in order_id


async def test_a_file_spelled_tests_keeps_tests_for_new_test_lists(client: Client, project: Path) -> None:
    intermediate = project / "models/intermediate/_intermediate.yml"
    planned = ok(await client.call_tool("data_quality_test", {
        "model": "int_order_totals", "columns": [{"column": "status", "tests": ["not_null"]}], "dry_run": True,
        "tests": [{"unique_combination_of_columns": {"combination_of_columns": ["order_id", "customer_id"]}}],
    }))
    diff = next(f["diff"] for f in planned["files"] if f["path"] == "models/intermediate/_intermediate.yml")
    assert "data_tests:" not in diff and diff.count("+        tests:") == 1 and diff.count("+    tests:") == 1, diff
    assert "data_tests" not in intermediate.read_text()


async def test_incremental_defaults_on_schema_change_append_new_columns(client: Client, project: Path) -> None:
    planned = ok(await client.call_tool("incremental_model", {
        "name": "fct_order_updates", "unique_key": "order_id", "updated_at": "updated_at", "from_ref": "int_order_totals",
        "columns": [{"name": "order_id"}, {"name": "status"}, {"name": "updated_at"}], "dry_run": True,
    }))
    sql = planned_text(planned, "models/marts/fct_order_updates.sql")
    assert "        on_schema_change='append_new_columns'" in sql.splitlines()
    assert not (project / "models/marts/fct_order_updates.sql").exists()


async def test_incremental_composite_unique_key_is_tested_as_a_combination(client: Client, project: Path) -> None:
    made = ok(await client.call_tool("incremental_model", {
        "name": "fct_order_customer_keys", "unique_key": ["order_id", "customer_id"], "updated_at": "updated_at",
        "from_ref": "int_order_totals", "columns": [{"name": "order_id"}, {"name": "customer_id"}, {"name": "updated_at"}],
    }))
    assert "unique_key=['order_id', 'customer_id']" in (project / "models/marts/fct_order_customer_keys.sql").read_text()
    model = entry(project / "models/marts/_marts.yml", "models", "fct_order_customer_keys")
    assert model["data_tests"] == [{"unique_combination_of_columns": {"arguments": {"combination_of_columns": ["order_id", "customer_id"]}}}]
    tests = [n for n in made["nodes"] if n.startswith("test.")]
    assert len(tests) == 1 and "unique_combination_of_columns_fct_order_customer_keys" in tests[0], made["nodes"]
    assert any("unique_combination_of_columns" in note for note in made["notes"])


async def test_incremental_sql_with_its_own_filter_is_kept_as_written(client: Client, project: Path) -> None:
    body = ("select order_id, status, updated_at\n"
            "from {{ ref('int_order_totals') }}\n"
            "{% if is_incremental() %}\n"
            "where updated_at > (select max(updated_at) - interval 1 day from {{ this }})\n"
            "{% endif %}")
    planned = ok(await client.call_tool("incremental_model", {
        "name": "fct_order_late_updates", "unique_key": "order_id", "updated_at": "updated_at", "sql": body, "dry_run": True,
    }))
    sql = planned_text(planned, "models/marts/fct_order_late_updates.sql")
    assert sql.endswith(body + "\n") and sql.count("is_incremental()") == 1, sql
    assert "materialized='incremental'" in sql and not any("is_incremental() filter on" in n for n in planned["notes"])


def local_package(root: Path, name: str, macro: str, project_yml: str | None = None) -> Path:
    (root / "macros").mkdir(parents=True)
    (root / "dbt_project.yml").write_text(project_yml or f"name: {name}\nversion: '1.0.0'\nconfig-version: 2\nmacro-paths: ['macros']\n")
    (root / "macros" / f"{name}.sql").write_text(macro)
    return root


async def test_package_files_are_put_back_when_the_install_fails(client: Client, project: Path, tmp_path: Path) -> None:
    """Last in the module: it installs a package into the shared project."""
    good = local_package(tmp_path / "good_pkg", "good_pkg", "{% macro hello() %}1{% endmacro %}\n")
    ok(await client.call_tool("dbt_package", {"local": str(good)}))
    lock, packages = project / "package-lock.yml", project / "packages.yml"
    assert "good_pkg" in lock.read_text()
    lock.write_text("# Reviewed lock: dbt deps would not write this line again.\n" + lock.read_text())
    before = (lock.read_bytes(), packages.read_bytes())
    # dbt deps installs it (and rewrites the lock file); the parse after it fails
    broken = local_package(tmp_path / "broken_pkg", "broken_pkg", "{% macro oops( %}\n")
    failed = error(await client.call_tool("dbt_package", {"local": str(broken)}))
    assert failed["code"] == "dbt_compilation_error" and "put back" in failed["message"], failed
    assert (lock.read_bytes(), packages.read_bytes()) == before
    assert not (project / "dbt_packages/broken_pkg").exists()
    assert ok(await client.call_tool("dbt_parse", {}))["success"]  # the project still parses: nothing of the package is left
    # dbt deps itself fails: the package's own project file is broken
    unreadable = local_package(tmp_path / "unreadable_pkg", "unreadable_pkg", "{% macro x() %}1{% endmacro %}\n", "name: [unclosed\n")
    failed = error(await client.call_tool("dbt_package", {"local": str(unreadable)}))
    assert "put back" in failed["message"] and "Syntax error" in failed["message"], failed
    assert (lock.read_bytes(), packages.read_bytes()) == before
    assert ok(await client.call_tool("dbt_compile", {"sql": "select {{ good_pkg.hello() }} as one"}))["nodes"][0]["compiled_sql"] == "select 1 as one"
