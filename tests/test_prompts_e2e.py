"""Prompts and completion (issue 16 items 2, 4, 5) through a real MCP client over stdio on the demo project.

Every prompt is listed with a title, an icon and typed arguments; every prompt renders with its arguments; every tool a
prompt's text names is one the same server lists, called with arguments that tool takes; completion offers the demo
project's names from its target/manifest.json. Timings are in bench/bench_completion.py, not asserted here."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
from conftest import copy_built, held_session, registered_tools, run_python
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import PromptReference, ResourceTemplateReference

from server.app import TOOLSET_MODULES, build_app
from server.settings import Settings

pytestmark = pytest.mark.e2e

EXPECTED = {  # prompt -> its required arguments
    "incremental_fact_table": {"model", "from_model", "unique_key"},
    "scd2_snapshot": {"name", "relation", "unique_key"},
    "data_quality_suite": {"model"},
    "recover_incremental_duplicates": {"model", "unique_key"},
    "recover_relationship_failures": {"model"},
    "recover_source_freshness": set(),
    "review_change": {"model", "filepath"},
}

# A tool named in a prompt is written as a call, `tool_name(arg=value, ...)` (server/prompts/catalog.py). Named in
# prose, it is still found: every tool of every toolset (opt-in ones too) and the seed's tool names not built yet.
CALL = re.compile(r"`([a-z][a-z0-9_]*)\(([^`]*)\)`")
SEED_NAMES = {"agent_delegate", "agent_escalate", "task_list", "task_claim", "task_update", "task_get", "dbt_package",
              "dbt_deps", "memory_retrieve", "vector_search", "analyze_file", "sql_lint", "start_tracking",
              "analyze_changes", "exposure_define", "model_lineage", "data_quality_test", "dbt_macro", "dbt_source"}


def every_tool_name() -> set[str]:
    return {spec.name for module in TOOLSET_MODULES.values() for spec in import_module(module).TOOLS} | SEED_NAMES


def named_tools(text: str, vocabulary: set[str]) -> dict[str, set[str]]:
    """Tool name -> argument names it is called with in the text (empty for a mention in prose)."""
    found: dict[str, set[str]] = {}
    for name, args in CALL.findall(text):
        unquoted = re.sub(r'"[^"]*"', '""', args)
        found.setdefault(name, set()).update(re.findall(r"\b([a-z_][a-z0-9_]*)=", unquoted))
    for word in re.findall(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b", text):
        if word in vocabulary:
            found.setdefault(word, set())
    return found


def test_the_extractor_finds_unknown_tools_and_arguments() -> None:
    """The check below can fail: a call of a tool that does not exist, a seed tool named in prose, a wrong argument."""
    text = 'Run `dbt_frobnicate(select="x")`, then ask agent_delegate; `dbt_build(selct="a=b", full_refresh=true)`.'
    found = named_tools(text, every_tool_name())
    assert found == {"dbt_frobnicate": {"select"}, "agent_delegate": set(), "dbt_build": {"selct", "full_refresh"}}


def sample_arguments(prompt: Any) -> dict[str, str]:
    """Every argument filled, with values a user of the demo project would give."""
    values = {"model": "fct_orders", "from_model": "stg_orders", "unique_key": "order_id", "name": "customers_snapshot",
              "relation": "raw.customers", "filepath": "models/marts/fct_orders.sql", "select": "source:raw",
              "layer": "marts", "parent": "dim_customers", "column": "customer_id", "primary_key": "order_id",
              "message": "fct_orders: add order_total", "updated_at": "updated_at", "strategy": "timestamp",
              "incremental_strategy": "merge", "as_of": "2025-10-01", "upstream_agent": "data-pipeline-engineer"}
    return {arg.name: values[arg.name] for arg in prompt.arguments}


def check_prompt_tools(name: str, text: str, tools: dict[str, Any]) -> None:
    for tool, args in named_tools(text, every_tool_name()).items():
        assert tool in tools, f"prompt {name} names {tool!r}, which this server does not list"
        takes = set(tools[tool].input_schema.get("properties", {}))
        assert args <= takes, f"prompt {name} calls {tool} with {sorted(args - takes)}; it takes {sorted(takes)}"


@pytest.fixture(scope="module")
def demo(built_shop_template: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(project, data dir): a built copy of the demo project for the tests below that share one server."""
    root = tmp_path_factory.mktemp("prompts")
    (root / "data").mkdir()
    return copy_built(built_shop_template, root), root / "data"


