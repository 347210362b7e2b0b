#!/usr/bin/env python3
"""Many clients over streamable HTTP (issue 17, item 3): N concurrent MCP clients for D seconds of mixed calls on one
server, every call's latency and outcome recorded.

    .venv/bin/python bench/bench_load.py                       # 20 clients, 60 s, on a built copy of fixtures/shop
    .venv/bin/python bench/bench_load.py --duration 20 --clients 10 --url http://127.0.0.1:8765/mcp   # a running server

The clients (each its own MCP session over streamable HTTP, an asyncio task of this process):
  builders   (--builders, default 3)   dbt_build / dbt_run on select=stg_orders, in turn
  dbt readers (--dbt-readers, default 5) dbt_show (a small query) and dbt_list, then the tool mix below
  the rest                              model_lineage (structured), sql_lint (a small SQL), memory_store + memory_retrieve
                                        (keys of their own), agent_delegate + task_list + task_claim
A client sleeps --think ms (uniform 0..2x, default 0: no think time) before its first call and between calls (an
agent's model turn takes seconds between tool calls; 0 is a stress test: closed loops, no pause). Outcomes: ok, or the typed error
code (structured content with code, message, hint); `untyped` is an error without them, `exception` a call the client
could not make at all. A `timeout` whose message says it waited for an earlier dbt call is a queue timeout.

The table: per tool, calls, errors by code, p50 / p95 / max latency (ms); the read-only tools that do not wait on dbt
(model_lineage, sql_lint, memory_retrieve, task_list) also counted over the calls that overlapped a running build.
JSON of every call: --json PATH (default bench/.work/load.json when run as a script).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# The read-only tools that never wait on the dbt worker (DESIGN.md "Long work"): the p95 <= 100 ms promise.
READ_ONLY = ("model_lineage", "sql_lint", "memory_retrieve", "task_list")
DBT_QUEUED = ("dbt_build", "dbt_run", "dbt_show", "dbt_list")
BUILDS = ("dbt_build", "dbt_run")
LINT_SQL = "select order_id, customer_id, order_total\nfrom {{ ref('fct_orders') }}\nwhere order_total > 10\n"
AGENTS = ("sql-database-specialist", "data-pipeline-engineer", "cicd-engineer")


@dataclass
class Call:
    client: int
    tool: str
    start: float  # seconds since the load began
    ms: float
    outcome: str  # "ok" or the error code ("untyped", "exception: <type>")
    message: str = ""


@dataclass
class Load:
    calls: list[Call] = field(default_factory=list)
    duration_s: float = 0.0
    clients: int = 0
    builders: int = 0
    dbt_readers: int = 0
    think_ms: float = 0.0

    def builds(self) -> list[tuple[float, float]]:
        return [(c.start, c.start + c.ms / 1000) for c in self.calls if c.tool in BUILDS]

    def during_builds(self, calls: list[Call]) -> list[Call]:
        """The calls whose whole span lies inside a build call's span (a build was running all the time they took)."""
        spans = sorted(self.builds())
        return [c for c in calls if any(s <= c.start and c.start + c.ms / 1000 <= e for s, e in spans)]

    def failures(self) -> list[Call]:
        """Every call that failed other than by a typed queue timeout."""
        return [c for c in self.calls if c.outcome != "ok" and not is_queue_timeout(c)]


def is_queue_timeout(call: Call) -> bool:
    """The dbt engine's typed timeout for a call that waited too long behind an earlier dbt call (engine.invoke)."""
    return call.outcome == "timeout" and "waiting for an earlier dbt call" in call.message


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-len(ordered) * q // 100)))
    return ordered[int(rank) - 1]


def stats(calls: list[Call]) -> dict[str, float]:
    ms = [c.ms for c in calls]
    return {"calls": len(ms), "p50": percentile(ms, 50), "p95": percentile(ms, 95), "max": max(ms)} if ms else {"calls": 0}


