"""Issue 10, item 7: hostile calls drawn by hypothesis from every registered tool's own input schema (tools/list).

One server process over stdio serves the whole run, on a built copy of the shop project. Each example is one
tools/call with valid and invalid values: paths that lead out (.., absolute, symlinks, NUL), unicode (RTL override,
emoji, combining marks), control characters, huge strings and lists, SQL and Jinja that would write or read files,
wrong types, misspelt argument names and flag-like values. After every call the test checks that the server
answered with a result; that an error is typed (code, message, hint) and never internal_error; that a failed call
changed no project file and no memory; that nothing was written outside the project and the data dir.

A third of the examples are wild (any value anywhere); the others are a plausible call (often a known-good one from
BASES) with exactly one hostile argument or misspelt name, which reaches deeper. Tools that can run dbt on the whole
project only ever get a call that is invalid (an argument the server must refuse before dbt runs) or a narrow
selection, so the run stays fast. The examples are derandomized (CI runs the same calls every time), and the inputs
that broke the contract before (REGRESSIONS) are replayed first. A call without a reply stops the run at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import HOSTILE_STATS, REPO, copy_shop, follow_cursor, stdio_session, with_cursor

pytestmark = pytest.mark.e2e

EXAMPLES = 1000
CALL_TIMEOUT_S = 60.0
DBT_TIMEOUT_S = 20  # timeout_seconds of a call that may run dbt, unless the example draws its own
# The whole JSON-RPC message must stay under ~200 levels: the SDK's stdio reader drops a deeper message without
# any reply (pydantic-core's JSON recursion limit), so the client would wait forever. Reported; not the server's.
MAX_NESTING = 150
# Tools that can run dbt over the whole project: each call is invalid or narrowly selected.
WHOLE_PROJECT = {"dbt_build", "dbt_run", "dbt_test", "dbt_seed", "dbt_snapshot", "dbt_docs", "dbt_deps", "dbt_retry",
                 "dbt_source_freshness", "dbt_parse"}
NARROW = ["stg_orders", "stg_customers", "raw_products", "customers_snapshot", "source:raw.orders", "fct_orders",
          "assert_no_order_before_signup"]
PWN_GLOB = "hyp_pwn*"
SEED_MEMORIES = [
    {"text": "fct_orders is a table in marts; build it with select='+fct_orders'.", "metadata": {"key": "hyp/shop/fct-orders-build"}},
    {"text": "stg_orders renames id to order_id.", "metadata": {"key": "hyp/shop/stg-orders-columns", "layer": "mid_term"}},
    {"text": "Seeds load into the raw schema.", "metadata": {"key": "hyp-other/shop/seeds", "category": "model-config"}},
]

# -- hostile values -------------------------------------------------------------------------------------------------
PATHS = [
    "../", "..", "../../../../etc/passwd", "/etc/passwd", "/etc/shadow", "/proc/self/environ", "/dev/zero", "~/.ssh/id_rsa",
    "models/../../hyp_pwn.sql", "models/marts/../../../hyp_pwn.sql", "/tmp/hyp_pwn.sql", "//etc/passwd", "file:///etc/passwd",
    "models\\..\\..\\hyp_pwn.sql", "models/marts/fct_orders.sql\x00.txt", "\x00", ".", "", " ", "models/marts/",
    "linked_outside.sql", "linked_dir/secret.sql", "linked_dir/hyp_new.sql", "models/../linked_outside.sql",
    "target/manifest.json", "profiles.yml", "dbt_project.yml", "shop.duckdb", "../data/logs/server.log",
]
UNICODE = [
    "fct\u202eorders", "\u202egnp.lqs", "🦆", "🦆" * 40, "e\u0301\u0301\u0301", "Z\u0337\u0328a\u0335l\u0334g\u0338o", "\u200b",
    "\ufeffselect 1", "表格", "Ω≈ç√∫", "\U0001f600 select 1 as x", "a\u2028b", "\u061c\u2066x\u2069",
]
CONTROL = ["\x00", "a\x00b", "\x1b[31mred\x1b[0m", "\x1b]0;title\x07", "\r\n", "line\rover", "\x7f\x08", "\t\v\f", "\x1b"]
SQL = [
    "; drop table main.fct_orders; --", "copy (select 1) to '/tmp/hyp_pwn.csv'", "select * from read_text('/etc/passwd')",
    "select 1 as x; copy (select 1) to '/tmp/hyp_pwn_multi.csv'", "attach '/tmp/hyp_pwn.db' as pwn", "install httpfs",
    "select * from read_csv('/etc/passwd')", "export database '/tmp/hyp_pwn_export'", "set enable_external_access = true",
    "create or replace table main.fct_orders as select 1 as x", "' or 1=1 --", "\"; drop table main.fct_orders; --",
    "select x'41' as c, E'\\'' as a ; drop table main.fct_orders ; select E'\\'' as b", "pragma database_list",
    "select 1 /* /* */ as a", "select * from glob('/etc/*')",
]
JINJA = [
    "{% do run_query('drop table main.fct_orders') %}", "{{ modules.os.system('touch /tmp/hyp_pwn') }}",
    "{{ config(post_hook=\"copy (select 1) to '/tmp/hyp_pwn_hook.csv'\") }}",
    "{{ adapter.execute(\"copy (select 1) to '/tmp/hyp_pwn_exec.csv'\") }}",
    "{% call statement('x') %}copy (select 1) to '/tmp/hyp_pwn_stmt.csv'{% endcall %}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}", "{{ env_var('HOME') }}", "{{ exceptions.raise_compiler_error('hyp') }}",
    "{% endmacro %}{% macro hyp_evil() %}{% do run_query('drop table main.fct_orders') %}", "{{ log('hyp', info=True) }}",
    "{{", "{% if %}", "{{ this }}", "{{ var('nope') }}", "{{ fromjson('{') }}",
]
FLAGS = ["--full-refresh", "-s", "--select", "--profiles-dir=/tmp", "--target-path /tmp/hyp_pwn_target",
         "--log-path=/tmp/hyp_pwn_logs", "stg_orders --full-refresh", "--", "-", "--upload-pack=touch /tmp/hyp_pwn_git"]
JSONISH = ["null", "true", "[]", "{}", '{"__proto__": {"polluted": 1}}', "1e999", "NaN", "-Infinity", "[[[[1]]]]", "0x10"]
HUGE = ["a" * 100_000, "x" * 1_000_000, "🦆" * 100_000, "../" * 30_000, "a/" * 50_000, "a/" * 500_000, "{{ " * 30_000,
        "select " + "1 + " * 25_000 + "1 as x", "-- " + "comment " * 20_000]
HOSTILE_STRINGS = PATHS + UNICODE + CONTROL + SQL + JINJA + FLAGS + JSONISH
ODD_NAMES = ["", " ", "__proto__", "constructor", "$schema", "_meta", "arguments", "select\x00", "\u202eselect", "a" * 5000]

# Values an agent would plausibly send, by "tool.argument" (or "Definition.field") first, then by argument name: they
# make calls valid enough to reach the real work, where one hostile argument is most telling.
MODEL_SQL = ["select order_id, customer_id from {{ ref('fct_orders') }}", "select id as order_id, status from {{ source('raw', 'orders') }}",
             "select order_id, order_total from {{ ref('int_order_totals') }}"]
PLAUSIBLE: dict[str, list[Any]] = {
    "select": NARROW + ["+fct_orders", "tag:staging", "path:models/staging", "*", "@fct_orders", "state:modified", "nope"],
    "exclude": ["stg_orders", "tag:marts", "nope"],
    "selector": ["nightly", "nope"],
    "target": ["dev", "broken", "prod"],
    "model": ["fct_orders", "dim_customers", "stg_orders", "raw_orders", "customers_snapshot", "raw.orders",
              "model.shop.fct_orders", "nope"],
    "column": ["order_id", "order_total", "customer_id", "nope"],
    "sql": ["select 1 as x", "select * from {{ ref('fct_orders') }}", "select order_id, customer_id from {{ ref('fct_orders') }}",
            "select count(*) as n from {{ source('raw', 'orders') }}", "with a as (select 1 as x) select x from a",
            "select * from main.fct_orders", "select order_id from {{ ref('nope') }}"],
    "content": ["select 1 as x\n", "select order_id from {{ ref('stg_orders') }}\n"],
    "name": ["stg_hyp", "int_hyp", "fct_hyp", "dim_hyp", "hyp_seed", "hyp_snapshot", "raw", "hyp_macro", "fct_orders"],
    "layer": ["staging", "intermediate", "marts", "finance"],
    "key": ["hyp/shop/fct-orders-build", "hyp/shop/*", "*/*/*", "hyp/shop/new-note", "hyp-other/*/seeds", "a/b",
            "hyp/shop/AKIAIOSFODNN7EXAMPLE"],
    "text": ["fct_orders merges on order_id", "use select='+fct_orders' to build"],
    "value": ["fct_orders merges on order_id"],
    "query": ["incremental model with merge strategy", "fct_orders", "seeds"],
    "path": ["models/marts/fct_orders.sql", "models/staging/stg_orders.sql", "models/marts/_marts.yml", "macros/in_list.sql",
             "models/nope.sql"],
    "filePath": ["models/marts/fct_orders.sql", "models/staging/stg_orders.sql", "models/nope.sql"],
    "filepath": ["models/marts/fct_orders.sql", "models/staging/stg_customers.sql", "models/nope.sql"],
    "local": [".", "../shop", "/etc", "models"],
    "dialect": ["duckdb", "postgres", "snowflake", "duckdbb"],
    "templater": ["jinja", "raw", "dbt", "python"],
    "cursor": ["0", "1", "100", "-1", "abc"],
    "url": ["https://example.com/dashboards/1", "javascript:alert(1)"],
    "git": ["https://127.0.0.1:9/hyp.git", "file:///nonexistent/hyp.git", "ext::sh -c touch% /tmp/hyp_pwn_git"],
    "revision": ["main", "1.3.0"],
    "version": ["1.3.0", ">=1.0.0"],
    "relation": ["source('raw', 'customers')", "raw.customers", "stg_customers", "ref('stg_orders')"],
    "unique_key": ["customer_id", "order_id"],
    "updated_at": ["updated_at", "ordered_at"],
    "loaded_at_field": ["updated_at"],
    "target_schema": ["snapshots", "main"],
    "schema_name": ["raw", "main"],
    "database": ["shop", "main"],
    "body": ["{{ column_name }} / 100", "select 1"],
    "parameters": ["column_name", "scale=2"],
    "rules": ["LT01", "AL01", "aliasing", "all"],
    "exclude_rules": ["LT01", "CP01"],
    "depends_on": ["fct_orders", "ref('dim_customers')", "source('raw', 'orders')", "nope"],
    "csv": ["code,name\nGB,United Kingdom\n", "a\n1\n", "a,b\n1\n"],
    "data_type": ["integer", "varchar"],
    "expression": ["cast(order_id as integer)", "order_total * 100"],
    "tests": ["unique", "not_null"],
    "check_cols": ["email", "city"],
    "paths": ["models/marts/fct_orders.sql", "models", ".", "models/hyp_new.sql", "seeds/raw_products.csv", "target/manifest.json",
              "shop.duckdb", "dbt_project.yml"],
    "message": ["Update fct_orders", "hyp commit\n\nwith a body", "-m", "--amend"],
    "remote": ["origin", "upstream"],
    "branch": ["main", "feature/hyp"],
    "dbt_model.name": ["fct_hyp", "stg_hyp_orders", "int_hyp", "dim_hyp"],
    "dbt_model.sql": MODEL_SQL,
    "dbt_model.from_ref": ["fct_orders", "stg_orders"],
    "dbt_model.from_source": ["raw.orders", "raw.nope"],
    "incremental_model.name": ["fct_hyp_incremental", "int_hyp_incremental"],
    "incremental_model.layer": ["marts", "intermediate"],
    "incremental_model.sql": ["select order_id, customer_id, updated_at from {{ ref('stg_orders') }}"],
    "incremental_model.from_ref": ["stg_orders"],
    "incremental_model.unique_key": ["order_id"],
    "incremental_model.updated_at": ["updated_at"],
    "dbt_source.name": ["hyp_src", "raw"],
    "dbt_macro.name": ["hyp_macro", "hyp_cents", "cents_to_dollars"],
    "exposure_define.name": ["hyp_dashboard", "hyp_notebook"],
    "exposure_define.depends_on": ["fct_orders", "dim_customers"],
    "data_quality_test.model": ["fct_orders", "dim_customers", "stg_orders", "nope"],
    "dbt_seed.name": ["hyp_seed", "hyp_country_codes"],
    "dbt_snapshot.name": ["hyp_snapshot"],
    "dbt_package.name": ["dbt-labs/dbt_utils"],
    "memory_store.key": ["hyp/shop/new-note", "hyp/shop/fct-orders-build"],
    "memory_delete.key": ["hyp/shop/new-note", "hyp/shop/*", "*/*/*"],
    "column_lineage.model": ["fct_orders", "dim_customers", "stg_orders"],
    "ColumnSpec.name": ["order_id", "customer_id", "status"],
    "ColumnTests.column": ["order_id", "customer_id"],
    "SourceTableSpec.name": ["orders", "hyp_events"],
    "SourceTableSpec.identifier": ["raw_orders"],
    "OwnerSpec.name": ["Data team"],
    "OwnerSpec.email": ["data@example.com"],
    "MemoryItem.text": ["stg_customers dedupes on customer_id"],
    "MemoryMetadata.key": ["hyp/shop/batch-note", "hyp/shop/fct-orders-build"],
    "MemoryMetadata.layer": ["short_term", "mid_term", "long_term", "forever"],
    "Filters.key": ["hyp/*/*", "*/shop/*"],
    "Filters.layer": ["long_term", "mid_term"],
    "Filters.project": ["shop"],
    "pattern": ["order_id", "ref\\(", "city", "{{ ref("],
    "glob": ["*.sql", "models/**/*.yml", "models/staging/*", "nope/*"],
    "old_text": ["    city,\n    country_code,\n", "order_id", "city", "nope"],
    "new_text": ["    city,\n    country_code,\n", "order_id", ""],
    "file_write.path": ["models/staging/hyp_new.sql", "notes/hyp.md", "models/marts/fct_orders.sql"],
    "file_edit.path": ["models/staging/stg_customers.sql", "models/marts/_marts.yml", "README.md"],
    "node_rename.name": ["stg_orders", "fct_hyp", "hyp_seed", "customers_snapshot", "raw.orders", "nope"],
    "node_rename.new_name": ["stg_hyp_renamed", "fct_orders", "stg_orders", "Hyp_Name", "../hyp_pwn", "hyp pwn"],
    "node_delete.name": ["dim_products", "fct_hyp", "hyp_seed", "stg_orders", "customers_snapshot", "nope"],
    "model_update.name": ["stg_customers", "fct_orders", "fct_hyp", "raw_customers", "stg_customer", "nope"],
    "node_properties.name": ["dim_customers", "raw.orders", "raw_products", "customers_snapshot", "fct_hyp", "raw.nope", "nope"],
}
# Calls that work (or nearly), per tool: the "one hostile argument" examples start from one of these.
BASES: dict[str, list[dict[str, Any]]] = {
    "dbt_model": [{"name": "fct_hyp", "layer": "marts", "sql": MODEL_SQL[0]},
                  {"name": "stg_hyp_orders", "layer": "staging", "sql": MODEL_SQL[1]},
                  {"name": "dim_hyp", "layer": "marts", "from_ref": "dim_customers", "columns": [{"name": "customer_id"}]}],
    "incremental_model": [{"name": "fct_hyp_incremental", "sql": "select order_id, customer_id, updated_at from {{ ref('stg_orders') }}",
                           "unique_key": "order_id", "updated_at": "updated_at"}],
    "dbt_source": [{"name": "hyp_src", "schema_name": "raw", "tables": [{"name": "orders"}]}],
    "dbt_macro": [{"name": "hyp_cents", "parameters": ["column_name"], "body": "{{ column_name }} / 100"}],
    "data_quality_test": [{"model": "dim_customers", "columns": [{"column": "customer_id", "tests": ["not_null"]}]}],
    "exposure_define": [{"name": "hyp_dashboard", "type": "dashboard", "depends_on": ["fct_orders"], "owner": {"name": "Data team"}}],
    "dbt_package": [{"name": "dbt-labs/dbt_utils", "version": "1.3.0", "dry_run": True}, {"local": ".", "dry_run": True}],
    "dbt_seed": [{"name": "hyp_seed", "rows": [{"code": "GB"}]}, {"name": "hyp_seed_csv", "csv": "code\nFR\n"}, {"select": "raw_products"}],
    "dbt_snapshot": [{"name": "hyp_snapshot", "relation": "source('raw', 'customers')", "unique_key": "customer_id",
                      "updated_at": "updated_at", "dry_run": True}, {"select": "customers_snapshot"}],
    "dbt_show": [{"sql": "select order_id from {{ ref('fct_orders') }}"}, {"model": "dim_customers"}],
    "dbt_compile": [{"sql": "select * from {{ ref('fct_orders') }}"}, {"select": "fct_orders"}],
    "dbt_list": [{"select": "fct_orders"}, {"resource_types": ["model"]}],
    "dbt_run": [{"select": "stg_orders"}], "dbt_build": [{"select": "stg_orders"}], "dbt_test": [{"select": "stg_orders"}],
    "dbt_docs": [{"select": "stg_orders"}], "dbt_source_freshness": [{"select": "source:raw.orders"}],
    "memory_store": [{"key": "hyp/shop/new-note", "value": "fct_orders merges on order_id"},
                     {"text": "stg_customers dedupes on customer_id", "metadata": {"key": "hyp/shop/meta-note", "layer": "short_term"}},
                     {"items": [{"text": "seeds load into raw", "metadata": {"key": "hyp/shop/batch-note"}}]}],
    "memory_retrieve": [{"key": "hyp/shop/*"}],
    "memory_delete": [{"key": "hyp/shop/new-note", "dry_run": False}],
    "vector_search": [{"query": "fct_orders", "filters": {"key": "hyp/*/*"}}],
    "memory_list": [{"filters": {"project": "shop"}}],
    "sql_lint": [{"sql": "select 1 as a\n"}, {"path": "models/marts/fct_orders.sql"}],
    "sql_fix": [{"sql": "SELECT  a from b\n"}, {"path": "models/staging/stg_orders.sql"}],
    "analyze_file": [{"filePath": "models/marts/fct_orders.sql"}],
    "start_tracking": [{"filepath": "models/marts/fct_orders.sql"}],
    "stop_tracking": [{"filepath": "models/marts/fct_orders.sql"}],
    "project_check": [{"path": "models/marts/fct_orders.sql"}],
    "model_lineage": [{"model": "fct_orders"}],
    "column_lineage": [{"model": "fct_orders", "column": "order_total"}],
    "project_files": [{}, {"glob": "*.sql"}],
    "file_read": [{"path": "models/marts/fct_orders.sql", "start_line": 1, "end_line": 5}],
    "file_search": [{"pattern": "order_id", "glob": "*.sql"}, {"pattern": "ref\\('\\w+'\\)", "regex": True}],
    "file_write": [{"path": "models/staging/hyp_new.sql", "content": "select 1 as x\n", "dry_run": True},
                   {"path": "notes/hyp.md", "content": "a note\n"}],
    "file_edit": [{"path": "models/staging/stg_customers.sql", "old_text": "    city,\n    country_code,\n",
                   "new_text": "    city,\n    country_code,\n", "dry_run": True},
                  {"path": "README.md", "old_text": "# shop: demo", "new_text": "# shop: demo", "expected_count": 1}],
    "model_update": [{"name": "stg_customers", "config": {"tags": ["hyp"]}, "dry_run": True},
                     {"name": "fct_orders", "sql": "select 1 as x", "dry_run": True}, {"name": "fct_hyp", "sql": "select 2 as x"}],
    "node_properties": [{"name": "dim_customers", "generate": True}, {"name": "raw.orders", "columns": [{"name": "id", "description": "hyp"}]},
                        {"name": "customers_snapshot", "description": "hyp", "dry_run": True},
                        {"name": "stg_orders", "columns": [{"name": "order_id", "tests": ["not_null"]}]}],
    "node_rename": [{"name": "stg_orders", "new_name": "stg_hyp_orders", "dry_run": True}, {"name": "fct_hyp", "new_name": "fct_hyp_renamed"}],
    "node_delete": [{"name": "dim_products", "dry_run": True}, {"name": "fct_hyp"}, {"name": "stg_orders", "cascade_check": False, "dry_run": True}],
    "git_diff": [{"paths": ["models"]}, {"staged": True}],
    "git_log": [{"path": "models/marts/fct_orders.sql", "limit": 3}],
    "git_commit": [{"message": "hyp commit", "paths": ["models"]}, {"message": "hyp commit", "paths": ["models/marts/fct_orders.sql"]}],
    "agent_delegate": [{"to_agent": "sql-database-specialist", "task": "Optimize fct_orders", "related_nodes": ["fct_orders"]}],
    "agent_escalate": [{"subject": "orders late", "severity": "high", "run_id": "latest"}],
    "task_list": [{"agent": "sql-database-specialist"}, {"status": "open", "kind": "escalation"}],
    "task_claim": [{"id": 1, "agent": "cicd-engineer", "lease_seconds": 60}],
    "task_update": [{"id": 1, "status": "done", "agent": "cicd-engineer", "result": "done"}, {"id": 1, "note": "looking"}],
    "task_get": [{"id": 1}],
}
# Free-form objects (vars, config, rows, ...) by argument name.
PLAUSIBLE_OBJECTS: dict[str, list[dict[str, Any]]] = {
    "vars": [{"start_date": "2025-01-01"}, {}],
    "config": [{"materialized": "view"}, {"tags": ["hyp"]}, {}],
    "rows": [{"code": "GB", "name": "United Kingdom"}, {"code": "FR", "name": "France"}],
    "column_types": [{"code": "varchar"}],
    "partition_by": [{"field": "order_date", "data_type": "date"}],
    "argument_descriptions": [{"column_name": "The column in cents."}],
    "warn_after": [{"count": 12, "period": "hour"}],
    "error_after": [{"count": 1, "period": "day"}],
    "tests": [{"accepted_values": {"arguments": {"values": ["placed", "shipped"]}}},
              {"relationships": {"arguments": {"to": "ref('dim_customers')", "field": "customer_id"}}}],
}
INTEGERS = [0, 1, 2, 3, 5, 10, 64, 65, 200, 1000, 10001, 65535, 65536, -1, 2**31, 2**63, -(2**63), 10**30]
NUMBERS = [20.0, 0.5, 1, 0, -1, 1e-9, 86401, 1e308, -0.0]
TIMEOUT_BAD = [0, -1, -1e-9, 86401, 1e30, "soon", [], {"s": 1}]  # every one is refused before anything runs
HEAVY_OBJECTS = [["x"] * 10_000, [{"a": "b"}] * 2_000, {f"k{i}": i for i in range(5_000)}]


def nested(depth: int, leaf: Any = "x") -> Any:
    value = leaf
    for n in range(depth):
        value = [value] if n % 2 else {"a": value}
    return value


DEEP = [nested(MAX_NESTING - 10), nested(60, "{{ run_query('drop table main.fct_orders') }}")]


def misspellings(name: str, real: set[str]) -> list[str]:
    """Argument names an agent might type for `name`, none of them a real argument."""
    forms = {name[:-1], name + "s", name.upper(), name.replace("_", "-"), name.replace("_", ""), " " + name, name + "\x00"}
    forms |= {name[:i] + name[i + 1:] for i in range(min(len(name), 3))}
    if len(name) > 2:
        forms.add(name[1] + name[0] + name[2:])
    return sorted(form for form in forms if form and form not in real)


# -- strategies from the schemas ------------------------------------------------------------------------------------
def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, chosen by weight; shrinks towards the first."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(table) - 1).flatmap(lambda n: table[n])


def pool(scope: str, prop: str) -> list[Any]:
    return PLAUSIBLE.get(f"{scope}.{prop}") or PLAUSIBLE.get(prop) or ["hyp", "x", "fct_orders"]


LEAVES = st.one_of(st.none(), st.booleans(), st.sampled_from(INTEGERS), st.floats(allow_nan=False, allow_infinity=False),
                   st.sampled_from(HOSTILE_STRINGS), st.text(max_size=12))
JSON_VALUES = weighted(
    (6, st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                     max_leaves=8)),
    (1, st.sampled_from(DEEP + HEAVY_OBJECTS)))
WRONG_TYPES = st.sampled_from([42, -7, 3.5, True, False, None, [], ["a", 1], {}, {"a": 1}, "x", [[["x"]]], {"select": "*"}])
HOSTILE_TEXT = weighted((6, st.sampled_from(HOSTILE_STRINGS)), (2, st.text(st.characters(codec="utf-8"), max_size=24)),
                        (1, st.sampled_from(HUGE)))


def values(schema: dict[str, Any], scope: str, prop: str, defs: dict[str, Any], clean: bool, depth: int = 0) -> st.SearchStrategy[Any]:
    """A value the schema allows; clean ones come from the plausible pools, the others' strings may be hostile text."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return arguments(defs[name], defs, name, "clean" if clean else "wild", depth + 1)
    if "anyOf" in schema:
        return st.one_of([values(sub, scope, prop, defs, clean, depth) for sub in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    kind = schema.get("type", "object")
    if isinstance(kind, list):  # a compact schema's type list (server/schemas.py): any of them
        return st.one_of([values({**schema, "type": k}, scope, prop, defs, clean, depth) for k in kind])
    if kind == "string":
        plausible = st.sampled_from(pool(scope, prop))
        return plausible if clean else weighted((9, plausible), (10, HOSTILE_TEXT))
    if kind == "integer":
        return st.sampled_from([1, 2, 5, 10]) if clean else st.sampled_from(INTEGERS)
    if kind == "number":
        return st.sampled_from([float(DBT_TIMEOUT_S)]) if clean else st.sampled_from(NUMBERS)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        items = values(schema.get("items") or {}, scope, prop, defs, clean, depth + 1)
        if clean:
            return st.lists(items, min_size=1, max_size=2)
        return weighted((9, st.lists(items, max_size=3)), (1, st.sampled_from(HEAVY_OBJECTS[:1])))
    if kind == "object" and "properties" in schema and depth < 4:
        return arguments(schema, defs, scope, "clean" if clean else "wild", depth + 1)
    extra = schema.get("additionalProperties")
    if clean:
        return st.sampled_from(PLAUSIBLE_OBJECTS.get(prop) or [{}])
    if isinstance(extra, dict) and extra.get("type") == "string":
        return st.dictionaries(st.sampled_from(pool(scope, "key")) | HOSTILE_TEXT, st.sampled_from(pool(scope, prop)) | HOSTILE_TEXT, max_size=3)
    keys = st.text(max_size=10) | st.sampled_from(["post_hook", "pre_hook", "materialized", "tags"])
    return weighted((2, st.sampled_from(PLAUSIBLE_OBJECTS.get(prop) or [{}])), (7, st.dictionaries(keys, JSON_VALUES, max_size=3)),
                    (1, st.sampled_from(HEAVY_OBJECTS[2:])))


def wild(schema: dict[str, Any], scope: str, prop: str, defs: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
    """Mostly what the schema allows, sometimes a wrong type, a hostile string or a hostile structure."""
    return weighted((16, values(schema, scope, prop, defs, False, depth)), (2, WRONG_TYPES), (2, JSON_VALUES), (1, st.sampled_from(HOSTILE_STRINGS)))


def hostile(schema: dict[str, Any], scope: str, prop: str, defs: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
    """The one bad argument of an otherwise plausible call."""
    as_list = st.lists(HOSTILE_TEXT, min_size=1, max_size=3)
    return weighted((8, HOSTILE_TEXT), (2, as_list), (2, WRONG_TYPES), (1, JSON_VALUES), (3, values(schema, scope, prop, defs, False, depth)))


def arguments(schema: dict[str, Any], defs: dict[str, Any], scope: str, mood: str = "call", depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """An argument object. mood "clean": plausible values; "wild": any value anywhere, now and then a misspelt name;
    "call": either wild, or a plausible call (often one of BASES) with exactly one hostile argument or misspelt name."""
    properties: dict[str, Any] = schema.get("properties", {})
    required = [prop for prop in properties if prop in schema.get("required", [])]  # a list: set order varies by process
    clean = {prop: values(sub, scope, prop, defs, True, depth) for prop, sub in properties.items()}
    wilds = {prop: wild(sub, scope, prop, defs, depth) for prop, sub in properties.items()}
    bad = {prop: hostile(sub, scope, prop, defs, depth) for prop, sub in properties.items()}
    typos = st.sampled_from([(typo, prop) for prop in sorted(properties) for typo in misspellings(prop, set(properties))] or [("", "")])

    def some(draw: st.DrawFn, chosen: dict[str, st.SearchStrategy[Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for prop, value in chosen.items():
            if draw(st.integers(0, 9)) < (9 if prop in required else 3):
                out[prop] = draw(value)
        return out

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        how = mood if mood != "call" else draw(st.sampled_from(["one", "wild", "one"]))
        if how == "clean":
            return {**some(draw, clean), **{p: draw(clean[p]) for p in required if draw(st.integers(0, 19))}}
        if how == "one":
            if scope in BASES and draw(st.integers(0, 3)):
                out = dict(draw(st.sampled_from(BASES[scope])))
            else:
                out = {**some(draw, clean), **{p: draw(clean[p]) for p in required}}
            if properties and draw(st.integers(0, 5)):
                given = sorted(p for p in out if p in properties)
                target = draw(st.sampled_from(given if given and draw(st.integers(0, 3)) else sorted(properties)))
                out[target] = draw(bad[target])
            elif properties:
                typo, meant = draw(typos)
                out[typo] = draw(clean[meant])
            return out
        out = some(draw, wilds)
        if properties and draw(st.integers(0, 9)) == 0:
            typo, meant = draw(typos)
            out[typo] = draw(wilds[meant])
        if draw(st.integers(0, 39)) == 0:
            out[draw(st.sampled_from(ODD_NAMES))] = draw(WRONG_TYPES)
        return out

    return build()


class Call:
    """One tools/call; its repr shortens huge values so a failing example stays readable."""

    def __init__(self, tool: str, arguments: dict[str, Any]) -> None:
        self.tool = tool
        self.arguments = arguments

    def __repr__(self) -> str:
        return f"Call({self.tool!r}, {shorten(self.arguments)})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis prints a failing example with this
        printer.text(repr(self))


class NoReply(BaseException):
    """A call that got no tool result (a timeout, a JSON-RPC error, a dead server). Not an Exception, so hypothesis
    stops at once instead of retrying and shrinking against a server that may still be busy with it."""


# Inputs this test found that broke the contract, replayed first on every run (each was minimal when found).
REGRESSIONS = [
    Call("task_get", {"id": 2**63}),  # internal_error: OverflowError, an id SQLite cannot hold
    Call("sql_fix", {"sql": "{{"}),  # internal_error: sqlfluff's AssertionError on Jinja it cannot render
    Call("dbt_macro", {"name": "a" * 300, "body": "select 1", "timeout_seconds": DBT_TIMEOUT_S}),  # OSError ENAMETOOLONG
    Call("dbt_model", {"name": "fct_" + "a" * 300, "layer": "marts", "sql": "select 1 as x", "timeout_seconds": DBT_TIMEOUT_S}),
    Call("analyze_file", {"filePath": "a" * 300}),  # OSError ENAMETOOLONG (also sql_lint/sql_fix path, start_tracking)
    Call("dbt_package", {"local": "a" * 300, "dry_run": True, "timeout_seconds": DBT_TIMEOUT_S}),
    Call("analyze_file", {"filePath": "shop.duckdb"}),  # UnicodeDecodeError on a binary file in the project
    Call("sql_lint", {"path": "shop.duckdb"}),
    Call("sql_fix", {"sql": "../" * 30_000}),  # no reply within 60 s: sqlfluff is superlinear and the size is not capped
    Call("analyze_file", {"filePath": "a/" * 500_000}),  # blocks the event loop for minutes: a quadratic path check
    # the files tools: out of the project, into .git (a hook git_commit would run), too big, ambiguous
    Call("file_write", {"path": "linked_dir/hyp_pwn.sql", "content": "select 1 as x\n"}),
    Call("file_write", {"path": ".git/hooks/post-commit", "content": "#!/bin/sh\ntouch /tmp/hyp_pwn_hook\n"}),
    Call("file_edit", {"path": ".git/config", "old_text": "[core]", "new_text": "[core]\n\thooksPath = /tmp"}),
    Call("file_write", {"path": "models/staging/hyp_big.sql", "content": "x" * 5_000_000}),
    Call("file_edit", {"path": "models/marts/fct_orders.sql", "old_text": "order_id", "new_text": "x"}),
    Call("file_read", {"path": "../data/logs/server.log"}),
]
# node_rename / node_delete: names are never paths; a node of the fixture is only ever renamed or deleted as a dry run
# (NODE_MOVES in draw_call), so the rest of the run keeps a project that parses; nodes the run made (hyp*) for real.
NODE_MOVES = {"node_rename", "node_delete"}
NODE_MOVES |= {"model_update"}  # a fixture model's SQL too: replaced only as a dry run, so downstream models keep compiling
NODE_CASES = [
    Call("node_rename", {"name": "stg_orders", "new_name": "../../hyp_pwn", "dry_run": True}),
    Call("node_rename", {"name": "../../../etc/passwd", "new_name": "hyp_pwn"}),
    Call("node_rename", {"name": "linked_outside", "new_name": "hyp_pwn"}),
    Call("node_rename", {"name": "stg_orders", "new_name": "a" * 300, "dry_run": True}),
    Call("node_rename", {"name": "stg_orders", "new_name": "stg_customers", "dry_run": True}),
    Call("node_delete", {"name": "a/" * 500_000}),
    Call("node_delete", {"name": "raw.orders"}),
    Call("node_delete", {"name": "\x00"}),
    Call("node_delete", {"name": "stg_orders", "cascade_check": None, "dry_run": True}),
]
# model_update / node_properties: names are never paths, statements in Jinja refused, sizes capped (replayed first).
NODE_CASES += [
    Call("model_update", {"name": "../../../etc/passwd", "sql": "select 1 as x"}),
    Call("model_update", {"name": "\x00", "config": {"materialized": "table"}}),
    Call("model_update", {"name": "stg_orders", "sql": "{% do run_query('drop table raw.orders') %}select 1 as x"}),
    Call("model_update", {"name": "stg_orders", "config": {"post_hook": "drop table raw.orders"}, "dry_run": True}),
    Call("model_update", {"name": "stg_orders", "config": {"bad key')": 1}}),
    Call("model_update", {"name": "fct_orders", "config": {"materialized": "table", "tags": ["a')}}{{ run_query('x') }}"]}, "dry_run": True}),
    Call("model_update", {"name": "stg_orders", "sql": "x" * 5_000_000}),
    Call("model_update", {"name": "stg_orders", "sql": "   "}),
    Call("node_properties", {"name": "raw.orders", "columns": [{"name": "a" * 300}]}),
    Call("node_properties", {"name": "dim_customers", "description": "{% do run_query('drop table raw.orders') %}"}),
    Call("node_properties", {"name": "dim_customers", "tests": [{"relationships": {"arguments": {"to": "../../etc", "field": "x"}}}]}),
    Call("node_properties", {"name": "stg_orders", "columns": [{"name": "order_id", "tests": ["no_such_test"]}]}),
    Call("node_properties", {"name": "stg_orders", "columns": [{"name": "order_id"}, {"name": "ORDER_ID"}]}),
    Call("node_properties", {"name": "\x00", "generate": True}),
    Call("node_properties", {"name": "raw.", "description": "x"}),
    Call("node_properties", {"name": "model.shop.fct_orders", "generate": True}),
]
# Git calls whose text must never become an option or leave the project (replayed first, like REGRESSIONS).
GIT_CASES = [
    Call("git_commit", {"message": "hyp", "paths": ["--all"]}), Call("git_commit", {"message": "hyp", "paths": ["../"]}),
    Call("git_commit", {"message": "hyp", "paths": ["/etc/passwd"]}), Call("git_commit", {"message": "hyp", "paths": [".git/config"]}),
    Call("git_commit", {"message": "hyp", "paths": ["linked_outside.sql"]}), Call("git_commit", {"message": "hyp", "paths": ["a/" * 500_000]}),
    Call("git_commit", {"message": "--amend", "paths": ["models/marts/fct_orders.sql"]}),  # unchanged: an empty commit, refused
    Call("git_diff", {"paths": ["--output=/tmp/hyp_pwn_diff"]}), Call("git_diff", {"paths": [":(top)"]}),
    Call("git_log", {"path": "--output=/tmp/hyp_pwn_log"}), Call("git_log", {"path": "../../"}),
    Call("git_push", {"remote": "--upload-pack=touch /tmp/hyp_pwn_git"}), Call("git_push", {"branch": "--force"}),
    Call("git_push", {"remote": "ext::sh -c touch% /tmp/hyp_pwn_git"}), Call("git_push", {"branch": "main:refs/heads/x"}),
]


def shorten(value: Any, depth: int = 0) -> str:
    if depth > 6:
        return "…"
    if isinstance(value, str):
        return repr(value) if len(value) <= 120 else f"<{len(value)} chars: {value[:40]!r}…>"
    if isinstance(value, list):
        inner = ", ".join(shorten(v, depth + 1) for v in value[:5])
        return f"[{inner}{', …' if len(value) > 5 else ''}]" + (f"<{len(value)} items>" if len(value) > 5 else "")
    if isinstance(value, dict):
        inner = ", ".join(f"{shorten(k, depth + 1)}: {shorten(v, depth + 1)}" for k, v in list(value.items())[:8])
        return "{" + inner + (", …" if len(value) > 8 else "") + "}"
    return repr(value)


def poisoned(arguments: dict[str, Any], properties: dict[str, Any], draw: st.DrawFn) -> dict[str, Any]:
    """The arguments plus one value the server must refuse before dbt starts."""
    choices = ["timeout", "unknown"] + [p for p in ("select", "exclude", "target") if p in properties]
    kind = draw(st.sampled_from(choices))
    if kind == "timeout":
        return {**arguments, "timeout_seconds": draw(st.sampled_from(TIMEOUT_BAD))}
    if kind == "unknown":
        real = set(properties)
        typo = draw(st.sampled_from(sorted(real)).flatmap(lambda n: st.sampled_from(misspellings(n, real))))
        return {**arguments, typo: draw(st.sampled_from(NARROW + FLAGS))}
    return {**arguments, kind: draw(st.sampled_from(FLAGS[:-2] + ["stg_orders; drop table main.fct_orders", "tag:'x'"]))}


def narrowed(tool: str, arguments: dict[str, Any], draw: st.DrawFn) -> dict[str, Any] | None:
    """The arguments with a one-node selection (or a seed/snapshot definition); None where the tool has no selection."""
    args = {k: v for k, v in arguments.items() if k != "selector"}
    if tool in ("dbt_seed", "dbt_snapshot") and draw(st.booleans()):
        args = {k: v for k, v in args.items() if k not in ("select", "exclude")}
        args["name"] = draw(st.sampled_from(["hyp_seed", "hyp_snapshot", "raw_products", "customers_snapshot"]))
        return args
    if tool in ("dbt_deps", "dbt_retry", "dbt_parse"):
        return None
    args = {k: v for k, v in args.items() if k not in ("name", "rows", "csv", "relation")}
    args["select"] = draw(st.sampled_from(NARROW).flatmap(lambda n: st.sampled_from([n, [n]])))
    if tool == "dbt_docs":
        args["serve"] = False
    return args


def call_strategy(tools: dict[str, dict[str, Any]]) -> st.SearchStrategy[Call]:
    argument_objects = {name: arguments(schema, schema.get("$defs", {}), name) for name, schema in tools.items()}

    @st.composite
    def draw_call(draw: st.DrawFn) -> Call:
        name = draw(st.sampled_from(sorted(tools)))
        properties = tools[name].get("properties", {})
        args = draw(argument_objects[name])
        if name in WHOLE_PROJECT:
            narrow = narrowed(name, args, draw) if draw(st.integers(0, 3)) == 0 else None
            args = narrow if narrow is not None else poisoned(args, properties, draw)
        if name == "dbt_package" and args.get("dry_run") is not True:
            args = {**{k: v for k, v in args.items() if k not in ("name", "local")},
                    "git": draw(st.sampled_from(PLAUSIBLE["git"]))}  # an install that fails fast, never the network
        if name in NODE_MOVES and not (isinstance(args.get("name"), str) and args["name"].startswith(("hyp", "fct_hyp", "stg_hyp"))):
            args["dry_run"] = True
        if "timeout_seconds" in properties and args.get("timeout_seconds") is None:
            args["timeout_seconds"] = DBT_TIMEOUT_S
        return Call(name, args)

    return draw_call()


# -- what must hold after every call --------------------------------------------------------------------------------
SKIPPED_DIRS = {"target", "logs"}


def tree_state(root: Path, skip_dirs: set[str] = SKIPPED_DIRS) -> dict[str, str]:
    """sha256 of every file (a symlink by where it points, a folder as itself) but build products and the database."""
    state: dict[str, str] = {}
    for folder, dirs, files in os.walk(root):
        base = Path(folder)
        rel_base = base.relative_to(root)
        if base != root:
            state[rel_base.as_posix() + "/"] = "dir"
        dirs[:] = [d for d in dirs if not (base == root and d in skip_dirs)]
        for link in [d for d in dirs if (base / d).is_symlink()]:
            state[(rel_base / link).as_posix() + "/"] = f"link:{os.readlink(base / link)}"
        dirs[:] = [d for d in dirs if not (base / d).is_symlink()]
        for name in files:
            path = base / name
            if ".duckdb" in name:
                continue
            key = (rel_base / name).as_posix()
            state[key] = f"link:{os.readlink(path)}" if path.is_symlink() else hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def stray_files(parent: Path, allowed: set[str]) -> list[str]:
    here = sorted(p.name for p in parent.iterdir() if p.name not in allowed)
    pwned = sorted(str(p) for where in (Path("/tmp"), parent, REPO) for p in where.glob(PWN_GLOB))
    return here + pwned


@dataclass
class Server:
    """The one server process of the run, called from hypothesis' synchronous examples through a blocking portal."""

    portal: BlockingPortal
    client: Any
    project: Path
    data_dir: Path
    outside: Path
    tools: dict[str, dict[str, Any]] = field(default_factory=dict)
    read_only: set[str] = field(default_factory=set)

    def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        async def one() -> Any:
            with anyio.fail_after(CALL_TIMEOUT_S + 30):
                return await self.client.call_tool(tool, arguments, read_timeout_seconds=CALL_TIMEOUT_S)
        return self.portal.call(one)

    def memories(self) -> list[tuple[str, str, str]]:
        def fetch(cursor: str | None) -> dict[str, Any]:
            result = self.call("memory_retrieve", with_cursor({"key": "*/*/*", "limit": 200}, cursor))
            assert not result.is_error, result.structured_content
            return result.structured_content

        return sorted((m["key"], m.get("text") or "", json.dumps(m.get("metadata") or {}, sort_keys=True))
                      for page in follow_cursor(fetch) for m in page["memories"])

    def reseed_memories(self) -> None:
        result = self.call("memory_store", {"items": SEED_MEMORIES})
        assert not result.is_error, result.structured_content


@contextmanager
def running_server(root: Path, outside: Path) -> Iterator[Server]:
    project = copy_shop(root)
    # the project is its own git repository (never /work's): git_commit may only ever commit here
    for args in (["init", "-q", "-b", "main"], ["config", "user.name", "Hyp"], ["config", "user.email", "hyp@example.com"],
                 ["add", "-A"], ["commit", "-q", "-m", "initial"]):
        subprocess.run(["git", *args], cwd=project, check=True, capture_output=True)
    top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=project, check=True, capture_output=True, text=True).stdout
    assert Path(top.strip()).resolve() == project.resolve() and not project.resolve().is_relative_to(REPO)
    data_dir = root / "data"
    data_dir.mkdir()
    (outside / "secret.sql").write_text("select 'outside the project' as secret\n")
    (project / "linked_outside.sql").symlink_to(outside / "secret.sql")
    (project / "linked_dir").symlink_to(outside, target_is_directory=True)
    # --allow-push: git_push is drawn too; the repository has no remote, so nothing can leave it
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(stdio_session(project, data_dir, "--allow-push")) as client:
        server = Server(portal, client, project, data_dir, outside)
        listed = portal.call(client.list_tools).tools
        server.tools = {tool.name: tool.input_schema for tool in listed}
        server.read_only = {tool.name for tool in listed if tool.annotations and tool.annotations.read_only_hint}
        for tool, args in (("dbt_seed", {}), ("dbt_run", {})):  # the built project every example starts from
            result = server.call(tool, args)
            assert not result.is_error and result.structured_content["success"], result.content
        server.reseed_memories()
        yield server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    for path in Path("/tmp").glob(PWN_GLOB):  # left by an earlier failing run
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    with running_server(tmp_path_factory.mktemp("hostile"), tmp_path_factory.mktemp("hostile_outside")) as running:
        yield running


def error_problem(payload: dict[str, Any] | None) -> str | None:
    """Why an error result breaks the contract (typed code, message, hint; never internal_error), or None."""
    payload = payload or {}
    missing = [k for k in ("code", "message", "hint") if not (isinstance(payload.get(k), str) and payload[k].strip())]
    if missing:
        return f"error result without {', '.join(missing)}: {shorten(payload)}"
    if payload["code"] == "internal_error":
        return f"internal_error: {payload['message'][:500]}"
    return None


def test_hostile_calls_from_every_schema(server: Server) -> None:
    expected_tools = {"dbt_build", "dbt_show", "dbt_model", "sql_lint", "model_lineage", "memory_store", "git_commit", "git_push",
                      "agent_delegate", "task_claim"}
    assert expected_tools <= set(server.tools), sorted(server.tools)
    state = {"files": tree_state(server.project), "outside": tree_state(server.outside), "memories": server.memories()}
    allowed_here = {server.project.name, server.data_dir.name}
    drawn: set[str] = set()

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True, report_multiple_bugs=False,
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(call=call_strategy(server.tools))
    def one_call(call: Call) -> None:
        drawn.add(call.tool)
        try:
            result = server.call(call.tool, call.arguments)
        except Exception as exc:  # a timeout, a JSON-RPC error, a dead server: not a tool result
            raise NoReply(f"{call!r}: no tool result: {type(exc).__name__}: {str(exc)[:300]}") from exc
        HOSTILE_STATS["calls"] += 1
        files = tree_state(server.project)
        if result.is_error:
            problem = error_problem(result.structured_content)
            if problem is not None and "internal_error" in problem:
                HOSTILE_STATS["internal_errors"] += 1
            assert problem is None, f"{call!r}: {problem}"
            assert not changed(state["files"], files), f"{call!r} failed but changed {changed(state['files'], files)}"
            if call.tool.startswith("memory_"):
                assert server.memories() == state["memories"], f"{call!r} failed but changed the memory store"
        else:
            assert result.structured_content is not None, f"{call!r}: a result without structured content"
            if call.tool in server.read_only:
                assert not changed(state["files"], files), f"{call!r} is read-only but changed {changed(state['files'], files)}"
            state["files"] = files
            if call.tool in ("memory_store", "memory_delete"):
                if not {m["metadata"]["key"] for m in SEED_MEMORIES} <= {key for key, _, _ in server.memories()}:
                    server.reseed_memories()
                state["memories"] = server.memories()
        assert tree_state(server.outside) == state["outside"], f"{call!r} changed the folder outside the project"
        assert not stray_files(server.project.parent, allowed_here), f"{call!r} wrote {stray_files(server.project.parent, allowed_here)}"

    # Every tool at least once, whatever the draws reach (57 tools in 1,000 draws missed one): its first plausible call.
    every_tool = [Call(name, {**BASES[name][0]} if name in BASES else
                       {"select": NARROW[0]} if name in WHOLE_PROJECT and "select" in server.tools[name].get("properties", {}) else {})
                  for name in sorted(server.tools)]
    for found in reversed(REGRESSIONS + GIT_CASES + NODE_CASES + every_tool):  # replayed first, in this order
        one_call = example(call=found)(one_call)
    one_call()
    assert HOSTILE_STATS["calls"] >= EXAMPLES
    assert drawn == set(server.tools), f"tools never called: {sorted(set(server.tools) - drawn)}"