@pytest.fixture(scope="module")
async def client(demo: tuple[Path, Path]) -> AsyncIterator[Client]:
    """One default server on `demo`, shared by the listing and the completion tests (completion adds a model last)."""
    async for session in held_session(*demo):
        yield session


async def test_prompts_list_render_and_name_only_registered_tools(client: Client) -> None:
    caps = client.initialize_result.capabilities if hasattr(client, "initialize_result") else None
    listed = {p.name: p for p in (await client.list_prompts()).prompts}
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(listed) == set(EXPECTED), sorted(listed)
    assert set(tools) == registered_tools()
    for name, prompt in listed.items():
        assert prompt.title and prompt.description, name
        assert prompt.icons and prompt.icons[0].src.startswith("data:image/svg+xml,"), name
        assert {a.name for a in prompt.arguments if a.required} == EXPECTED[name], name
        assert all(a.description for a in prompt.arguments), name

        args = sample_arguments(prompt)
        got = await client.get_prompt(name, args)
        assert len(got.messages) == 1 and got.messages[0].role == "user"
        text = got.messages[0].content.text
        assert "${" not in text, f"{name}: unfilled placeholder"
        for arg in prompt.arguments:
            assert args[arg.name] in text, f"{name}: argument {arg.name} not used"
        check_prompt_tools(name, text, tools)

        only_required = await client.get_prompt(name, {k: v for k, v in args.items() if k in EXPECTED[name]})
        check_prompt_tools(name, only_required.messages[0].content.text, tools)
    assert caps is None or caps.prompts is not None

    with pytest.raises(MCPError, match="missing required argument.*filepath"):
        await client.get_prompt("review_change", {"model": "fct_orders"})
    with pytest.raises(MCPError, match="unknown argument.*'selct'"):
        await client.get_prompt("review_change", {"model": "fct_orders", "filepath": "x.sql", "selct": "x"})
    with pytest.raises(MCPError, match="unknown prompt 'review_chnage'; did you mean 'review_change'") as unknown:
        await client.get_prompt("review_chnage", {})
    assert unknown.value.data["code"] == "prompt_not_found" and "prompts/list" in unknown.value.data["hint"]


@pytest.mark.parametrize(("settings", "expected"), [
    ({"toolsets": "dbt"}, {"scd2_snapshot"}),
    ({"toolsets": "dbt,lineage,quality,git"}, {"scd2_snapshot", "review_change"}),
    ({"read_only": True}, set()),  # every prompt's workflow writes (a model, a test, a snapshot, a commit)
])
async def test_with_fewer_tools_a_prompt_is_listed_only_if_its_tools_are(tmp_path: Path, settings: dict[str, Any],
                                                                         expected: set[str]) -> None:
    (tmp_path / "project").mkdir()
    app, _ = build_app(Settings(project_dir=tmp_path / "project", data_dir=tmp_path / "data", **settings))
    async with Client(app) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        prompts = (await client.list_prompts()).prompts
        for prompt in prompts:
            got = await client.get_prompt(prompt.name, sample_arguments(prompt))
            check_prompt_tools(prompt.name, got.messages[0].content.text, tools)
    assert {p.name for p in prompts} == expected


