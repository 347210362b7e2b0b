"""Protocol-level input handling through a real MCP client: an unknown tool or argument is refused with a typed error
naming the closest valid one before anything runs; the SDK's own argument validation, unreadable SQL and an unknown
sqlfluff dialect come back typed (code, message, hint), never as raw pydantic text or internal_error."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from conftest import error, ok, stdio_session

pytestmark = pytest.mark.e2e


async def test_quality_tools_refuse_bad_input_typed(shop: Path, data_dir: Path) -> None:
    async with stdio_session(shop, data_dir, "--toolsets", "quality") as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert all(tool.input_schema.get("additionalProperties") is False for tool in tools.values())
        assert {"path", "sql", "dialect", "rules", "exclude_rules", "templater"} == set(tools["sql_lint"].input_schema["properties"])

        typo = error(await client.call_tool("sql_lint", {"sql": "select 1 as a\n", "dilect": "duckdb"}))
        assert typo["code"] == "invalid_input"
        assert "unknown argument 'dilect'; did you mean 'dialect'?" in typo["message"]
        assert "'dialect' instead of 'dilect'" in typo["hint"] and "templater" in typo["hint"]

        for tool, arguments in (("sql_lint", {"sql": "select 1\n", "dialect": "; rm -rf /"}),
                                ("sql_fix", {"sql": "select 1\n", "dialect": "duckdbb"})):
            dialect = error(await client.call_tool(tool, arguments))
            assert dialect["code"] == "invalid_input" and "dialect" in dialect["message"], dialect
            assert "duckdb" in dialect["hint"] and "postgres" in dialect["hint"] and "snowflake" in dialect["hint"]
        assert "did you mean 'duckdb'" in dialect["hint"].lower()

        wrong_type = error(await client.call_tool("project_check", {"limit": "many"}))
        assert wrong_type["code"] == "invalid_input" and "limit" in wrong_type["message"]
        assert "Error executing tool" not in wrong_type["message"] and "limit: integer" in wrong_type["hint"]

        missing = error(await client.call_tool("analyze_file", {}))
        assert missing["code"] == "invalid_input" and "missing required argument 'filePath'" in missing["message"]
        assert "filePath: string" in missing["hint"]

        unknown = error(await client.call_tool("sql_lnt", {"sql": "select 1\n"}))
        assert unknown["code"] == "unknown_tool" and "did you mean 'sql_lint'?" in unknown["message"]
        assert "sql_lint" in unknown["hint"]
        elsewhere = error(await client.call_tool("dbt_build", {}))
        assert elsewhere["code"] == "unknown_tool" and "--toolsets" in elsewhere["hint"]

        linted = ok(await client.call_tool("sql_lint", {"sql": "select 1 as a\n", "dialect": "duckdb"}))
        assert linted["dialect"] == "duckdb" and linted["count"] == 0


async def test_unknown_argument_runs_no_dbt_command(shop: Path, data_dir: Path) -> None:
    async with stdio_session(shop, data_dir, "--toolsets", "dbt") as client:
        listed = error(await client.call_tool("dbt_list", {"selct": "fct_orders"}))
        assert listed["code"] == "invalid_input"
        assert "unknown argument 'selct'; did you mean 'select'?" in listed["message"]
        assert "'select' instead of 'selct'" in listed["hint"]

        built = error(await client.call_tool("dbt_build", {"selct": "fct_orders", "full_refresh": True}))
        assert built["code"] == "invalid_input" and "did you mean 'select'?" in built["message"]
        assert built["details"]["did_you_mean"] == {"selct": "select"}
        assert not (shop / "target" / "run_results.json").exists()  # a build (even a failing one) writes it

        unknown = error(await client.call_tool("dbt_biuld", {"select": "fct_orders"}))
        assert unknown["code"] == "unknown_tool" and "did you mean 'dbt_build'?" in unknown["message"]

        tokens = error(await client.call_tool("dbt_show", {"sql": "select 1 /* /* */ as a"}))
        assert tokens["code"] in ("invalid_sql", "not_read_only"), tokens

        # The server still works, and nothing reached the database.
        assert ok(await client.call_tool("dbt_list", {"select": "fct_orders", "resource_types": ["model"]}))["total"] == 1
    database = shop / "shop.duckdb"
    if database.exists():
        with duckdb.connect(str(database), read_only=True) as connection:
            assert connection.execute("select table_name from information_schema.tables").fetchall() == []
