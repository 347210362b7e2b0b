#!/usr/bin/env python3
"""Issue 17, "Scale on a big project": our server on a generated 1,000-model project, beside the dbt CLI.

    .venv/bin/python bench/bench_scale.py                      # generate bench/.work/scale/project, build, measure
    .venv/bin/python bench/bench_scale.py --project /tmp/sg    # reuse a project written by gen_styleguide_project.py
    .venv/bin/python bench/bench_scale.py --project /tmp/sg --no-cli-build --only compile,analyze   # some series alone

Steps, in this order (one server, a real MCP client over stdio):
  1. generate the project (bench/gen_styleguide_project.py --models 1000 --seed 7: seeds, a `raw` source over the
     seeds' tables, staging/intermediate/marts models in the style guide's CTE idiom, macros, YAML with tests and docs)
     unless --project is given;
  2. `dbt build` with the CLI, once, timed (the CLI's full build: fresh DuckDB file);
  3. the CLI doing what the tools do, --cli-calls times each: `dbt compile -s <mart>`, `dbt ls` (all nodes);
  4. the server (`python -m server.cli serve --toolsets dbt,quality,lineage`); each series: one warm-up call (timed,
     reported as "first"), then --calls timed calls, median and p95:
     project_check (all models); project_check after a one-line edit of one model file (a comment line appended,
     a new edit before every call); model_lineage of a mart (format structured, then the default PNG);
     analyze_changes after start_tracking + a one-line edit (the generator's column rename in a staging model);
     dbt_compile select=<mart>; dbt_list first page (bytes of the structured content JSON);
  5. dbt_build of the whole project through MCP (timed), then the RSS of the server process tree (server + its dbt
     worker: psutil if installed, else VmRSS from /proc/<pid>/status; VmHWM is the peak).
Every edited file is put back, even on failure. The CLI runs while no server is up (DuckDB takes a file lock).
Results: a table on stdout and bench/.work/scale_results.json (scale_results-only-<labels>.json with --only); the load
average before and after (shared machine).

--only runs the series named (comma-separated labels, default all): cli (step 3, and step 2 unless --no-cli-build),
check, check-edit, lineage, lineage-png, analyze, compile, list, build (step 5 with the RSS).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Self

from mcp import Client
from mcp.client.stdio import (
    StdioServerParameters,
    get_default_environment,
    stdio_client,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / ".work"
DBT = Path(sys.executable).parent / "dbt"
TOOLSETS = "dbt,quality,lineage"

SERIES = ("cli", "check", "check-edit", "lineage", "lineage-png", "analyze", "compile", "list", "build")  # --only labels

TARGETS = {  # label: (limit, unit)
    "project_check (all models)": (5000.0, "ms"),
    "project_check after a one-line edit": (200.0, "ms"),
    "model_lineage of a mart (structured)": (10.0, "ms"),
    "analyze_changes after a one-line edit": (300.0, "ms"),
    "dbt_compile select=<one model>": (500.0, "ms"),
    "dbt_list first page": (64 * 1024, "bytes"),
    "server RSS after a full dbt_build": (1536.0, "MiB"),
}


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def stats_ms(times: list[float], first: float | None = None) -> dict[str, Any]:
    out = {"p50_ms": round(pct(times, 0.5) * 1000, 1), "p95_ms": round(pct(times, 0.95) * 1000, 1), "n": len(times)}
    if first is not None:
        out["first_s"] = round(first, 3)
    return out


def env_for(project: Path) -> dict[str, str]:
    return {**get_default_environment(), **{k: v for k, v in os.environ.items() if k.startswith("DBT_AE_")},
            "DBT_AE_DUCKDB_PATH": str(project / "styleguide.duckdb"), "DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the dbt CLI


def cli(project: Path, *args: str) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    proc = subprocess.run([str(DBT), *args, "--profiles-dir", "."], cwd=project, env=env_for(project), capture_output=True, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"dbt {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout.decode()[-3000:]}")
    return elapsed, proc.stdout


def cli_part(project: Path, mart: str, calls: int, build: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if build:
        for stale in ("styleguide.duckdb", "styleguide.duckdb.wal"):
            (project / stale).unlink(missing_ok=True)
        log("dbt build (CLI, full, fresh database)...")
        t, stdout = cli(project, "build")
        done = [ln for ln in stdout.decode().splitlines() if "Done. PASS=" in ln]
        out["build"] = {"s": round(t, 1), "summary": done[-1].split("Done. ")[-1] if done else None}
        log(f"  {out['build']}")
    times = []
    for _ in range(calls):
        t, _ = cli(project, "compile", "-s", mart)
        times.append(t)
    out["compile"] = stats_ms(times)
    log(f"dbt compile -s {mart}: {out['compile']}")
    times, size = [], 0
    for _ in range(calls):
        t, stdout = cli(project, "ls", "--quiet")
        times.append(t)
        size = len(stdout)
    out["ls"] = stats_ms(times) | {"bytes": size, "lines": stdout.count(b"\n")}
    log(f"dbt ls: {out['ls']}")
    return out


# --------------------------------------------------------------------------- the server's process tree


def children_of() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d.name))
    return kids


def server_tree() -> list[int]:
    """This process's child running `server.cli serve`, and its descendants (the dbt worker)."""
    kids = children_of()
    roots = []
    for pid in kids.get(os.getpid(), []):
        with contextlib.suppress(OSError):
            if b"server.cli" in Path(f"/proc/{pid}/cmdline").read_bytes():
                roots.append(pid)
    tree, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += kids.get(pid, [])
    return tree


