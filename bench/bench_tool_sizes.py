#!/usr/bin/env python3
"""What each server's tools cost an agent's context (issue 14): the compact tools/list JSON of every tool, side by side.

    bash bench/setup_peers.sh                        # once: the peers' venvs under bench/.venvs
    .venv/bin/python bench/bench_tool_sizes.py       # markdown table on stdout, JSON in bench/.work/tool_sizes.json

Each server is spawned over stdio as bench/bench_servers.py configures it (ours with every toolset, the default;
dbt-mcp with its dbt CLI toolset only, every dbt Platform toolset off; dbt-core-mcp as installed), and each listed tool
is measured as len(json.dumps(tool.model_dump(mode="json", by_alias=True, exclude_none=True), separators=(",", ":"))).
Columns are sorted by size, largest first, so a row pairs tools of the same rank, not of the same purpose.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
from itertools import zip_longest
from pathlib import Path
from typing import Any

from bench_servers import SERVERS, WORK, Session, fresh_project, server_specs


def compact_size(tool: Any) -> int:
    return len(json.dumps(tool.model_dump(mode="json", by_alias=True, exclude_none=True), separators=(",", ":")))


async def sizes(name: str) -> dict[str, int] | str:
    spec = server_specs()[name]
    if not Path(spec.command[0]).exists():
        return f"{spec.command[0]} is missing (run: bash bench/setup_peers.sh)"
    project = fresh_project(f"sizes-{name}")
    errlog = WORK / "logs" / f"sizes-{name}.stderr.log"
    errlog.parent.mkdir(parents=True, exist_ok=True)
    async with Session(spec, project, "legacy", errlog) as sess:
        assert sess.client is not None
        tools = (await sess.client.list_tools()).tools
    return dict(sorted(((tool.name, compact_size(tool)) for tool in tools), key=lambda kv: (-kv[1], kv[0])))


def render(found: dict[str, dict[str, int] | str]) -> str:
    names = [name for name in SERVERS if isinstance(found.get(name), dict)]
    tables = [found[name] for name in names]
    lines = ["| # | " + " | ".join(f"{name} tool | bytes" for name in names) + " |", "|" + " --- |" * (1 + 2 * len(names))]
    for rank, row in enumerate(zip_longest(*(list(t.items()) for t in tables)), 1):  # type: ignore[union-attr]
        lines.append(f"| {rank} | " + " | ".join(f"`{cell[0]}` | {cell[1]:,}" if cell else " | " for cell in row) + " |")
    lines.append("| **total** | " + " | ".join(f"**{len(t)} tools** | **{sum(t.values()):,}**" for t in tables) + " |")  # type: ignore[union-attr]
    lines.append("| mean / largest | " + " | ".join(
        f" | {sum(t.values()) // max(len(t), 1):,} / {max(t.values(), default=0):,}" for t in tables) + " |")  # type: ignore[union-attr]
    for name, value in found.items():
        if isinstance(value, str):
            lines.append(f"\n{name}: skipped: {value}")
    return "\n".join(lines)


async def amain(args: argparse.Namespace) -> None:
    wanted = [name.strip() for name in args.only.split(",")] if args.only else list(SERVERS)
    found = {name: await sizes(name) for name in wanted}
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "tool_sizes.json").write_text(json.dumps({"command": shlex.join([sys.executable, *sys.argv]), "sizes": found}, indent=1) + "\n")
    print(render(found))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated servers: ours, dbt-mcp, dbt-core-mcp (default: all)")
    asyncio.run(amain(parser.parse_args()))


if __name__ == "__main__":
    main()