async def test_completion_offers_the_demo_projects_names(client: Client, demo: tuple[Path, Path]) -> None:
    built_shop = demo[0]  # served by `client`
    manifest = json.loads((built_shop / "target" / "manifest.json").read_text())
    nodes = [n for n in manifest["nodes"].values() if n["package_name"] == "shop"]
    models = sorted(n["name"] for n in nodes if n["resource_type"] == "model")
    snapshots = sorted(n["name"] for n in nodes if n["resource_type"] == "snapshot")
    assert models and snapshots

    async def complete(prompt: str, argument: str, value: str) -> list[str]:
        result = await client.complete(PromptReference(name=prompt), {"name": argument, "value": value})
        return result.completion.values

    assert await complete("data_quality_suite", "model", "stg_") == [m for m in models if m.startswith("stg_")]
    assert await complete("data_quality_suite", "model", "fct") == ["fct_orders"]
    assert await complete("data_quality_suite", "model", "") == models
    assert await complete("data_quality_suite", "model", "zzz_nothing") == []
    assert await complete("data_quality_suite", "primary_key", "o") == []  # an argument of no kind: none
    assert set(snapshots) <= set(await complete("scd2_snapshot", "relation", ""))  # nodes: snapshots and sources
    assert "raw.customers" in await complete("scd2_snapshot", "relation", "raw.c") or \
        any(s.endswith(".customers") for s in await complete("scd2_snapshot", "relation", ""))
    assert await complete("incremental_fact_table", "layer", "ma") == ["marts"]
    assert await complete("incremental_fact_table", "layer", "") == ["intermediate", "marts", "staging"]
    assert await complete("review_change", "select", "+dim") == ["+dim_customers", "+dim_products"]
    assert await complete("review_change", "select", "path:models/ma") == [
        "path:models/marts", *sorted(f"path:{n['original_file_path']}" for n in nodes
                                     if n["resource_type"] in ("model", "seed", "snapshot")
                                     and n["original_file_path"].startswith("models/ma"))]
    assert "tag:" in await complete("review_change", "select", "ta")
    tags = sorted({t for n in nodes for t in n.get("tags", [])})
    assert await complete("review_change", "select", "tag:") == [f"tag:{t}" for t in tags]
    sources = sorted({s["source_name"] for s in manifest["sources"].values()})
    assert [v for v in await complete("recover_source_freshness", "select", "source:") if v.count(".") == 0] == \
        [f"source:{s}" for s in sources]
    assert await complete("review_change", "filepath", "models/marts/fct") == ["models/marts/fct_orders.sql"]
    # a resource template with no registered argument gets no values, not an error
    empty = await client.complete(ResourceTemplateReference(uri="dbt://nothing/{x}"), {"name": "x", "value": "f"})
    assert empty.completion.values == []

    # a new model written and parsed by dbt (the manifest changes): offered on the next request
    (built_shop / "models" / "marts" / "fct_returns.sql").write_text("select 1 as return_id\n")
    assert (await client.call_tool("dbt_parse", {})).is_error is False
    assert await complete("data_quality_suite", "model", "fct") == ["fct_orders", "fct_returns"]


def test_a_resource_template_argument_can_bring_its_own_values(tmp_path: Path) -> None:
    """The extension point for data the manifest does not hold (run ids, memory keys): a function of the typed value."""
    from mcp_types import CompletionArgument

    from server.completion import (
        TEMPLATE_ARGUMENTS,
        ManifestCache,
        complete,
        matching,
        register_template_argument,
    )

    uri = "test://run/{run_id}"
    register_template_argument(uri, "run_id", lambda value: matching(["r-002", "r-001", "other"], value))
    try:
        got = complete(ManifestCache(tmp_path), ResourceTemplateReference(uri=uri), CompletionArgument(name="run_id", value="r-"))
        assert (got.values, got.total, got.has_more) == (["r-002", "r-001"], 2, False)
    finally:
        TEMPLATE_ARGUMENTS.pop((uri, "run_id"))


LIGHT_SCRIPT = """
import asyncio, json, sys
from pathlib import Path
from mcp import Client
from mcp_types import PromptReference
from server.app import TOOLSET_MODULES, build_app
from server.settings import Settings

root = Path(sys.argv[1])
heavy = ("dbt", "chromadb", "sentence_transformers", "sqlfluff", "sqlglot", "duckdb", *TOOLSET_MODULES.values())

async def main():
    app, _ = build_app(Settings(project_dir=root, data_dir=root / "data"))
    async with Client(app) as client:
        prompts = (await client.list_prompts()).prompts
        await client.get_prompt("review_change", {"model": "fct_orders", "filepath": "models/marts/fct_orders.sql"})
        done = await client.complete(PromptReference(name="data_quality_suite"), {"name": "model", "value": "fct"})
    print(json.dumps({"prompts": len(prompts), "completed": done.completion.values,
                      "imported": sorted(name for name in heavy if name in sys.modules)}))

asyncio.run(main())
"""


def test_prompts_and_completion_import_no_toolset_and_no_dbt(built_shop: Path) -> None:
    """Prompts and completion work before any toolset registers, and load neither a toolset nor dbt."""
    ran = run_python(LIGHT_SCRIPT, str(built_shop))
    assert ran.returncode == 0, ran.stderr[-3000:]
    out = json.loads(ran.stdout)
    assert out == {"prompts": len(EXPECTED), "completed": ["fct_orders"], "imported": []}
