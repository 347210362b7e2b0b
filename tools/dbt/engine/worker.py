"""The dbt worker process: keeps dbt imported and the parsed manifest warm, runs one command at a time.

Protocol: JSON lines. Requests arrive on stdin; replies, progress events and the start-up `ready` line go to
a private copy of the original stdout. Everything dbt (or anything else) prints lands on stderr, so the
channel to the server can never be corrupted by a stray print.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

# The channel must be taken before anything can print: fd 1 becomes stderr for the rest of the process.
_CHANNEL: TextIO = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
os.dup2(2, 1)
sys.stdout = sys.stderr

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("DBT_USE_COLORS", "false")

from server import fastjson  # noqa: E402
from server.heap import HeapKeeper  # noqa: E402
from tools.dbt.engine.serialize import classify_exception, serialize_result  # noqa: E402
from tools.dbt.engine.invocation import FAST_FLAGS, MANIFEST_COMMANDS, drop_inline_nodes, project_fingerprint, target_args  # noqa: E402
from tools.dbt.engine.compile_op import CompileOp, models_to_compile_ahead  # noqa: E402
from tools.dbt.engine.line_reader import LineReader  # noqa: E402
from tools.dbt.engine.preview_op import PreviewOp  # noqa: E402
from tools.dbt.engine import parse_io, run_facts  # noqa: E402
from tools.dbt.engine.incremental import (ArtifactWriter, changed_paths, clear_leftovers, configs_unchanged, edges_digest,  # noqa: E402
                                          handing_over, install, parse_in_place, write_artifacts)

PROGRESS_EVENTS = {"NodeStart", "NodeFinished"}
TEST_COMMANDS = {"test", "build", "retry"}
BUILD_COMMANDS = {"run", "build", "retry"}  # where incremental models are materialized
IN_PROCESS_ADAPTERS = {"duckdb"}  # the database runs inside the worker: killing the worker stops its queries
CANCEL_WITHIN_S = 3.0  # how long a stopping worker waits for the database to cancel its queries (the server kills it after 5 s)
DEFER_WRITE_FOR = {"describe", "compile_nodes"}  # requests of a check after an edit: the deferred write waits for the next idle second
DEFER_AT_MOST_S = 10.0  # ...but not longer than this (the server's readers take a marker older than 30 s for a leftover)
IDLE_WRITE_S = 1.0  # the deferred artifacts are written once no request came for this long (incremental.ArtifactWriter.defer)
MSGPACK_EVERY_S = 30.0  # a forked writer re-saves dbt's partial-parse msgpack at most this often (incremental.py)


def send(message: dict[str, Any], plain: bool = False) -> None:
    """`plain`: only JSON's own types (the manifest summary: megabytes on a big project, written by orjson if present)."""
    text = (fastjson.dumps_plain(message) if plain else json.dumps(message, default=str)) + "\n"
    try:
        _CHANNEL.write(text)
        _CHANNEL.flush()
    except (OSError, ValueError):  # the server is gone (killed): nothing can be answered, and raised inside one of
        cancel_and_exit()  # dbt's node threads the error left the node undone and the worker waiting on dbt's queue forever


def cancel_and_exit(*_signal: Any) -> None:
    """End the worker after asking the database to stop what it runs for us (dbt's cancel_open_connections, what dbt
    does on Ctrl-C): a client that is killed leaves a PostgreSQL query running until the server next writes to it.
    The server's SIGTERM lands here; the server kills the worker anyway if this takes too long."""
    canceller = threading.Thread(target=_cancel_open_queries, name="dbt-ae-cancel", daemon=True)
    canceller.start()
    canceller.join(CANCEL_WITHIN_S)
    os._exit(0)


def _cancel_open_queries() -> None:
    try:
        for adapter in adapters_to_cancel():
            with adapter.connection_named("dbt_ae_cancel"):
                adapter.cancel_open_connections()
    except Exception:  # the worker is going anyway: the kill that follows ends the connections
        traceback.print_exc(file=sys.stderr)


