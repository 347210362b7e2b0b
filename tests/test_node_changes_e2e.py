"""model_update and node_properties (issue 15, item 3) through a real MCP client on a built copy of the demo project:
new SQL and config for an existing model with its YAML byte-identical and the build passing; broken SQL put back byte
for byte with dbt's error typed; dry runs writing nothing; generate writing exactly the columns DuckDB reports for a
new mart whose SQL only has stars through CTEs, keeping the descriptions and comments already there; bad input
changing no file. On DuckDB and on PostgreSQL (tests/pg.py): the columns generate writes are the ones the test's own
warehouse reports."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import error, node_statuses, ok
from pg import Warehouse
from ruamel.yaml import YAML
from test_files_e2e import tree

pytestmark = pytest.mark.e2e

STG = "models/staging/stg_customers.sql"
STAGING_YML = "models/staging/_staging.yml"
INT = "models/intermediate/int_order_totals.sql"
INT_YML = "models/intermediate/_intermediate.yml"
MART = "models/reporting/customer_cities.sql"
MART_YML = "models/reporting/_reporting.yml"  # the shop's convention: _<folder>.yml
MART_SQL = """with customers as (

    select * from {{ ref('stg_customers') }}

),

final as (

    select
        customers.*,
        customers.first_name || '@' || customers.city as tag
    from customers

)

