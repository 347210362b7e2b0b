"""Fast tests of the pure parts: settings, inputs, SQL guard, budgets, result shaping, error classification."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from server.budget import cut_text
from server.schemas import SELF_EXPLANATORY
from server.settings import Settings
from tools.dbt.engine.jinja_guard import agent_text_findings
from tools.dbt.engine.readonly import (
    ProjectRelations,
    preview_problem,
    statement_problem,
)
from tools.dbt.engine.serialize import classify_exception, redact
from tools.dbt.inputs import (
    CompileInput,
    ListInput,
    RunInput,
    SeedInput,
    SelectionInput,
    ShowInput,
    selection_terms,
)
from tools.dbt.results import (
    DbtCommandResult,
    ListItem,
    ListResult,
    NodeResult,
    ShowResult,
    compact_size,
    count_statuses,
    order_nodes,
)


def test_settings_env_and_flags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DBT_PROFILES_DIR", raising=False)
    monkeypatch.setenv("DBT_AE_TOOLSETS", "dbt")
    monkeypatch.setenv("DBT_AE_TARGET", "from_env")
    monkeypatch.setenv("DBT_AE_PROJECT_DIR", str(tmp_path))
    settings = Settings(target="from_flag")
    assert settings.target == "from_flag" and settings.toolsets == ["dbt"] and settings.project_dir == tmp_path
    assert settings.effective_profiles_dir == Path.home() / ".dbt"
    (tmp_path / "profiles.yml").write_text("x: 1\n")
    assert Settings().effective_profiles_dir == tmp_path
    with pytest.raises(ValidationError):
        Settings(toolsets="dbt,nonsense")
    with pytest.raises(ValidationError):
        Settings(http="8080")
    assert Settings(http="127.0.0.1:8765").http_host_port == ("127.0.0.1", 8765)


@pytest.mark.parametrize("field,value", [
    ("select", "-s"), ("select", ["a", "--vars"]), ("exclude", " -x"), ("selector", "--help"), ("target", "-t"),
    ("select", "stg_orders --store-failures"), ("select", "x --target-path /tmp/evil"), ("exclude", "y\t--log-path /tmp"),
])
def test_flag_injection_rejected(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match="may not start with '-'"):
        RunInput(**{field: value})


def test_selection_args_and_flags() -> None:
    assert selection_terms("a  b") == ["a", "b"] and selection_terms(["a b", "c"]) == ["a", "b", "c"]
    run = RunInput(select="+fct_orders", exclude=["tag:slow"], full_refresh=True, fail_fast=True, threads=4)
    assert run.execution_args() == ["--select", "+fct_orders", "--exclude", "tag:slow", "--fail-fast", "--threads", "4", "--full-refresh"]
    assert RunInput(vars={"b": 1, "a": "x"}).vars_json() == '{"a": "x", "b": 1}'
    assert SelectionInput().selection_args() == [] and not SelectionInput().has_selection
    with pytest.raises(ValidationError):
        RunInput(unknown_argument=1)
    with pytest.raises(ValidationError):
        ShowInput(sql="select 1", limit=0)
    assert CompileInput(select="x").include_tests is False
    assert ListInput().limit == 100


RELATIONS = ProjectRelations(frozenset({("shop", "main", "fct_orders"), ("shop", "raw", "orders")}), frozenset({"fct_orders", "orders"}))


@pytest.mark.parametrize("sql", [
    "select 1",
    "with a as (select 1 as x) select x from a",
    "select * from shop.main.fct_orders where status = 'delete'",
    "select * from raw.orders o join fct_orders f on o.id = f.order_id",
    "select 1 union all select 2",
    "-- a comment\nselect 1;",
    "select sum(i) from range(10) t(i)",
])
def test_preview_queries_pass(sql: str) -> None:
    assert preview_problem(sql, "duckdb", RELATIONS) is None


@pytest.mark.parametrize("sql,code,reason", [
    ("drop table x", "not_read_only", "DROP"),
    ("delete from x", "not_read_only", "DELETE"),
    ("insert into x values (1)", "not_read_only", "INSERT"),
    ("create table y as select 1", "not_read_only", "CREATE"),
    ("select 1; drop table x", "not_read_only", "2 statements"),
    ("update x set a = 1", "not_read_only", "UPDATE"),
    ("select x'41' as c, E'\\'' as a ; copy (select 'pwned' as x) to '/tmp/pwn.csv' ; select E'\\'' as b", "invalid_sql", "parse"),
    ("select 1 /* /* */ as a", "invalid_sql", "parse"),
    ("select content from read_text('/etc/passwd')", "relation_not_allowed", "not a table"),
    ("select * from glob('/etc/*')", "relation_not_allowed", "not a table"),
    ("select * from duckdb_settings()", "relation_not_allowed", "not a table"),
    ("select current_setting('home_directory')", "relation_not_allowed", "current_setting"),
    ("select * from information_schema.tables", "relation_not_allowed", "information_schema.tables"),
    ("select * from main.secrets", "relation_not_allowed", "main.secrets"),
])
def test_preview_queries_refused(sql: str, code: str, reason: str) -> None:
    problem = preview_problem(sql, "duckdb", RELATIONS)
    assert problem is not None and problem[0] == code and reason in problem[1], problem


def test_any_relation_setting_still_refuses_writes_and_files() -> None:
    assert preview_problem("select * from main.secrets", "duckdb", None) is None
    assert preview_problem("select * from read_text('/etc/passwd')", "duckdb", None)[0] == "relation_not_allowed"  # type: ignore[index]
    assert preview_problem("drop table x", "duckdb", None)[0] == "not_read_only"  # type: ignore[index]


@pytest.mark.parametrize("adapter", ["duckdb", "postgres"])
def test_statement_guard(adapter: str) -> None:
    for sql in ("select 1", "BEGIN", "COMMIT", "select * from information_schema.tables"):
        assert statement_problem(sql, adapter) is None, sql
    for sql in ("drop table x", "select 1; drop table x", "copy (select 1) to 'x'", "create table x as select 1", "insert into x values (1)"):
        assert statement_problem(sql, adapter) is not None, sql


@pytest.mark.parametrize("sql,name", [
    ("{% do run_query('drop table x') %}", "run_query"),
    ("select 1 {% set r = run_query('delete from x') %}", "run_query"),
    ("select {{ adapter.execute('drop table x') }}", "adapter.execute"),
    ("{% set a = adapter %}select {{ a['exe' ~ 'cute']('drop table t') }} as x", "adapter[...]"),
    ("select {{ adapter|attr('execute') }}", "attr"),
    ("{% call statement('x') %}drop table t{% endcall %}", "statement"),
    ("{{ modules.os.system('ls') }}", "modules"),
    ("select {{ x.__class__ }}", "__class__"),
    ("{{ config(post_hook='drop table x') }} select 1", "post_hook"),
    ("{{ config(**{'pre-hook': 'drop table x'}) }} select 1", "pre-hook"),
    ("select {{ env_var('HOME') }}", "env_var"),
    ("{{ write('x') }}", "write"),
])
def test_agent_jinja_that_runs_statements_is_found(sql: str, name: str) -> None:
    assert name in [f.name for f in agent_text_findings(sql, inline=True)]


@pytest.mark.parametrize("sql", [
    "select * from {{ ref('fct_orders') }} where status = 'execute'",
    "select {{ cents_to_dollars('amount') }} from {{ source('raw', 'orders') }} {# run_query in a comment #}",
    "{{ config(materialized='incremental', unique_key='id') }} select 1 {% if is_incremental() %} where 1=1 {% endif %}",
    "select {{ adapter.quote('x') }}, {{ dbt_utils.star(ref('a')) }}",
    "{% test positive(model, column_name) %} select * from {{ model }} where {{ column_name }} < 0 {% endtest %}",
])
def test_ordinary_dbt_jinja_passes(sql: str) -> None:
    assert agent_text_findings(sql, inline=True) == []


def test_yaml_hooks_found() -> None:
    found = agent_text_findings("models:\n  - name: x\n    config:\n      post-hook: 'grant select on x'\n", yaml=True)
    assert [(f.kind, f.name, f.line) for f in found] == [("hook", "post-hook", 4)]


@pytest.mark.parametrize("types,valid", [
    ({"a": "varchar"}, True), ({"a": "decimal(10, 2)"}, True), ({"a": "timestamp with time zone"}, True), ({"a": "integer[]"}, True),
    ({"code": "varchar); copy (select 'pwned' as x) to '/tmp/pwn_seed.csv'; create table x (y varchar"}, False),
    ({"a": "int; drop table t"}, False), ({"a": "varchar -- x"}, False), ({"a": ""}, False),
])
def test_seed_column_types_grammar(types: dict[str, str], valid: bool) -> None:
    if valid:
        SeedInput(name="s", csv="a\n1\n", column_types=types)
    else:
        with pytest.raises(ValidationError):
            SeedInput(name="s", csv="a\n1\n", column_types=types)


@pytest.mark.parametrize("select", ["a; rm -rf /", "x'", "$(id)", "a|b", "tag:`x`"])
def test_selectors_are_selector_terms(select: str) -> None:
    with pytest.raises(ValidationError):
        SelectionInput(select=select)


def _node(uid: str, status: str, sql: str | None = None) -> NodeResult:
    return NodeResult(unique_id=uid, resource_type="model", status=status, compiled_sql=sql)


def test_failing_nodes_first_and_counts() -> None:
    nodes = [_node("a", "success"), _node("b", "warn"), _node("c", "error"), _node("d", "fail"), _node("e", "skipped")]
    ordered = [n.unique_id for n in order_nodes(nodes)]
    assert ordered[:2] == ["c", "d"] and ordered[2] == "b"
    assert count_statuses(nodes) == {"PASS": 1, "WARN": 1, "ERROR": 2, "SKIP": 1, "NO-OP": 0, "TOTAL": 5}


def test_command_result_fits_budget_keeping_failures() -> None:
    nodes = [_node(f"model.x.m{i}", "warn", "select 1 " * 400) for i in range(200)] + [_node("model.x.bad", "error", "x" * 5000)]
    result = DbtCommandResult.of_nodes("build", nodes, success=False, elapsed_s=1.0, artifact_path="/tmp/run_results.json")
    fitted = result.fit(32_000)
    assert compact_size(fitted) <= 32_000
    assert fitted.nodes[0].unique_id == "model.x.bad" and fitted.nodes[0].compiled_sql_truncated
    assert fitted.truncated and fitted.omitted_nodes == 201 - len(fitted.nodes)
    assert "left out to fit" in fitted.summary()
    assert result.fit(10_000_000) is result


def test_passing_nodes_collapse_to_names_timings_and_rows() -> None:
    """Issue 14: passing nodes by status, the five slowest, rows and incremental mode; a 50-node pass <= 3 KB."""
    nodes = [NodeResult(unique_id=f"model.shop.model_number_{i}", name=f"model_number_{i}", resource_type="model",
                        status="success", execution_time_s=0.01 * i, materialized="table", rows_affected=i,
                        relation_name=f'"db"."main"."model_number_{i}"', original_file_path=f"models/model_number_{i}.sql")
             for i in range(25)]
    nodes += [NodeResult(unique_id=f"test.shop.not_null_model_number_{i}_id.abc", name=f"not_null_model_number_{i}_id",
                         resource_type="test", status="pass", execution_time_s=0.001, failures=0) for i in range(25)]
    nodes[3] = nodes[3].model_copy(update={"incremental": "incremental"})
    result = DbtCommandResult.of_nodes("build", nodes, success=True, elapsed_s=1.0)
    assert result.nodes == [] and len(result.passed["success"]) == 25 and len(result.passed["pass"]) == 25
    assert [s["name"] for s in result.slowest] == ["model_number_24", "model_number_23", "model_number_22", "model_number_21", "model_number_20"]
    assert result.rows_affected["model_number_7"] == 7 and result.incremental == {"model_number_3": "incremental"}
    structured = result.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    assert compact_size(result) <= 3000, compact_size(result)
    assert "nodes" not in structured and "error" not in structured and "truncated" not in structured
    assert "model_number_3 incremental (3 rows)" in result.summary()


def test_show_and_list_fit() -> None:
    show = ShowResult(columns=["a"], column_types=["Text"], rows=[["x" * 100]] * 1000, row_count=1000, limit=1000, elapsed_s=0.1)
    fitted = show.fit(20_000)
    assert fitted.truncated and len(fitted.model_dump_json()) <= 20_000 and fitted.rows
    page = ListResult(items=[ListItem(unique_id=f"model.x.m{i}" * 5) for i in range(500)], total=900, offset=100, next_cursor="600")
    small = page.fit(10_000)
    assert len(small.model_dump_json()) <= 10_000 and small.next_cursor == str(100 + len(small.items))


def test_cut_text() -> None:
    assert cut_text("short", 100) == ("short", False)
    text, cut = cut_text("line\n" * 100, 50)
    assert cut and len(text) <= 50 and text.endswith("[truncated]")
    text, cut = cut_text("line\n" * 100, 80, "see next_cursor")
    assert cut and len(text) <= 80 and text.endswith("[truncated: see next_cursor]")


def test_redaction() -> None:
    assert redact("password: hunter2 and token=abc123") == "password: *** and token=***"
    assert "hunter2" not in redact("PASSWORD = hunter2")


def test_classify_dbt_exceptions() -> None:
    from dbt_common.exceptions import CompilationError, DbtRuntimeError

    assert classify_exception(CompilationError("bad jinja"), [])["code"] == "dbt_compilation_error"
    wrapped = DbtRuntimeError("Compilation Error in model m (models/m.sql)\n  'x' is undefined")
    assert classify_exception(wrapped, [])["code"] == "dbt_compilation_error"
    profile = DbtRuntimeError("dbt encountered an error while trying to read your profiles.yml file.")
    assert classify_exception(profile, [])["code"] == "profile_error"
    generic = classify_exception(DbtRuntimeError("something else"), [{"level": "error", "name": "X", "msg": "detail password=s3cret"}])
    assert generic["code"] == "dbt_runtime_error" and "detail" in generic["message"] and "s3cret" not in generic["message"]
    assert all(classify_exception(DbtRuntimeError("m"), [])[key] for key in ("code", "message", "hint"))


def test_read_only_mode_registers_no_writers(tmp_path: Path) -> None:
    import asyncio

    from server.app import build_app

    app, _ = build_app(Settings(project_dir=tmp_path, read_only=True, data_dir=tmp_path / "data"))
    names = {tool.name for tool in asyncio.run(app.list_tools())}
    assert {"dbt_show", "dbt_compile", "dbt_list", "dbt_test", "dbt_debug"} <= names
    assert not names & {"dbt_run", "dbt_build", "dbt_seed", "dbt_snapshot", "dbt_retry", "dbt_deps"}
    assert not names & {"memory_store", "memory_delete"} and {"vector_search", "memory_retrieve"} <= names
    assert not names & {"dbt_model", "incremental_model", "dbt_source", "dbt_macro", "data_quality_test", "exposure_define", "dbt_package", "sql_fix"}
    assert {"sql_lint", "analyze_file", "project_check"} <= names
    assert not names & {"file_write", "file_edit", "node_rename", "node_delete", "model_update", "node_properties"} and {"project_files", "file_read", "file_search"} <= names
    assert not names & {"git_commit", "git_push"} and {"git_status", "git_diff", "git_log"} <= names
    # tasks live in the server's data dir, not the project or the warehouse: a read-only agent still coordinates
    assert {"agent_delegate", "agent_escalate", "task_list", "task_claim", "task_update", "task_get"} <= names
    dbt_only, _ = build_app(Settings(project_dir=tmp_path, data_dir=tmp_path / "data", toolsets="dbt"))
    assert len(asyncio.run(dbt_only.list_tools())) == 14
    full, _ = build_app(Settings(project_dir=tmp_path, data_dir=tmp_path / "data"))
    tools = {tool.name: tool for tool in asyncio.run(full.list_tools())}
    git = {name for name in tools if name.startswith("git_")}  # git_push only with --allow-push
    assert git == {"git_status", "git_diff", "git_log", "git_commit"}
    assert len(tools) == 56  # 14 dbt + 7 authoring + 5 quality + 5 lineage + 9 files + 4 git + 6 memory + 6 delegation
    for tool in tools.values():
        assert tool.annotations is not None and (tool.annotations.open_world_hint is False or tool.name == "dbt_package")
        assert tool.output_schema is not None
        for name, prop in tool.input_schema["properties"].items():
            assert prop.get("description") or name in SELF_EXPLANATORY, f"{tool.name}.{name} has no description"


def test_fit_keeps_failing_nodes_before_passing_names() -> None:
    """Failing nodes in full come first: passing names are cut before any of them is dropped."""
    nodes = [_node(f"model.x.passing_model_with_a_long_name_{i}", "success") for i in range(250)]  # < half the budget
    failing = [NodeResult(unique_id=f"test.x.relationships_{i}", name=f"relationships_{i}", resource_type="test", status="fail",
                          failures=3, message="Got 3 results", test_name="relationships", column_name="customer_id",
                          failing_rows={"columns": ["from_field"], "rows": [["x" * 5000]] + [["y" * 150]] * 4}) for i in range(20)]
    fitted = DbtCommandResult.of_nodes("build", nodes + failing, success=False, elapsed_s=1.0).fit(25_600)
    assert compact_size(fitted) <= 25_600
    assert len(fitted.nodes) == 20 and fitted.omitted_nodes == 250 - 20 and len(fitted.passed["success"]) == 20
    assert all(len(str(row[0])) <= 201 for node in fitted.nodes for row in node.failing_rows["rows"])


def test_collapsed_names_stay_unique() -> None:
    nodes = [NodeResult(unique_id="model.x.orders", name="orders", resource_type="model", status="success", rows_affected=1),
             NodeResult(unique_id="seed.x.orders_seed", name="orders_seed", resource_type="seed", status="success"),
             NodeResult(unique_id="model.y.orders", name="orders", resource_type="model", status="success", rows_affected=2)]
    result = DbtCommandResult.of_nodes("run", nodes, success=True, elapsed_s=1.0)
    assert result.passed == {"success": ["model.x.orders", "orders_seed", "model.y.orders"]}
    assert result.rows_affected == {"model.x.orders": 1, "model.y.orders": 2}


def test_fit_cuts_huge_messages_and_many_nodes() -> None:
    nodes = [_node("model.x.bad", "error")] + [_node(f"model.x.m{i}", "success") for i in range(5000)]
    nodes[0].message = "boom " * 20000
    result = DbtCommandResult.of_nodes("build", nodes, success=False, elapsed_s=1.0, error={"code": "x", "message": "y" * 50000})
    fitted = result.fit(20_000)
    assert compact_size(fitted) <= 20_000
    assert fitted.nodes[0].unique_id == "model.x.bad" and len(fitted.nodes[0].message) < 2000
    assert len(fitted.passed["success"]) == 20 and fitted.omitted_nodes == 5000 - 20


def test_deprecations_are_reported_once_per_process_with_their_fix() -> None:
    from tools.dbt.warnings import agent_warnings

    deprecation = {"name": "MissingArgumentsPropertyInGenericTestDeprecation", "level": "warn",
                   "msg": "[WARNING][MissingArgumentsPropertyInGenericTestDeprecation]: Deprecated\nfunctionality\nFound top-level arguments"}
    summary = {"name": "DeprecationsSummary", "level": "warn", "msg": "Summary of encountered deprecations: ..."}
    other = {"name": "SomethingElse", "level": "warn", "msg": "a warning"}
    reported: set[str] = set()
    first = agent_warnings([deprecation, summary, other, other], reported)
    assert len(first) == 2 and "nest the test's arguments under `arguments:`" in first[0] and "\n" not in first[0]
    assert first[1] == "a warning"  # the summary is dropped, a repeated warning shown once
    assert agent_warnings([deprecation, summary, other], reported) == ["a warning"]
