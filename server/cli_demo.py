"""`dbt-ae-mcp demo`: an agent-style session against the bundled shop project, through a real MCP client over stdio."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.client.stdio import StdioServerParameters

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURE = REPO_ROOT / "fixtures" / "shop"

STEPS: list[tuple[str, dict[str, Any], str]] = [
    ("dbt_debug", {}, "Check the profile and the connection before touching anything."),
    ("dbt_list", {"resource_types": ["model"], "limit": 20}, "See which models the project has."),
    ("dbt_seed", {}, "Load the raw CSVs into the raw schema."),
    ("dbt_build", {}, "Build and test everything in DAG order."),
    ("dbt_compile", {"select": "fct_orders"}, "Read the compiled SQL of the incremental fact table."),
    ("data_quality_test", {"model": "fct_orders", "columns": [{"column": "total_quantity", "tests": ["not_constant"]}], "dry_run": True},
     "Plan a new test on fct_orders: see the files and the diff before anything is written."),
    ("data_quality_test", {"model": "fct_orders", "columns": [{"column": "total_quantity", "tests": ["not_constant"]}]},
     "Write it: the YAML keeps its comments; dbt parses the project, or every file is put back."),
    ("dbt_test", {"select": "fct_orders"}, "Run the tests of fct_orders, the new one included."),
    ("dbt_show", {"sql": "select status, count(*) as orders, sum(order_total) as revenue "
                         "from {{ ref('fct_orders') }} group by status order by orders desc", "limit": 10},
     "Look at the mart's data."),
    ("dbt_source_freshness", {}, "Check the raw sources' freshness (the demo data is old on purpose: expect stale)."),
    ("memory_store", {"text": "fct_orders is incremental: merge on order_id, filtered on updated_at >= max(updated_at); "
                              "tests: unique/not_null order_id, relationships to dim_customers, accepted_range on order_total.",
                      "metadata": {"key": "dbt-analytics-engineer/shop/fct-orders-config", "category": "model-config", "project": "shop"}},
     "Remember how the fact table is built (the seed prompt's Workflow 1, step 6)."),
    ("vector_search", {"query": "how is the orders fact table loaded incrementally?", "limit": 3}, "Find it again by meaning."),
]


def server_environment() -> dict[str, str]:
    """The MCP client's safe default environment, plus this user's DBT_AE_* settings (the SDK passes only the former)."""
    import os

    from mcp.client.stdio import get_default_environment

    return {**get_default_environment(), **{k: v for k, v in os.environ.items() if k.startswith("DBT_AE_")}}


def prepare_project(workdir: Path) -> Path:
    project = workdir / "shop"
    if project.exists():
        shutil.rmtree(project)
    shutil.copytree(FIXTURE, project, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb", "*.duckdb.wal"))
    return project


def _first_lines(text: str, count: int = 8) -> str:
    lines = text.splitlines()
    shown = "\n".join("    " + line for line in lines[:count])
    return shown + (f"\n    … ({len(lines) - count} more lines)" if len(lines) > count else "")


async def run_demo(workdir: str | None = None) -> int:
    root = Path(workdir or REPO_ROOT / ".demo").resolve()
    root.mkdir(parents=True, exist_ok=True)
    project = prepare_project(root)
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "server.cli", "serve", "--project-dir", str(project), "--data-dir", str(root / "data")],
        cwd=str(REPO_ROOT), env=server_environment(),
    )
    print(f"dbt-ae-mcp demo: project copied to {project}")
    started = time.perf_counter()
    failures = 0
    transcript: list[dict[str, Any]] = []
    async with Client(params) as client:
        print(f"connected over stdio in {time.perf_counter() - started:.2f}s")
        tools = await client.list_tools()
        print(f"server offers {len(tools.tools)} tools: {', '.join(t.name for t in tools.tools)}\n")
        for name, args, why in STEPS:
            events = 0

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                nonlocal events
                events += 1

            print(f"agent> {why}")
            print(f"  call {name}({json.dumps(args)})")
            t0 = time.perf_counter()
            result = await client.call_tool(name, args, progress_callback=on_progress)
            elapsed = time.perf_counter() - t0
            text = result.content[0].text if result.content else ""
            status = "ERROR" if result.is_error else "ok"
            print(f"  <- {status} in {elapsed:.2f}s, {events} progress notification(s)")
            print(_first_lines(text))
            print()
            transcript.append({"tool": name, "arguments": args, "is_error": bool(result.is_error), "result": result.structured_content})
            expected_failure = name == "dbt_source_freshness"
            if result.is_error or (not expected_failure and (result.structured_content or {}).get("success") is False):
                failures += 1
    (root / "demo-results.json").write_text(json.dumps(transcript, indent=1, default=str), encoding="utf-8")
    print(f"demo finished in {time.perf_counter() - started:.1f}s: {len(STEPS) - failures}/{len(STEPS)} steps as expected "
          f"(every result: {root / 'demo-results.json'})")
    return 0 if failures == 0 else 1
