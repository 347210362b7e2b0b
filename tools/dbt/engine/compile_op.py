"""The worker's `compile_nodes` op: the compiled SQL of some nodes, by dbt's own Compiler on the warm manifest and
the adapter the last dbt invocation registered, without a dbt command around it.

`dbt compile --select` on the warm manifest still sets up a command each time: the CLI and runtime config, a new
adapter (whose behaviour flags walk the stack), the plugin scan and the node selection over the whole graph. On a
1,000-model project that was 0.2 s to compile one edited model for `project_check`; the Compiler alone takes
milliseconds. Each node gets its own status, so one broken model no longer fails the others.

Used only when the registered adapter is the one a plain `dbt parse`/`dbt compile` made for the same target and vars
(worker._invoke's `basis`; else the op runs `dbt compile` as before). The statement guard still applies: dbt's SQLQuery events reach the worker's callback.
"""

from __future__ import annotations

import contextlib
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from tools.dbt.engine.invocation import FAST_FLAGS, target_args
from tools.dbt.engine.serialize import classify_exception, serialize_result


@contextlib.contextmanager
def flags_of_compile() -> Iterator[None]:
    """`flags.WHICH` as during `dbt compile` (project Jinja may branch on it); dbt's Flags is a frozen dataclass."""
    from dbt.flags import get_flags

    flags = get_flags()
    before = getattr(flags, "WHICH", None)
    object.__setattr__(flags, "WHICH", "compile")
    try:
        yield
    finally:
        object.__setattr__(flags, "WHICH", before)


AHEAD_AT_MOST = 16  # models compiled ahead after one describe (a one-line edit re-parses one)


@dataclass
class CompiledAhead:
    """What `compile_ahead` compiled after a describe's reply, for the request right after it only."""

    generation: str
    target: str | None
    vars_json: str | None
    guard: bool
    adapter: Any
    nodes: dict[str, dict[str, Any]]  # unique_id -> its entry of compile_nodes' reply
    events: list[dict[str, Any]]


def models_to_compile_ahead(before: dict[str, Any], changed: dict[str, Any], project: str | None) -> list[str]:
    """The models of `project` among a describe delta's changed graph entries (`changed`, lineage nodes) whose file
    checksum differs from `before` (the last summary's): what a check of the whole project compiles again next."""
    out = []
    for uid, entry in changed.items():
        if entry.get("resource_type") != "model" or entry.get("package_name") != project:
            continue
        old = before.get(uid)
        if old is None or old.get("checksum") != entry.get("checksum"):
            out.append(uid)
    return out[:AHEAD_AT_MOST]


