"""The column model's facts, gathered for the tools that reason about columns (lineage, changes, checks, metrics,
authoring): compiled SQL from the warm worker (cached by each node's checksum), target/catalog.json, seed files, the
manifest's declared columns and, for a model the static model cannot resolve, a zero-row query of its compiled SQL on
the read-only preview connection. One instance per app (ctx.shared), so every toolset sees the same answer."""

from __future__ import annotations

import asyncio
import atexit
import csv
import hashlib
import io
import json
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server import fastjson
from server.context import AppContext
from server.errors import ToolFailure
from server.manifest import wait_until_written
from tools.authoring.project import profile_dialect
from tools.lineage.column_model import ColumnRead, NodeColumns, NodeFacts, columns_read, infer, relation_key, sql_output
from tools.lineage.graph import LineageGraph

COLUMN_TYPES = ("model", "seed", "snapshot", "source")
STORE_VERSION = 1  # bump when NodeColumns or the inference changes meaning
MEMO_KEEP = 20_000
SAVE_EVERY_S = 30.0
SAVE_DELAY_S = 0.05
DATABASE_QUERIES_PER_CALL = 25  # zero-row queries for unresolved models; the rest stay `unresolved` with the reason


def column_service(ctx: AppContext) -> "ColumnService":
    """The app's one column service (its caches are shared by every toolset)."""
    return ctx.shared("columns", lambda: ColumnService(ctx))


def seed_header(root: Path, node: dict[str, Any], project: str | None) -> list[str] | None:
    """A seed's column names from its CSV's first line (the root project's seeds; packages' come from the catalog)."""
    if node.get("package") != project or not str(node.get("path") or "").endswith(".csv"):
        return None
    try:
        with (root / node["path"]).open(encoding="utf-8", newline="") as handle:
            return next(csv.reader(io.StringIO(handle.readline())), None)
    except (OSError, UnicodeDecodeError):
        return None


def gather_facts(graph: LineageGraph, uids: Iterable[str], compiled: dict[str, tuple[str | None, str | None]],
                 catalog: dict[str, list[tuple[str, str | None]]], root: Path, project: str | None) -> dict[str, NodeFacts]:
    """NodeFacts of each node from the manifest graph, compiled SQL (uid -> (sql, error)), the catalog and seed files."""
    out: dict[str, NodeFacts] = {}
    for uid in uids:
        node = graph.nodes[uid]
        sql, error = compiled.get(uid, (None, None))
        out[uid] = NodeFacts(
            unique_id=uid, resource_type=node["resource_type"], relation=relation_key(node.get("relation_name")),
            parents=list(node.get("depends_on") or graph.parents.get(uid, [])), compiled_sql=sql, compile_error=error,
            catalog=catalog.get(uid), declared=[(c[0], c[1]) for c in node.get("declared") or []],
            seed_header=seed_header(root, node, project) if node["resource_type"] == "seed" else None,
        )
    return out


@dataclass
class ColumnView:
    """Columns of the nodes asked for and of everything upstream of them."""

    columns: dict[str, NodeColumns]
    facts: dict[str, NodeFacts]
    dialect: str


