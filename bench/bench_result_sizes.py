"""What a dbt result costs an agent (issue 14): bytes of structured content and of text for the demo project's
builds, through a real MCP client over stdio.

    .venv/bin/python bench/bench_result_sizes.py
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
from pathlib import Path

from mcp import Client
from mcp.client.stdio import StdioServerParameters

REPO = Path(__file__).resolve().parents[1]
SHOP = REPO / "fixtures" / "shop"


def size(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":")))


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(shutil.copytree(SHOP, Path(tmp) / "shop"))
        args = ["-m", "server.cli", "serve", "--project-dir", str(project), "--data-dir", str(Path(tmp) / "data"), "--toolsets", "dbt"]
        rows = []
        async with Client(StdioServerParameters(command=sys.executable, args=args, cwd=str(REPO))) as client:
            async def call(label: str, tool: str, arguments: dict) -> None:
                result = await client.call_tool(tool, arguments)
                nodes = (result.structured_content or {}).get("counts", {}).get("TOTAL", 0)
                rows.append((label, nodes, size(result.structured_content), len(result.content[0].text)))

            await call("first full build (passing)", "dbt_build", {})
            await call("second full build (passing, incremental)", "dbt_build", {})
            for csv in (SHOP / "batches" / "batch2").glob("*.csv"):
                shutil.copy(csv, project / "seeds" / csv.name)
            await call("build after batch 2 (merge)", "dbt_build", {})
            with open(project / "seeds" / "raw_orders.csv", "a") as f:
                f.write("901,777,2024-01-12 08:13:00,lost,2024-01-16 19:13:00\n")
            await call("build with 2 failing tests", "dbt_build", {})
    print("| call | nodes | structured bytes | text chars | structured bytes per 50 nodes |")
    print("|---|---|---|---|---|")
    for label, nodes, structured, text in rows:
        print(f"| {label} | {nodes} | {structured:,} | {text:,} | {structured * 50 // max(nodes, 1):,} |")


if __name__ == "__main__":
    asyncio.run(main())
