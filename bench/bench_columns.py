#!/usr/bin/env python3
"""Benchmark of the column model's tools on a large style-guide project (bench/gen_styleguide_project.py), through the
real server over stdio: column_lineage, analyze_changes and project_check.

    .venv/bin/python bench/gen_styleguide_project.py /tmp/bench-sg --models 1000 --seed 7
    (cd /tmp/bench-sg && /work/main/.venv/bin/dbt build --profiles-dir .)
    .venv/bin/python bench/bench_columns.py --project /tmp/bench-sg [--calls 20]
    .venv/bin/python bench/bench_columns.py --project /tmp/bench-sg --profile     # the same calls in process, cProfile

The traced column comes from the project's bench_hints.json (written by the generator): a staging column whose values
reach a mart within 3 model hops through an intermediate model. One server (`python -m server.cli serve --project-dir
P --data-dir TMP --toolsets dbt,quality,lineage`), calls in this order, each series a cold first call (timed, also the
warm-up) then --calls timed warm calls:
  1. column_lineage downstream of the staging column (depth 3): the server's first call, it waits for the worker's parse;
  2. column_lineage upstream of the mart column it reaches (depth = hops back to the staging model);
  3. column_lineage upstream of the staging column itself (depth 1, to the seed);
  4. project_check of the whole project, twice (wall time of each);
  5. start_tracking of the staging model, rename of the column in its file, analyze_changes (target column:<col>);
  6. the file put back as it was, analyze_changes again; then stop_tracking. The file is restored even on failure.
With --cold-each, each tool's first call is also timed on a server started for it alone.
Targets: warm p50 <= 300 ms for column_lineage and analyze_changes; project_check <= 5 s.
Results: stdout (JSON, then a markdown table) and bench/.work/columns_results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import pstats
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.client.stdio import (
    StdioServerParameters,
    get_default_environment,
    stdio_client,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / ".work"
TARGET_MS = 300.0
TARGET_CHECK_S = 5.0


def pct(xs: list[float], q: float) -> float:
    """Percentile (linear interpolation), seconds in, milliseconds out."""
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return (xs[lo] + (xs[hi] - xs[lo]) * (k - lo)) * 1000


def hints_of(project: Path) -> dict[str, Any]:
    path = project / "bench_hints.json"
    if not path.is_file():
        sys.exit(f"{path} not found: generate the project with bench/gen_styleguide_project.py")
    return json.loads(path.read_text())


def renamed_text(original: str, hints: dict[str, Any]) -> str:
    """The staging file with the traced column renamed (its one line, trailing comma kept)."""
    pattern = re.compile(rf"^{re.escape(hints['rename']['from'])}(,?)$", re.MULTILINE)
    text, n = pattern.subn(lambda m: hints["rename"]["to"] + m.group(1), original, count=1)
    if n != 1:
        sys.exit(f"the rename line was not found in {hints['staging_path']}")
    return text


def server_env(project: Path) -> dict[str, str]:
    return {**get_default_environment(), **{k: v for k, v in os.environ.items() if k.startswith("DBT_AE_")},
            "DBT_AE_DUCKDB_PATH": str(project / "styleguide.duckdb"), "DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}


def calls_plan(h: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        "column_lineage downstream (staging col, depth 3)": (
            "column_lineage", {"model": h["staging_model"], "column": h["column"], "direction": "downstream", "depth": 3}),
        f"column_lineage upstream (mart col, depth {h['hops']})": (
            "column_lineage", {"model": h["mart_model"], "column": h["mart_column"], "direction": "upstream", "depth": h["hops"]}),
        "column_lineage upstream (staging col, depth 1)": (
            "column_lineage", {"model": h["staging_model"], "column": h["column"], "direction": "upstream", "depth": 1}),
    }


def lineage_check(label: str, h: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """What the trace found, and whether it found the hop the generator knows is there."""
    edges = result.get("edges") or []
    if "downstream" in label:
        want = any(e["to_node"].endswith("." + h["mart_model"]) and e["to_column"].lower() == h["mart_column"].lower() for e in edges)
    elif "mart col" in label:
        want = any(e["from_node"].endswith("." + h["staging_model"]) and e["from_column"].lower() == h["column"].lower() for e in edges)
    else:
        want = any(e["from_node"].startswith("seed.") for e in edges)
    return {"edges": len(edges), "unresolved": len(result.get("unresolved") or []), "found_expected_hop": want,
            "columns_source": result.get("columns_source")}


# --------------------------------------------------------------------------- over MCP


class Server:
    """The real server over stdio; stderr to a log file."""

    def __init__(self, project: Path, data_dir: Path, errlog: Path) -> None:
        self.params = StdioServerParameters(
            command=sys.executable, args=["-m", "server.cli", "serve", "--project-dir", str(project), "--data-dir", str(data_dir),
                                          "--toolsets", "dbt,quality,lineage"], cwd=str(REPO), env=server_env(project))
        self.errlog = errlog
        self._stack = contextlib.AsyncExitStack()
        self.client: Client | None = None

    async def __aenter__(self) -> Server:
        log = self._stack.enter_context(self.errlog.open("a"))
        self.client = Client(stdio_client(self.params, errlog=log), mode="legacy", cache=None, read_timeout_seconds=1800)
        t0 = time.perf_counter()
        await self._stack.enter_async_context(self.client)
        self.init_s = time.perf_counter() - t0
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def call(self, tool: str, args: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        assert self.client is not None
        t0 = time.perf_counter()
        result = await self.client.call_tool(tool, args)
        elapsed = time.perf_counter() - t0
        if result.is_error:
            text = result.content[0].text if result.content else ""
            raise RuntimeError(f"{tool}({args}) failed: {text[:1500]}")
        return elapsed, result.structured_content or {}


async def series(call: Callable[[], Awaitable[tuple[float, dict[str, Any]]]], n: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(timings, last result): one cold first call (also the warm-up), then n warm calls."""
    first, result = await call()
    times = []
    for _ in range(n):
        t, result = await call()
        times.append(t)
    return {"first_s": round(first, 3), "p50_ms": round(pct(times, 0.5), 1), "p95_ms": round(pct(times, 0.95), 1), "n": n}, result