def adapters_to_cancel() -> list[Any]:
    """The registered adapters (any, not only the current manifest's: it may be gone after a failed parse while the
    last run's adapter still holds connections) whose queries outlive a killed worker."""
    try:
        from dbt.adapters.factory import FACTORY

        return [adapter for adapter in list(FACTORY.adapters.values()) if cancel_first(adapter)]
    except Exception:
        return []


def cancel_first(adapter: Any) -> bool:
    """Whether stopping this worker should give it time to cancel its queries: only where the database runs them apart
    from the worker (a DuckDB file in the worker's own process stops with it, and is free at once for the next one)."""
    try:
        return adapter is not None and adapter.type() not in IN_PROCESS_ADAPTERS and bool(adapter.is_cancelable())
    except Exception:
        return False


class Worker(PreviewOp, CompileOp):
    def __init__(self, project_dir: Path, profiles_dir: Path) -> None:
        from dbt.cli.main import dbtRunner  # the slow import, paid once

        self.dbt_runner_cls = dbtRunner
        install()  # in-place re-parses (incremental.py)
        self.project_dir = project_dir
        self.profiles_dir = profiles_dir
        self.manifest: Any = None
        self.manifest_key: tuple | None = None
        self.manifest_generation = 0  # bumped whenever self.manifest is replaced or changed in place: caches key on it
        self.graph_generation = 0  # bumped when the manifest's edges may have changed (dbt's linked graph keys on it)
        self.described: tuple[str, dict[str, Any]] | None = None  # the last summary sent, by generation (describe_delta)
        self.graph_edges: str | None = None  # incremental.edges_digest of the manifest the graph generation names
        self.graph_due = False  # an in-place re-parse's edges are compared after the reply, or when the graph is asked for
        self.writer = ArtifactWriter(close_in_child=(_CHANNEL.fileno(), 0))
        self.msgpack_at = float("-inf")  # when a writer last took the msgpack too (at most every MSGPACK_EVERY_S)
        self.request_id: int | None = None
        self.parse_flags: Any = None  # dbt's flags of the last `dbt parse` (incremental.parse_in_place)
        self.adapter_basis: tuple[Any, str | None, str | None] | None = None  # (adapter, target, vars) of the invocation that registered it
        self.events: list[dict[str, Any]] = []
        self.carried: list[dict[str, Any]] = []  # warnings of the start-up parse, handed to the first request
        self.guard = False  # while on, every statement dbt sends must be a single read-only query
        self.refused: list[str] = []
        self.incremental_modes: dict[str, str] = {}  # unique_id -> incremental | full_refresh, this request
        self.cascaded: set[tuple[str, str, str]] = set()  # relations dbt's cache saw dropped by a DROP ... CASCADE, this request
        self.building = False  # a run/build/retry is materializing models (not a compile: NodeStart fires there too)
        from tools.dbt.engine import graph_cache

        # dbt's linked graph is kept while graph_generation stays (dbt links it again on every command otherwise)
        self.graph_cache = graph_cache.install(lambda: (self.manifest, self.settled_graph_generation()))

    def base_flags(self) -> list[str]:
        return [
            "--project-dir", str(self.project_dir),
            "--profiles-dir", str(self.profiles_dir),
        ]

    def global_flags(self) -> list[str]:
        return ["--log-level", "none", "--log-level-file", "info", "--no-use-colors", "--no-version-check", "--quiet"]

    def on_event(self, msg: Any) -> None:
        name = msg.info.name
        level = msg.info.level
        data = msg.data
        if self.guard and name == "SQLQuery":
            self.check_statement(data.sql)
        node_info = getattr(data, "node_info", None)
        if name == "CacheAction" and data.action == "drop_cascade":  # run, build, seed or snapshot --full-refresh
            self.cascaded |= run_facts.cascade_consequences(data)
        if self.building and name == "NodeStart" and node_info is not None and node_info.materialized == "incremental":
            self.note_incremental_mode(node_info.unique_id)
        if name in PROGRESS_EVENTS and node_info is not None and node_info.unique_id:
            self.node_event(name, node_info.unique_id, node_info.node_status)
        elif name == "NoNodesForSelectionCriteria":
            self.events.append({"name": name, "level": level, "msg": msg.info.msg})
        elif level in ("warn", "error") and len(self.events) < 50:
            self.events.append({"name": name, "level": level, "msg": msg.info.msg})
        elif name in ("DebugCmdOut", "DebugCmdResult") and len(self.events) < 200:
            self.events.append({"name": name, "level": level, "msg": msg.info.msg})

    def node_event(self, name: str, unique_id: str, status: str) -> None:
        """Progress of the request (the server counts NodeFinished)."""
        send({"id": self.request_id, "type": "event", "name": name, "unique_id": unique_id, "status": status})

    def adapter_type(self) -> str:
        metadata = getattr(self.manifest, "metadata", None)
        return (getattr(metadata, "adapter_type", None) or "").lower()

    def adapter(self) -> Any:
        from dbt.adapters.factory import FACTORY

        return FACTORY.adapters.get(self.adapter_type())

    def note_incremental_mode(self, unique_id: str) -> None:
        """Called on the node's thread, outside dbt's error handling: nothing may escape."""
        try:
            node = self.manifest.nodes.get(unique_id) if self.manifest is not None else None
            adapter = self.adapter()
            mode = run_facts.incremental_mode(node, adapter) if node is not None and adapter is not None else None
        except Exception:
            return
        if mode:
            self.incremental_modes.setdefault(unique_id, mode)  # a microbatch model starts again per batch: the first says it

    def check_statement(self, sql: str) -> None:
        """Raised from dbt's SQLQuery event, which fires before the statement reaches the database."""
        from tools.dbt.engine.readonly import StatementRefused, statement_problem

        problem = statement_problem(sql, self.adapter_type())
        if problem:
            self.refused.append(f"{problem}: {' '.join(sql.split())[:200]}")
            raise StatementRefused(f"dbt-ae-mcp refused a statement while rendering Jinja: {problem}")

    def _invoke(self, args: list[str], manifest: Any = None, *, basis: tuple[str | None, str | None] | None = None) -> Any:
        """`basis`: the request's (target, vars), given only by the worker's own `dbt parse` and plain `dbt compile`
        (compile_op's, the preview's; no --empty, --full-refresh, --defer, --sample...: dbt reads those from the config
        and the global flags while compiling). The adapter dbt registers is then recorded with it: parse_in_place and
        compile_op reuse its config and dbt's flags as they are; after any other command they run a dbt command first."""
        self.adapter_basis = None
        runner = self.dbt_runner_cls(manifest=manifest, callbacks=[self.on_event])
        result = runner.invoke(self.global_flags() + args)
        if basis is not None:
            from dbt.adapters.factory import FACTORY

            registered = list(FACTORY.adapters.values())
            self.adapter_basis = (registered[0], *basis) if len(registered) == 1 else None
        return result

    def generation(self) -> str:
        """Names the manifest the worker holds now; a restarted worker never repeats one (its pid differs)."""
        return f"{os.getpid()}:{self.manifest_generation}"

    def ensure_manifest(self, target: str | None, vars_json: str | None) -> dict[str, Any] | None:
        """Parse when the project changed; returns an error dict or None. After an edit, the parse starts from the
        manifest in memory and leaves dbt's artifacts to a forked writer (incremental.py): a one-line edit of a
        1,000-model project took 8.8 s through the msgpack and manifest.json round trip."""
        stats: dict[str, os.stat_result] = {}
        key = (project_fingerprint(self.project_dir, self.profiles_dir, stats), target, vars_json)
        if self.manifest is not None and key == self.manifest_key:
            return None
        in_place = self.manifest is not None and self.manifest_key is not None and self.manifest_key[1:] == key[1:]
        args = ["parse", *self.base_flags(), *target_args(target, vars_json)]
        started = time.perf_counter()
        try:
            with parse_io.stats_taken(stats):
                parsed, failure, direct = self._parse(args, key, target, vars_json, in_place)
        except BaseException:  # out of dbt's own error paths (an interrupt, a bug): the manifest may be half changed
            self.manifest, self.manifest_key = None, None
            self.writer.drop_due()
            raise
        self.manifest_generation += 1
        if parsed is None:
            self.manifest = None  # dbt's partial parser may have changed it half way: the next parse starts from disk
            self.manifest_key = None
            self.writer.drop_due()  # nor may it reach disk (a write deferred from the last parse holds the same object)
            return classify_exception(failure, self.events)
        self.manifest = parsed
        self.manifest_key = key
        if not in_place:
            self.note_graph(False)
        else:
            self.graph_due = True  # settle_graph: after the reply (5 ms of a one-line edit's check on 1,000 models)
            msgpack = time.monotonic() - self.msgpack_at > MSGPACK_EVERY_S
            self.writer.defer(self.manifest, self.target_dir(), msgpack=msgpack)
            self.msgpack_at = time.monotonic() if msgpack else self.msgpack_at
        how = "in memory, directly" if direct else "in memory" if in_place else "from disk"
        print(f"[dbt-ae-mcp worker] parsed in {time.perf_counter() - started:.2f}s ({how})", file=sys.stderr)
        return None

    def _parse(self, args: list[str], key: tuple, target: str | None, vars_json: str | None, in_place: bool) -> tuple[Any, Any, bool]:
        """(the manifest or None, dbt's exception, whether dbt's loader was called directly)."""
        basis = self.adapter_basis
        direct = (in_place and self.parse_flags is not None and basis is not None and basis[0] is self.adapter()
                  and basis[1:] == (target, vars_json) and configs_unchanged(changed_paths(self.manifest_key[0], key[0])))
        if direct:
            try:
                parsed, failure = parse_in_place(self.manifest, basis[0].config, self.parse_flags), None
            except Exception as exc:  # dbt's parsing error, as the command would have returned it
                parsed, failure = None, exc
            finally:
                with contextlib.suppress(Exception):
                    basis[0].cleanup_connections()
        else:
            if in_place:
                with handing_over(self.manifest):
                    result = self._invoke([*args, "--no-write-json"], basis=(target, vars_json))
            else:
                self.writer.wait()
                result = self._invoke(args, basis=(target, vars_json))
            parsed, failure = (result.result, None) if result.success and result.result is not None else (None, result.exception)
            if parsed is not None:
                from dbt.flags import get_flags

                self.parse_flags = get_flags()
        return parsed, failure, direct

    def settle_graph(self) -> None:
        if self.graph_due:
            try:
                self.note_graph(True)
            except Exception:  # after the reply, outside handle(): the worker must live on; the graph is linked anew
                traceback.print_exc(file=sys.stderr)
                self.graph_due, self.graph_edges = False, None
                self.graph_generation += 1

    def settled_graph_generation(self) -> int:
        self.settle_graph()
        return self.graph_generation

    def note_graph(self, in_place: bool) -> None:
        """An in-place re-parse that left every edge as it was keeps dbt's linked graph (a one-line edit relinked and
        cycle-checked 3,015 nodes: most of a one-model compile); anything else starts a new graph generation."""
        self.graph_due = False
        edges = edges_digest(self.manifest) if self.manifest is not None else None
        if not in_place or edges is None or edges != self.graph_edges:
            self.graph_generation += 1
        self.graph_edges = edges

    def target_dir(self) -> Path:
        from tools.dbt.engine import incremental

        return Path(incremental.last_target_path) if incremental.last_target_path else self.project_dir / "target"

    def start_due(self) -> None:
        """The deferred artifact write, now; a failure to fork (memory) or to write the marker costs only the write."""
        try:
            self.writer.start_due()
        except Exception:
            traceback.print_exc(file=sys.stderr)
            self.writer.drop_due()
            self.writer.failed = True  # settle_artifacts writes them in process before the next command that needs them

    def settle_artifacts(self) -> None:
        """Before a command that writes target/ itself: the forked writer's files must not land after its own."""
        self.writer.wait()
        if self.writer.failed and self.manifest is not None:
            self.writer.failed = False
            write_artifacts(self.manifest, self.target_dir())

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        self.request_id = request.get("id")
        self.events, self.carried = self.carried, []
        self.taken_ahead, self.compiled_ahead = self.compiled_ahead, None  # for this request only (compile_op.py)
        self.refused = []
        self.incremental_modes = {}
        self.cascaded = set()
        options = request.get("options") or {}
        self.guard = bool(options.get("guard"))
        try:
            reply = self._handle(request, options)
        finally:
            self.guard = False
        if self.refused:
            return {"ok": False, "events": self.events, "error": {
                "code": "not_read_only", "message": f"A statement was refused before it ran: {self.refused[0]}",
                "hint": "Jinja sent by an agent may only run read-only queries; change data through models and dbt_build."}}
        return reply

    def _handle(self, request: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "ping":
            return {"ok": True, "payload": {"pid": os.getpid()}}
        if op != "invoke":
            return {"ok": False, "error": {"code": "internal_error", "message": f"unknown op {op}", "hint": ""}}
        args: list[str] = list(request["args"])
        target = request.get("target")
        vars_json = request.get("vars")
        command = args[0]
        manifest = None
        self.writer.poll()
        if command not in DEFER_WRITE_FOR or self.writer.due_for() > DEFER_AT_MOST_S:
            self.start_due()
        if command == "describe":  # not a dbt command: a summary of the warm manifest (parsed again if stale)
            error = self.ensure_manifest(target, vars_json)
            if error is not None:
                return {"ok": False, "error": error, "events": self.events}
            from tools.dbt.engine.describe import describe, describe_delta

            generation = self.generation()
            if options.get("have") == generation:  # the server holds this one already
                return {"ok": True, "success": True, "payload": {"generation": generation, "unchanged": True}, "events": self.events}
            described = describe(self.manifest)
            sent, self.described = self.described, (generation, described)
            if sent is not None and options.get("have") is not None and options.get("have") == sent[0]:
                payload = {**describe_delta(sent[1], described), "delta_from": sent[0]}  # what the server holds, changed
                ahead = options.get("compile_ahead")
                if isinstance(ahead, dict):  # compiled after the reply (compile_op.compile_ahead)
                    changed = models_to_compile_ahead(sent[1]["lineage"].get("nodes", {}), payload["lineage"]["nodes"]["set"],
                                                      described.get("project_name"))
                    self.ahead_wanted = (changed, target, vars_json, bool(ahead.get("guard")), ahead.get("dialect")) if changed else None
            else:
                payload = described
            return {"ok": True, "success": True, "payload": {**payload, "generation": generation}, "events": self.events}
        if command == "preview":
            return self.preview(target, vars_json, options)
        if command == "compile_nodes":  # not a dbt command: dbt's Compiler on the warm manifest (compile_op.py)
            return self.compile_nodes(target, vars_json, options)
        if command in MANIFEST_COMMANDS and request.get("reuse_manifest", True):
            error = self.ensure_manifest(target, vars_json)
            if error is not None:
                return {"ok": False, "error": error, "events": self.events}
            manifest = self.manifest
            if command in ("compile", "show"):
                drop_inline_nodes(manifest)
        if command not in FAST_FLAGS:
            self.settle_artifacts()
        full_args = args + FAST_FLAGS.get(command, []) + self.base_flags() + target_args(target, vars_json)
        started = time.perf_counter()
        fingerprint = project_fingerprint(self.project_dir, self.profiles_dir) if command == "parse" else None
        if self.adapter_type() == "duckdb":
            run_facts.report_duckdb_rows()
        self.building = command in BUILD_COMMANDS
        try:
            result = self._invoke(full_args, manifest=manifest)
        finally:
            self.building = False
        elapsed = time.perf_counter() - started
        if command == "parse" and result.success:
            self.manifest = result.result
            self.manifest_key = (fingerprint, target, vars_json)  # taken before parsing: a later edit re-parses
            self.manifest_generation += 1
            self.parse_flags = None  # its flags are the agent's (--no-partial-parse...): the next re-parse is a command
            self.note_graph(False)
        if command in ("deps", "clean"):
            self.manifest = None
            self.manifest_generation += 1
            self.note_graph(False)
        if result.result is None and result.exception is not None:
            return {"ok": False, "error": classify_exception(result.exception, self.events), "events": self.events}
        payload = serialize_result(command, result.result, self.project_dir)
        payload["elapsed_s"] = round(elapsed, 4)
        self.add_run_facts(command, payload)
        if result.exception is not None:
            payload["exception"] = classify_exception(result.exception, self.events)
        return {"ok": True, "success": bool(result.success), "payload": payload, "events": self.events}


    def add_run_facts(self, command: str, payload: dict[str, Any]) -> None:
        nodes = payload.get("nodes") or []
        for node in nodes:
            if node.get("unique_id") in self.incremental_modes:
                node["incremental"] = self.incremental_modes[node["unique_id"]]
        adapter = self.adapter()
        if self.cascaded and adapter is not None and self.manifest is not None:
            try:
                warning = run_facts.dropped_dependents(self.cascaded, adapter, self.manifest)
            except Exception:  # a courtesy: the run's own result must come back
                traceback.print_exc(file=sys.stderr)
                warning = None
            if warning:
                self.events.append({"name": "DependentsDropped", "level": "warn", "msg": warning})
        if command in TEST_COMMANDS and adapter is not None and self.manifest is not None:
            run_facts.failing_rows(nodes, self.manifest, self.adapter_type(), adapter.config.credentials, self.project_dir)


def main() -> None:
    project_dir = Path(sys.argv[1]).resolve()
    profiles_dir = Path(sys.argv[2]).resolve()
    default_target = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] else None
    started = time.perf_counter()
    worker = Worker(project_dir, profiles_dir)
    clear_leftovers(project_dir / "target")
    warm_error = None
    if (project_dir / "dbt_project.yml").exists():
        try:
            warm_error = worker.ensure_manifest(default_target, None)
            worker.carried = [e for e in worker.events if e.get("level") == "warn"]
        except Exception as exc:  # a broken project must not kill the worker: calls report it
            warm_error = {"code": "dbt_error", "message": str(exc), "hint": ""}
    signal.signal(signal.SIGTERM, cancel_and_exit)
    heap = HeapKeeper()
    heap.settle(id(worker.manifest))
    send({"type": "ready", "cancel_first": bool(adapters_to_cancel()), "pid": os.getpid(), "startup_s": round(time.perf_counter() - started, 3), "warm_error": warm_error})
    lines = LineReader(sys.stdin.fileno())
    chores_put_off = False
    while True:
        line = lines.readline(IDLE_WRITE_S if worker.writer.due is not None else None)
        if line is None:  # idle: the deferred artifacts now (incremental.ArtifactWriter.defer)
            worker.start_due()
            continue
        if not line:
            break
        line = line.strip()
        if not line:
            continue
        request = json.loads(line)
        try:
            reply = worker.handle(request)
        except Exception as exc:
            reply = {
                "ok": False,
                "error": {
                    "code": "internal_error",
                    "message": f"{type(exc).__name__}: {exc}",
                    "hint": "This is a bug in dbt-ae-mcp or dbt; the traceback is in the server log.",
                },
            }
            traceback.print_exc(file=sys.stderr)
        reply.update({"id": request.get("id"), "type": "result", "generation": worker.generation(),
                      "cancel_first": bool(adapters_to_cancel())})
        send(reply, plain=request.get("args", [None])[:1] == ["describe"])
        del reply
        worker.compile_ahead()
        if not chores_put_off and lines.waiting():  # the next request first, once (a check's compile_nodes): the
            chores_put_off = True                   # chores below follow its reply
            continue
        chores_put_off = False
        worker.settle_graph()
        # after the reply: a full collection delays no answer. An in-place re-parse keeps the manifest object; a new one
        # (a parse from disk, deps, clean, a failed parse) is a new epoch: the old one may have left cycles (an id reused
        # by chance waits for the periodic full collection).
        heap.settle(id(worker.manifest))
    # the server is gone: the next worker parses from disk and writes its own (a child writing on after this worker
    # exited could land its files after that worker's): no due write, and a running one is stopped
    worker.writer.drop_due()
    worker.writer.stop()


if __name__ == "__main__":
    main()
