#!/usr/bin/env python3
"""completion/complete latency through MCP (issue 16: under 50 ms), on the demo project built by dbt's CLI.

    .venv/bin/python bench/bench_completion.py [--runs 200] [--models 5000]

1. stdio: `dbt-ae-mcp serve` on a built copy of fixtures/shop; a real MCP client times completion/complete round trips
   (the first one reads target/manifest.json; then warm, per argument kind; then after the manifest changed).
2. in process: the index of a synthetic manifest of --models models (a big project), cold read and warm answer.
Prints a table; no dbt is started by completion itself (the worker dbt starts at serve is not used here)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from conftest import built_template, copy_shop, stdio_session
from mcp_types import PromptReference, ResourceTemplateReference

from server.completion import ManifestCache, complete, register_prompt_arguments

CASES = [("data_quality_suite", "model", "stg_"), ("data_quality_suite", "model", ""), ("review_change", "select", "+dim"),
         ("review_change", "select", "tag:"), ("review_change", "select", "path:models/"), ("scd2_snapshot", "relation", "raw."),
         ("incremental_fact_table", "layer", "m"), ("recover_source_freshness", "upstream_agent", "data-")]
# resource-template arguments: (template, argument, typed value)
TEMPLATE_CASES = [("dbt://node/{name}", "name", "fct_"), ("dbt://run/{run_id}", "run_id", ""), ("task://{id}", "id", "")]


def summary(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    return f"median {statistics.median(ms):6.2f} ms  p95 {ms[int(len(ms) * 0.95) - 1]:6.2f} ms  max {ms[-1]:6.2f} ms  (n={len(ms)})"


async def through_mcp(runs: int) -> None:
    base = Path(tempfile.mkdtemp(prefix="bench-completion-"))
    project = built_template(copy_shop(base))
    data = base / "data"
    data.mkdir()
    async with stdio_session(project, data) as client:
        async def timed(prompt: str, arg: str, value: str) -> float:
            t0 = time.perf_counter()
            await client.complete(PromptReference(name=prompt), {"name": arg, "value": value})
            return time.perf_counter() - t0

        async def timed_template(uri: str, arg: str, value: str) -> float:
            t0 = time.perf_counter()
            await client.complete(ResourceTemplateReference(type="ref/resource", uri=uri), {"name": arg, "value": value})
            return time.perf_counter() - t0

        print(f"first request (the manifest was pre-read at start): {await timed('data_quality_suite', 'model', 'f') * 1000:.2f} ms")
        for prompt, arg, value in CASES:
            samples = [await timed(prompt, arg, value) for _ in range(runs)]
            print(f"{prompt}.{arg}={value!r:16} {summary(samples)}")
        await client.call_tool("dbt_list", {"select": "fct_orders"})  # a stored run to complete
        for n in range(20):
            await client.call_tool("agent_delegate", {"to_agent": "sql-database-specialist", "task": f"bench task {n}"})
        for uri, arg, value in TEMPLATE_CASES:
            samples = [await timed_template(uri, arg, value) for _ in range(runs)]
            print(f"{uri}.{arg}={value!r:8} {summary(samples)}")
        manifest = project / "target" / "manifest.json"
        changed = []
        for _ in range(20):
            os.utime(manifest, ns=(time.time_ns(), time.time_ns()))
            changed.append(await timed("data_quality_suite", "model", "f"))
        print(f"after the manifest changed (re-read)   {summary(changed)}")


def synthetic(models: int) -> None:
    nodes = {f"model.big.m_{i:05d}": {"resource_type": "model", "name": f"m_{i:05d}", "package_name": "big",
                                      "tags": [f"t{i % 20}"], "original_file_path": f"models/l{i % 3}/m_{i:05d}.sql",
                                      "raw_code": "select 1 " * 200, "columns": {f"c{j}": {"name": f"c{j}"} for j in range(20)}}
             for i in range(models)}
    project = Path(tempfile.mkdtemp(prefix="bench-completion-big-"))
    (project / "target").mkdir()
    path = project / "target" / "manifest.json"
    path.write_text(json.dumps({"metadata": {"project_name": "big"}, "nodes": nodes, "sources": {}}))
    register_prompt_arguments("data_quality_suite", {"model": "model"})  # what build_app does for the catalog
    cache = ManifestCache(project)
    t0 = time.perf_counter()
    cache.get()
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(100):
        t0 = time.perf_counter()
        found = complete(cache, PromptReference(name="data_quality_suite"), _arg("model", "m_01"))
        assert found.total == 1000, found.total  # m_01000 .. m_01999
        warm.append(time.perf_counter() - t0)
    print(f"synthetic manifest {models} models, {path.stat().st_size / 1e6:.1f} MB: cold read {cold * 1000:.0f} ms; "
          f"warm answer {summary(warm)}")


def _arg(name: str, value: str):
    from mcp_types import CompletionArgument

    return CompletionArgument(name=name, value=value)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--models", type=int, default=5000)
    args = parser.parse_args()
    asyncio.run(through_mcp(args.runs))
    synthetic(args.models)


if __name__ == "__main__":
    main()
