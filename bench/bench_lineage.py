#!/usr/bin/env python3
"""Benchmark of lineage (issue 6): model_lineage beside dbt-mcp's and dbt-core-mcp's lineage tools on the demo
project (through MCP, one server at a time), and on a generated 5,000-model manifest (in process).

    .venv/bin/python bench/bench_lineage.py [--calls 20] [--models 5000]     # after bash bench/setup_peers.sh

Per server: a fresh copy of the demo project, one untimed call (it may parse), then --calls timed calls of the
lineage of fct_orders, both directions, depth 2 (ours: upstream=2, downstream=2, format=structured; dbt-mcp:
get_lineage_dev(unique_id, depth=2); dbt-core-mcp: get_lineage(name, direction='both', depth=2)).
Generated manifest: --models models in chains of 10 with cross links, parent_map/child_map as dbt writes them;
we time loading it once, then model_lineage's walk + Mermaid for 200 random models (upstream 2, downstream 2),
and an analyze_changes-style analysis of fct_orders on the demo project. Results: stdout and bench/.work/lineage_results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import bench_servers as b  # noqa: E402

CALLS = {
    "ours": ("model_lineage", {"model": "fct_orders", "upstream": 2, "downstream": 2, "format": "structured"}),
    "dbt-mcp": ("get_lineage_dev", {"unique_id": "model.shop.fct_orders", "depth": 2}),
    "dbt-core-mcp": ("get_lineage", {"name": "fct_orders", "direction": "both", "depth": 2}),
}


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return (xs[lo] + (xs[hi] - xs[lo]) * (k - lo)) * 1000


async def over_mcp(calls: int) -> dict[str, Any]:
    specs = b.server_specs()
    out: dict[str, Any] = {}
    for name, (tool, args) in CALLS.items():
        project = b.fresh_project(f"lineage-{name}")
        try:
            async with b.Session(specs[name], project, "legacy", b.RUN / f"lineage-{name}.err") as sess:
                first, text = await sess.call(tool, args)
                assert "int_order_totals" in text, f"{name}: {text[:300]}"
                times = []
                for _ in range(calls):
                    elapsed, _ = await sess.call(tool, args)
                    times.append(elapsed)
            out[name] = {"tool": tool, "args": args, "first_s": first, "p50_ms": pct(times, 0.5), "p95_ms": pct(times, 0.95), "n": calls}
        except Exception as exc:  # a peer that cannot run is reported, not fatal
            out[name] = {"tool": tool, "error": f"{type(exc).__name__}: {str(exc)[:500]}"}
        print(f"{name}: {out[name]}", file=sys.stderr)
    return out


def generated_manifest(models: int, seed: int = 5) -> dict[str, Any]:
    rng = random.Random(seed)
    ids = [f"model.big.m{i}" for i in range(models)]
    parents: dict[str, list[str]] = {uid: [] for uid in ids}
    for i, uid in enumerate(ids):
        if i % 10:
            parents[uid].append(ids[i - 1])
        if i > 10 and rng.random() < 0.5:
            parents[uid].append(ids[rng.randrange(0, i - 1)])
    children: dict[str, list[str]] = {uid: [] for uid in ids}
    for uid, ps in parents.items():
        for p in ps:
            children[p].append(uid)
    nodes = {uid: {"name": uid.split(".")[-1], "resource_type": "model", "package_name": "big", "original_file_path": f"models/{uid}.sql",
                   "config": {"materialized": "table"}, "depends_on": {"nodes": parents[uid]}} for uid in ids}
    return {"metadata": {"generated_at": "bench"}, "nodes": nodes, "sources": {}, "exposures": {}, "parent_map": parents, "child_map": children}


def in_process(models: int) -> dict[str, Any]:
    from tools.lineage.changes import analyze
    from tools.lineage.graph import LineageGraph, mermaid

    manifest = generated_manifest(models)
    t0 = time.perf_counter()
    graph = LineageGraph.from_manifest(json.loads(json.dumps(manifest)))
    load_s = time.perf_counter() - t0
    rng = random.Random(1)
    picks = [f"m{rng.randrange(models)}" for _ in range(200)]
    times = []
    for name in picks:
        t0 = time.perf_counter()
        start = graph.resolve(name)
        nodes, edges = graph.walk(start, 2, 2)  # type: ignore[arg-type]
        mermaid(nodes, edges, start)  # type: ignore[arg-type]
        times.append(time.perf_counter() - t0)
    sql = (b.FIXTURE / "models/marts/fct_orders.sql").read_text()
    edited = sql.replace("        updated_at\n    from orders", "        updated_at,\n        item_count * 2 as double_items\n    from orders")
    analyze(sql, edited, "fct_orders.sql", "duckdb", "cte:final")
    change_times = []
    for _ in range(50):
        t0 = time.perf_counter()
        analyze(sql, edited, "fct_orders.sql", "duckdb", "cte:final")
        change_times.append(time.perf_counter() - t0)
    return {"models": models, "load_s": load_s, "walk_p50_ms": pct(times, 0.5), "walk_p95_ms": pct(times, 0.95),
            "analyze_changes_core_p50_ms": pct(change_times, 0.5)}


async def analyze_changes_over_mcp(calls: int) -> dict[str, Any]:
    specs = b.server_specs()
    project = b.fresh_project("lineage-changes")
    path = project / "models/marts/fct_orders.sql"
    async with b.Session(specs["ours"], project, "legacy", b.RUN / "lineage-changes.err") as sess:
        await sess.call("model_lineage", {"model": "fct_orders"})  # the first parse is over
        await sess.call("start_tracking", {"filepath": "models/marts/fct_orders.sql"})
        path.write_text(path.read_text().replace("        updated_at\n    from orders", "        updated_at,\n        item_count * 2 as double_items\n    from orders"))
        await sess.call("analyze_changes", {"filepath": "models/marts/fct_orders.sql", "target": "cte:final"})
        times = []
        for _ in range(calls):
            elapsed, _ = await sess.call("analyze_changes", {"filepath": "models/marts/fct_orders.sql", "target": "cte:final"})
            times.append(elapsed)
    return {"p50_ms": pct(times, 0.5), "p95_ms": pct(times, 0.95), "n": calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--models", type=int, default=5000)
    a = parser.parse_args()
    result = {"mcp": asyncio.run(over_mcp(a.calls)), "generated": in_process(a.models), "analyze_changes_mcp": asyncio.run(analyze_changes_over_mcp(a.calls))}
    (b.WORK if hasattr(b, "WORK") else HERE / ".work").mkdir(exist_ok=True)
    (HERE / ".work" / "lineage_results.json").write_text(json.dumps(result, indent=1))
    g = result["generated"]
    print("| server | tool | first call (s) | p50 (ms) | p95 (ms) |\n| --- | --- | ---: | ---: | ---: |")
    for name, r in result["mcp"].items():
        if "error" in r:
            print(f"| {name} | {r['tool']} | failed: {r['error'][:120]} | | |")
        else:
            print(f"| {name} | {r['tool']} | {r['first_s']:.2f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} |")
    print(f"\nGenerated manifest, {g['models']:,} models, in process: load {g['load_s']:.2f} s once; walk + Mermaid p50 "
          f"{g['walk_p50_ms']:.2f} ms, p95 {g['walk_p95_ms']:.2f} ms (target p50 <= 20 ms).")
    c = result["analyze_changes_mcp"]
    print(f"analyze_changes on fct_orders through MCP, warm: p50 {c['p50_ms']:.1f} ms, p95 {c['p95_ms']:.1f} ms (target <= 300 ms); "
          f"the analysis itself in process p50 {g['analyze_changes_core_p50_ms']:.1f} ms.")
    _ = statistics


if __name__ == "__main__":
    main()