def changes_summary(result: dict[str, Any]) -> dict[str, Any]:
    f = (result.get("files") or [{}])[0]
    return {k: f.get(k) for k in ("columns_removed", "columns_added", "columns_renamed", "broken_downstream", "columns_unresolved")} | {
        "broken_reads": len(f.get("broken_reads") or []), "downstream_models": len((f.get("downstream") or {}).get("models", []))}


async def over_mcp(project: Path, calls: int, h: dict[str, Any]) -> dict[str, Any]:
    WORK.mkdir(exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="bench-columns-data-"))
    path = project / h["staging_path"]
    original = path.read_text()
    out: dict[str, Any] = {"series": {}, "checks": {}}
    try:
        async with Server(project, data_dir, WORK / "columns-server.err") as srv:
            out["initialize_s"] = round(srv.init_s, 3)
            for label, (tool, args) in calls_plan(h).items():
                timing, result = await series(lambda tool=tool, args=args: srv.call(tool, args), calls)
                out["series"][label] = timing | {"args": args}
                out["checks"][label] = lineage_check(label, h, result)
                print(f"{label}: {timing} {out['checks'][label]}", file=sys.stderr)
            first, checked = await srv.call("project_check", {})
            second, checked = await srv.call("project_check", {})
            out["project_check"] = {"first_s": round(first, 3), "second_s": round(second, 3), "server_elapsed_s": checked.get("elapsed_s"),
                                    "violations": checked.get("total"), "by_rule": {k: v for k, v in (checked.get("by_rule") or {}).items() if v}}
            print(f"project_check: {out['project_check']}", file=sys.stderr)
            rel = h["staging_path"]
            await srv.call("start_tracking", {"filepath": rel})
            path.write_text(renamed_text(original, h))
            args = {"filepath": rel, "target": f"column:{h['column']}"}
            timing, result = await series(lambda: srv.call("analyze_changes", args), calls)
            out["series"]["analyze_changes (column renamed)"] = timing | {"args": args}
            out["checks"]["analyze_changes (column renamed)"] = changes_summary(result)
            print(f"analyze_changes renamed: {timing} {out['checks']['analyze_changes (column renamed)']}", file=sys.stderr)
            path.write_text(original)
            timing, result = await series(lambda: srv.call("analyze_changes", args), calls)
            out["series"]["analyze_changes (put back)"] = timing | {"args": args}
            out["checks"]["analyze_changes (put back)"] = changes_summary(result)
            print(f"analyze_changes put back: {timing}", file=sys.stderr)
            await srv.call("stop_tracking", {"filepath": rel})
    finally:
        if path.read_text() != original:
            path.write_text(original)
        shutil.rmtree(data_dir, ignore_errors=True)
    return out


