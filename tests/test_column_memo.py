"""The column model's caches (issue 17, analyze_changes on a 1,000-model project): infer's memo serves a node again only
for the same facts and the same parent columns, and the column service's caches (each node's facts, sqlglot's
results) give what the uncached functions give. Pure: no dbt, no database."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from server.context import AppContext
from server.settings import Settings
from tools.dbt.engine.engine import DbtEngine
from tools.lineage.column_model import NodeColumns, NodeFacts, columns_read, infer, sql_output
from tools.lineage.column_service import ColumnService
from tools.lineage.graph import LineageGraph

P, C = "model.x.p", "model.x.c"


def two_models(parent_sql: str = "select 1 as a, 2 as b", child_sql: str = "select * from db.main.p",
               parent_relation: str = "db.main.p") -> dict[str, NodeFacts]:
    return {P: NodeFacts(P, "model", relation=parent_relation, compiled_sql=parent_sql),
            C: NodeFacts(C, "model", relation="db.main.c", parents=[P], compiled_sql=child_sql)}


def test_the_memo_serves_a_node_again_only_for_the_same_facts_and_parent_columns() -> None:
    memo: dict[str, NodeColumns] = {}
    first = infer(two_models(), "duckdb", memo=memo)
    assert first[C].names == ["a", "b"] and first == infer(two_models(), "duckdb")
    # Facts gathered again (new objects, same content) hit: the very results come back.
    again = infer(two_models(), "duckdb", memo=memo)
    assert again[P] is first[P] and again[C] is first[C]

    # Each thing the child's columns depend on, changed alone, is inferred anew, as without a memo.
    variants = {
        "the parent's columns": two_models(parent_sql="select 1 as a, 2 as b, 3 as c"),
        "the parent's column order": two_models(parent_sql="select 2 as b, 1 as a"),
        "the parent's relation": two_models(parent_relation="db.other.p"),
        "the child's SQL": two_models(child_sql="select a from db.main.p"),
    }
    for what, nodes in variants.items():
        assert infer(nodes, "duckdb", memo=memo) == infer(nodes, "duckdb"), what
    assert infer(variants["the parent's columns"], "duckdb", memo=memo)[C].names == ["a", "b", "c"]
    assert infer(variants["the parent's relation"], "duckdb", memo=memo)[C].unresolved is not None

    # A parent's columns the caller knows (the database's, a baseline's) count as well.
    known = {P: NodeColumns(["a", "z"], {}, "database")}
    assert infer(two_models(), "duckdb", known=known, memo=memo)[C].names == ["a", "z"]
    assert infer(two_models(), "duckdb", memo=memo)[C].names == ["a", "b"]


def test_a_facts_digest_covers_every_field() -> None:
    base = NodeFacts(C, "model", relation="db.main.c", parents=[P], compiled_sql="select 1 as a")
    changed = [replace(base, compiled_sql=None), replace(base, compiled_sql=""), replace(base, compiled_sql="select 1 as b"),
               replace(base, compile_error="boom"), replace(base, catalog=[("a", "integer")]), replace(base, declared=[("a", None)]),
               replace(base, seed_header=["a"]), replace(base, parents=[]), replace(base, relation="db.main.d"),
               replace(base, resource_type="snapshot")]
    digests = {f.digest for f in changed}
    assert base.digest not in digests and len(digests) == len(changed)
    assert replace(base).digest == base.digest


def service(root: Path) -> ColumnService:
    (root / "data").mkdir(exist_ok=True)
    settings = Settings(project_dir=root, profiles_dir=root, data_dir=root / "data")
    return ColumnService(AppContext(settings=settings, engine=DbtEngine(root, root)))


def test_the_services_sqlglot_cache_gives_what_sqlglot_gives(tmp_path: Path) -> None:
    columns = service(tmp_path)
    sql = "with p as (select * from db.main.p) select * from p where b > 0"
    narrow = {"db": {"main": {"p": {"a": "int", "b": "int"}}}}
    wide = {"db": {"main": {"p": {"a": "int", "b": "int", "c": "int"}}}}
    for schema in (narrow, wide, narrow):
        assert columns.output_of(sql, "duckdb", schema) == sql_output(sql, "duckdb", schema)
    assert columns.output_of(sql, "duckdb", wide)[0] == ["a", "b", "c"]
    columns.output_of(sql, "duckdb", narrow)[0].append("mutated")  # a caller's change stays its own
    assert columns.output_of(sql, "duckdb", narrow)[0] == ["a", "b"]
    for parents in ({"db.main.p": "model.x.p"}, {"db.main.p": "model.x.q"}):
        got = columns.reads_of(sql, "duckdb", narrow, parents)
        assert got == columns_read(sql, "duckdb", narrow, parents) and {r.parent for r in got} == set(parents.values())


def test_the_service_keeps_a_nodes_facts_while_its_inputs_are_the_same(tmp_path: Path) -> None:
    manifest = {"nodes": {uid: {"name": uid.split(".")[-1], "resource_type": "model", "package_name": "x",
                                "relation_name": f'"db"."main"."{uid.split(".")[-1]}"', "depends_on": {"nodes": deps}}
                          for uid, deps in ((P, []), (C, [P]))}}
    graph = LineageGraph.from_manifest(manifest)
    columns = service(tmp_path)
    columns._compiled = {P: ("k", "select 1 as a", None), C: ("k", "select * from db.main.p", None)}
    first = columns._facts_of(graph, [P, C], "x")
    assert first[C].compiled_sql == "select * from db.main.p" and first[C].parents == [P]
    assert all(columns._facts_of(graph, [P, C], "x")[u] is first[u] for u in (P, C))

    columns._compiled[C] = ("k2", "select a from db.main.p", None)  # compiled again
    now = columns._facts_of(graph, [P, C], "x")
    assert now[P] is first[P] and now[C].compiled_sql == "select a from db.main.p"

    (tmp_path / "target").mkdir()  # a catalog appears (dbt_docs)
    (tmp_path / "target" / "catalog.json").write_text(json.dumps(
        {"nodes": {P: {"columns": {"a": {"name": "a", "index": 1, "type": "INTEGER"}}}}}))
    cataloged = columns._facts_of(graph, [P, C], "x")
    assert cataloged[P].catalog == [("a", "integer")] and cataloged[C] is now[C]  # C has no catalog entry: kept
    now = cataloged

    reloaded = LineageGraph.from_manifest(manifest)  # manifest.json written again: every node gathered anew
    assert all(columns._facts_of(reloaded, [P, C], "x")[u] is not now[u] for u in (P, C))

    # the worker's next summary (describe_delta applied): unchanged entries are the same objects, so their graph nodes
    # and facts are kept; the changed one is made again
    before = columns._facts_of(reloaded, [P, C], "x")
    changed = {**manifest, "nodes": {**manifest["nodes"], C: {**manifest["nodes"][C], "relation_name": '"db"."main"."c2"'}}}
    summary = LineageGraph.from_manifest(changed, previous=reloaded)
    assert summary.nodes[P] is reloaded.nodes[P] and summary.nodes[C] is not reloaded.nodes[C]
    after = columns._facts_of(summary, [P, C], "x")
    assert after[P] is before[P] and after[C] is not before[C] and after[C].relation != before[C].relation
    assert summary == LineageGraph.from_manifest(changed)


def test_manifest_json_rewritten_by_a_run_is_not_parsed_again(tmp_path: Path) -> None:
    """dbt rewrites manifest.json after every run/build/test: while the worker's manifest generation and the project's
    files are the same, the graph read before stands; a new generation or a changed project file reads it again."""
    columns = service(tmp_path)
    (tmp_path / "target").mkdir()
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "p.sql").write_text("select 1 as a\n")
    path = tmp_path / "target" / "manifest.json"

    def write(children: list[str], stamp: str) -> None:
        nodes = {P: {"name": "p", "resource_type": "model", "package_name": "x", "depends_on": {"nodes": []}}}
        nodes |= {f"model.x.{c}": {"name": c, "resource_type": "model", "package_name": "x", "depends_on": {"nodes": [P]}} for c in children}
        path.write_text(json.dumps({"metadata": {"generated_at": stamp}, "nodes": nodes}))

    write(["c"], "1")
    first = columns._load_graph(path, "10:1")
    write(["c", "d"], "2")  # (a run never changes the graph: a different one shows whether it was read again)
    assert columns._load_graph(path, "10:1") is first  # same generation, same files: not parsed again
    write(["c", "d"], "2b")
    assert columns._load_graph(path, None) is not first  # no generation known (a worker not yet answered): read it
    write(["c", "e"], "3")
    second = columns._load_graph(path, "10:2")  # the worker parsed again
    assert second is not first and set(second.nodes) == {P, "model.x.c", "model.x.e"}
    write(["c"], "4")
    (tmp_path / "models" / "p.sql").write_text("select 2 as a\n")  # a project file changed (an edit outside the server)
    assert set(columns._load_graph(path, "10:2").nodes) == {P, "model.x.c"}
