"""The authoring tools through a real MCP client on copies of the demo project: the seed prompt's Workflow 1 and 2,
bad input that must leave every project file byte-identical, and a local package installed offline. The workflows and
the tests the tools add run on DuckDB and on PostgreSQL (tests/pg.py); snapshots on PostgreSQL are in
test_e2e_shop's life cycle."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import pytest

from conftest import apply_batch2, error, ok, registered_tools, rows, stdio_session, node_statuses
from pg import Warehouse

pytestmark = pytest.mark.e2e



def bare_shop(shop: Path) -> Path:
    """The demo project with its seeds and macros but none of its models, snapshots or singular tests: the workflows
    author them again through the tools."""
    for folder in ("models", "snapshots", "tests"):
        shutil.rmtree(shop / folder)
    (shop / "models").mkdir()
    return shop


def project_hashes(project: Path) -> dict[str, str]:
    skip = {"target", "logs", "dbt_packages"}
    return {
        str(p.relative_to(project)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(project.rglob("*"))
        if p.is_file() and not (set(p.relative_to(project).parts) & skip) and p.suffix not in (".duckdb", ".wal") and p.name != ".user.yml"
    }


def failing(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(n["unique_id"], n["status"], (n.get("message") or "")[:300]) for n in result["nodes"] if n["status"] in ("error", "fail", "warn")]


def column(name: str, expression: str | None = None, description: str | None = None, tests: list[Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "description": description or f"The {name.replace('_', ' ')}."}
    if expression:
        out["expression"] = expression
    if tests:
        out["tests"] = tests
    return out


async def test_workflow_1_incremental_fact_table(warehouse: Warehouse, shop: Path, data_dir: Path) -> None:
    project = bare_shop(shop)
    async with warehouse.session(project, data_dir) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
        assert registered_tools("authoring") <= set(listed)
        assert not listed["dbt_model"].annotations.read_only_hint
        assert ok(await client.call_tool("dbt_seed", {}))["success"]

        # Step 1: the source, with freshness
        source = ok(await client.call_tool("dbt_source", {
            "name": "raw", "schema_name": "raw", "description": "Shop backend exports (loaded by dbt seed).",
            "loaded_at_field": "updated_at",
            "freshness": {"warn_after": {"count": 12, "period": "hour"}, "error_after": {"count": 24, "period": "hour"}},
            "tables": [
                {"name": "orders", "description": "Raw order data.", "columns": [column("id", tests=["unique", "not_null"])]},
                {"name": "order_items", "description": "Order lines."},
                {"name": "customers", "description": "Customers, latest version."},
            ],
        }))
        assert [(f["path"], f["action"]) for f in source["files"]] == [("models/staging/_sources.yml", "created")]
        created = source["files"][0]["diff"]
        assert created.startswith("--- /dev/null\n+++ b/models/staging/_sources.yml") and "+sources:" in created
        assert "+      - name: orders" in created and "+        warn_after:" in created
        assert "source.shop.raw.orders" in source["nodes"]
        text = (project / "models/staging/_sources.yml").read_text()
        assert "warn_after:" in text and "loaded_at_field: updated_at" in text

        # Step 2: staging models (explicit columns, source() only)
        stg = ok(await client.call_tool("dbt_model", {
            "name": "stg_orders", "layer": "staging", "from_source": "raw.orders", "description": "Orders, typed and renamed.",
            "columns": [column("order_id", "cast(id as integer)", tests=["unique", "not_null"]), column("customer_id", "cast(customer_id as integer)"),
                        column("ordered_at", "cast(ordered_at as timestamp)"), column("order_date", "cast(ordered_at as date)"),
                        column("status", "lower(status)"), column("updated_at", "cast(updated_at as timestamp)")],
        }))
        assert stg["validated"] == "parse+compile" and "model.shop.stg_orders" in stg["nodes"]
        sql = (project / "models/staging/stg_orders.sql").read_text()
        assert "{{ source('raw', 'orders') }}" in sql and "cast(id as integer) as order_id" in sql
        ok(await client.call_tool("dbt_model", {
            "name": "stg_order_items", "layer": "staging", "from_source": "raw.order_items",
            "columns": [column("order_item_id", "cast(id as integer)", tests=["unique", "not_null"]), column("order_id", "cast(order_id as integer)"),
                        column("quantity", "cast(quantity as integer)"), column("unit_price_cents", "cast(unit_price_cents as integer)"),
                        column("updated_at", "cast(updated_at as timestamp)")],
        }))
        ok(await client.call_tool("dbt_model", {
            "name": "stg_customers", "layer": "staging", "from_source": "raw.customers",
            "columns": [column("customer_id", "cast(customer_id as integer)", tests=["unique", "not_null"]), column("email"),
                        column("signup_date", "cast(signup_date as date)")],
        }))
        # intermediate: joins and aggregates, refs only
        ok(await client.call_tool("dbt_model", {
            "name": "int_order_totals", "layer": "intermediate", "description": "One row per order with its total.",
            "sql": (
                "with orders as (\n    select * from {{ ref('stg_orders') }}\n),\n\n"
                "items as (\n    select * from {{ ref('stg_order_items') }}\n),\n\n"
                "totals as (\n    select order_id, sum(quantity * unit_price_cents) / 100.0 as order_total, max(updated_at) as items_updated_at\n"
                "    from items\n    group by order_id\n)\n\n"
                "select\n    orders.order_id,\n    orders.customer_id,\n    orders.order_date,\n    orders.status,\n"
                "    coalesce(totals.order_total, 0) as order_total,\n"
                "    greatest(orders.updated_at, coalesce(totals.items_updated_at, orders.updated_at)) as updated_at\n"
                "from orders\nleft join totals on orders.order_id = totals.order_id\n"
            ),
        }))
        ok(await client.call_tool("dbt_model", {
            "name": "dim_customers", "layer": "marts", "materialization": "table", "from_ref": "stg_customers",
            "description": "Customer dimension.",
            "columns": [column("customer_id", tests=["unique", "not_null"]), column("email"), column("signup_date")],
        }))

        # Step 3: the incremental fact table, merge on order_id
        fct = ok(await client.call_tool("incremental_model", {
            "name": "fct_orders", "unique_key": "order_id", "incremental_strategy": "merge", "updated_at": "updated_at",
            "from_ref": "int_order_totals", "description": "Order facts, one row per order (incremental, merge on order_id).",
            "config": {"partition_by": "order_date", "cluster_by": ["customer_id"]},
            "columns": [column("order_id", description="Unique order identifier (PK)."), column("customer_id"), column("order_date"),
                        column("status"), column("order_total"), column("updated_at")],
        }))
        sql = (project / "models/marts/fct_orders.sql").read_text()
        assert "materialized='incremental'" in sql and "unique_key='order_id'" in sql and "incremental_strategy='merge'" in sql
        assert "{% if is_incremental() %}" in sql and ("where updated_at >= (\n            select max(existing_rows.updated_at)\n"
                                                      "            from {{ this }} as existing_rows\n        )") in sql
        assert "partition_by='order_date'" in sql and "cluster_by=['customer_id']" in sql
        assert any("unique_key order_id is tested unique and not_null" in n for n in fct["notes"])
        assert sorted(n.split(".")[2] for n in fct["nodes"] if n.startswith("test.")) == ["not_null_fct_orders_order_id", "unique_fct_orders_order_id"]

        # Step 4: tests, including relationships and accepted_range
        tested = ok(await client.call_tool("data_quality_test", {
            "model": "fct_orders",
            "columns": [
                {"column": "customer_id", "tests": ["not_null", {"relationships": {"to": "dim_customers", "field": "customer_id"}}]},
                {"column": "order_total", "tests": ["not_null", {"accepted_range": {"min_value": 0, "max_value": 1000000}}]},
                {"column": "status", "tests": [{"accepted_values": {"values": ["placed", "shipped", "completed", "returned", "cancelled"]}}]},
            ],
            "tests": [{"recency": {"datepart": "day", "field": "order_date", "interval": 100000}}],
        }))
        assert [f["path"] for f in tested["files"]] == ["tests/generic/accepted_range.sql", "tests/generic/recency.sql", "models/marts/_marts__models.yml"]
        marts = (project / "models/marts/_marts__models.yml").read_text()
        assert "relationships:" in marts and "to: ref('dim_customers')" in marts and "min_value: 0" in marts
        assert marts.count("- name: order_id") == 1  # merged into the existing entry, not duplicated

        # Step 5: docs, then the proof
        docs = ok(await client.call_tool("dbt_docs", {}))
        assert docs["success"] and Path(docs["extra"]["paths"]["catalog.json"]).is_file() and Path(docs["extra"]["paths"]["index.html"]).is_file()
        built = ok(await client.call_tool("dbt_build", {}))
        assert built["success"], failing(built)
        assert built["counts"]["ERROR"] == 0 and built["counts"]["PASS"] >= 20
        first = await rows(client, "select count(*) as n, count(distinct order_id) as d from {{ ref('fct_orders') }}")
        assert first == [{"n": 36, "d": 36}]

        # late and changed rows: the merge updates in place and inserts the new orders
        apply_batch2(project)
        assert ok(await client.call_tool("dbt_seed", {}))["success"]
        again = ok(await client.call_tool("dbt_build", {}))  # everything: a new order (37) has a new customer (16)
        assert again["success"], failing(again)
        after = await rows(client, "select count(*) as n, count(distinct order_id) as d, "
                                   "max(case when order_id = 36 then order_total end) as t36 from {{ ref('fct_orders') }}")
        assert after == [{"n": 40, "d": 40, "t36": 206.0}]


async def test_workflow_2_scd2_snapshot_and_point_in_time(shop: Path, data_dir: Path) -> None:
    project = shop
    (project / "snapshots/customers_snapshot.yml").unlink()  # the workflow creates it again through dbt_snapshot
    async with stdio_session(project, data_dir) as client:
        assert ok(await client.call_tool("dbt_seed", {}))["success"]
        planned = ok(await client.call_tool("dbt_snapshot", {
            "name": "customers_snapshot", "relation": "raw.customers", "unique_key": "customer_id", "strategy": "timestamp",
            "updated_at": "updated_at", "hard_deletes": "invalidate", "dry_run": True,
        }))
        assert planned["note"].startswith("dbt_snapshot: would write snapshots/customers_snapshot.yml (created)")
        assert not (project / "snapshots/customers_snapshot.yml").exists()
        made = ok(await client.call_tool("dbt_snapshot", {
            "name": "customers_snapshot", "relation": "raw.customers", "unique_key": "customer_id", "strategy": "timestamp",
            "updated_at": "updated_at", "hard_deletes": "invalidate", "description": "SCD2 history of customers.",
        }))
        assert made["extra"]["authoring"]["nodes"] == ["snapshot.shop.customers_snapshot"]
        text = (project / "snapshots/customers_snapshot.yml").read_text()
        assert "relation: source('raw', 'customers')" in text and "strategy: timestamp" in text and "hard_deletes: invalidate" in text
        assert ok(await client.call_tool("dbt_snapshot", {}))["success"]  # the first version of every customer

        apply_batch2(project)
        assert ok(await client.call_tool("dbt_seed", {}))["success"]
        assert ok(await client.call_tool("dbt_snapshot", {}))["success"]
        history = await rows(client, "select customer_id, count(*) as versions, count(dbt_valid_to) as closed "
                                     "from {{ ref('customers_snapshot') }} group by customer_id having count(*) > 1 order by customer_id")
        assert history == [{"customer_id": 3, "versions": 2, "closed": 1}, {"customer_id": 7, "versions": 2, "closed": 1}]
        current = await rows(client, "select count(*) as n from {{ ref('customers_snapshot') }} where dbt_valid_to is null")
        assert current == [{"n": 16}]
        # point in time: the day before batch 2's changes, customer 3 still had the old version
        at = await rows(client, "select customer_id, email from {{ ref('customers_snapshot') }} "
                                "where cast('2024-12-31' as timestamp) between dbt_valid_from and coalesce(dbt_valid_to, cast('9999-12-31' as timestamp)) "
                                "and customer_id in (3, 16) order by customer_id")
        now = await rows(client, "select email from {{ source('raw', 'customers') }} where customer_id = 3")
        assert at == [{"customer_id": 3, "email": "grace.hopper@example.com"}] and now == [{"email": "grace.hopper@navy.example.com"}]
        assert ok(await client.call_tool("dbt_build", {}))["success"]


BAD_CALLS: list[tuple[str, dict[str, Any], str]] = [
    ("dbt_model", {"name": "stg_orders", "layer": "staging", "sql": "select id from {{ source('raw', 'orders') }}"}, "duplicate_name"),
    ("dbt_model", {"name": "int_orphan", "layer": "intermediate", "sql": "select order_id from {{ ref('no_such_model') }}"}, "unknown_ref"),
    ("dbt_model", {"name": "../escape", "layer": "staging", "sql": "select 1 as x from {{ source('raw', 'orders') }}"}, "invalid_name"),
    ("dbt_model", {"name": "stg_things", "layer": "bronze", "sql": "select 1 as x from {{ source('raw', 'orders') }}"}, "invalid_layer"),
    ("dbt_model", {"name": "stg_broken", "layer": "staging", "sql": "select from where {{ source('raw', 'orders') }} )("}, "invalid_sql"),
    ("dbt_model", {"name": "fct_star", "layer": "marts", "sql": "select * from {{ ref('stg_orders') }}"}, "layering_violation"),
    ("dbt_model", {"name": "stg_joined", "layer": "staging", "sql": "select o.id from {{ source('raw', 'orders') }} o "
                   "join {{ source('raw', 'customers') }} c on o.customer_id = c.customer_id"}, "layering_violation"),
    ("dbt_model", {"name": "int_bad_jinja", "layer": "intermediate", "sql": "select order_id, {{ no_such_macro('x') }} as y from {{ ref('stg_orders') }}"},
     "dbt_compilation_error"),
    # parses, then fails when compiled (the project macro raises only when executing): the compile step's own error
    ("dbt_model", {"name": "int_compile_fails", "layer": "intermediate",
                   "sql": "select order_id, {{ fails_when_compiled() }} as v from {{ ref('stg_orders') }}"}, "dbt_compilation_error"),
    ("data_quality_test", {"model": "fct_orders", "columns": [{"column": "no_such_column", "tests": ["not_null"]}]}, "column_not_found"),
    ("data_quality_test", {"model": "fct_orders", "columns": [{"column": "order_id", "tests": ["is_even"]}]}, "unknown_test"),
    ("incremental_model", {"name": "fct_events", "incremental_strategy": "merge", "updated_at": "updated_at", "from_ref": "stg_orders",
                           "columns": [{"name": "order_id"}]}, "invalid_input"),
    ("incremental_model", {"name": "fct_daily", "unique_key": "order_id", "updated_at": "updated_at", "from_ref": "stg_orders",
                           "columns": [{"name": "order_id"}], "config": {"partition_by": {"field": "order_date", "data_type": "date"}}}, "adapter_option_invalid"),
    ("dbt_macro", {"name": "broken_macro", "body": "{% if %}select 1"}, "dbt_compilation_error"),  # dbt's parse rejects it: rolled back
    ("dbt_source", {"name": "raw", "tables": [{"name": "orders", "freshness": {"warn_after": {"count": -1, "period": "fortnight"}}}]}, "invalid_input"),
    ("exposure_define", {"name": "ghost_dashboard", "type": "dashboard", "depends_on": ["no_such_model"], "owner": {"name": "x"}}, "unknown_ref"),
    ("dbt_seed", {"name": "bad_seed", "csv": "a,b\n1,2,3\n"}, "invalid_csv"),
]


FAILS_WHEN_COMPILED = ("{% macro fails_when_compiled() %}{% if execute %}{{ exceptions.raise_compiler_error('not at compile time') }}"
                       "{% endif %}1{% endmacro %}\n")


async def test_bad_input_is_typed_and_changes_nothing(shop: Path, data_dir: Path) -> None:
    (shop / "macros" / "fails_when_compiled.sql").write_text(FAILS_WHEN_COMPILED)
    async with stdio_session(shop, data_dir) as client:
        before = project_hashes(shop)
        for tool, args, code in BAD_CALLS:
            failed = error(await client.call_tool(tool, args))
            assert failed["code"] == code, (tool, args, failed)
            assert failed["hint"], failed
            assert project_hashes(shop) == before, f"{tool} {args} changed the project"
        # YAML someone broke by hand: a typed error, and the broken file is left exactly as it was
        marts = shop / "models/marts/_marts.yml"
        marts.write_text(marts.read_text() + "\n  - name: [unclosed\n")
        broken = project_hashes(shop)
        failed = error(await client.call_tool("data_quality_test", {"model": "fct_orders", "columns": [{"column": "order_id", "tests": ["unique"]}]}))
        assert failed["code"] == "dbt_parse_error" and "_marts.yml" in failed["message"], failed
        assert project_hashes(shop) == broken
        # a dry run writes nothing either, and says what it would write
        marts.write_text(marts.read_text().rsplit("\n  - name: [unclosed\n", 1)[0])
        restored = project_hashes(shop)
        planned = ok(await client.call_tool("dbt_model", {"name": "int_order_status", "layer": "intermediate", "dry_run": True,
                                                          "from_ref": "stg_orders", "columns": [{"name": "order_id"}, {"name": "status"}]}))
        assert planned["dry_run"] and planned["validated"] == "not run (dry run)"
        assert {f["path"] for f in planned["files"]} == {"models/intermediate/int_order_status.sql", "models/intermediate/_intermediate.yml"}
        assert "+select\n+    order_id,\n+    status\n+from stg_orders" in next(f["diff"] for f in planned["files"] if f["path"].endswith(".sql"))
        assert project_hashes(shop) == restored


async def test_yaml_edits_keep_comments_and_other_columns(warehouse: Warehouse, built_shop_on: Path, data_dir: Path) -> None:
    shop = built_shop_on
    marts = shop / "models/marts/_marts.yml"
    original = marts.read_text()
    marts.write_text("# Marts properties: keep this comment.\n" + original)
    async with warehouse.session(shop, data_dir) as client:
        done = ok(await client.call_tool("data_quality_test", {
            "model": "fct_orders", "columns": [{"column": "total_quantity", "tests": [{"accepted_range": {"min_value": 1}}, "not_constant"]}],
            "tests": [{"unique_combination_of_columns": {"combination_of_columns": ["order_id", "customer_id"]}}],
        }))
        assert [f["path"] for f in done["files"]] == ["tests/generic/not_constant.sql", "tests/generic/unique_combination_of_columns.sql",
                                                      "models/marts/_marts.yml"]
        # accepted_range is the project's own generic test here: not installed again
        text = marts.read_text()
        assert text.startswith("# Marts properties: keep this comment.\n")
        removed = [line for line in original.splitlines() if line not in text.splitlines()]
        assert removed == [], removed  # every original line is still there; only additions
        tested = ok(await client.call_tool("dbt_test", {"select": "test_name:not_constant test_name:unique_combination_of_columns"}))
        new_tests = [name for name in node_statuses(tested) if "not_constant" in name or "unique_combination" in name]
        assert tested["success"] and len(new_tests) == 2, new_tests


async def test_macro_exposure_and_local_package(shop: Path, data_dir: Path, tmp_path: Path) -> None:
    package = tmp_path / "shop_helpers"
    (package / "macros").mkdir(parents=True)
    (package / "dbt_project.yml").write_text("name: shop_helpers\nversion: '1.0.0'\nconfig-version: 2\nmacro-paths: ['macros']\n")
    (package / "macros/safe_divide.sql").write_text("{% macro safe_divide(a, b) %}case when {{ b }} = 0 then null else {{ a }} / {{ b }} end{% endmacro %}\n")
    async with stdio_session(shop, data_dir) as client:
        macro = ok(await client.call_tool("dbt_macro", {
            "name": "cents_to_euros", "parameters": ["column_name", "rate=1.1"], "body": "round({{ column_name }} / 100.0 / {{ rate }}, 2)",
            "description": "Cents (USD) to euros.", "argument_descriptions": {"column_name": "A column in cents."},
        }))
        assert macro["nodes"] == ["macro.shop.cents_to_euros"]
        compiled = ok(await client.call_tool("dbt_compile", {"sql": "select {{ cents_to_euros('x') }} as y"}))
        assert "round(x / 100.0 / 1.1, 2)" in compiled["nodes"][0]["compiled_sql"]
        exposure = ok(await client.call_tool("exposure_define", {
            "name": "orders_notebook", "type": "notebook", "maturity": "medium", "depends_on": ["fct_orders", "dim_customers"],
            "owner": {"name": "Shop Analytics", "email": "analytics@shop.example.com"}, "url": "https://nb.example.com/orders",
        }))
        assert exposure["nodes"] == ["exposure.shop.orders_notebook"]
        assert "orders_notebook" in (shop / "models/marts/_exposures.yml").read_text()
        installed = ok(await client.call_tool("dbt_package", {"local": str(package)}))
        assert "shop_helpers" in installed["notes"][0]
        assert "local: " in (shop / "packages.yml").read_text()
        used = ok(await client.call_tool("dbt_compile", {"sql": "select {{ shop_helpers.safe_divide('a', 'b') }} as r"}))
        assert "case when b = 0 then null else a / b end" in used["nodes"][0]["compiled_sql"]
        # with dbt_utils installed, its tests are used instead of shipping ours (a local stand-in: no network here)
        utils = tmp_path / "dbt_utils"
        (utils / "macros").mkdir(parents=True)
        (utils / "dbt_project.yml").write_text("name: dbt_utils\nversion: '1.3.0'\nconfig-version: 2\nmacro-paths: ['macros']\n")
        (utils / "macros/not_constant.sql").write_text("{% test not_constant(model, column_name) %}select 1 as x where 1 = 0{% endtest %}\n")
        ok(await client.call_tool("dbt_package", {"local": str(utils)}))
        tested = ok(await client.call_tool("data_quality_test", {"model": "fct_orders", "columns": [{"column": "status", "tests": ["not_constant"]}]}))
        assert [f["path"] for f in tested["files"]] == ["models/marts/_marts.yml"]
        assert "- dbt_utils.not_constant" in (shop / "models/marts/_marts.yml").read_text()
        assert any("dbt_utils_not_constant" in n for n in tested["nodes"])
        # a package that cannot be installed leaves packages.yml as it was
        before = (shop / "packages.yml").read_text()
        failed = error(await client.call_tool("dbt_package", {"local": str(tmp_path / "nowhere")}))
        assert failed["code"] == "package_not_found" and (shop / "packages.yml").read_text() == before