async def cold_each(project: Path, h: dict[str, Any]) -> dict[str, Any]:
    """Each tool's first call on a server of its own, started for it (the project's target/ stays, as when a user
    restarts the server): worker start and parse, compiles, everything the tool needs the first time."""
    plan = {label: (tool, args) for label, (tool, args) in calls_plan(h).items() if "depth 1" not in label}
    plan["project_check (whole project)"] = ("project_check", {})
    plan["analyze_changes (column renamed)"] = ("analyze_changes", {"filepath": h["staging_path"], "target": f"column:{h['column']}"})
    path = project / h["staging_path"]
    original = path.read_text()
    out: dict[str, Any] = {}
    for label, (tool, args) in plan.items():
        data_dir = Path(tempfile.mkdtemp(prefix="bench-columns-cold-"))
        try:
            async with Server(project, data_dir, WORK / "columns-server.err") as srv:
                if tool == "analyze_changes":
                    await srv.call("start_tracking", {"filepath": h["staging_path"]})
                    path.write_text(renamed_text(original, h))
                first, _ = await srv.call(tool, args)
                out[label] = {"first_s": round(first, 3), "initialize_s": round(srv.init_s, 3)}
        finally:
            if path.read_text() != original:
                path.write_text(original)
            shutil.rmtree(data_dir, ignore_errors=True)
        print(f"cold, own server: {label}: {out[label]}", file=sys.stderr)
    return out


# --------------------------------------------------------------------------- in process, under cProfile


def top(profile: cProfile.Profile, key: str, n: int) -> list[str]:
    buf = io.StringIO()
    stats = pstats.Stats(profile, stream=buf)
    stats.sort_stats(key).print_stats(n)
    return [line for line in buf.getvalue().splitlines() if line.strip()][-n - 1:]


