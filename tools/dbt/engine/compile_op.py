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
import time
from collections.abc import Iterator
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


class CompileOp:
    """Mixed into the Worker: uses its manifest, its dbt runner, its statement guard and `adapter_basis`."""

    def compile_nodes(self, target: str | None, vars_json: str | None, options: dict[str, Any]) -> dict[str, Any]:
        """`generation`: the manifest the caller's graph was made from; while the worker holds it (same target and
        vars), the nodes are compiled from it without looking for newer edits first (the caller's compile keys are
        that manifest's; a later edit is the next call's)."""
        held = (self.manifest is not None and options.get("generation") == self.generation()
                and self.manifest_key is not None and self.manifest_key[1:] == (target, vars_json))
        error = None if held else self.ensure_manifest(target, vars_json)
        if error is not None:
            return {"ok": False, "error": error, "events": self.events}
        wanted = [str(u) for u in options.get("unique_ids") or []]
        adapter = self.adapter()
        basis = self.adapter_basis
        if adapter is None or basis is None or basis[0] is not adapter or basis[1:] != (target, vars_json):
            return self._compile_by_command(wanted, target, vars_json)
        started = time.perf_counter()
        from dbt.compilation import Compiler
        from dbt.context.providers import generate_runtime_macro_context

        adapter.set_macro_context_generator(generate_runtime_macro_context)
        adapter.set_macro_resolver(self.manifest)
        compiler = Compiler(adapter.config)
        nodes = []
        with flags_of_compile():
            for uid in wanted:
                node = self.manifest.nodes.get(uid)
                if node is None:
                    nodes.append({"unique_id": uid, "status": "error", "message": f"{uid} is not in the manifest"})
                    continue
                try:
                    with adapter.connection_named(uid, node):
                        compiled = compiler.compile_node(node, self.manifest, {})
                    nodes.append({"unique_id": uid, "status": "success", "compiled_sql": compiled.compiled_code})
                except Exception as exc:  # dbt's error for this node (Jinja, a ref that does not resolve, a refused statement)
                    if self.refused:
                        break
                    nodes.append({"unique_id": uid, "status": "error", "message": str(exc) or type(exc).__name__})
                self.node_event("NodeFinished", uid, nodes[-1]["status"])
        adapter.cleanup_connections()  # as after a dbt command (dbt's adapter_management)
        payload = {"command": "compile", "nodes": nodes, "elapsed_s": round(time.perf_counter() - started, 4)}
        return {"ok": True, "success": all(n["status"] == "success" for n in nodes), "payload": payload, "events": self.events}

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
