"""The quality toolset through a real MCP client: sqlfluff lint/fix against its CLI, connascence analysis, and
project_check clean on the demo project and tripping every rule on a deliberately bad one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import error, ok, stdio_session

pytestmark = pytest.mark.e2e

BAD_MODELS = {
    # staging: no stg_ prefix, joins, reads an intermediate model, select * in the final select, no tests, no docs
    "models/staging/orders_joined.sql": (
        "select * from {{ source('raw', 'orders') }} o\n"
        "join {{ ref('int_order_totals') }} t on o.id = t.order_id\n"
    ),
    # marts: source() in a mart, a hard-coded relation, a literal filter, incremental without filter or unique_key
    "models/marts/fct_bad.sql": (
        "{{ config(materialized='incremental', incremental_strategy='merge') }}\n"
        "select o.id as order_id, o.status\n"
        "from {{ source('raw', 'orders') }} o\n"
        "join main.dim_customers c on o.customer_id = c.customer_id\n"
        "where o.status = 'completed'\n"
    ),
    # a model that parses but whose compile fails: dbt's compile of the whole selection stops, the checks go on
    "macros/fails_when_compiled.sql": ("{% macro fails_when_compiled() %}{% if execute %}{{ exceptions.raise_compiler_error('no') }}"
                                       "{% endif %}1{% endmacro %}\n"),
    "models/marts/fct_compile_fails.sql": "select {{ fails_when_compiled() }} as order_id\n",
    # YAML documenting a column the model does not output
    "models/marts/_bad_marts.yml": "version: 2\nmodels:\n  - name: fct_bad\n    columns:\n      - name: no_such_column\n        description: Gone.\n",
    "models/staging/_bad_sources.yml": (
        "version: 2\nsources:\n  - name: legacy\n    schema: raw\n    tables:\n      - name: orders\n"
    ),
}

ANALYZE_ME = """with orders as (
    select * from {{ ref('stg_orders') }}
),

items as (
    select * from {{ ref('stg_order_items') }}
)

select
    orders.customer_id,
    orders.order_date,
    sum(items.quantity * items.unit_price_cents) / 100.0 as revenue,
    count(*) as order_lines
from orders
join items on orders.order_id = items.order_id
where orders.order_date >= '2025-01-01'
group by 1, 2
"""

COPIED_IN = """select
    order_id,
    sum(items.quantity * items.unit_price_cents) / 100.0 as order_revenue