select * from final
"""


async def test_model_update_and_node_properties(warehouse: Warehouse, built_shop_on: Path, data_dir: Path) -> None:
    project = built_shop_on
    (project / MART).parent.mkdir()
    (project / MART).write_text(MART_SQL)
    int_yml = project / INT_YML  # int_order_totals keeps its config in its YAML entry
    int_yml.write_text(int_yml.read_text().replace("  - name: int_order_totals\n", "  - name: int_order_totals\n    config:\n      materialized: view\n", 1))
    stg, staging_yml = project / STG, project / STAGING_YML
    original, yml_bytes = stg.read_bytes(), staging_yml.read_bytes()
    async with warehouse.session(project, data_dir) as client:
        before = tree(project)
        # -- refusals and bad input: typed, and no file changes
        unknown = error(await client.call_tool("model_update", {"name": "stg_customer", "sql": "select 1 as x"}))
        assert unknown["code"] == "model_not_found" and "stg_customers" in unknown["hint"], unknown
        assert error(await client.call_tool("model_update", {"name": "stg_customers"}))["code"] == "invalid_input"
        assert error(await client.call_tool("model_update", {"name": "raw_customers", "sql": "select 1 as x"}))["code"] == "model_not_found"
        assert error(await client.call_tool("model_update", {"name": "stg_customers", "config": {"bad key": 1}}))["code"] == "invalid_input"
        assert error(await client.call_tool("node_properties", {"name": "raw.no_such_table", "description": "x"}))["code"] == "model_not_found"
        assert error(await client.call_tool("node_properties", {"name": "stg_customers"}))["code"] == "invalid_input"
        missing = error(await client.call_tool("node_properties", {"name": "stg_customers", "columns": [{"name": "no_such_column", "description": "x"}]}))
        assert missing["code"] == "column_not_found" and "customer_id" in missing["message"], missing
        extra = error(await client.call_tool("node_properties", {"name": "stg_customers", "columns": [{"name": "city", "colour": "x"}]}))
        assert extra["code"] == "invalid_input" and "colour" in extra["message"], extra
        # broken SQL: the database refuses the query (a column stg_customers' source lacks), or dbt cannot compile it
        for bad, code in (("        city,\n", "column_not_found"), ("{{ source('raw', 'customers') }}", "dbt_")):
            replaced = original.decode().replace(bad, bad.replace("city", "cityy") if "city" in bad else "{{ ref('no_such_model') }}", 1)
            failed = error(await client.call_tool("model_update", {"name": "stg_customers", "sql": replaced}))
            assert failed["code"].startswith(code) and "put back" in failed["message"], failed
        # dry runs: the diff, nothing written
        dry = ok(await client.call_tool("model_update", {"name": "stg_customers", "config": {"materialized": "table"}, "dry_run": True}))
        assert dry["dry_run"] is True and "+        materialized='table'" in dry["files"][0]["diff"], dry
        dry = ok(await client.call_tool("node_properties", {"name": "customer_cities", "generate": True, "dry_run": True}))
        assert dry["files"][0]["action"] == "created" and "customer_id" in dry["files"][0]["diff"]
        assert tree(project) == before
        assert stg.read_bytes() == original

        # -- model_update: new SQL and a config() block; the YAML untouched; then the block edited in place
        new_sql = original.decode().replace("        city,\n", "        trim(city) as city,\n")
        updated = ok(await client.call_tool("model_update", {"name": "stg_customers", "sql": new_sql, "config": {"materialized": "table"}}))
        assert updated["validated"] == "parse+compile" and "model.shop.stg_customers" in updated["nodes"], updated
        assert [f["path"] for f in updated["files"]] == [STG] and any("baseline of " + STG in n for n in updated["notes"])
        written = stg.read_text()
        assert written.startswith("{{\n    config(\n        materialized='table'\n    )\n}}\n\n") and written.endswith(new_sql)
        again = ok(await client.call_tool("model_update", {"name": "stg_customers", "config": {"materialized": "view", "tags": ["daily"]}}))
        assert any("config() block of " + STG in n for n in again["notes"]), again
        assert stg.read_text() == written.replace("materialized='table'", "materialized='view',\n        tags=['daily']")
        assert staging_yml.read_bytes() == yml_bytes
        build = ok(await client.call_tool("dbt_build", {"select": "stg_customers+"}))
        assert build["success"] is True and node_statuses(build)["dim_customers"] == "success", build

        # -- node_properties: a new mart without YAML gets the folder's file by the project's convention
        first = ok(await client.call_tool("node_properties", {"name": "customer_cities", "description": "Customers with a tag.",
                                                              "columns": [{"name": "city", "description": "Where they live.", "tests": ["not_null"]}]}))
        assert first["files"] == [{"path": MART_YML, "action": "created", "diff": first["files"][0]["diff"]}]
        assert first["validated"] == "parse+compile" and any(n.startswith("test.shop.not_null_customer_cities_city") for n in first["nodes"]), first
        mart_yml = project / MART_YML
        mart_yml.write_text(mart_yml.read_text().replace("models:\n", "models:\n  # reporting models, documented by hand\n", 1))
        generated = ok(await client.call_tool("node_properties", {"name": "customer_cities", "generate": True}))
        text = mart_yml.read_text()
        assert "  # reporting models, documented by hand\n" in text and "description: Where they live." in text
        assert "Customers with a tag." in text and "not_null" in text
        added = generated["added_columns"]
        assert "city" not in added and added[-1] == "tag", generated
        nothing = ok(await client.call_tool("node_properties", {"name": "customer_cities", "generate": True}))
        assert "added_columns" not in nothing and nothing["files"][0]["action"] == "unchanged"
        build = ok(await client.call_tool("dbt_build", {"select": "customer_cities"}))
        assert build["success"] is True, build
        # a source table's entry, nested under its source
        source = ok(await client.call_tool("node_properties", {"name": "raw.customers", "columns": [{"name": "city", "description": "Town."}]}))
        assert source["files"][0]["path"] == "models/staging/_sources.yml"
        changed = [line for line in source["files"][0]["diff"].splitlines()[2:] if line[:1] in "+-"]
        assert changed == ["-            description: City of the customer's address (may change over time).",
                           "+            description: Town."], source  # `freshness: null` elsewhere stays as written
        # a model keeping its config in YAML: the keys go there, its SQL untouched
        int_sql = (project / INT).read_bytes()
        in_yaml = ok(await client.call_tool("model_update", {"name": "int_order_totals", "config": {"tags": ["finance"]}}))
        assert [f["path"] for f in in_yaml["files"]] == [INT_YML] and (project / INT).read_bytes() == int_sql, in_yaml
        entries = YAML(typ="safe").load((project / INT_YML).read_text())["models"]
        assert next(e for e in entries if e["name"] == "int_order_totals")["config"] == {"materialized": "view", "tags": ["finance"]}
    entry = YAML(typ="safe").load((project / MART_YML).read_text())["models"][0]
    documented = [c["name"] for c in entry["columns"]]
    real = [r[0] for r in warehouse.query(project, "select column_name from information_schema.columns "
                                                   "where table_name = 'customer_cities' order by ordinal_position")]
    assert real and sorted(documented) == sorted(real) and [c for c in real if c != "city"] == added, (documented, real)
