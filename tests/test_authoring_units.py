"""Fast tests of the authoring toolset's pure parts: SQL checks, rendering, YAML merging, safe paths and rollback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from server.errors import ToolFailure
from tools.authoring import render, rules, tests_catalog, yaml_props
from tools.authoring.files import FileChange, apply, plan_diffs, project_path


def test_neutralize_and_parse_sql_shape() -> None:
    sql = (
        "{{ config(materialized='incremental') }}\n"
        "with o as (select * from {{ ref('stg_orders') }}\n{% if is_incremental() %} where updated_at > (select max(updated_at) from {{ this }}) {% endif %})\n"
        "select o.order_id, o.amount * 2 as doubled, {{ var('x') }} as v from o join {{ source('raw', 'customers') }} c on o.customer_id = c.id"
    )
    shape = rules.parse_sql(sql, "duckdb")
    assert shape.columns == ["order_id", "doubled", "v"] and not shape.star and shape.joins == 1 and shape.has_is_incremental
    found = rules.relations(sql)
    assert found.refs == ["stg_orders"] and found.sources == [("raw", "customers")]
    assert rules.parse_sql("with a as (select * from t) select * from a", "duckdb").star
    assert rules.parse_sql("select a.* from a", "duckdb").star
    for bad in ("select from where )(", "select 1; select 2", "delete from t"):
        with pytest.raises(ToolFailure) as failure:
            rules.parse_sql(bad, "duckdb")
        assert failure.value.code == "invalid_sql"


def test_layer_rules() -> None:
    staging_join = rules.parse_sql("select a.x from {{ source('raw','a') }} a join {{ source('raw','b') }} b on a.id = b.id", "duckdb")
    problems = rules.layer_problems("staging", rules.relations("{{ source('raw','a') }} {{ source('raw','b') }}"), staging_join, set())
    assert any("does not join" in p for p in problems)
    from_ref = rules.parse_sql("select x from {{ ref('stg_a') }}", "duckdb")
    assert any("ref() other models" in p for p in rules.layer_problems("staging", rules.relations("{{ ref('stg_a') }}"), from_ref, set()))
    assert rules.layer_problems("staging", rules.relations("{{ ref('raw_codes') }}"), from_ref, {"raw_codes"}) == []
    src = rules.parse_sql("select x from {{ source('raw','a') }}", "duckdb")
    assert any("not source()" in p for p in rules.layer_problems("marts", rules.relations("{{ source('raw','a') }}"), src, set()))
    assert rules.layer_problems("marts", rules.relations("{{ ref('int_a') }}"), from_ref, set()) == []
    for name, layer in (("orders", "staging"), ("stg_orders", "marts"), ("int_x", "staging")):
        with pytest.raises(ToolFailure):
            rules.check_prefix(name, layer)
    for bad in ("../x", "Stg_orders", "a b", "", "x/y"):
        with pytest.raises(ToolFailure) as failure:
            rules.check_name(bad, "Model")
        assert failure.value.code == "invalid_name"


def test_render_model_and_incremental_filter() -> None:
    sql = render.model_sql({"materialized": "incremental", "unique_key": "id", "partition_by": {"field": "d"}}, render.Relation("source", "raw.orders"),
                           [render.Column("order_id", "cast(id as integer)"), render.Column("status")], render.incremental_filter("updated_at", "merge"))
    assert "unique_key='id'" in sql and "partition_by={'field': 'd'}" in sql
    assert "select * from {{ source('raw', 'orders') }}" in sql and "cast(id as integer) as order_id,\n    status\nfrom orders" in sql
    assert ("        where updated_at >= (\n            select max(existing_rows.updated_at)\n"
            "            from {{ this }} as existing_rows\n        )\n    {% endif %}") in sql
    assert ">" in render.incremental_filter("u", "append") and ">=" not in render.incremental_filter("u", "append")
    shape = rules.parse_sql(sql, "duckdb")
    assert shape.columns == ["order_id", "status"] and shape.has_is_incremental
    wrapped = render.wrap_incremental("select id, updated_at from {{ ref('x') }}", {"materialized": "incremental"}, ["id", "updated_at"], "updated_at", "merge")
    assert rules.parse_sql(wrapped, "duckdb").columns == ["id", "updated_at"]


def test_seed_csv() -> None:
    text, header = render.seed_csv([{"code": "GB", "name": "United Kingdom"}, {"code": "FR", "name": "France, the", "eu": True}], None)
    assert header == ["code", "name", "eu"] and text.splitlines() == ["code,name,eu", "GB,United Kingdom,", 'FR,"France, the",true']
    with pytest.raises(ValueError):
        render.seed_csv(None, "a,b\n1,2,3\n")


def test_tests_catalog() -> None:
    request = tests_catalog.parse_spec({"relationships": {"arguments": {"to": "ref('d')"}, "field": "id", "config": {"severity": "warn"}}}, "c")
    assert request.arguments == {"to": "ref('d')", "field": "id"} and request.config == {"severity": "warn"}
    assert tests_catalog.yaml_entry(request, "relationships") == {"relationships": {"arguments": {"to": "ref('d')", "field": "id"}, "config": {"severity": "warn"}}}
    assert tests_catalog.yaml_entry(tests_catalog.parse_spec("unique", "c"), "unique") == "unique"
    for spec, column, code in (("is_even", "c", "unknown_test"), ("unique", None, "invalid_test"),
                               ({"accepted_values": {}}, "c", "invalid_test"), ({"accepted_range": {}}, "c", "invalid_test")):
        with pytest.raises(ToolFailure) as failure:
            tests_catalog.check(tests_catalog.parse_spec(spec, column), set())
        assert failure.value.code == code
    assert tests_catalog.check(tests_catalog.parse_spec("is_even", "c"), {"is_even"}) is None
    assert tests_catalog.same_test({"dbt_utils.accepted_range": {}}, "accepted_range") and not tests_catalog.same_test("unique", "not_null")


def test_yaml_merge_keeps_comments_and_layout() -> None:
    text = "# top comment\nversion: 2\n\nmodels:\n    -   name: a  # keep me\n        columns:\n            -   name: x\n                description: \"quoted\"\n"
    doc = yaml_props.load(text, "a.yml")
    entries = yaml_props.section(doc, "models")
    assert yaml_props.merge_entry(entries, {"name": "a", "columns": [{"name": "y", "description": "new"}]}) == "updated"
    assert yaml_props.merge_entry(entries, {"name": "b"}) == "added"
    out = doc.dump()
    assert out.startswith("# top comment\nversion: 2\n") and "# keep me" in out and 'description: "quoted"' in out
    assert "            -   name: y" in out and "    -   name: b" in out
    with pytest.raises(ToolFailure) as failure:
        yaml_props.load("models:\n  - name: [unclosed\n", "broken.yml")
    assert failure.value.code == "invalid_yaml"


def test_paths_stay_inside_the_project(tmp_path: Path) -> None:
    root = tmp_path / "project"
    (root / "models").mkdir(parents=True)
    assert project_path(root, "models/x.sql") == (root / "models/x.sql").resolve()
    os.symlink(tmp_path, root / "models" / "out")
    for bad in ("../x.sql", "/etc/passwd", "models/out/x.sql"):
        with pytest.raises(ToolFailure) as failure:
            project_path(root, bad)
        assert failure.value.code == "path_outside_project"


def test_apply_and_rollback_restore_bytes(tmp_path: Path) -> None:
    root = tmp_path
    existing = root / "a.yml"
    existing.write_bytes(b"version: 2\r\n# crlf and all\r\n")
    created = root / "new" / "deep" / "b.sql"
    changes = [FileChange(existing, "version: 2\n"), FileChange(created, "select 1\n")]
    diffs = plan_diffs(root, changes)
    assert [(d.path, d.action) for d in diffs] == [("a.yml", "modified"), ("new/deep/b.sql", "created")]
    applied = apply(changes)
    assert existing.read_text() == "version: 2\n" and created.read_text() == "select 1\n"
    applied.rollback()
    assert existing.read_bytes() == b"version: 2\r\n# crlf and all\r\n"
    assert not (root / "new").exists()
    with pytest.raises(ValueError):  # a failure in the middle puts back what was already written
        apply([FileChange(existing, "changed\n"), FileChange(existing, "twice\n")])
    assert existing.read_bytes() == b"version: 2\r\n# crlf and all\r\n"


def test_connascence_each_kind_found_and_not_found() -> None:
    from tools.quality.connascence import analyze

    def kinds(sql: str, **kw: object) -> set[str]:
        return {f.kind for f in analyze(sql, "duckdb", **kw)}  # type: ignore[arg-type]

    clean = "select order_id, status from {{ ref('stg_orders') }} where status in {{ var('statuses') }} group by order_id, status order by order_id"
    assert kinds(clean) == set()
    assert "position" in kinds("select a, count(*) as n from {{ ref('x') }} group by 1")
    assert "position" in kinds("select a from {{ ref('x') }} order by 1")
    assert "position" in kinds("with x as (select * from {{ ref('x') }}) select * from x")
    assert "meaning" in kinds("select a from {{ ref('x') }} where d >= '2025-01-01'")
    assert "meaning" in kinds("select case when s = 'gold' then 1 else 0 end as g from {{ ref('x') }}")
    assert "name" in kinds("select a from analytics.raw_orders")
    assert "name" not in kinds("with raw_orders as (select * from {{ source('raw', 'orders') }}) select a from raw_orders")
    assert "timing" in kinds("select a, current_date as loaded_on from {{ ref('x') }}")
    assert "timing" in kinds("select a from {{ ref('x') }} where ts > now()")
    copied = "select sum(quantity * unit_price) / 100.0 as revenue from {{ ref('items') }}"
    assert "algorithm" in kinds(copied, others={"int_revenue": "select sum(quantity * unit_price) / 100.0 as total from {{ ref('items') }}"})
    assert "algorithm" not in kinds(copied, others={"int_other": "select sum(quantity) as q from {{ ref('items') }}"})
    assert "identity" in kinds("select id from {{ ref('x') }}", incremental_key=["id"], unique_tested=set())
    assert "identity" not in kinds("select id from {{ ref('x') }}", incremental_key=["id"], unique_tested={"id"})
    assert "identity" not in kinds("select a, b from {{ ref('x') }}", incremental_key=["a", "b"], combination_tested=[{"a", "b"}])


@pytest.mark.parametrize(("sql", "passes_through"), [
    # the dbt style guide: import CTEs select *, a final CTE names the columns, the last line is `select * from final`
    ("with customers as (select * from __ref_stg__), final as (select customer_id, city from customers) select * from final", False),
    ("with final as (select a.x, b.y from t a join u b on a.id = b.id) select * from final", False),
    ("with a as (select x from t), b as (select * from a) select * from b", False),
    ("with final as (select x from t) select * from (select * from final) s", False),
    ("with a as (select x from t) select a.* from a", False),
    ("select x, y from t", False),
    ("select * from __ref_stg__", True),
    ("with a as (select * from __ref_stg__) select * from a", True),
    ("with a as (select * from __ref_stg__), b as (select * from a) select * from b", True),
    ("with a as (select x from t) select * from a join u on a.x = u.x", True),
])
def test_a_star_is_a_layering_problem_only_when_it_passes_a_relations_columns_through(sql: str, passes_through: bool) -> None:
    from tools.authoring.rules import Relations, layer_problems, parse_sql

    shape = parse_sql(sql, "duckdb")
    assert shape.star_reads_relation is passes_through
    problems = layer_problems("marts", Relations(refs=["stg"], sources=[]), shape, set())
    assert any("select *" in p for p in problems) is passes_through