from {{ ref('stg_order_items') }} as items
group by order_id
"""


ALL_RULES = {
    "no_select_star", "hard_coded_filter_values", "fct_hard_coded_references", "fct_missing_primary_key_tests",
    "fct_undocumented_models", "undocumented_columns", "documented_columns_not_in_output", "incremental_missing_filter", "incremental_missing_unique_key",
    "staging_joins", "fct_marts_or_intermediate_dependent_on_source", "fct_staging_dependent_on_marts_or_intermediate",
    "fct_sources_without_freshness", "fct_model_naming_conventions", "fct_test_coverage",
}


async def test_project_check_clean_on_demo_and_every_rule_on_a_bad_project(shop: Path, data_dir: Path) -> None:
    async with stdio_session(shop, data_dir) as client:
        clean = ok(await client.call_tool("project_check", {}))
        assert clean["total"] == 0, clean["violations"]
        assert set(clean["by_rule"]) == set(clean["rules"]) == ALL_RULES
        for rel, text in BAD_MODELS.items():
            (shop / rel).write_text(text)
        bad = ok(await client.call_tool("project_check", {"limit": 1000}))
        tripped = {rule for rule, count in bad["by_rule"].items() if count}
        assert tripped == ALL_RULES, sorted(ALL_RULES ^ tripped)
        one = ok(await client.call_tool("project_check", {"path": "models/marts/fct_bad.sql"}))
        assert {v["path"] for v in one["violations"]} == {"models/marts/fct_bad.sql"}
        assert any(v["node"] == "model.shop.fct_compile_fails" for v in bad["violations"])
        assert {"incremental_missing_filter", "incremental_missing_unique_key", "fct_marts_or_intermediate_dependent_on_source",
                "fct_hard_coded_references", "hard_coded_filter_values"} <= {v["rule"] for v in one["violations"]}
        assert error(await client.call_tool("project_check", {"rules": ["no_such_rule"]}))["code"] == "invalid_input"


async def test_analyze_file_reports_position_meaning_and_algorithm(shop: Path, data_dir: Path) -> None:
    (shop / "models/intermediate/int_customer_revenue.sql").write_text(ANALYZE_ME)
    (shop / "models/intermediate/int_order_revenue.sql").write_text(COPIED_IN)
    async with stdio_session(shop, data_dir) as client:
        found = ok(await client.call_tool("analyze_file", {"filePath": "models/intermediate/int_customer_revenue.sql"}))
        by_kind = {f["kind"]: f for f in found["findings"]}
        assert {"position", "meaning", "algorithm"} <= set(by_kind), found["findings"]
        assert by_kind["position"]["line"] == 17 and "GROUP BY 1, 2" in by_kind["position"]["message"]
        assert by_kind["meaning"]["line"] == 16 and "'2025-01-01'" in by_kind["meaning"]["message"]
        assert by_kind["algorithm"]["line"] == 12 and by_kind["algorithm"]["related"] == ["int_order_revenue"]
        assert by_kind["algorithm"]["locality"] == "across models" and all(f["fix"] for f in found["findings"])
        clean = ok(await client.call_tool("analyze_file", {"filePath": "models/marts/dim_customers.sql"}))
        assert not [f for f in clean["findings"] if f["kind"] in ("position", "name", "timing", "identity")], clean["findings"]


async def test_sql_lint_matches_the_sqlfluff_cli_and_fix_writes_only_when_asked(shop: Path, data_dir: Path) -> None:
    target = "models/marts/fct_orders.sql"
    cli = subprocess.run(
        [sys.executable, "-m", "sqlfluff", "lint", target, "--dialect", "duckdb", "--templater", "jinja", "--format", "json", "--nocolor"],
        cwd=shop, capture_output=True, text=True, timeout=300,
    )
    expected = sorted((v["code"], v["start_line_no"], v["start_line_pos"]) for v in json.loads(cli.stdout)[0]["violations"])
    assert expected, cli.stderr
    async with stdio_session(shop, data_dir) as client:
        linted = ok(await client.call_tool("sql_lint", {"path": target}))
        assert sorted((v["code"], v["line"], v["position"]) for v in linted["violations"]) == expected
        assert linted["cached"] is False
        again = ok(await client.call_tool("sql_lint", {"path": target}))
        assert again["cached"] is True and again["violations"] == linted["violations"]
        before = (shop / target).read_text()
        fixed = ok(await client.call_tool("sql_fix", {"path": target}))
        assert fixed["changed"] and fixed["diff"].startswith("--- a/") and not fixed["written"]
        assert (shop / target).read_text() == before
        written = ok(await client.call_tool("sql_fix", {"path": target, "write": True}))
        assert written["written"] and (shop / target).read_text() == written["fixed_sql"]
        only = ok(await client.call_tool("sql_lint", {"sql": "SELECT a,b from t\n", "rules": ["CP01"]}))
        assert {v["code"] for v in only["violations"]} == {"CP01"}
        assert error(await client.call_tool("sql_lint", {"path": "../outside.sql"}))["code"] == "path_outside_project"
        assert error(await client.call_tool("sql_lint", {"sql": "select 1", "templater": "dbt"}))["code"] == "templater_unavailable"


async def test_project_metrics_from_artifacts_and_run_history(shop: Path, data_dir: Path) -> None:
    async with stdio_session(shop, data_dir) as client:
        before = ok(await client.call_tool("project_metrics", {}))["metrics"]
        assert before["models_built"]["value"] is None and "dbt_build" in before["models_built"]["reason"]
        assert before["incremental_models_ratio"]["value"] == 0.1  # fct_orders of the 10 models
        assert before["documentation_coverage"]["value"] == 1.0 and before["schema_compliance"]["value"] == 1.0
        assert ok(await client.call_tool("dbt_build", {}))["success"]  # seeds included
        ok(await client.call_tool("dbt_source_freshness", {}))
        after = ok(await client.call_tool("project_metrics", {}))["metrics"]
        assert after["models_built"]["value"] == 10 and after["models_failed"]["value"] == 0
        assert after["test_pass_rate"]["value"] == 1.0 and after["test_pass_rate"]["tests"] > 40
        assert after["build_duration_avg_s"]["value"] > 0 and after["build_duration_p95_s"]["runs"] == 1
        assert after["data_freshness_sla"]["value"] == 0.0  # the demo data is old on purpose
        assert after["model_execution_s"]["value"] > 0 and len(after["model_execution_s"]["slowest"]) == 5
        assert after["query_efficiency"]["value"] > 10 and len(after["query_efficiency"]["longest"]) == 5  # compiled lines
        assert after["downstream_impact"]["value"] == 0 and after["mttr_test_failures"]["value"] is None
        paged = ok(await client.call_tool("project_metrics", {"limit": 4}))
        assert paged["models_total"] == 10 and len(paged["models"]) == 4 and paged["next_cursor"] == "4"
        fct = next(m for m in ok(await client.call_tool("project_metrics", {"limit": 10}))["models"] if m["model"] == "fct_orders")
        assert fct["explicit"] is True and fct["columns"] == fct["documented"] > 5 and fct["undocumented"] == []