class ColumnService:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.root = ctx.engine.project_dir.resolve()
        self._compiled: dict[str, tuple[str | None, str | None, str | None]] = {}  # uid -> (compile key, sql, error)
        self._database: dict[str, tuple[str, NodeColumns]] = {}  # uid -> (compiled sql, columns the database gave)
        self._memo: dict[str, NodeColumns] = {}
        self._stars: dict[str, bool] = {}
        self._lineage: dict[str, dict[str, Any]] = {}
        self._sql: dict[str, Any] = {}  # sqlglot results (sql_output, columns_read) by everything they depend on
        self._facts: dict[str, tuple[Any, Any, Any, NodeFacts]] = {}  # uid -> (its graph node, compiled, catalog entry, facts)
        self._compile_keys: dict[str, tuple[Any, tuple[Any, ...], str]] = {}  # uid -> (graph node, its parents' nodes, compile_key)
        self._recent: dict[str, Any] = {}  # column_model.infer's last answer per node, with what it came from
        self._star_keys: dict[int, tuple[str, str, str]] = {}  # id(compiled sql) -> (that sql, dialect, its key in _stars)
        self._inline: dict[str, tuple[str | None, str | None]] = {}
        self._dialect: tuple[tuple[int, ...], str] | None = None
        self._catalog: tuple[tuple[int, int] | None, dict[str, list[tuple[str, str | None]]]] = (None, {})
        self._lock = asyncio.Lock()
        self._graph: tuple[tuple[int, int] | None, LineageGraph | None] = (None, None)
        self._described_graph: tuple[str | None, LineageGraph | None] = (None, None)  # by the worker's manifest generation
        # what manifest.json's graph was read under: (the worker's manifest generation, the project's files)
        self._graph_basis: tuple[str, tuple] | None = None
        self._graph_lock = threading.Lock()
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        self._store = ctx.settings.data_dir / "columns" / f"{self.root.name}-{digest}.json"
        self._dirty = False
        self._saved_at = float("-inf")
        self._save_pending = False
        self._load_store()
        atexit.register(self.save, True)  # an in-process app (tests, scripts)
        ctx.exit_hooks.append(lambda: self.save(True))  # a serving process ends without atexit (server/cli.py exit_now)

    # -- the durable cache: a restarted server (each Claude Desktop session) starts warm ---------------------------
    def _load_store(self) -> None:
        try:
            data = json.loads(self._store.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if data.get("version") != STORE_VERSION:
            return
        self._compiled = {uid: (c[0], c[1], c[2]) for uid, c in (data.get("compiled") or {}).items()}
        self._memo = {k: NodeColumns(v["names"], v["types"], v["origin"], v.get("unresolved")) for k, v in (data.get("memo") or {}).items()}
        self._stars = dict(data.get("stars") or {})

    def save(self, force: bool = False) -> None:
        """Atomic; best effort (a read-only data dir only costs the next start its warmth). At most every
        SAVE_EVERY_S seconds (a big project's cache is megabytes), and once more at exit."""
        if not self._dirty or (not force and time.monotonic() - self._saved_at < SAVE_EVERY_S):
            return
        if len(self._memo) > MEMO_KEEP:  # every edit adds variants: keep the newest
            self._memo = dict(list(self._memo.items())[-MEMO_KEEP // 2:])
        data = {"version": STORE_VERSION, "compiled": {uid: list(c) for uid, c in self._compiled.items()},
                "memo": {k: {"names": v.names, "types": v.types, "origin": v.origin, "unresolved": v.unresolved}
                         for k, v in self._memo.items()},
                "stars": self._stars}
        try:
            self._store.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._store.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(fastjson.dumps_plain(data), encoding="utf-8")  # (orjson where installed: 25 -> 6 ms for 4.6 MB)
            os.replace(tmp, self._store)
            self._dirty = False
            self._saved_at = time.monotonic()
        except OSError:
            pass

    def save_soon(self) -> None:
        """`save` a moment after the call that asks (its reply is not held up by megabytes of JSON: 20-40 ms of a
        check every 30 s on a 1,000-model project). A check right after lands it while the worker parses, when the
        server waits anyway."""
        if self._save_pending or not self._dirty or time.monotonic() - self._saved_at < SAVE_EVERY_S:
            return
        self._save_pending = True

        def save() -> None:
            self._save_pending = False
            self.save()

        asyncio.get_running_loop().call_later(SAVE_DELAY_S, save)

    async def graph(self, fresh: bool = False) -> LineageGraph:
        """The warm manifest's graph. `fresh` first lets the worker parse files changed since its last parse (what
        column tools need: the files on disk). From the worker's summary when it describes the manifest the worker
        holds now (no file read, and no wait for manifest.json after an edit); else from target/manifest.json,
        reloaded when the file changes."""
        path = self.root / "target" / "manifest.json"
        if fresh or not path.is_file():
            await self.ctx.engine.describe(timeout=self.ctx.settings.timeout_seconds)
        described = self.ctx.engine.current_description()
        if described is not None and described.get("lineage") is not None:
            generation = described.get("generation")
            if self._described_graph[0] != generation:
                self._described_graph = (generation, LineageGraph.from_manifest(described["lineage"], self._described_graph[1]))
            return self._described_graph[1]
        await asyncio.to_thread(wait_until_written, self.root)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ToolFailure("manifest_missing", "No target/manifest.json after parsing.", "Call dbt_parse and read its error.") from None
        stamp = (st.st_mtime_ns, st.st_size)
        known = self._graph
        if known[1] is not None and stamp == known[0]:
            return known[1]
        return await asyncio.to_thread(self._load_graph, path, self.ctx.engine.generation)  # megabytes of JSON: off the loop

    def _load_graph(self, path: Path, generation: str | None) -> LineageGraph:
        """The graph of the manifest on disk. dbt rewrites the file after every run, build or test: while the worker's
        manifest generation and the project's files are what they were at the last read, the graph is the same and
        the file is not parsed again. The worker rewrites the file in place, so a reader can catch it half written:
        then the last graph read stands (it was whole a moment ago), or, with none yet, the read is tried again for a
        few seconds."""
        from tools.dbt.engine.incremental import PENDING_NAME
        from tools.dbt.engine.invocation import project_fingerprint

        with self._graph_lock:
            # a file still pending (its writer late or failed) may be older than the generation: not a basis to keep
            pending = (path.parent / PENDING_NAME).exists()
            basis = (generation, project_fingerprint(self.root, self.ctx.settings.effective_profiles_dir)) if generation and not pending else None
            deadline = time.monotonic() + 5
            while True:
                try:
                    st = path.stat()
                    stamp = (st.st_mtime_ns, st.st_size)
                    if self._graph[1] is not None and (stamp == self._graph[0] or (basis is not None and basis == self._graph_basis)):
                        self._graph = (stamp, self._graph[1])
                        return self._graph[1]
                    graph = LineageGraph.load(path)
                    self._graph, self._graph_basis = (stamp, graph), basis
                    return graph
                except (OSError, ValueError) as exc:
                    if self._graph[1] is not None:
                        return self._graph[1]
                    if time.monotonic() > deadline:
                        raise ToolFailure("manifest_unreadable", f"target/manifest.json could not be read: {exc}",
                                          "Call again; if it persists, call dbt_parse to write it anew.") from None
                    time.sleep(0.1)

    @property
    def guard(self) -> dict[str, Any]:
        """Project macros run while compiling may only send read-only queries (as for dbt_compile)."""
        return {"guard": not self.ctx.settings.jinja_statements_allowed}

    @property
    def ahead(self) -> dict[str, Any] | None:
        """A describe's `compile_ahead` (engine.describe) for a caller that compiles every model of the project next
        (project_check): the edited ones compiled as this service's compiles are, with their stars looked at in this
        dialect (unlisted_star then finds the answers kept). None while project Jinja may run statements: compiles
        ahead run only under the statement guard."""
        return {**self.guard, "dialect": self.dialect} if self.guard["guard"] else None

    @property
    def dialect(self) -> str:
        """The profile's SQL dialect, read again only when profiles.yml or dbt_project.yml changes."""
        files = (self.ctx.settings.effective_profiles_dir / "profiles.yml", self.root / "dbt_project.yml")
        stamp = tuple(f.stat().st_mtime_ns if f.exists() else 0 for f in files)
        if self._dialect is None or self._dialect[0] != stamp:
            self._dialect = (stamp, profile_dialect(self.root, self.ctx.settings.effective_profiles_dir, self.ctx.settings.target))
        return self._dialect[1]

    def catalog(self) -> dict[str, list[tuple[str, str | None]]]:
        """unique_id -> [(column, type)] in the warehouse's order, from target/catalog.json (re-read when it changes)."""
        path = self.root / "target" / "catalog.json"
        try:
            st = path.stat()
        except FileNotFoundError:
            return {}
        stamp = (st.st_mtime_ns, st.st_size)
        if self._catalog[0] != stamp:
            out: dict[str, list[tuple[str, str | None]]] = {}
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                data = {}
            for section in ("nodes", "sources"):
                for uid, entry in (data.get(section) or {}).items():
                    cols = sorted((entry.get("columns") or {}).values(), key=lambda c: c.get("index") or 0)
                    out[uid] = [(c["name"], (c.get("type") or None) and str(c["type"]).lower()) for c in cols if c.get("name")]
            self._catalog = (stamp, out)
        return self._catalog[1]

    def compile_key(self, graph: LineageGraph, uid: str) -> str:
        """What a node's compiled SQL depends on that the manifest shows: its file's checksum, its own relation and
        the relations its refs and sources resolve to (a new target or schema compiles again). A changed macro
        body does not change the key: dbt_parse after editing macros, or restart, if columns look stale. Kept while
        the node's graph entry and its parents' are the same objects (every call asks it of every node)."""
        node = graph.nodes[uid]
        parent_nodes = tuple(graph.nodes.get(p) for p in node.get("depends_on") or [])
        held = self._compile_keys.get(uid)
        if held is not None and held[0] is node and len(held[1]) == len(parent_nodes) and all(
                a is b for a, b in zip(held[1], parent_nodes, strict=True)):
            return held[2]
        parents = sorted(str((p or {}).get("relation_name")) for p in parent_nodes)
        key = hashlib.sha256(repr((node.get("checksum"), node.get("relation_name"), parents)).encode()).hexdigest()
        self._compile_keys[uid] = (node, parent_nodes, key)
        return key

    async def _compile(self, graph: LineageGraph, uids: list[str], progress: Any = None) -> None:
        """Compile the nodes whose SQL is not cached for their current compile key, in one worker call."""
        stale = [u for u in uids if graph.nodes[u]["resource_type"] in ("model", "snapshot")
                 and self._compiled.get(u, (None,))[0] != self.compile_key(graph, u)]
        if stale:
            await self._compile_batch(graph, stale, progress)

    async def _compile_batch(self, graph: LineageGraph, stale: list[str], progress: Any) -> None:
        """One worker call compiles `stale` (compile_op.py: each node gets its own status). Where the whole call fails
        (a refused statement, or `dbt compile` when the worker has no adapter to reuse, which stops at the first broken
        model), the batch is split in halves until the failing models are alone, each keeping dbt's error."""
        # the manifest this graph is the summary of (compile_op compiles from it while the worker holds it), if known
        generation = self._described_graph[0] if graph is self._described_graph[1] else None
        try:
            reply = await self.ctx.engine.invoke(["compile_nodes"], timeout=self.ctx.settings.timeout_seconds, progress=progress,
                                                 options={**self.guard, "unique_ids": stale, "generation": generation})
        except ToolFailure as failed:
            if failed.code == "timeout":
                raise
            if len(stale) == 1:
                self._compiled[stale[0]] = (self.compile_key(graph, stale[0]), None, "did not compile: " + failed.message.splitlines()[0][:300])
                self._dirty = True
                return
            half = len(stale) // 2
            for part in (stale[:half], stale[half:]):
                await self._compile_batch(graph, part, progress)
            return
        self._store_compiled(graph, stale, reply)

    def _store_compiled(self, graph: LineageGraph, stale: list[str], reply: Any) -> None:
        returned = {n["unique_id"]: n for n in (reply.payload or {}).get("nodes", []) if n.get("unique_id")}
        failure = next((n.get("message") for n in returned.values() if n.get("status") not in ("success", None)), None)
        self._dirty = True
        for uid in stale:
            node = returned.get(uid)
            checksum = self.compile_key(graph, uid)
            if node and node.get("compiled_sql") and node.get("status") in ("success", None):
                self._compiled[uid] = (checksum, node["compiled_sql"], None)
                for dialect, stars in (node.get("stars_reaching_relations") or {}).items():  # (compile_op.compile_ahead)
                    self._stars[self.star_key(node["compiled_sql"], str(dialect))] = bool(stars)
            else:
                message = (node or {}).get("message") or failure or "dbt did not compile it (an error in the selection)"
                self._compiled[uid] = (checksum, None, "did not compile: " + str(message).splitlines()[0][:300])

    async def view(self, graph: LineageGraph, wanted: Iterable[str], *, database: bool = True, progress: Any = None) -> ColumnView:
        """Columns of `wanted` and everything upstream of them (what their stars expand through)."""
        project = next((n.get("package") for n in graph.nodes.values() if n["resource_type"] == "model"), None)
        needed: set[str] = set()
        stack = [u for u in wanted if u in graph.nodes]
        while stack:
            uid = stack.pop()
            if uid in needed or graph.nodes.get(uid, {}).get("resource_type") not in COLUMN_TYPES:
                continue
            needed.add(uid)
            stack.extend(graph.nodes[uid].get("depends_on") or graph.parents.get(uid, []))
        async with self._lock:
            await self._compile(graph, sorted(needed), progress)
            facts = self._facts_of(graph, needed, project)
            dialect = self.dialect
            known = {u: cols for u, (sql, cols) in self._database.items() if u in facts and facts[u].compiled_sql == sql}
            before = len(self._memo)
            columns = infer(facts, dialect, known, self._memo, self._recent)
            self._dirty = self._dirty or len(self._memo) != before
            if database:
                asked = 0
                for uid in [u for u in facts if not columns[u].known and facts[u].resource_type in ("model", "source")]:
                    if asked >= DATABASE_QUERIES_PER_CALL:
                        break
                    cached = self._database.get(uid)
                    if cached is not None and cached[0] == (facts[uid].compiled_sql or ""):
                        continue
                    asked += 1
                    node = graph.nodes[uid]
                    if facts[uid].resource_type == "model":
                        if not facts[uid].compiled_sql:
                            continue
                        found = await self._from_database({"model": node["name"]})
                    else:
                        source_name, _, table = str(node["name"]).partition(".")
                        found = await self._from_database({"sql": f"select * from {{{{ source('{source_name}', '{table}') }}}}"})
                    if found is not None:
                        known[uid] = found
                        self._database[uid] = (facts[uid].compiled_sql or "", found)
                if asked:
                    columns = infer(facts, dialect, known, self._memo, self._recent)
            self.save_soon()
        return ColumnView(columns, facts, dialect)

    def _facts_of(self, graph: LineageGraph, needed: Iterable[str], project: str | None) -> dict[str, NodeFacts]:
        """gather_facts of `needed`; a node whose inputs (its manifest entry, compiled SQL, catalog entry) are the same
        objects as at its last gathering keeps its NodeFacts, and with them the digest infer's memo keys on (computed
        once per object). Seeds are gathered again each time (their header is read from the CSV)."""
        kept = self._facts
        if len(kept) > 2 * len(graph.nodes) + 100:  # renamed and deleted nodes
            for uid in [u for u in kept if u not in graph.nodes]:
                del kept[uid]
        catalog = self.catalog()
        out: dict[str, NodeFacts] = {}
        stale: list[str] = []
        for uid in needed:
            node, compiled, cataloged = graph.nodes[uid], self._compiled.get(uid), catalog.get(uid)
            entry = kept.get(uid)
            if entry is not None and entry[0] is node and entry[1] is compiled and entry[2] is cataloged and node["resource_type"] != "seed":
                out[uid] = entry[3]
            else:
                stale.append(uid)
        made = gather_facts(graph, stale, {u: (self._compiled[u][1], self._compiled[u][2]) for u in stale if u in self._compiled},
                            catalog, self.root, project)
        for uid, facts in made.items():
            kept[uid] = (graph.nodes[uid], self._compiled.get(uid), catalog.get(uid), facts)
        return out | made

    def _sqlglot(self, kind: str, compute: Any, sql: str, dialect: str, *context: Any) -> Any:
        """A sqlglot result of compiled SQL (`compute(sql, dialect, *context)`), cached by all it depends on."""
        key = hashlib.sha256(repr((kind, dialect, context)).encode() + b"\0" + sql.encode()).hexdigest()
        if key not in self._sql:
            if len(self._sql) > 5000:
                self._sql.clear()
            self._sql[key] = compute(sql, dialect, *context)
        return self._sql[key]

    def output_of(self, sql: str, dialect: str, schema: dict[str, Any]) -> tuple[list[str], dict[str, str | None], str | None]:
        """column_model.sql_output, cached (a tracked file's baseline and current SQL are qualified once, not per call)."""
        names, types, why = self._sqlglot("output", sql_output, sql, dialect, schema)
        return list(names), dict(types), why

    def reads_of(self, sql: str, dialect: str, schema: dict[str, Any], relations: dict[str, str]) -> list[ColumnRead]:
        """column_model.columns_read, cached (analyze_changes asks again about the same readers on every call)."""
        return list(self._sqlglot("reads", columns_read, sql, dialect, schema, relations))

    def lineage_of(self, uid: str, sql: str, dialect: str, relations: dict[str, str], schema: dict[str, Any]) -> dict[str, Any]:
        """Every output column's one-hop upstream edges (columns.upstream_of_all), cached by what they depend on."""
        from tools.lineage.columns import upstream_of_all

        key = hashlib.sha256(repr((uid, sql, dialect, sorted(relations.items()), schema)).encode()).hexdigest()
        if key not in self._lineage:
            if len(self._lineage) > 5000:
                self._lineage.clear()
            self._lineage[key] = upstream_of_all(uid, sql, dialect, relations, schema)
        return self._lineage[key]

    def star_key(self, compiled_sql: str, dialect: str) -> str:
        held = self._star_keys.get(id(compiled_sql))  # the same str as last call for a node that did not change
        if held is not None and held[0] is compiled_sql and held[1] == dialect:
            return held[2]
        key = hashlib.sha256(f"{dialect}\0{compiled_sql}".encode()).hexdigest()
        if len(self._star_keys) > 100_000:
            self._star_keys.clear()
        self._star_keys[id(compiled_sql)] = (compiled_sql, dialect, key)
        return key

    def unlisted_star(self, compiled_sql: str, dialect: str) -> bool:
        """Whether a star reaches a relation whose columns no select lists (column_model.stars_reaching_relations), cached."""
        from tools.lineage.column_model import stars_reaching_relations

        key = self.star_key(compiled_sql, dialect)
        if key not in self._stars:
            self._stars[key] = stars_reaching_relations(compiled_sql, dialect)
            self._dirty = True
        return self._stars[key]

    @property
    def memo(self) -> dict[str, NodeColumns]:
        """The inference memo (column_model.infer), for callers that infer a variant (a baseline's columns)."""
        self._dirty = True
        return self._memo

    async def compile_text(self, text: str) -> tuple[str | None, str | None]:
        """(compiled SQL, None) of a model's text that is not on disk (a tracked baseline), compiled as inline SQL
        under the same guards as dbt_compile's; else (None, why). Cached by the text (a baseline does not change)."""
        key = hashlib.sha256(text.encode()).hexdigest()
        if key not in self._inline:
            if len(self._inline) > 200:
                self._inline.clear()
            self._inline[key] = await self._compile_inline(text)
        return self._inline[key]

    async def _compile_inline(self, text: str) -> tuple[str | None, str | None]:
        from tools.dbt.engine.jinja_guard import agent_text_findings, blocking

        refused = blocking(agent_text_findings(text, inline=True), self.ctx.settings.jinja_statements_allowed)
        if refused:
            return None, f"its Jinja is not allowed here: {refused[0].describe()}"
        try:
            reply = await self.ctx.engine.invoke(["compile", f"--inline={text}"], timeout=self.ctx.settings.timeout_seconds, options=self.guard)
        except ToolFailure as exc:
            return None, exc.message
        nodes = (reply.payload or {}).get("nodes") or []
        if not reply.success or not nodes or not nodes[0].get("compiled_sql"):
            return None, str((nodes[0].get("message") if nodes else None) or "dbt could not compile it").splitlines()[0][:300]
        return nodes[0]["compiled_sql"], None

    async def _from_database(self, what: dict[str, str]) -> NodeColumns | None:
        """A model's or source's columns as the database binds them: a zero-row preview on the read-only connection
        (`what` is the preview's {"model": name} or {"sql": query})."""
        try:
            reply = await self.ctx.engine.invoke(["preview"], timeout=self.ctx.settings.timeout_seconds,
                                                 options={**what, "limit": 0, "any_relation": False, **self.guard})
        except ToolFailure:  # preview_unavailable on adapters without a read-only connection, a refused query
            return None
        table = (reply.payload or {}).get("table") if reply.success else None
        if not table or not table.get("columns"):
            return None
        names = list(table["columns"])
        return NodeColumns(names, {n: str(t).lower() for n, t in zip(names, table.get("column_types") or [])}, "database")