def table(load: Load) -> str:
    """Per tool: calls, errors by code, p50 / p95 / max ms; then the read-only group overall and during builds."""
    head = (f"{load.clients} clients ({load.builders} building, {load.dbt_readers} also on dbt_show/dbt_list), "
            f"{load.duration_s:.0f} s, think time {load.think_ms:.0f} ms, {len(load.calls)} calls, "
            f"{len(load.failures())} failed (queue timeouts excepted)")
    lines = [head,
             "| tool | calls | errors by code | p50 ms | p95 ms | max ms |", "|---|---|---|---|---|---|"]

    def row(name: str, calls: list[Call]) -> str:
        errors: dict[str, int] = {}
        for c in calls:
            if c.outcome != "ok":
                code = "queue timeout" if is_queue_timeout(c) else c.outcome
                errors[code] = errors.get(code, 0) + 1
        s = stats(calls)
        codes = ", ".join(f"{k} {v}" for k, v in sorted(errors.items())) or "-"
        if not s["calls"]:
            return f"| {name} | 0 | - | - | - | - |"
        return f"| {name} | {s['calls']} | {codes} | {s['p50']:.0f} | {s['p95']:.0f} | {s['max']:.0f} |"

    for tool in sorted({c.tool for c in load.calls}, key=lambda t: (t in DBT_QUEUED, t)):
        lines.append(row(tool, [c for c in load.calls if c.tool == tool]))
    read_only = [c for c in load.calls if c.tool in READ_ONLY]
    lines.append(row("**read-only, all** (" + ", ".join(READ_ONLY) + ")", read_only))
    lines.append(row("**read-only, while a build ran**", load.during_builds(read_only)))
    return "\n".join(lines)


async def one_call(client: Any, index: int, tool: str, args: dict[str, Any], t0: float, load: Load) -> dict[str, Any] | None:
    start = time.perf_counter()
    try:
        result = await client.call_tool(tool, args)
    except Exception as exc:  # noqa: BLE001 - recorded: the client could not make the call at all (transport, protocol)
        load.calls.append(Call(index, tool, start - t0, (time.perf_counter() - start) * 1000, f"exception: {type(exc).__name__}", str(exc)[:300]))
        return None
    ms = (time.perf_counter() - start) * 1000
    payload = result.structured_content or {}
    if not result.is_error:
        load.calls.append(Call(index, tool, start - t0, ms, "ok"))
        return payload
    typed = bool(payload.get("code") and payload.get("message") and payload.get("hint"))
    text = result.content[0].text if result.content else ""
    load.calls.append(Call(index, tool, start - t0, ms, str(payload["code"]) if typed else "untyped",
                           str(payload.get("message") or text)[:300]))
    return None


def mix(index: int, builders: int, dbt_readers: int) -> list[tuple[str, Any]]:
    """One client's loop: (tool, arguments or a function of the round giving them)."""
    if index < builders:
        return [("dbt_build", {"select": "stg_orders"}), ("dbt_run", {"select": "stg_orders"})]
    key = f"load-client-{index}/shop/note"
    calls: list[tuple[str, Any]] = [
        ("model_lineage", {"model": "fct_orders", "format": "structured"}),
        ("sql_lint", {"sql": LINT_SQL}),
        ("memory_store", lambda r: {"key": key, "value": f"client {index} round {r}: fct_orders is built from stg_orders"}),
        ("memory_retrieve", {"key": key}),
        ("agent_delegate", lambda r: {"to_agent": AGENTS[index % len(AGENTS)], "task": f"client {index} round {r}: check fct_orders"}),
        ("task_list", {"limit": 5}),
        ("task_claim", "claim"),  # the task this client just delegated
    ]
    if index < builders + dbt_readers:
        calls += [("dbt_show", {"sql": "select count(*) as n from {{ ref('fct_orders') }}", "limit": 5}),
                  ("dbt_list", {"select": "stg_orders+", "limit": 20})]
    return calls


