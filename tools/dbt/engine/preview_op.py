"""The worker's `preview` op (dbt_show): compile with the statement guard on, check the query, then run it on a
connection the database keeps read-only (readonly.py)."""

from __future__ import annotations

import time
from typing import Any

from tools.dbt.engine.invocation import FAST_FLAGS, drop_inline_nodes, target_args
from tools.dbt.engine.serialize import HINTS, classify_exception, serialize_result, warehouse_problem


class PreviewOp:
    """Mixed into the Worker: uses its manifest, its dbt runner and its statement guard."""

    def _refused(self, code: str, message: str, hint: str, **details: Any) -> dict[str, Any]:
        return {"ok": False, "events": self.events, "error": {"code": code, "message": message, "hint": hint, **details}}

    def preview(self, target: str | None, vars_json: str | None, options: dict[str, Any]) -> dict[str, Any]:
        """Compile (with the statement guard on), check, then run on a connection the database keeps read-only."""
        from tools.dbt.engine import readonly

        error = self.ensure_manifest(target, vars_json)
        if error is not None:
            return {"ok": False, "error": error, "events": self.events}
        drop_inline_nodes(self.manifest)
        if options.get("sql") is not None:
            args = ["compile", f"--inline={options['sql']}"]
        else:
            args = ["compile", "--select", str(options.get("model")), "--indirect-selection", "empty"]
        args += FAST_FLAGS["compile"] + self.base_flags() + target_args(target, vars_json)
        started = time.perf_counter()
        result = self._invoke(args, manifest=self.manifest, basis=(target, vars_json))  # a plain compile (worker._invoke)
        if self.refused:
            return {"ok": False, "events": self.events}
        if result.result is None and result.exception is not None:
            return {"ok": False, "error": classify_exception(result.exception, self.events), "events": self.events}
        payload = serialize_result("compile", result.result, self.project_dir)
        nodes = payload.get("nodes") or []
        if not result.success or not nodes or nodes[0].get("status") not in ("success", None):
            payload["elapsed_s"] = round(time.perf_counter() - started, 4)
            return {"ok": True, "success": False, "payload": payload, "events": self.events}
        sql = nodes[0].get("compiled_sql") or ""
        adapter_type = self.adapter_type()
        if adapter_type != "duckdb" and adapter_type not in readonly.READ_ONLY_TRANSACTION_ADAPTERS:
            return self._refused("preview_unavailable", "Previews run only where the server can make the database enforce read-only "
                                 f"(DuckDB, PostgreSQL); the {adapter_type} adapter is not supported yet.",
                                 "Use dbt_build and the warehouse's own tools to inspect data.")
        relations = None if options.get("any_relation") else readonly.project_relations(self.manifest)
        problem = readonly.preview_problem(sql, adapter_type, relations)
        if problem:
            code, reason = problem
            hint = {"relation_not_allowed": "Read models, seeds, snapshots and sources through ref()/source() (dbt_list shows them).",
                    "invalid_sql": "Rewrite the query in plain SQL the server can parse (one select/with query)."}.get(
                code, "Pass one select/with query over ref()/source() relations; change data through models and dbt_build.")
            return self._refused(code, f"The preview query was refused: {reason}.", hint, compiled_sql=sql[:2000])
        from dbt.adapters.factory import FACTORY

        adapter = FACTORY.adapters.get(adapter_type)
        if adapter is None:
            return self._refused("internal_error", "the dbt adapter is not loaded", "Call again.")
        if adapter_type in readonly.READ_ONLY_TRANSACTION_ADAPTERS:
            return self._preview_in_transaction(adapter, sql, int(options.get("limit") or 10), nodes[0], payload, started)
        try:
            con = readonly.open_duckdb_read_only(adapter.config.credentials, self.project_dir)
        except readonly.PreviewRefused as exc:
            return self._refused("preview_unavailable", f"Cannot preview: {exc}.",
                                 "Point the target at a DuckDB file (previews open it read-only), or use dbt_build and inspect tables.")
        except Exception as exc:  # the database would not open read-only (a missing attachment, a handle held elsewhere)
            first = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
            problem = warehouse_problem(first)
            if problem is not None:  # another process holds the file (warehouse_locked), or its folder is unusable
                return self._refused(problem[0], f"Cannot open the target's database read-only: {first}", problem[1])
            return self._refused("preview_unavailable", f"Cannot open the target's database read-only: {first}",
                                 "Check the target's path and attach entries with dbt_debug, then call again.")
        try:
            table = readonly.run_duckdb_preview(con, sql, int(options.get("limit") or 10))
        except readonly.PreviewRefused as exc:
            return self._refused("not_read_only", f"The preview query was refused: {exc}.", "Pass exactly one select/with query.")
        except Exception as exc:  # the database's own refusal or error, e.g. a permission or binder error
            message = str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__
            if type(exc).__name__ == "PermissionException" or "read-only" in message or "lock_configuration" in message:
                return self._refused("not_read_only", f"The database refused the preview: {message}",
                                     "Previews read project relations only; change data through models and dbt_build.")
            return {"ok": True, "success": False, "events": self.events, "payload": {
                "nodes": [{**nodes[0], "status": "error", "message": message}],
                "elapsed_s": round(time.perf_counter() - started, 4)}}
        finally:
            con.close()
        payload["table"] = table
        payload["elapsed_s"] = round(time.perf_counter() - started, 4)
        return {"ok": True, "success": True, "payload": payload, "events": self.events}

    def _preview_in_transaction(self, adapter: Any, sql: str, limit: int, node: dict[str, Any], payload: dict[str, Any],
                                started: float) -> dict[str, Any]:
        """PostgreSQL: the query runs in a read-only transaction that is rolled back (readonly.py)."""
        from tools.dbt.engine import readonly

        try:
            table = readonly.run_in_read_only_transaction(adapter, sql, limit)
        except readonly.PreviewRefused as exc:
            return self._refused("not_read_only", f"The preview query was refused: {exc}.", "Pass exactly one select/with query.")
        except Exception as exc:  # the database's own refusal or error
            if "FailedToConnectError" in {cls.__name__ for cls in type(exc).__mro__}:  # dbt's "Database Error" over the reason
                return self._refused("connection_error", f"Cannot connect to the warehouse: {' '.join(str(exc).split())[:500]}",
                                     HINTS["connection_error"])
            message = str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__
            if "read-only transaction" in message:
                return self._refused("not_read_only", f"The database refused the preview: {message}",
                                     "Previews read project relations only; change data through models and dbt_build.")
            return {"ok": True, "success": False, "events": self.events, "payload": {
                "nodes": [{**node, "status": "error", "message": message}], "elapsed_s": round(time.perf_counter() - started, 4)}}
        payload["table"] = table
        payload["elapsed_s"] = round(time.perf_counter() - started, 4)
        return {"ok": True, "success": True, "payload": payload, "events": self.events}
