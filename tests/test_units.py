"""Fast tests of the pure parts: settings, inputs, SQL guard, budgets, result shaping, error classification."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from server.budget import cut_text
from server.settings import Settings
from tools.dbt_engine.serialize import classify_exception, redact
from tools.dbt_inputs import CompileInput, ListInput, RunInput, SelectionInput, ShowInput, read_only_problem, selection_terms
from tools.dbt_results import DbtCommandResult, ListItem, ListResult, NodeResult, ShowResult, count_statuses, order_nodes


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


@pytest.mark.parametrize("sql", [
    "select 1",
    "with a as (select 1 as x) select x from a",
    "select * from {{ ref('fct_orders') }} where status = 'delete'",
    "select * from {{ source('raw', 'orders') }} where status in {{ var('statuses', 'x') }} {# why #}",
    "select 1 union all select 2",
    "-- a comment\nselect 1;",
])
def test_read_only_queries_pass(sql: str) -> None:
    assert read_only_problem(sql) is None


@pytest.mark.parametrize("sql,reason", [
    ("drop table x", "DROP"),
    ("delete from x", "DELETE"),
    ("insert into x values (1)", "INSERT"),
    ("create table y as select 1", "CREATE"),
    ("select 1; drop table x", "2 statements"),
    ("update x set a = 1", "UPDATE"),
    ("", "empty"),
    ("{% do run_query('drop table x') %}", "Jinja"),
    ("select 1 {% set r = run_query('delete from x') %}", "Jinja"),
    ("select {{ adapter.execute('drop table x') }}", "Jinja"),
    ('select 1 {{ "; drop table main.customers; select 1" }}', "Jinja"),
    ("{% set a = adapter %}select {{ a['exe' ~ 'cute']('drop table t') }} as x", "Jinja"),
    ("select {{ adapter|attr('execute') }}", "Jinja"),
    ("select {{ cents_to_dollars('x') }}", "Jinja"),
])
def test_writing_statements_rejected(sql: str, reason: str) -> None:
    problem = read_only_problem(sql)
    assert problem is not None and reason in problem


def _node(uid: str, status: str, sql: str | None = None) -> NodeResult:
    return NodeResult(unique_id=uid, resource_type="model", status=status, compiled_sql=sql)


def test_failing_nodes_first_and_counts() -> None:
    nodes = [_node("a", "success"), _node("b", "warn"), _node("c", "error"), _node("d", "fail"), _node("e", "skipped")]
    ordered = [n.unique_id for n in order_nodes(nodes)]
    assert ordered[:2] == ["c", "d"] and ordered[2] == "b"
    assert count_statuses(nodes) == {"PASS": 1, "WARN": 1, "ERROR": 2, "SKIP": 1, "NO-OP": 0, "TOTAL": 5}


def test_command_result_fits_budget_keeping_failures() -> None:
    nodes = [_node(f"model.x.m{i}", "success", "select 1 " * 400) for i in range(200)] + [_node("model.x.bad", "error", "x" * 5000)]
    result = DbtCommandResult(command="build", success=False, counts=count_statuses(nodes), elapsed_s=1.0,
                              nodes=order_nodes(nodes), artifact_path="/tmp/run_results.json")
    fitted = result.fit(32_000)
    assert len(fitted.model_dump_json()) <= 32_000
    assert fitted.nodes[0].unique_id == "model.x.bad" and fitted.nodes[0].compiled_sql_truncated
    assert fitted.truncated and fitted.omitted_nodes == 201 - len(fitted.nodes)
    assert "left out to fit" in fitted.summary()
    assert result.fit(10_000_000) is result


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
    dbt_only, _ = build_app(Settings(project_dir=tmp_path, data_dir=tmp_path / "data", toolsets="dbt"))
    assert len(asyncio.run(dbt_only.list_tools())) == 14
    full, _ = build_app(Settings(project_dir=tmp_path, data_dir=tmp_path / "data"))
    tools = {tool.name: tool for tool in asyncio.run(full.list_tools())}
    assert len(tools) == 37  # 14 dbt + 7 authoring + 5 quality + 5 lineage + 6 memory
    for tool in tools.values():
        assert tool.annotations is not None and tool.annotations.read_only_hint is not None
        assert tool.output_schema is not None
        for name, prop in tool.input_schema["properties"].items():
            assert prop.get("description"), f"{tool.name}.{name} has no description"


def test_fit_cuts_huge_messages_and_many_nodes() -> None:
    nodes = [_node("model.x.bad", "error")] + [_node(f"model.x.m{i}", "success") for i in range(5000)]
    nodes[0].message = "boom " * 20000
    result = DbtCommandResult(command="build", success=False, counts=count_statuses(nodes), elapsed_s=1.0,
                              nodes=order_nodes(nodes), error={"code": "x", "message": "y" * 50000})
    fitted = result.fit(20_000)
    assert len(fitted.model_dump_json()) <= 20_000
    assert fitted.nodes[0].unique_id == "model.x.bad" and len(fitted.nodes[0].message) < 2000
    assert fitted.omitted_nodes == len(nodes) - len(fitted.nodes)