class CompileOp:
    """Mixed into the Worker: uses its manifest, its dbt runner, its statement guard and `adapter_basis`."""

    compiled_ahead: CompiledAhead | None = None  # held until the next request
    taken_ahead: CompiledAhead | None = None  # the one held when this request came (handle() moves it here)
    ahead_wanted: tuple[list[str], str | None, str | None, bool, Any] | None = None  # set by a describe that asked for it

    def compile_nodes(self, target: str | None, vars_json: str | None, options: dict[str, Any]) -> dict[str, Any]:
        """`generation`: the manifest the caller's graph was made from; while the worker holds it (same target and
        vars), the nodes are compiled from it without looking for newer edits first (the caller's compile keys are
        that manifest's; a later edit is the next call's). Nodes compiled ahead for that manifest (compile_ahead,
        same target, vars, guard and adapter) are taken as they are."""
        held = (self.manifest is not None and options.get("generation") == self.generation()
                and self.manifest_key is not None and self.manifest_key[1:] == (target, vars_json))
        error = None if held else self.ensure_manifest(target, vars_json)
        if error is not None:
            return {"ok": False, "error": error, "events": self.events}
        wanted = [str(u) for u in options.get("unique_ids") or []]
        adapter = self._plain_adapter(target, vars_json)
        if adapter is None:
            return self._compile_by_command(wanted, target, vars_json)
        started = time.perf_counter()
        ahead = self.taken_ahead
        done: dict[str, dict[str, Any]] = {}
        if (held and ahead is not None and ahead.generation == self.generation() and ahead.adapter is adapter
                and (ahead.target, ahead.vars_json, ahead.guard) == (target, vars_json, self.guard)):
            done = ahead.nodes
            self.events.extend(ahead.events)
            print(f"[dbt-ae-mcp worker] took {len(done.keys() & set(wanted))} of {len(wanted)} compiled ahead", file=sys.stderr)
        nodes = []
        with self._compiling(adapter) as compile_one:
            for uid in wanted:
                node = done.get(uid) or compile_one(uid)
                if node is None:  # a statement was refused: handle() answers with that
                    break
                nodes.append(node)
                self.node_event("NodeFinished", uid, node["status"])
        payload = {"command": "compile", "nodes": nodes, "elapsed_s": round(time.perf_counter() - started, 4)}
        return {"ok": True, "success": all(n["status"] == "success" for n in nodes), "payload": payload, "events": self.events}

    def compile_ahead(self) -> None:
        """After the reply to a describe that asked for it (`compile_ahead` option): compile the models that describe
        found edited, while the server reads the summary (on a 1,000-model project, its next call is for them some
        15 ms later and a model's compile takes 7), and, given the server's SQL dialect, whether stars reach relations
        in their SQL (the column model's next question: 8 ms a model, on the core the server does not use meanwhile).
        Only on the adapter a plain parse registered and under the statement guard; what a refused statement or an
        error stopped is not kept."""
        wanted, self.ahead_wanted = self.ahead_wanted, None
        if not wanted or self.manifest is None or self.manifest_key is None:
            return
        uids, target, vars_json, guard, dialect = wanted
        adapter = self._plain_adapter(target, vars_json)
        if not guard or adapter is None or self.manifest_key[1:] != (target, vars_json):
            return
        events, request_id = self.events, self.request_id
        self.events, self.refused, self.guard, self.request_id = [], [], guard, None
        try:
            nodes: dict[str, dict[str, Any]] = {}
            with self._compiling(adapter) as compile_one:
                for uid in uids:
                    node = compile_one(uid)
                    if node is None:
                        print(f"[dbt-ae-mcp worker] compiling ahead stopped at {uid}: {self.refused[0][:200]}", file=sys.stderr)
                        return
                    nodes[uid] = node
            if isinstance(dialect, str):  # the server's next question about them, on this idle core (column_model)
                from tools.lineage.column_model import stars_reaching_relations

                for node in nodes.values():
                    if node.get("compiled_sql"):
                        node["stars_reaching_relations"] = {dialect: stars_reaching_relations(node["compiled_sql"], dialect)}
            self.compiled_ahead = CompiledAhead(self.generation(), target, vars_json, guard, adapter, nodes, self.events)
            print(f"[dbt-ae-mcp worker] compiled {len(nodes)} ahead", file=sys.stderr)
        except Exception:  # ahead of a request: the request compiles them itself
            traceback.print_exc(file=sys.stderr)
        finally:
            self.events, self.refused, self.guard, self.request_id = events, [], False, request_id

    def _plain_adapter(self, target: str | None, vars_json: str | None) -> Any:
        """The registered adapter when a plain `dbt parse`/`dbt compile` for this target and vars registered it (its
        config and dbt's flags are then the ones to compile with), else None."""
        adapter, basis = self.adapter(), self.adapter_basis
        if adapter is None or basis is None or basis[0] is not adapter or basis[1:] != (target, vars_json):
            return None
        return adapter

    @contextlib.contextmanager
    def _compiling(self, adapter: Any) -> Iterator[Callable[[str], dict[str, Any] | None]]:
        """compile_one(unique_id): its entry of the reply, or None once a statement was refused."""
        from dbt.compilation import Compiler
        from dbt.context.providers import generate_runtime_macro_context

        adapter.set_macro_context_generator(generate_runtime_macro_context)
        adapter.set_macro_resolver(self.manifest)
        compiler = Compiler(adapter.config)

        def compile_one(uid: str) -> dict[str, Any] | None:
            node = self.manifest.nodes.get(uid)
            if node is None:
                return {"unique_id": uid, "status": "error", "message": f"{uid} is not in the manifest"}
            try:
                with adapter.connection_named(uid, node):
                    compiled = compiler.compile_node(node, self.manifest, {})
            except Exception as exc:  # dbt's error for this node (Jinja, a ref that does not resolve, a refused statement)
                if self.refused:
                    return None
                return {"unique_id": uid, "status": "error", "message": str(exc) or type(exc).__name__}
            if self.refused:  # refused, and the refusal caught on the way (adapter code may catch dbt's errors)
                return None
            return {"unique_id": uid, "status": "success", "compiled_sql": compiled.compiled_code}

        try:
            with flags_of_compile():
                yield compile_one
        finally:
            adapter.cleanup_connections()  # as after a dbt command (dbt's adapter_management)

    def _compile_by_command(self, wanted: list[str], target: str | None, vars_json: str | None) -> dict[str, Any]:
        """`dbt compile` of the nodes' names (what the op did before): it also registers the adapter the next call uses."""
        names = sorted({self.manifest.nodes[u].name for u in wanted if u in self.manifest.nodes})
        if not names:
            return {"ok": True, "success": True, "payload": {"command": "compile", "nodes": []}, "events": self.events}
        args = ["compile", "--select", *names, "--indirect-selection", "empty", *FAST_FLAGS["compile"], *self.base_flags(),
                *target_args(target, vars_json)]
        result = self._invoke(args, manifest=self.manifest, basis=(target, vars_json))
        if result.result is None and result.exception is not None:
            return {"ok": False, "error": classify_exception(result.exception, self.events), "events": self.events}
        return {"ok": True, "success": bool(result.success), "payload": serialize_result("compile", result.result, self.project_dir),
                "events": self.events}