def rss_of(pids: list[int]) -> dict[str, Any]:
    try:
        import psutil  # type: ignore[import-not-found]
    except ImportError:
        psutil = None
    per: dict[str, Any] = {}
    total = peak = 0.0
    for pid in pids:
        if psutil is not None:
            p = psutil.Process(pid)
            rss, hwm, name = p.memory_info().rss / 2**20, None, " ".join(p.cmdline())[:80]
        else:
            fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
            rss = int(fields["VmRSS"].split()[0]) / 1024
            hwm = int(fields["VmHWM"].split()[0]) / 1024
            name = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:80]
        per[str(pid)] = {"rss_mib": round(rss, 1), "peak_mib": round(hwm, 1) if hwm is not None else None, "cmd": name}
        total += rss
        peak += hwm or 0
    return {"total_mib": round(total, 1), "peak_sum_mib": round(peak, 1) if peak else None, "processes": per,
            "how": "psutil" if psutil is not None else "/proc/<pid>/status VmRSS (VmHWM: peak)"}


# --------------------------------------------------------------------------- over MCP


class Server:
    def __init__(self, project: Path, data_dir: Path, errlog: Path) -> None:
        self.params = StdioServerParameters(
            command=sys.executable, args=["-m", "server.cli", "serve", "--project-dir", str(project), "--data-dir", str(data_dir),
                                          "--toolsets", TOOLSETS], cwd=str(REPO), env=env_for(project))
        self.errlog = errlog
        self._stack = contextlib.AsyncExitStack()
        self.client: Client | None = None

    async def __aenter__(self) -> Self:
        log_file = self._stack.enter_context(self.errlog.open("a"))
        self.client = Client(stdio_client(self.params, errlog=log_file), mode="legacy", cache=None, read_timeout_seconds=3600)
        t0 = time.perf_counter()
        await self._stack.enter_async_context(self.client)
        self.init_s = time.perf_counter() - t0
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def call(self, tool: str, args: dict[str, Any]) -> tuple[float, dict[str, Any], Any]:
        assert self.client is not None
        t0 = time.perf_counter()
        result = await self.client.call_tool(tool, args)
        elapsed = time.perf_counter() - t0
        if result.is_error:
            text = result.content[0].text if result.content else ""
            raise RuntimeError(f"{tool}({args}) failed: {text[:1500]}")
        return elapsed, result.structured_content or {}, result