async def client_loop(url: str, index: int, load: Load, t0: float, stop_at: float, think_ms: float) -> None:
    from mcp import Client

    rng = random.Random(index)
    async with Client(url) as client:
        steps = mix(index, load.builders, load.dbt_readers)
        round_ = 0
        last_task: int | None = None
        if think_ms:  # agents do not start in lockstep
            await asyncio.sleep(rng.uniform(0, 2 * think_ms) / 1000)
        while time.perf_counter() < stop_at:
            for tool, spec in steps:
                if time.perf_counter() >= stop_at:
                    break
                if spec == "claim":
                    if last_task is None:
                        continue
                    args = {"id": last_task, "agent": AGENTS[index % len(AGENTS)], "lease_seconds": 600}
                else:
                    args = spec(round_) if callable(spec) else spec
                payload = await one_call(client, index, tool, args, t0, load)
                if tool == "agent_delegate":
                    last_task = payload["task"]["id"] if payload else None
                if think_ms:
                    await asyncio.sleep(rng.uniform(0, 2 * think_ms) / 1000)
            round_ += 1


async def run_load(url: str, duration: float, clients: int = 20, builders: int = 3, dbt_readers: int = 5,
                   think_ms: float = 0.0) -> Load:
    """`clients` concurrent sessions on url for `duration` seconds; calls in flight at the end are let finish."""
    load = Load(clients=clients, builders=builders, dbt_readers=dbt_readers, think_ms=think_ms)
    t0 = time.perf_counter()
    stop_at = t0 + duration
    await asyncio.gather(*(client_loop(url, i, load, t0, stop_at, think_ms) for i in range(clients)))
    load.duration_s = time.perf_counter() - t0
    return load


async def warm(url: str) -> None:
    """One call of each kind before the clock starts: the worker parsed, the embedding model and linter loaded, and the
    modules a first build imports loaded (a first dbt_build in a fresh server stalls every call for ~1-2 s)."""
    from mcp import Client

    async with Client(url) as client:
        for tool, args in [("dbt_build", {"select": "stg_orders"}), ("dbt_list", {"select": "stg_orders"}), ("model_lineage", {"model": "fct_orders", "format": "structured"}),
                           ("sql_lint", {"sql": LINT_SQL}), ("memory_store", {"key": "load-warm/shop/note", "value": "warm"}),
                           ("memory_retrieve", {"key": "load-warm/shop/note"}), ("task_list", {"limit": 1})]:
            result = await client.call_tool(tool, args)
            if result.is_error:
                raise RuntimeError(f"warm-up {tool} failed: {result.content[0].text if result.content else ''}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--builders", type=int, default=3)
    parser.add_argument("--dbt-readers", type=int, default=5)
    parser.add_argument("--think", type=float, default=0.0, help="mean think time between a client's calls, ms")
    parser.add_argument("--url", help="a running server's MCP URL (default: start one on a built copy of fixtures/shop)")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / ".work" / "load.json")
    parser.add_argument("--serve-arg", action="append", default=[],
                        help="an extra argument for the server this script starts, e.g. --serve-arg=--memory-url=http://127.0.0.1:8000")
    args = parser.parse_args()

    async def go(url: str) -> Load:
        await warm(url)
        return await run_load(url, args.duration, args.clients, args.builders, args.dbt_readers, args.think)

    if args.url:
        load = asyncio.run(go(args.url))
    else:
        work = Path(tempfile.mkdtemp(prefix="bench-load-"))
        try:
            sys.path[:0] = [str(REPO), str(REPO / "tests")]
            from conftest import built_template, copy_shop, http_serving  # the tests' own helpers (as bench_completion)

            project = built_template(copy_shop(work))
            (work / "data").mkdir()
            with http_serving(project, work / "data", *args.serve_arg, stderr_path=work / "server.log") as url:
                load = asyncio.run(go(url))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(table(load))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"calls": [asdict(c) for c in load.calls], "duration_s": load.duration_s}))
    for call in load.failures()[:20]:
        print(f"FAILED {call.tool} (client {call.client}, {call.ms:.0f} ms): {call.outcome}: {call.message}", file=sys.stderr)


if __name__ == "__main__":
    main()