async def in_process(project: Path, calls: int, h: dict[str, Any], n_top: int) -> dict[str, Any]:
    """The same calls on the services the server registers, in this process: cProfile of the warm calls (the dbt worker
    is another process: its time shows as waiting in engine.invoke, timed per dbt command here)."""
    os.environ.update({"DBT_AE_DUCKDB_PATH": str(project / "styleguide.duckdb"), "DO_NOT_TRACK": "1"})
    import anyio.to_thread

    from server.app import build_app
    from server.registration import ProgressReporter
    from server.settings import Settings
    from tools.lineage.inputs import (
        AnalyzeChangesInput,
        ColumnLineageInput,
        StopInput,
        TrackInput,
    )
    from tools.lineage.service import LineageService
    from tools.quality.inputs import CheckInput
    from tools.quality.service import QualityTools

    async def inline(fn: Callable[[], Any], *args: Any, **kw: Any) -> Any:
        return fn(*args)  # the tools' worker-thread work runs in this thread, where cProfile sees it

    anyio.to_thread.run_sync = inline  # type: ignore[assignment]

    data_dir = Path(tempfile.mkdtemp(prefix="bench-columns-prof-"))
    settings = Settings(project_dir=project, data_dir=data_dir, toolsets=["dbt", "quality", "lineage"])
    _, ctx = build_app(settings)
    ctx.engine.start()
    invoked: dict[str, list[float]] = {}
    real_invoke = ctx.engine.invoke

    async def timed_invoke(args: list[str], **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await real_invoke(args, **kw)
        finally:
            invoked.setdefault(args[0], []).append(time.perf_counter() - t0)

    ctx.engine.invoke = timed_invoke  # type: ignore[method-assign]
    lineage = LineageService(ctx)
    quality = QualityTools(ctx)
    progress = ProgressReporter(None)
    path = project / h["staging_path"]
    original = path.read_text()
    report: dict[str, Any] = {}

    async def profiled(label: str, fn: Callable[[], Awaitable[Any]]) -> None:
        invoked.clear()
        t0 = time.perf_counter()
        await fn()
        cold = time.perf_counter() - t0
        cold_invokes = {k: round(sum(v), 3) for k, v in invoked.items()}
        t0 = time.perf_counter()
        await fn()
        warm = time.perf_counter() - t0  # without the profiler's overhead (it inflates sqlglot-heavy code 2-3x)
        invoked.clear()
        prof = cProfile.Profile()
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            prof.enable()
            await fn()
            prof.disable()
            times.append(time.perf_counter() - t0)
        report[label] = {"cold_s": round(cold, 3), "cold_dbt_calls_s": cold_invokes, "warm_unprofiled_s": round(warm, 3),
                         "warm_profiled_p50_ms": round(pct(times, 0.5), 1),
                         "warm_dbt_calls_s_per_call": {k: round(sum(v) / calls, 3) for k, v in invoked.items()},
                         "top_cumulative": top(prof, "cumulative", n_top), "top_tottime": top(prof, "tottime", n_top)}
        print(f"{label}: cold {cold:.2f} s, warm {warm:.2f} s (profiled p50 {report[label]['warm_profiled_p50_ms']} ms)", file=sys.stderr)

    try:
        for label, (_, args) in calls_plan(h).items():
            await profiled(label, lambda args=args: lineage.column_lineage(ColumnLineageInput(**args), progress))

        await profiled("project_check", lambda: quality.check(CheckInput(), progress))
        rel = h["staging_path"]
        await lineage.start(TrackInput(filepath=rel), progress)
        path.write_text(renamed_text(original, h))
        inp = AnalyzeChangesInput(filepath=rel, target=f"column:{h['column']}")
        await profiled("analyze_changes (column renamed)", lambda: lineage.analyze(inp, progress))
        path.write_text(original)
        await profiled("analyze_changes (put back)", lambda: lineage.analyze(inp, progress))
        await lineage.stop(StopInput(filepath=rel), progress)
    finally:
        if path.read_text() != original:
            path.write_text(original)
        await ctx.engine.shutdown()
        shutil.rmtree(data_dir, ignore_errors=True)
    return report


# --------------------------------------------------------------------------- output


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def markdown(result: dict[str, Any]) -> str:
    m = result["mcp"]
    lines = ["| call | first (cold) call, s | warm p50, ms | warm p95, ms | target | verdict |", "| --- | ---: | ---: | ---: | --- | --- |"]
    for label, s in m["series"].items():
        lines.append(f"| `{label}` | {s['first_s']:.2f} | {s['p50_ms']:.1f} | {s['p95_ms']:.1f} | p50 <= {TARGET_MS:.0f} ms | "
                     f"{verdict(s['p50_ms'] <= TARGET_MS)} |")
    c = m["project_check"]
    lines.append(f"| `project_check` (whole project), 1st / 2nd call | {c['first_s']:.2f} | {c['second_s'] * 1000:.0f} (2nd call) | | "
                 f"<= {TARGET_CHECK_S:.0f} s | {verdict(max(c['first_s'], c['second_s']) <= TARGET_CHECK_S)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, required=True, help="a project written by gen_styleguide_project.py, built once")
    parser.add_argument("--calls", type=int, default=20, help="warm calls per series")
    parser.add_argument("--profile", action="store_true", help="run the calls in process under cProfile instead of over MCP")
    parser.add_argument("--cold-each", action="store_true", help="also time each tool's first call on a server started for it alone")
    parser.add_argument("--top", type=int, default=25, help="(--profile) functions per listing")
    a = parser.parse_args()
    project = a.project.resolve()
    h = hints_of(project)
    WORK.mkdir(exist_ok=True)
    if a.profile:
        report = asyncio.run(in_process(project, a.calls, h, a.top))
        (WORK / "columns_profile.json").write_text(json.dumps(report, indent=1))
        for label, r in report.items():
            print(f"\n## {label}: cold {r['cold_s']} s (dbt calls {r['cold_dbt_calls_s']}), warm {r['warm_unprofiled_s']} s unprofiled, "
                  f"p50 {r['warm_profiled_p50_ms']} ms profiled (dbt calls per warm call {r['warm_dbt_calls_s_per_call']})")
            print("\n".join(r["top_cumulative"]))
            print("-- by own time")
            print("\n".join(r["top_tottime"]))
        return
    t0 = time.perf_counter()
    result = {"loadavg_at_start": [round(x, 2) for x in os.getloadavg()], "project": str(project), "hints": {k: h[k] for k in ("staging_model", "column", "mart_model", "mart_column", "hops", "models")},
              "mcp": asyncio.run(over_mcp(project, a.calls, h))}
    if a.cold_each:
        result["cold_each"] = asyncio.run(cold_each(project, h))
    result["total_s"] = round(time.perf_counter() - t0, 1)
    result["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]  # the machine is shared: other work shows here
    (WORK / "columns_results.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    print()
    print(f"Server spawn -> initialize: {result['mcp']['initialize_s']:.2f} s; whole bench {result['total_s']:.0f} s.\n")
    print(markdown(result))
    if "cold_each" in result:
        print("\n| first call on a server started for it alone | s |\n| --- | ---: |")
        for label, r in result["cold_each"].items():
            print(f"| `{label}` | {r['first_s']:.2f} |")


if __name__ == "__main__":
    main()