async def series(call: Callable[[], Awaitable[tuple[float, dict[str, Any], Any]]], n: int,
                 before: Callable[[int], None] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """One warm-up call (its time reported as first_s), then n timed calls; `before(i)` runs untimed before each."""
    if before:
        before(-1)
    first, result, _ = await call()
    times = []
    for i in range(n):
        if before:
            before(i)
        t, result, _ = await call()
        times.append(t)
    return stats_ms(times, first), result


async def mcp_part(project: Path, h: dict[str, Any], calls: int, only: frozenset[str] | set[str] = frozenset(SERIES)) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="bench-scale-data-"))
    mart, stg_rel = h["mart_model"], h["staging_path"]
    # the model edited for the incremental check: the mart (a file nobody else edits in this run)
    mart_rel = next(p.relative_to(project).as_posix() for p in (project / "models").rglob(f"{mart}.sql"))
    originals = {rel: (project / rel).read_text() for rel in (stg_rel, mart_rel)}
    out: dict[str, Any] = {"series": {}, "toolsets": TOOLSETS}
    try:
        async with Server(project, data_dir, WORK / "scale-server.err") as srv:
            out["initialize_s"] = round(srv.init_s, 3)
            log(f"server up in {srv.init_s:.2f} s")

            async def record(label: str, tool: str, args: dict[str, Any], before: Callable[[int], None] | None = None) -> dict[str, Any]:
                timing, result = await series(lambda: srv.call(tool, args), calls, before)
                out["series"][label] = timing | {"tool": tool, "args": args}
                log(f"{label}: {timing}")
                return result

            if "check" in only:
                log("project_check (the first call compiles every model)...")
                checked = await record("project_check (all models)", "project_check", {})
                out["checked"] = {"violations": checked.get("total"), "server_elapsed_s": checked.get("elapsed_s")}

            def edit(i: int) -> None:
                (project / mart_rel).write_text(originals[mart_rel] + f"-- bench_scale edit {i}\n")

            if "check-edit" in only:
                await record("project_check after a one-line edit", "project_check", {}, edit)
                (project / mart_rel).write_text(originals[mart_rel])
                await srv.call("project_check", {})  # settle on the original file again

            if "lineage" in only:
                await record("model_lineage of a mart (structured)", "model_lineage", {"model": mart, "format": "structured"})
            if "lineage-png" in only:
                await record("model_lineage of a mart (default PNG)", "model_lineage", {"model": mart})

            if "analyze" in only:
                await srv.call("start_tracking", {"filepath": stg_rel})
                (project / stg_rel).write_text(originals[stg_rel].replace(h["rename"]["from"], h["rename"]["to"], 1))
                changes = await record("analyze_changes after a one-line edit", "analyze_changes", {"filepath": stg_rel})
                f = (changes.get("files") or [{}])[0]
                out["analyze_changes_found"] = {k: f.get(k) for k in ("columns_removed", "columns_added", "columns_renamed", "broken_downstream")}
                (project / stg_rel).write_text(originals[stg_rel])
                await srv.call("stop_tracking", {"filepath": stg_rel})

            if "compile" in only:
                await record("dbt_compile select=<one model>", "dbt_compile", {"select": mart})

            if "list" in only:
                listed = await record("dbt_list first page", "dbt_list", {})
                out["dbt_list_bytes"] = len(json.dumps(listed, separators=(",", ":")).encode())
                out["dbt_list_items"] = {k: (len(v) if isinstance(v, list) else v) for k, v in listed.items() if k != "nodes"} | {
                    "page_len": len(listed.get("nodes") or listed.get("items") or [])}

            if "build" in only:
                log("dbt_build through MCP (whole project)...")
                t, built, _ = await srv.call("dbt_build", {"timeout_seconds": 3600})
                out["dbt_build"] = {"s": round(t, 1), "success": built.get("success"),
                                    "counts": {k: built.get(k) for k in ("counts", "summary", "status_counts") if built.get(k) is not None}}
                log(f"dbt_build: {out['dbt_build']}")
                out["rss"] = rss_of(server_tree())
                log(f"RSS: {out['rss']['total_mib']} MiB")
    finally:
        for rel, text in originals.items():
            if (project / rel).read_text() != text:
                (project / rel).write_text(text)
        shutil.rmtree(data_dir, ignore_errors=True)
    return out


# --------------------------------------------------------------------------- output


