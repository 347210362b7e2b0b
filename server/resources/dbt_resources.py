"""Readers of the dbt resources: the project summary, one node, one stored call result.

The graph is lineage's (tools/lineage/column_service.py: target/manifest.json, reloaded when the file changes); a node
is read after a `refresh` of the warm worker, which parses only when a project file changed. Its columns come from the
column model (catalog, compiled SQL with stars expanded, the database), falling back to the manifest's declared columns
when the model cannot tell. A name is only ever looked up in the manifest, never joined to a path, and a run id must
match RunStore's id pattern: no crafted name reaches the file system.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from server.context import AppContext
from server.manifest import read_manifest
from server.resources import not_found

log = logging.getLogger("dbt_ae_mcp.resources")
CONFIG_KEYS = ("materialized", "enabled", "schema", "database", "alias", "tags", "unique_key", "incremental_strategy",
               "on_schema_change", "full_refresh", "contract", "access", "grants", "persist_docs", "pre-hook", "post-hook",
               "snapshot_meta_column_names", "strategy", "check_cols", "updated_at", "severity", "meta", "group")


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, default=str)


class DbtResources:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.root = ctx.engine.project_dir.resolve()

    # -- shared ------------------------------------------------------------------------------------------------
    def _columns(self) -> Any:
        from tools.lineage.column_service import column_service

        return column_service(self.ctx)

    async def _graph(self, fresh: bool) -> Any:
        from server.errors import ToolFailure

        try:
            return await self._columns().graph(fresh)
        except ToolFailure as failure:
            raise not_found(failure.code, failure.message, failure.hint) from None

    def _raw_manifest(self) -> dict[str, Any]:
        """target/manifest.json as dbt wrote it (raw_code, config, descriptions), re-read when the file changes."""
        manifest = read_manifest(self.root)
        if manifest is None:
            raise FileNotFoundError(self.root / "target" / "manifest.json")
        return manifest

    def _runs(self) -> Any:
        from tools.dbt.runs import RunStore

        return RunStore(self.ctx.settings.data_dir, self.ctx.engine.project_dir)

    # -- dbt://project -------------------------------------------------------------------------------------------
    async def project(self) -> str:
        from tools.dbt.history import RunHistory

        graph = await self._graph(fresh=False)
        metadata = self._raw_manifest().get("metadata") or {}
        counts: dict[str, int] = {}
        for node in graph.nodes.values():
            counts[str(node["resource_type"])] = counts.get(str(node["resource_type"]), 0) + 1
        out: dict[str, Any] = {"project": metadata.get("project_name"), "adapter": metadata.get("adapter_type"),
                               "dbt_version": metadata.get("dbt_version"), "project_dir": str(self.root),
                               "manifest_generated_at": graph.generated_at, "counts": dict(sorted(counts.items()))}
        history = RunHistory(self.ctx.settings.data_dir, self.ctx.engine.project_dir).load()
        if history:
            last = history[-1]
            statuses: dict[str, int] = {}
            for node in last.get("nodes", []):
                statuses[node["status"]] = statuses.get(node["status"], 0) + 1
            out["last_run"] = {"command": last.get("command"), "success": last.get("success"),
                               "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last.get("at", 0))),
                               "elapsed_s": last.get("elapsed_s"), "statuses": statuses}
        latest = self._runs().latest()
        if latest:
            out["latest_result"] = f"dbt://run/{latest}"
        return _dump(out)

    # -- dbt://node/{name} ---------------------------------------------------------------------------------------
    async def node(self, name: str) -> str:
        graph = await self._graph(fresh=True)
        project = next((n.get("package") for n in graph.nodes.values() if n["resource_type"] == "model"), None)
        uid = graph.resolve(name, project)
        if uid is None:
            from server.registration import closest

            guess = closest(name, [str(n) for n in graph.by_name])
            raise not_found("model_not_found", f"No node named {name[:80]!r} in the manifest"
                            + (f"; did you mean {guess!r}?" if guess else "."),
                            "Read dbt://project for what exists, or call dbt_list; give a unique_id or a name "
                            "(sources as source_name.table).", **({"did_you_mean": guess} if guess else {}))
        raw = self._find_raw(uid)
        node = graph.nodes[uid]
        out: dict[str, Any] = {"unique_id": uid, "name": node["name"], "resource_type": node["resource_type"],
                               "package": node.get("package"), "path": node.get("path"),
                               "relation_name": node.get("relation_name"), "description": raw.get("description") or None}
        config = raw.get("config") or {}
        out["config"] = {k: config[k] for k in CONFIG_KEYS if config.get(k) not in (None, [], {}, "")}
        if raw.get("raw_code"):
            out["raw_sql"] = raw["raw_code"]
        out.update(await self._node_columns(graph, uid, raw))
        tests = []
        for child in graph.children.get(uid, []):
            test = graph.nodes.get(child)
            if test and test["resource_type"] in ("test", "unit_test"):
                meta = self._find_raw(child)
                tests.append({k: v for k, v in {
                    "unique_id": child, "name": test["name"], "type": test["resource_type"],
                    "test": (meta.get("test_metadata") or {}).get("name"), "column": meta.get("column_name")}.items() if v})
        out["tests"] = tests
        out["parents"] = list(graph.parents.get(uid, []))
        out["children"] = [c for c in graph.children.get(uid, []) if graph.nodes.get(c, {}).get("resource_type") not in ("test", "unit_test")]
        return _dump({k: v for k, v in out.items() if v is not None})

    def _find_raw(self, uid: str) -> dict[str, Any]:
        manifest = self._raw_manifest()
        for section in ("nodes", "sources", "exposures", "metrics", "semantic_models", "unit_tests"):
            found = (manifest.get(section) or {}).get(uid)
            if found is not None:
                return found
        return {}

    async def _node_columns(self, graph: Any, uid: str, raw: dict[str, Any]) -> dict[str, Any]:
        """Columns with types from the column model; compiled SQL from the worker's compile (or the manifest)."""
        described = {name: (c or {}).get("description") or None for name, c in (raw.get("columns") or {}).items()}
        declared = [(name, (c or {}).get("data_type")) for name, c in (raw.get("columns") or {}).items()]
        out: dict[str, Any] = {}
        compiled = raw.get("compiled_code")
        names: list[tuple[str, str | None]] = declared
        origin = "declared in YAML"
        unresolved = None
        if graph.nodes[uid]["resource_type"] in ("model", "seed", "snapshot", "source"):
            try:
                view = await self._columns().view(graph, [uid])
                columns = view.columns.get(uid)
                compiled = view.facts[uid].compiled_sql or compiled
                if view.facts[uid].compile_error:
                    out["compile_error"] = view.facts[uid].compile_error
                if columns is not None and columns.names:
                    names = [(c, columns.types.get(c)) for c in columns.names]
                    origin, unresolved = columns.origin, columns.unresolved
            except Exception as exc:  # noqa: BLE001 - the manifest's declared columns still answer
                log.info("dbt://node/%s: column model failed: %s", uid, exc)
                unresolved = f"column model unavailable: {exc}"[:300]
        if compiled:
            out["compiled_sql"] = compiled
        out["columns"] = [{k: v for k, v in {"name": n, "type": t, "description": described.get(n)}.items() if v} for n, t in names]
        out["columns_from"] = origin
        if unresolved:
            out["columns_unresolved"] = unresolved
        return out

    # -- dbt://run/{id} ------------------------------------------------------------------------------------------
    def run(self, run_id: str) -> str:
        runs = self._runs()
        wanted = runs.latest() if run_id == "latest" else run_id
        text = runs.load(wanted) if wanted else None
        if text is None:
            if run_id == "latest":
                raise not_found("run_not_found", "No dbt call has been recorded yet.", "Call dbt_build (or another dbt command) first.")
            raise not_found("run_not_found", f"No stored dbt result {run_id[:40]!r}.",
                            f"Read dbt://run/latest; the last {runs.keep} results are kept, by the run_id a dbt result gives.")
        return text
