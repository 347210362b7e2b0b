"""README promises of the dbt toolset that no other test checked (issue 12), through a real MCP client over stdio:
dbt_retry re-runs only what failed, results fit the output budget, the warm worker re-parses for a new target or
new vars, and credentials never reach dbt_debug's output or an error's text. Retry runs on DuckDB and on PostgreSQL
(tests/pg.py); the rest are about the server, not the warehouse (a budget-cut build on PostgreSQL is in
test_resources_e2e, a switch between the two adapters in one worker in test_dbt_errors_e2e)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp_types import CallToolResult

from conftest import all_pages, copy_shop, error, ok, stdio_session, node_statuses
from pg import Warehouse

pytestmark = pytest.mark.e2e

DBT_ONLY = ("--toolsets", "dbt")  # no embedding model to load: these tests need the dbt tools only
BUDGET_TOKENS = 1000
LONG_COLUMNS = 300

# Parse-time uses of target and vars: a stale manifest would keep these models disabled.
VARS_PROBE = """{{ config(enabled=var("probe_enabled", false)) }}\nselect '{{ var("x", "default") }}' as v\n"""
TARGET_PROBE = """{{ config(enabled=(target.name == "other")) }}\nselect '{{ target.name }}' as t\n"""
OTHER_TARGET = """
    other:
      type: duckdb
      path: "other.duckdb"
      threads: 1
"""

# Secrets placed where dbt debug prints them (settings, remote, an attach URL) or where an error quotes them (path).
SECRETS = ("S3Secret9F3kQ", "SessTok7Wd2x", "RemotePw7Q2z", "UrlPw4X8mZ", "PathPw5Lq0")
LEAKY_TARGETS = """
    leaky:
      type: duckdb
      path: "/nonexistent-dir/leaky.duckdb"
      threads: 1
      settings:
        s3_secret_access_key: "S3Secret9F3kQ"
        s3_session_token: "SessTok7Wd2x"
      remote:
        host: localhost
        port: 1
        user: bob
        password: "RemotePw7Q2z"
      attach:
        - path: "postgresql://bob:UrlPw4X8mZ@localhost:1/warehouse"
          type: postgres
          alias: pg
    leaky_path:
      type: duckdb
      path: "/nonexistent-dir/password=PathPw5Lq0.duckdb"
      threads: 1
"""


def text_of(result: CallToolResult) -> str:
    """Everything a client sees of a result: the text blocks and the structured content."""
    texts = [block.text for block in result.content if getattr(block, "text", None)]
    return "\n".join(texts) + "\n" + json.dumps(result.structured_content or {})


def write(project: Path, relative: str, text: str) -> None:
    path = project / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def add_targets(project: Path, outputs_yaml: str) -> None:
    """Append targets to the copied project's profile (its `outputs:` mapping is the file's last block)."""
    profiles = project / "profiles.yml"
    profiles.write_text(profiles.read_text().rstrip("\n") + "\n" + outputs_yaml)




def compiled(result: dict[str, Any]) -> str:
    assert len(result["nodes"]) == 1, result["nodes"]
    return result["nodes"][0]["compiled_sql"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy of the shop project for the whole-project build: a failing singular test and a long model added."""
    root = tmp_path_factory.mktemp("promises")
    project = copy_shop(root)
    write(project, "tests/assert_budget_probe_fails.sql", "select 1 as failing_row\n")
    columns = ",\n".join(f"  {i} as c{i:04d}" for i in range(1, LONG_COLUMNS + 1))
    write(project, "models/probes/long_probe.sql", f"select\n{columns}\n")
    (root / "data").mkdir()
    return project