def table(r: dict[str, Any]) -> str:
    s, c = r["mcp"]["series"], r["cli"]
    no_cli = "none (the CLI has no such command)"
    rows = [("| target | measured (warm, median / p95 of {n}) | first call | verdict | the dbt CLI doing the same |").format(n=r["calls"]),
            "| --- | --- | --- | --- | --- |"]

    def timed(label: str, cli_text: str) -> None:
        if label not in s:
            return
        limit, _ = TARGETS.get(label, (None, None))
        t = s[label]
        target = f"<= {limit / 1000:g} s" if limit and limit >= 1000 else (f"<= {limit:g} ms" if limit else "(no target)")
        verdict = "" if limit is None else ("PASS" if t["p50_ms"] <= limit else "over")
        rows.append(f"| `{label}` {target} | {t['p50_ms']:,.1f} ms / {t['p95_ms']:,.1f} ms | {t['first_s']:.2f} s | {verdict} | {cli_text} |")

    timed("project_check (all models)", no_cli)
    timed("project_check after a one-line edit", no_cli)
    timed("model_lineage of a mart (structured)", no_cli + "; `dbt ls -s +m+` lists names only")
    timed("model_lineage of a mart (default PNG)", no_cli)
    timed("analyze_changes after a one-line edit", no_cli)
    timed("dbt_compile select=<one model>", f"`dbt compile -s <model>`: {c['compile']['p50_ms'] / 1000:.2f} s / {c['compile']['p95_ms'] / 1000:.2f} s"
          if "compile" in c else "not run (--only)")
    if "dbt_list first page" not in s:
        return "\n".join(rows)
    lb = r["mcp"]["dbt_list_bytes"]
    t = s["dbt_list first page"]
    rows.append(f"| `dbt_list` first page <= 64 KB | {lb:,} bytes; {t['p50_ms']:,.1f} ms / {t['p95_ms']:,.1f} ms | {t['first_s']:.2f} s | "
                f"{'PASS' if lb <= 64 * 1024 else 'over'} | "
                + (f"`dbt ls`: {c['ls']['bytes']:,} bytes ({c['ls']['lines']:,} lines, every node); "
                   f"{c['ls']['p50_ms'] / 1000:.2f} s / {c['ls']['p95_ms'] / 1000:.2f} s |" if "ls" in c else "not run (--only) |"))
    if "dbt_build" not in r["mcp"]:
        return "\n".join(rows)
    b = r["mcp"]["dbt_build"]
    cb = c.get("build")
    rows.append(f"| `dbt_build` of the whole project (no target) | {b['s']:.1f} s (one run, tables already there) | | | "
                + (f"`dbt build` on a fresh database: {cb['s']:.1f} s ({cb['summary']})" if cb else "not run (--no-cli-build)") + " |")
    m = r["mcp"]["rss"]
    rows.append(f"| server RSS after a full `dbt_build` <= 1.5 GB | {m['total_mib']:,.0f} MiB (server + worker"
                + (f"; peak sum {m['peak_sum_mib']:,.0f} MiB" if m.get("peak_sum_mib") else "") + f") | | "
                f"{'PASS' if m['total_mib'] <= 1536 else 'over'} | (the CLI is one process per command) |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, help="reuse a project written by gen_styleguide_project.py")
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--calls", type=int, default=10, help="timed warm calls per series (after one warm-up)")
    parser.add_argument("--cli-calls", type=int, default=3, help="timed runs of each CLI command")
    parser.add_argument("--no-cli-build", action="store_true", help="skip the CLI's full build (the project must be built)")
    parser.add_argument("--only", default=",".join(SERIES), help=f"comma-separated series to run (default all): {','.join(SERIES)}")
    a = parser.parse_args()
    only = {label.strip() for label in a.only.split(",") if label.strip()}
    if not only or only - set(SERIES):
        parser.error(f"--only takes labels among {', '.join(SERIES)}; unknown: {', '.join(sorted(only - set(SERIES))) or '(none given)'}")
    partial = only != set(SERIES)
    WORK.mkdir(exist_ok=True)
    started = time.time()
    load_before = [round(x, 2) for x in os.getloadavg()]
    speed_before = cpu_speed()
    if a.project is None:
        project = WORK / "scale" / "project"
        log(f"generating {a.models} models into {project}...")
        subprocess.run([sys.executable, str(HERE / "gen_styleguide_project.py"), str(project), "--models", str(a.models),
                        "--seed", str(a.seed)], check=True, stdout=subprocess.DEVNULL)
    else:
        project = a.project.resolve()
    h = json.loads((project / "bench_hints.json").read_text())
    result: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started)), "project": str(project),
                              "models": h["models"], "layers": h["layers"], "sql_lines": h["sql_lines"], "calls": a.calls,
                              "mart": h["mart_model"], "staging": h["staging_model"], "load_before": load_before}
    if partial:
        result["only"] = sorted(only, key=SERIES.index)
    result["cli"] = cli_part(project, h["mart_model"], a.cli_calls, build=not a.no_cli_build) if "cli" in only else {}
    result["mcp"] = asyncio.run(mcp_part(project, h, a.calls, only))
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    result["cpu_speed_s"] = {"before": speed_before, "after": cpu_speed()}
    result["total_s"] = round(time.time() - started, 1)
    name = f"scale_results-only-{'-'.join(result['only'])}.json" if partial else "scale_results.json"
    (WORK / name).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    print()
    print(f"{h['models']} models {h['layers']}, SQL lines {h['sql_lines']}; server initialize {result['mcp']['initialize_s']:.2f} s; "
          f"load average (1/5/15 min) before {load_before}, after {result['load_after']}; CPU speed (a fixed Python loop, s) "
          f"before {speed_before}, after {result['cpu_speed_s']['after']}; whole bench {result['total_s']:.0f} s.\n")
    print(table(result))


def cpu_speed() -> float:
    """Seconds for a fixed pure-Python loop (best of three): how fast this machine runs Python right now. On a shared
    host it swung by a third within minutes; figures from runs with different speeds differ by as much."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        sum(i * i for i in range(2_000_000))
        best = min(best, time.perf_counter() - started)
    return round(best, 3)


if __name__ == "__main__":
    main()
