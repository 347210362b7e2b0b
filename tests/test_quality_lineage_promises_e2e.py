"""README promises of the quality and lineage toolsets that no other test checks, through a real MCP client:
sql_lint's dialect comes from the project's `.sqlfluff` and its cache follows that file, tracking baselines survive a
server restart, and model_lineage reloads when target/manifest.json changes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client

from conftest import copy_shop, error, http_serving, ok, stdio_session

pytestmark = pytest.mark.e2e

# Backticks parse in BigQuery and T-SQL does not know them; duckdb (the shop profile's adapter) does not parse them
# either. The mixed case is CP01 (capitalisation) once the statement parses.
BACKTICKS = "SELECT `a` from t\n"


def codes(result: dict) -> set[str]:
    return {v["code"] for v in result["violations"]}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """One HTTP server for the lint and lineage tests (they touch different files of one project): (project, url)."""
    root = tmp_path_factory.mktemp("promises")
    project = copy_shop(root)
    (root / "data").mkdir()
    with http_serving(project, root / "data", "--toolsets", "dbt,quality,lineage") as url:
        yield project, url


async def test_sql_lint_takes_the_dialect_from_sqlfluff_and_its_cache_follows_the_file(served: tuple[Path, str]) -> None:
    project, url = served
    config = project / ".sqlfluff"
    async with Client(url) as client:
        lint = {"sql": BACKTICKS}
        profile = ok(await client.call_tool("sql_lint", lint))
        assert profile["dialect"] == "duckdb" and "PRS" in codes(profile), profile  # no .sqlfluff yet: the profile's adapter

        config.write_text("[sqlfluff]\ndialect = bigquery\n")
        bigquery = ok(await client.call_tool("sql_lint", lint))
        assert bigquery["dialect"] == "from .sqlfluff" and bigquery["cached"] is False
        assert codes(bigquery) == {"CP01"}, bigquery["violations"]
        assert ok(await client.call_tool("sql_lint", lint))["cached"] is True

        config.write_text("[sqlfluff]\ndialect = bigquery\nexclude_rules = CP01\n")
        excluded = ok(await client.call_tool("sql_lint", lint))
        assert excluded["cached"] is False and excluded["violations"] == [], excluded

        config.write_text("[sqlfluff]\ndialect = tsql\nexclude_rules = CP01\n")
        tsql = ok(await client.call_tool("sql_lint", lint))
        assert tsql["cached"] is False and codes(tsql) == {"PRS"}, tsql["violations"]
        assert ok(await client.call_tool("sql_lint", {**lint, "dialect": "bigquery"}))["violations"] == []  # an argument overrides it


async def test_tracking_baselines_survive_a_server_restart(shop: Path, data_dir: Path) -> None:
    rel = "models/marts/fct_orders.sql"
    path = shop / rel
    original = path.read_text()
    async with stdio_session(shop, data_dir, "--toolsets", "lineage") as first:
        started = ok(await first.call_tool("start_tracking", {"filepath": rel}))
        assert started["tracked"] == [rel]
    baselines = list((data_dir / "tracking").glob("*.json"))
    assert len(baselines) == 1 and baselines[0].name.startswith("shop-") and rel in baselines[0].read_text()
    path.write_text(original.replace("    updated_at\nfrom final", "    updated_at,\n    1 as restarted\nfrom final"))
    async with stdio_session(shop, data_dir, "--toolsets", "lineage") as second:
        changes = ok(await second.call_tool("analyze_changes", {}))["files"]
        assert [f["filepath"] for f in changes] == [rel]
        assert changes[0]["columns_added"] == ["restarted"] and changes[0]["lines_added"] >= 1, changes[0]
        assert "tracked" not in ok(await second.call_tool("stop_tracking", {"filepath": rel}))  # none left: the empty default is not sent


async def test_model_lineage_reloads_when_a_parse_rewrites_the_manifest(served: tuple[Path, str]) -> None:
    project, url = served
    below = {"model": "fct_orders", "upstream": 0, "downstream": 1, "format": "structured"}
    async with Client(url) as client:
        before = ok(await client.call_tool("model_lineage", below))
        assert "model.shop.fct_order_flags" not in {n["unique_id"] for n in before["nodes"]}
        (project / "models/marts/fct_order_flags.sql").write_text("select order_id, 1 as flagged from {{ ref('fct_orders') }}\n")
        # not parsed yet: lineage shows the project as of the last parse
        assert error(await client.call_tool("model_lineage", {"model": "fct_order_flags"}))["code"] == "model_not_found"
        assert ok(await client.call_tool("dbt_parse", {}))["success"]
        after = ok(await client.call_tool("model_lineage", below))
        assert after["manifest_generated_at"] != before["manifest_generated_at"]
        added = {n["unique_id"]: n for n in after["nodes"]}["model.shop.fct_order_flags"]
        assert added["distance"] == 1 and ["model.shop.fct_orders", "model.shop.fct_order_flags"] in after["edges"]
        up = ok(await client.call_tool("model_lineage", {"model": "fct_order_flags", "upstream": 1, "downstream": 0, "format": "structured"}))
        assert {n["name"] for n in up["nodes"]} == {"fct_order_flags", "fct_orders"}
