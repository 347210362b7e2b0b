"""Column truth on a project in the dbt style guide's idiom (fixtures/styleguide: import CTEs, `select * from final`,
a Jinja loop of columns, a star macro, a seed and a source over one table), through a real MCP client: the tools that
reason about columns agree with what dbt and the database then do; on DuckDB and on PostgreSQL (tests/pg.py), where
the columns the database reports are PostgreSQL's. Column lineage (from the compiled SQL, stars expanded by the same
column model) runs on DuckDB."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from conftest import error, ok, stdio_session
from pg import Warehouse

pytestmark = pytest.mark.e2e

TOOLSETS = ("--toolsets", "dbt,lineage,quality")
# The fixture's README names these as the output columns its YAML leaves undocumented on purpose.
UNDOCUMENTED = {("customers", "country_name"), ("customers", "most_recent_order"), ("orders", "gift_card_amount")}


def file_hashes(project: Path) -> dict[str, str]:
    skip = ("target/", "logs/")
    return {p.relative_to(project).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(project.rglob("*"))
            if p.is_file() and not p.relative_to(project).as_posix().startswith(skip) and not p.name.endswith((".duckdb", ".wal"))}


async def test_a_rename_behind_stars_is_breaking_and_the_build_agrees(warehouse: Warehouse, styleguide_on: Path, data_dir: Path) -> None:
    styleguide = styleguide_on
    staged = styleguide / "models/staging/stg_payments.sql"
    base = staged.read_text()
    async with warehouse.session(styleguide, data_dir, *TOOLSETS) as client:
        ok(await client.call_tool("start_tracking", {"filepath": "models/staging/stg_payments.sql"}))
        unchanged = ok(await client.call_tool("analyze_changes", {}))["files"][0]
        assert unchanged["focus_score"] == 1.0 and unchanged["breaking"] is False and unchanged["lines_added"] == 0
        assert unchanged["columns_after"] == ["payment_id", "order_id", "payment_method", "amount"]  # through `select * from renamed`

        staged.write_text(base.replace("}} as amount", "}} as payment_amount"))
        renamed = ok(await client.call_tool("analyze_changes", {}))["files"][0]
        assert renamed["columns_removed"] == ["amount"] and renamed["columns_added"] == ["payment_amount"], renamed
        assert renamed["columns_renamed"] == {"amount": "payment_amount"} and renamed["breaking"] is True
        broken_models = {uid for uid in renamed["broken_downstream"] if uid.startswith("model.")}
        assert broken_models == {"model.styleguide.customers", "model.styleguide.orders"}, renamed["broken_downstream"]
        assert any(uid.startswith("test.styleguide.not_null_stg_payments_amount") for uid in renamed["broken_downstream"])
        for read in renamed["broken_reads"]:
            line = (styleguide / read["path"]).read_text().splitlines()[read["line"] - 1]
            assert "amount" in line, (read, line)  # file:line points at the source file's line that names the column

        # dbt agrees: exactly those models fail when run (the tests are left out so that nothing is skipped instead)
        ran = ok(await client.call_tool("dbt_run", {"select": "stg_payments+"}))
        failed = {n["unique_id"] for n in ran["nodes"] if n["status"] == "error"}
        assert failed == broken_models, ran["nodes"]

        staged.write_text(base.replace("    from source", "    , 1 as batch_id\n    from source"))
        added = ok(await client.call_tool("analyze_changes", {}))["files"][0]
        assert added["columns_added"] == ["batch_id"] and added["columns_removed"] == [] and added["breaking"] is False, added


async def test_column_lineage_through_stars_and_the_relation_a_model_reads(styleguide: Path, data_dir: Path) -> None:
    async with stdio_session(styleguide, data_dir, *TOOLSETS) as client:
        down = ok(await client.call_tool("column_lineage", {"model": "stg_customers", "column": "first_name", "direction": "downstream"}))
        # stg_customers ends in `select * from renamed`; customers imports it with select * and ends in `select * from final`
        assert {(e["to_node"], e["to_column"]) for e in down["edges"]} == {("model.styleguide.customers", "first_name")}, down
        assert down["unresolved"] == []
        paid = ok(await client.call_tool("column_lineage", {"model": "stg_payments", "column": "amount", "direction": "downstream"}))
        targets = {(e["to_node"].split(".")[-1], e["to_column"]) for e in paid["edges"]}
        assert {("orders", f"{m}_amount") for m in ("credit_card", "coupon", "bank_transfer", "gift_card")} <= targets  # the Jinja loop
        assert {("orders", "amount"), ("customers", "customer_lifetime_value")} <= targets
        # through the star_except() macro (compiled first: it lists stg_orders' columns but status) and the mart's stars
        dated = ok(await client.call_tool("column_lineage", {"model": "stg_orders", "column": "order_date", "direction": "downstream"}))
        assert {("model.styleguide.int_orders_enriched", "order_date"), ("model.styleguide.int_orders_enriched", "order_month"),
                ("model.styleguide.orders", "order_date")} <= {(e["to_node"], e["to_column"]) for e in dated["edges"]}, dated
        seed_side = ok(await client.call_tool("column_lineage", {"model": "stg_orders", "column": "order_id"}))
        assert [(e["from_node"], e["from_column"]) for e in seed_side["edges"]] == [("seed.styleguide.raw_orders", "id")]
        source_side = ok(await client.call_tool("column_lineage", {"model": "stg_orders_from_source", "column": "order_id"}))
        assert [(e["from_node"], e["from_column"]) for e in source_side["edges"]] == [("source.styleguide.jaffle.raw_orders", "id")]
        missing = error(await client.call_tool("column_lineage", {"model": "customers", "column": "no_such_column"}))
        assert missing["code"] == "column_not_found" and "first_name" in missing["hint"]


async def test_project_check_and_metrics_use_the_real_columns(warehouse: Warehouse, styleguide_on: Path, data_dir: Path) -> None:
    styleguide = styleguide_on
    async with warehouse.session(styleguide, data_dir, *TOOLSETS) as client:
        first = ok(await client.call_tool("project_check", {"limit": 1000}))
    # the column model's work is kept in the data dir: a restarted server (a new Claude Desktop session) reuses it
    stored = json.loads(next((data_dir / "columns").glob("styleguide-*.json")).read_text())
    assert len(stored["compiled"]) == 8 and len(stored["memo"]) >= 8 + 4 and stored["stars"]
    async with warehouse.session(styleguide, data_dir, *TOOLSETS) as client:
        checked = ok(await client.call_tool("project_check", {"limit": 1000}))
        assert checked["violations"] == first["violations"]
        assert checked["by_rule"]["no_select_star"] == 0, checked["violations"]  # select * from final after an explicit final
        assert not [v for v in checked["violations"] if "__jinja" in v["message"]]  # the loop's '{{ m }}' is not a magic value
        undocumented = {(v["node"].split(".")[-1], column.strip(" ."))
                        for v in checked["violations"] if v["rule"] == "undocumented_columns"
                        for column in v["message"].split("no description for ", 1)[1].split(",")}
        assert undocumented == UNDOCUMENTED, checked["violations"]
        assert checked["by_rule"]["documented_columns_not_in_output"] == 0

        ok(await client.call_tool("dbt_docs", {}))
        catalog = json.loads((styleguide / "target/catalog.json").read_text())
        manifest = json.loads((styleguide / "target/manifest.json").read_text())
        outputs = documented = 0
        for uid, node in manifest["nodes"].items():
            if node["resource_type"] == "model":
                described = {name.lower() for name, c in node["columns"].items() if c.get("description")}
                columns = [name.lower() for name in catalog["nodes"][uid]["columns"]]
                outputs += len(columns)
                documented += sum(c in described for c in columns)
        coverage = ok(await client.call_tool("project_metrics", {}))["metrics"]["documentation_coverage"]
        assert (coverage["output_columns"], coverage["documented_columns"]) == (outputs, documented)
        assert coverage["columns"] == round(documented / outputs, 4) and outputs - documented == len(UNDOCUMENTED)


async def test_a_snapshot_on_a_missing_column_is_refused_and_replace_redefines(warehouse: Warehouse, styleguide_on: Path, data_dir: Path) -> None:
    styleguide = styleguide_on
    async with warehouse.session(styleguide, data_dir, "--toolsets", "dbt,authoring") as client:
        before = file_hashes(styleguide)
        refused = error(await client.call_tool("dbt_snapshot", {
            "name": "customers_snapshot", "relation": "stg_customers", "unique_key": "customer_id", "strategy": "timestamp",
            "updated_at": "updated_at"}))
        assert refused["code"] == "column_not_found" and "updated_at (updated_at)" in refused["message"], refused
        assert file_hashes(styleguide) == before
        made = ok(await client.call_tool("dbt_snapshot", {
            "name": "customers_snapshot", "relation": "stg_customers", "unique_key": "customer_id", "strategy": "check", "check_cols": ["email"]}))
        assert made["extra"]["authoring"]["nodes"] == ["snapshot.styleguide.customers_snapshot"]
        again = error(await client.call_tool("dbt_snapshot", {
            "name": "customers_snapshot", "relation": "stg_customers", "unique_key": "customer_id", "strategy": "check", "check_cols": ["email"]}))
        assert again["code"] == "duplicate_name" and "replace=true" in again["hint"]
        defined = styleguide / "snapshots/customers_snapshot.yml"
        first = defined.read_text()
        bad = error(await client.call_tool("dbt_snapshot", {
            "name": "customers_snapshot", "relation": "stg_customers", "unique_key": "customer_id", "strategy": "check",
            "check_cols": ["no_such_column"], "replace": True}))
        assert bad["code"] == "column_not_found" and defined.read_text() == first
        replaced = ok(await client.call_tool("dbt_snapshot", {
            "name": "customers_snapshot", "relation": "stg_customers", "unique_key": "customer_id", "strategy": "check",
            "check_cols": ["first_name", "email"], "replace": True}))
        assert replaced["extra"]["authoring"]["nodes"] == ["snapshot.styleguide.customers_snapshot"]
        text = defined.read_text()
        assert "- first_name" in text and text.count("name: customers_snapshot") == 1
        assert ok(await client.call_tool("dbt_snapshot", {"select": "customers_snapshot"}))["success"]

        # a source's loaded_at_field is checked in the warehouse after parsing: a missing one is rolled back byte for byte
        before = file_hashes(styleguide)
        source = {"name": "exports", "schema_name": "raw", "tables": [{"name": "raw_orders", "loaded_at_field": "loaded_at"}],
                  "freshness": {"warn_after": {"count": 1, "period": "day"}}}
        late = error(await client.call_tool("dbt_source", source))
        assert late["code"] == "column_not_found" and "loaded_at (loaded_at_field)" in late["message"] and file_hashes(styleguide) == before
        source["tables"][0]["loaded_at_field"] = "order_date"
        assert ok(await client.call_tool("dbt_source", source))["nodes"] == ["source.styleguide.exports.raw_orders"]