async def test_retry_reruns_only_failed_and_skipped_nodes(warehouse: Warehouse, shop_on: Path, data_dir: Path) -> None:
    shop = shop_on
    write(shop, "models/probes/retry_ok.sql", "select 1 as id\n")
    async with warehouse.session(shop, data_dir, *DBT_ONLY) as client:
        # A fresh copy has no run_results.json yet: nothing to retry, typed, with the next step.
        assert not (shop / "target" / "run_results.json").exists()
        nothing = error(await client.call_tool("dbt_retry", {}))
        assert nothing["code"] == "nothing_to_retry" and "dbt_build" in nothing["hint"]

        write(shop, "models/probes/retry_probe.sql", "select no_such_column as id from (select 1 as x) as t\n")
        write(shop, "models/probes/retry_child.sql", "select id from {{ ref('retry_probe') }}\n")
        first = ok(await client.call_tool("dbt_build", {"select": ["retry_probe+", "retry_ok"]}))
        assert first["success"] is False
        assert first["nodes"][0]["unique_id"] == "model.shop.retry_probe" and first["nodes"][0]["status"] == "error"
        assert node_statuses(first) == {"retry_probe": "error", "retry_child": "skipped", "retry_ok": "success"}

        write(shop, "models/probes/retry_probe.sql", "select 1 as id\n")
        retried = ok(await client.call_tool("dbt_retry", {}))
        assert retried["success"] is True, retried
        assert node_statuses(retried) == {"retry_probe": "success", "retry_child": "success"}
        assert retried["counts"]["ERROR"] == 0 and retried["counts"]["TOTAL"] == 2


