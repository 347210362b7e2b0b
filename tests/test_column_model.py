"""The column model against the database: for every model and snapshot of both fixtures (the shop and the style
guide's `select * from final` idiom), the columns inferred from dbt's compiled SQL alone (no catalog, no database) are
the columns DuckDB gives for the built relation: same names, same order."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tools.lineage.column_model import columns_read, infer, sql_output, stars_reaching_relations
from tools.lineage.column_service import gather_facts
from tools.lineage.graph import LineageGraph

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["built_shop_template", "built_styleguide_template"])
def built(request: pytest.FixtureRequest) -> tuple[Path, dict]:
    """The run's built copy of each fixture (read only here): its manifest holds every node's compiled SQL."""
    project: Path = request.getfixturevalue(request.param)
    return project, json.loads((project / "target" / "manifest.json").read_text())


def database_columns(project: Path, relation: str) -> list[str]:
    database = next(project.glob("*.duckdb"))
    with duckdb.connect(str(database), read_only=True) as con:
        return list(con.sql(f"select * from {relation.split('.', 1)[1]} limit 0").columns)


def test_inferred_columns_are_the_databases(built: tuple[Path, dict]) -> None:
    project, manifest = built
    graph = LineageGraph.from_manifest(manifest)
    compiled = {uid: (node.get("compiled_code"), None) for uid, node in manifest["nodes"].items() if node.get("compiled_code")}
    wanted = [u for u, n in graph.nodes.items() if n["resource_type"] in ("model", "snapshot", "seed", "source")]
    facts = gather_facts(graph, wanted, compiled, {}, project, manifest["metadata"]["project_name"])
    columns = infer(facts, "duckdb")
    checked = 0
    for uid, node in graph.nodes.items():
        if node["resource_type"] not in ("model", "snapshot", "seed"):
            continue
        expected = database_columns(project, node["relation_name"].replace('"', ""))
        assert columns[uid].known, (uid, columns[uid].unresolved)
        assert columns[uid].names == expected, uid
        checked += 1
    assert checked >= 10


def test_stars_and_reads_resolve_through_ctes() -> None:
    schema = {"db": {"main": {"stg_orders": {"order_id": "int", "amount": "int", "status": "text"},
                              "stg_payments": {"order_id": "int", "amount": "int"}}}}
    sql = ("with orders as (select * from db.main.stg_orders),\n"
           "payments as (select * from db.main.stg_payments),\n"
           "final as (\n  select orders.order_id, sum(payments.amount) as total\n"
           "  from orders join payments on orders.order_id = payments.order_id\n  where orders.status = 'x'\n  group by 1\n)\n"
           "select * from final")
    assert sql_output(sql, "duckdb", schema)[:2] == (["order_id", "total"], {"order_id": None, "total": None})
    reads = {(r.parent, r.column, r.line) for r in columns_read(sql, "duckdb", schema, {"db.main.stg_orders": "o", "db.main.stg_payments": "p"})}
    # stg_orders.amount is only passed through the import CTE's star: not read
    assert reads == {("o", "order_id", 4), ("p", "amount", 4), ("p", "order_id", 5), ("o", "status", 6)}
    assert not stars_reaching_relations(sql, "duckdb")
    assert stars_reaching_relations("with o as (select * from db.main.x) select * from o", "duckdb")
    assert stars_reaching_relations("with o as (select * from db.main.x) select o.*, 1 as n from o", "duckdb")
    assert sql_output("with o as (select * from db.main.unknown) select * from o", "duckdb", schema)[2] is not None


def test_an_incremental_model_reading_itself_still_traces() -> None:
    """Compiled against its existing table, an incremental model reads {{ this }} in its filter; sqlglot cannot trace
    any column of a query that reads a table it has no columns for, so the node's own relation joins its parents'."""
    from tools.lineage.column_model import NodeColumns, NodeFacts, lineage_schema, parent_relations, parent_schema
    from tools.lineage.columns import upstream_of_all

    sql = ('with orders as (select * from "db"."main"."int_totals" where updated_at > '
           '(select max(updated_at) from "db"."main"."fct_orders")) select order_id, cents / 100.0 as total, updated_at from orders')
    nodes = {"model.x.int_totals": NodeFacts("model.x.int_totals", "model", relation="db.main.int_totals"),
             "model.x.fct_orders": NodeFacts("model.x.fct_orders", "model", relation="db.main.fct_orders",
                                             parents=["model.x.int_totals"], compiled_sql=sql)}
    known = {"model.x.int_totals": NodeColumns(["order_id", "cents", "updated_at"], {}, "database"),
             "model.x.fct_orders": NodeColumns(["order_id", "total", "updated_at"], {}, "database")}
    facts = nodes["model.x.fct_orders"]
    relations = parent_relations(facts, nodes)
    without = upstream_of_all(facts.unique_id, sql, "duckdb", relations, parent_schema(facts, known, nodes))
    assert not without.get("total") and "missing source schemas" in " ".join(without[""].unresolved)  # the old failure
    traced = upstream_of_all(facts.unique_id, sql, "duckdb", relations, lineage_schema(facts, known, nodes))
    assert [(e.from_node, e.from_column) for e in traced["total"].edges] == [("model.x.int_totals", "cents")]
    assert all(e.from_node != facts.unique_id for t in traced.values() for e in t.edges)  # {{ this }} is no edge
