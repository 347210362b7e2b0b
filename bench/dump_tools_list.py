"""Dump the server's tools/list answer (default and --read-only), sorted, as JSON: a layout change must not change it.

    .venv/bin/python bench/dump_tools_list.py > before.json   # on the old tree
    .venv/bin/python bench/dump_tools_list.py | diff before.json -   # on the new one
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


async def tools_list(project: Path, data_dir: Path, *extra: str) -> list[dict]:
    args = ["-m", "server.cli", "serve", "--project-dir", str(project), "--data-dir", str(data_dir), *extra]
    async with Client(StdioServerParameters(command=sys.executable, args=args, cwd=str(REPO))) as client:
        tools = (await client.list_tools()).tools
    return sorted((tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools), key=lambda t: t["name"])


async def dump() -> dict[str, list[dict]]:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "shop"
        shutil.copytree(REPO / "fixtures" / "shop", project, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb*"))
        data_dir = Path(tmp) / "data"
        return {"default": await tools_list(project, data_dir), "read_only": await tools_list(project, data_dir, "--read-only")}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(dump()), indent=1, sort_keys=True))
