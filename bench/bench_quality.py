#!/usr/bin/env python3
"""Benchmark of the quality toolset (issue 5), through the real MCP client over stdio.

    .venv/bin/python bench/bench_quality.py [--models 1000] [--repeats 50]

1. Cold lint of every model of the demo project: `sqlfluff lint <files> --dialect duckdb --templater jinja` in a new
   process, against ours in two ways: (a) a running server whose lint cache and sqlfluff configuration are cold
   (its first sql_lint calls ever; the server is up and its dbt worker has finished its start-up parse), and
   (b) from spawning a new server to the last result (process start, initialize, the dbt worker's start-up parse
   running beside the lint on the same 2 cores). Run alternately, --cold-runs times each.
2. A repeated sql_lint of an unchanged file: --repeats calls, p50/p95 of the MCP round trip (cache hits).
3. project_check on a generated project of --models models (a third staging, a third intermediate, a third marts,
   each with properties, descriptions and primary-key tests), after the server's first parse; p50 of 5 calls.
Results: stdout (markdown) and bench/.work/quality_results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / ".work"
SHOP = REPO / "fixtures" / "shop"


def copy_shop(dest: Path) -> Path:
    project = dest / "shop"
    shutil.copytree(SHOP, project, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb", "*.wal"))
    return project


async def session(project: Path, data: Path):  # type: ignore[no-untyped-def]
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    params = StdioServerParameters(command=sys.executable, args=["-m", "server.cli", "serve", "--project-dir", str(project),
                                                                 "--data-dir", str(data), "--toolsets", "quality"], cwd=str(REPO))
    return Client(params)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return (xs[lo] + (xs[hi] - xs[lo]) * (k - lo)) * 1000


async def lint_all(client: Any, files: list[str]) -> int:
    count = 0
    for rel in files:
        result = await client.call_tool("sql_lint", {"path": rel})
        assert not result.is_error, result.content[0].text
        count += len(result.structured_content["violations"])
    return count


async def cold_ours(project: Path, files: list[str], data: Path) -> tuple[float, float, int]:
    """(from spawn, s), (cache cold on a running server, s), violations."""
    started = time.perf_counter()
    async with await session(project, data) as client:
        count = await lint_all(client, files)
    from_spawn = time.perf_counter() - started
    async with await session(project, data.with_name(data.name + "-running")) as client:
        await client.call_tool("project_check", {"limit": 1})  # waits for the dbt worker's start-up parse
        t0 = time.perf_counter()
        await lint_all(client, files)
        running = time.perf_counter() - t0
    return from_spawn, running, count


def cold_cli(project: Path, files: list[str]) -> tuple[float, int]:
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "sqlfluff", "lint", *files, "--dialect", "duckdb", "--templater", "jinja",
                          "--format", "json", "--nocolor"], cwd=project, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    return elapsed, sum(len(f["violations"]) for f in json.loads(run.stdout))


def generate_project(root: Path, models: int) -> Path:
    """A parseable dbt project of `models` models in three layers over one seed-backed source."""
    project = copy_shop(root)
    for folder in ("models", "snapshots", "tests"):
        shutil.rmtree(project / folder)
    per = models // 3
    staging, inter, marts = project / "models/staging", project / "models/intermediate", project / "models/marts"
    for d in (staging, inter, marts):
        d.mkdir(parents=True)
    tables = "\n".join(f"      - name: t{i}\n        identifier: orders" for i in range(per))
    (staging / "_sources.yml").write_text(f"version: 2\nsources:\n  - name: raw\n    schema: raw\n    config:\n      loaded_at_field: updated_at\n"
                                          f"      freshness:\n        warn_after: {{count: 1, period: day}}\n    tables:\n{tables}\n")

    def props(names: list[str]) -> str:
        body = "".join(
            f"  - name: {n}\n    description: Generated model {n}.\n    columns:\n      - name: order_id\n        description: Key.\n"
            f"        data_tests: [unique, not_null]\n      - name: status\n        description: Status.\n      - name: amount\n        description: Amount.\n"
            for n in names)
        return "version: 2\nmodels:\n" + body
    stg = [f"stg_t{i}" for i in range(per)]
    for i, name in enumerate(stg):
        (staging / f"{name}.sql").write_text(f"with source as (\n    select * from {{{{ source('raw', 't{i}') }}}}\n)\n\n"
                                             "select\n    cast(id as integer) as order_id,\n    lower(status) as status,\n    customer_id * 1.0 as amount\nfrom source\n")
    (staging / "_staging.yml").write_text(props(stg))
    ints = [f"int_t{i}" for i in range(per)]
    for i, name in enumerate(ints):
        (inter / f"{name}.sql").write_text(f"with a as (\n    select * from {{{{ ref('stg_t{i}') }}}}\n),\n\nb as (\n    select * from {{{{ ref('stg_t{(i + 1) % per}') }}}}\n)\n\n"
                                           "select\n    a.order_id,\n    a.status,\n    a.amount + coalesce(b.amount, 0) as amount\nfrom a\nleft join b on a.order_id = b.order_id\n")
    (inter / "_intermediate.yml").write_text(props(ints))
    fcts = [f"fct_t{i}" for i in range(models - 2 * per)]
    for i, name in enumerate(fcts):
        (marts / f"{name}.sql").write_text(f"with base as (\n    select * from {{{{ ref('int_t{i % per}') }}}}\n)\n\n"
                                           "select\n    order_id,\n    status,\n    amount\nfrom base\n")
    (marts / "_marts.yml").write_text(props(fcts))
    return project


async def main_async(a: argparse.Namespace) -> dict[str, Any]:
    WORK.mkdir(exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="quality-bench-", dir=WORK))
    out: dict[str, Any] = {"params": vars(a)}
    try:
        project = copy_shop(scratch / "demo")
        files = sorted(str(p.relative_to(project)) for p in (project / "models").rglob("*.sql"))
        cli_times, ours_times, spawn_times = [], [], []
        for n in range(a.cold_runs):
            cli_s, cli_count = cold_cli(project, files)
            spawn_s, ours_s, ours_count = await cold_ours(project, files, scratch / f"data{n}")
            cli_times.append(cli_s)
            ours_times.append(ours_s)
            spawn_times.append(spawn_s)
            print(f"cold run {n + 1}: CLI {cli_s:.2f} s ({cli_count} violations), ours {ours_s:.2f} s on a running server, "
                  f"{spawn_s:.2f} s from spawn ({ours_count} violations)", file=sys.stderr)
        out["cold"] = {"files": len(files), "cli_s": cli_times, "ours_s": ours_times, "ours_from_spawn_s": spawn_times,
                       "cli_violations": cli_count, "ours_violations": ours_count}
        async with await session(project, scratch / "warm") as client:
            await client.call_tool("project_check", {"limit": 1})  # the dbt worker's start-up parse is over
            await client.call_tool("sql_lint", {"path": "models/marts/fct_orders.sql"})
            times = []
            for _ in range(a.repeats):
                t0 = time.perf_counter()
                result = await client.call_tool("sql_lint", {"path": "models/marts/fct_orders.sql"})
                times.append(time.perf_counter() - t0)
                assert result.structured_content["cached"]
        out["repeat"] = {"n": a.repeats, "p50_ms": pct(times, 0.5), "p95_ms": pct(times, 0.95)}
        print(f"repeat lint: p50 {out['repeat']['p50_ms']:.1f} ms, p95 {out['repeat']['p95_ms']:.1f} ms", file=sys.stderr)
        big = generate_project(scratch / "big", a.models)
        async with await session(big, scratch / "bigdata") as client:
            t0 = time.perf_counter()
            first = await client.call_tool("project_check", {"limit": 1})
            first_s = time.perf_counter() - t0
            assert not first.is_error, first.content[0].text
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                result = await client.call_tool("project_check", {"limit": 1})
                times.append(time.perf_counter() - t0)
            checked = result.structured_content
        out["project_check"] = {"models": a.models, "first_call_s_incl_parse": first_s, "p50_s": statistics.median(times),
                                "max_s": max(times), "server_elapsed_s": checked["elapsed_s"], "violations": checked["total"],
                                "by_rule": {k: v for k, v in checked["by_rule"].items() if v}}
        print(f"project_check @ {a.models}: first {first_s:.2f} s (with parse), then p50 {out['project_check']['p50_s']:.2f} s", file=sys.stderr)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out


def markdown(r: dict[str, Any]) -> str:
    c = r["cold"]
    lines = [
        "| measure | ours | sqlfluff CLI | target |", "| --- | ---: | ---: | --- |",
        f"| cold lint of all {c['files']} demo models on a running server (cache and sqlfluff config cold), median of {len(c['cli_s'])} (s) | {statistics.median(c['ours_s']):.2f} "
        f"| {statistics.median(c['cli_s']):.2f} | no slower than the CLI: {'met' if statistics.median(c['ours_s']) <= statistics.median(c['cli_s']) else 'MISSED'} |",
        f"| the same, ours from spawning a new server (process start, initialize, dbt worker start-up beside it) (s) "
        f"| {statistics.median(c['ours_from_spawn_s']):.2f} | {statistics.median(c['cli_s']):.2f} | — |",
        f"| violations found | {c['ours_violations']} | {c['cli_violations']} | the same |",
        f"| repeated lint of an unchanged file, p50 / p95 (ms, MCP round trip) | {r['repeat']['p50_ms']:.1f} / {r['repeat']['p95_ms']:.1f} | — "
        f"| <= 20 ms: {'met' if r['repeat']['p50_ms'] <= 20 else 'MISSED'} |",
        f"| project_check on {r['project_check']['models']:,} generated models, p50 of 5 (s) | {r['project_check']['p50_s']:.2f} | — "
        f"| <= 5 s: {'met' if r['project_check']['p50_s'] <= 5 else 'MISSED'} |",
        f"| the same, first call (includes the first parse of the project) (s) | {r['project_check']['first_call_s_incl_parse']:.2f} | — | — |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--cold-runs", type=int, default=3)
    a = parser.parse_args()
    result = asyncio.run(main_async(a))
    (WORK / "quality_results.json").write_text(json.dumps(result, indent=1))
    print(markdown(result))


if __name__ == "__main__":
    main()