async def test_results_fit_the_output_budget(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBT_AE_OUTPUT_BUDGET_TOKENS", str(BUDGET_TOKENS))
    limit = BUDGET_TOKENS * 4
    async with stdio_session(built, built.parent / "data", *DBT_ONLY) as client:
        raw = await client.call_tool("dbt_build", {})
        build = ok(raw)
        assert len(text_of(raw)) <= limit
        total = build["counts"]["TOTAL"]
        assert total > 60 and build["success"] is False
        # Failing nodes first; passing ones are what gets left out, counted, with the full result on disk.
        assert build["nodes"][0]["unique_id"] == "test.shop.assert_budget_probe_fails"
        assert build["nodes"][0]["status"] == "fail"
        shown = len(build["nodes"]) + sum(map(len, build["passed"].values()))
        assert build["truncated"] is True and build["omitted_nodes"] == total - shown > 0
        assert "left out to fit the output budget" in raw.content[0].text
        run_results = json.loads(Path(build["artifact_path"]).read_text())
        assert Path(build["artifact_path"]) == built / "target" / "run_results.json"
        assert len(run_results["results"]) == total
        assert "test.shop.assert_budget_probe_fails" in {r["unique_id"] for r in run_results["results"]}

        # Long SQL is cut, with a pointer to the compiled file that holds all of it.
        raw = await client.call_tool("dbt_compile", {"select": "long_probe"})
        node = ok(raw)["nodes"][0]
        assert len(text_of(raw)) <= limit
        assert node["compiled_sql_truncated"] is True and "full SQL at compiled_path" in node["compiled_sql"]
        assert f"c{LONG_COLUMNS:04d}" not in node["compiled_sql"]
        assert f"c{LONG_COLUMNS:04d}" in Path(node["compiled_path"]).read_text()

        # Lists paginate: a page cut to the budget hands out a cursor, and the pages add up to every node once.
        seen: list[str] = []
        for raw in await all_pages(client, "dbt_list", {"limit": 1000}):
            page = ok(raw)
            assert len(text_of(raw)) <= limit
            assert page["offset"] == len(seen) and page["items"]
            seen += [item["unique_id"] for item in page["items"]]
        assert len(seen) == len(set(seen)) == page["total"] > len(page["items"])


async def test_new_target_or_vars_reparse_and_vars_reach_the_sql(shop: Path, data_dir: Path) -> None:
    write(shop, "models/probes/vars_probe.sql", VARS_PROBE)
    write(shop, "models/probes/target_probe.sql", TARGET_PROBE)
    add_targets(shop, OTHER_TARGET)
    inline = """select '{{ var("x", "default") }}' as v"""
    async with stdio_session(shop, data_dir, *DBT_ONLY) as client:
        for value in ("one", "two"):
            on = {"probe_enabled": True, "x": value}
            assert f"'{value}' as v" in compiled(ok(await client.call_tool("dbt_compile", {"sql": inline, "vars": on})))
            # enabled= is read when dbt parses: the model exists only in a manifest parsed with these vars.
            listed = ok(await client.call_tool("dbt_list", {"select": "vars_probe", "vars": on}))
            assert [i["name"] for i in listed["items"]] == ["vars_probe"]
            assert f"'{value}' as v" in compiled(ok(await client.call_tool("dbt_compile", {"select": "vars_probe", "vars": on})))
        assert "'default' as v" in compiled(ok(await client.call_tool("dbt_compile", {"sql": inline})))
        assert error(await client.call_tool("dbt_list", {"select": "vars_probe"}))["code"] == "model_not_found"

        # Same for the target: target_probe exists only when parsed for target `other`.
        assert error(await client.call_tool("dbt_list", {"select": "target_probe"}))["code"] == "model_not_found"
        listed = ok(await client.call_tool("dbt_list", {"select": "target_probe", "target": "other"}))
        assert [i["name"] for i in listed["items"]] == ["target_probe"]
        assert "'other' as t" in compiled(ok(await client.call_tool("dbt_compile", {"select": "target_probe", "target": "other"})))
        assert ok(await client.call_tool("dbt_run", {"select": "target_probe", "target": "other"}))["success"]

        # After a good call on one target, a call naming the broken one reaches the broken one, and back.
        broken = error(await client.call_tool("dbt_run", {"select": "stg_customers", "target": "broken"}))
        assert broken["code"] == "connection_error" and "nonexistent-dir" in broken["message"]
        assert error(await client.call_tool("dbt_list", {"select": "target_probe"}))["code"] == "model_not_found"


async def test_credentials_are_redacted_in_debug_and_errors(shop: Path, data_dir: Path) -> None:
    add_targets(shop, LEAKY_TARGETS)
    async with stdio_session(shop, data_dir, *DBT_ONLY) as client:
        raw = await client.call_tool("dbt_debug", {"target": "leaky"})
        debug = ok(raw)
        seen = text_of(raw)
        # The lines that held the secrets are there, masked: the check below is not vacuous.
        assert debug["connection_ok"] is False
        assert any("settings:" in line and "s3_secret_access_key" in line for line in debug["output"]), debug["output"]
        assert any("remote:" in line and "'user': 'bob'" in line for line in debug["output"]), debug["output"]
        assert any("attach:" in line and "localhost:1/warehouse" in line for line in debug["output"]), debug["output"]
        assert [secret for secret in SECRETS if secret in seen] == []

        raw = await client.call_tool("dbt_run", {"select": "stg_customers", "target": "leaky_path"})
        failure = error(raw)
        assert failure["code"] == "connection_error" and "/nonexistent-dir/password=" in failure["message"]
        assert [secret for secret in SECRETS if secret in text_of(raw)] == []


MISSING_ATTACHMENT = """
    missing_attach:
      type: duckdb
      path: "shop.duckdb"
      threads: 1
      attach:
        - path: "no_such_file.duckdb"
          alias: gone
"""


async def test_a_preview_that_cannot_open_the_database_is_typed(shop: Path, data_dir: Path) -> None:
    """The read-only preview connection attaches what the target attaches: a missing file is preview_unavailable."""
    add_targets(shop, MISSING_ATTACHMENT)
    async with stdio_session(shop, data_dir, *DBT_ONLY) as client:
        assert ok(await client.call_tool("dbt_seed", {"select": "raw_orders"}))["success"]
        failure = error(await client.call_tool("dbt_show", {"sql": "select 1 as x", "target": "missing_attach"}))
        assert failure["code"] == "preview_unavailable" and "no_such_file" in failure["message"], failure
        shown = ok(await client.call_tool("dbt_show", {"sql": "select count(*) as n from {{ ref('raw_orders') }}"}))
        assert shown["rows"] == [[36]]


async def test_a_deprecation_is_reported_once_with_its_fix(shop: Path, data_dir: Path) -> None:
    """dbt warns about the old generic-test layout twice per parse (the event and its summary), during the worker's
    start-up parse: the first result carries it once, with the fix. (dbt itself warns once per process afterwards;
    the server's own once-per-process rule is unit-tested in test_dbt_units.)"""
    text = (shop / "dbt_project.yml").read_text()
    (shop / "dbt_project.yml").write_text(text.replace("  require_generic_test_arguments_property: true\n", ""))
    write(shop, "models/probes/dep_probe.sql", "select 1 as id\n")
    write(shop, "models/probes/_dep_probe.yml", "version: 2\nmodels:\n  - name: dep_probe\n    columns:\n      - name: id\n"
                                                 "        tests:\n          - accepted_values:\n              values: [1, 2]\n")
    async with stdio_session(shop, data_dir, *DBT_ONLY) as client:
        parsed = ok(await client.call_tool("dbt_parse", {}))
        deprecations = [w for w in parsed["warnings"] if "Deprecat" in w]
        assert len(deprecations) == 1 and "`arguments:`" in deprecations[0], parsed["warnings"]
