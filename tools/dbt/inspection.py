"""dbt commands that read (compile, show, list, debug, docs, parse)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


from server.errors import ToolFailure
from server.registration import ProgressReporter
from tools.dbt.inputs import (
    CompileInput,
    DebugInput,
    DocsInput,
    ListInput,
    ParseInput,
    ShowInput,
)
from tools.dbt.results import DbtCommandResult, DebugResult, ListItem, ListResult, ShowResult
from tools.dbt.engine.serialize import redact



from tools.dbt.calls import DbtCalls


class InspectionCommands(DbtCalls):
    async def compile(self, inp: CompileInput, progress: ProgressReporter) -> DbtCommandResult:
        if inp.sql is not None:
            if inp.has_selection:
                raise ToolFailure("invalid_input", "Give either sql or a selection, not both.", "Drop select to compile inline SQL.")
            if not inp.sql.strip():
                raise ToolFailure("invalid_input", "sql is empty.", "Pass the SQL to compile, or a select.")
            self._check_agent_jinja(inp.sql, "inline SQL")
            reply = await self._invoke(["compile", f"--inline={inp.sql}"], inp, progress, guard=True)
        else:
            indirect = [] if inp.include_tests else ["--indirect-selection", "empty"]
            reply = await self._invoke(["compile", *inp.execution_args(), *indirect], inp, progress, guard=True)
            self._check_selection(reply, inp)
        return self._result("compile", reply, keep_sql=inp.include_sql)

    async def show(self, inp: ShowInput, progress: ProgressReporter) -> ShowResult:
        if (inp.sql is None) == (inp.model is None):
            raise ToolFailure("invalid_input", "Give exactly one of sql or model.", "Pass sql='select …' or model='dim_customers'.")
        if inp.sql is not None:
            if not inp.sql.strip():
                raise ToolFailure("invalid_input", "sql is empty.", "Pass a select query, or model='name'.")
            self._check_agent_jinja(inp.sql, "preview query")
        options = {"sql": inp.sql, "model": inp.model, "limit": inp.limit, "any_relation": self.ctx.settings.preview_any_relation}
        reply = await self._invoke(["preview"], inp, progress, guard=True, options=options)
        nodes = reply.payload.get("nodes", [])
        if inp.model is not None and not nodes:
            raise ToolFailure("model_not_found", f"No node named {inp.model!r}.", "Call dbt_list with resource_types=['model'] to see names.")
        failed = [n for n in nodes if n.get("status") in ("error", "fail", "runtime error")]
        if failed or "table" not in reply.payload:
            message = failed[0].get("message") if failed else "dbt show returned no rows table"
            raise ToolFailure("dbt_database_error", redact(message or "query failed"), "Fix the query; dbt_compile shows the SQL dbt ran.")
        table = reply.payload["table"]
        return ShowResult(
            columns=table["columns"], column_types=table["column_types"], rows=table["rows"], row_count=len(table["rows"]),
            limit=inp.limit, compiled_sql=nodes[0].get("compiled_sql") if nodes else None, elapsed_s=float(reply.payload.get("elapsed_s", 0.0)),
        )

    async def list(self, inp: ListInput, progress: ProgressReporter) -> ListResult:
        try:
            offset = int(inp.cursor) if inp.cursor else 0
        except ValueError:
            offset = -1
        if offset < 0:
            raise ToolFailure("invalid_input", f"cursor {inp.cursor!r} is not one this tool gave out.", "Call without cursor to start again.")
        args = ["list", *inp.selection_args(), "--output", "json",
                "--output-keys", "unique_id", "name", "resource_type", "package_name", "original_file_path", "config", "tags"]
        for resource_type in inp.resource_types or []:
            args += ["--resource-type", resource_type]
        reply = await self._invoke(args, inp, progress, guard=True)
        self._check_selection(reply, inp)
        raw_items: list[dict[str, Any]] = reply.payload.get("items", [])
        items = [
            ListItem(
                unique_id=item.get("unique_id"), name=item.get("name"), resource_type=item.get("resource_type"),
                package_name=item.get("package_name"), original_file_path=item.get("original_file_path"),
                materialized=(item.get("config") or {}).get("materialized"), tags=item.get("tags") or [],
            )
            for item in raw_items
        ]
        page = items[offset: offset + inp.limit]
        next_offset = offset + len(page)
        return ListResult(items=page, total=len(items), offset=offset, next_cursor=str(next_offset) if next_offset < len(items) else None)

    async def debug(self, inp: DebugInput, progress: ProgressReporter) -> DebugResult:
        reply = await self._invoke(["debug"], inp, progress, reuse_manifest=False)
        output = [redact(e["msg"]) for e in reply.events if e.get("name") in ("DebugCmdOut", "DebugCmdResult") or e.get("level") == "error"]
        return DebugResult(
            connection_ok=bool(reply.payload.get("connection_ok")) and reply.success, success=reply.success,
            output=output, elapsed_s=float(reply.payload.get("elapsed_s", 0.0)),
        )

    async def docs(self, inp: DocsInput, progress: ProgressReporter) -> DbtCommandResult:
        from tools.dbt.docs_server import DocsServer

        server = self.ctx.shared("docs_server", DocsServer)
        if inp.stop:
            stopped = server.stop()
            return DbtCommandResult(command="docs serve (stop)", success=True, counts={}, elapsed_s=0.0, nodes=[],
                                    note="stopped serving the docs site" if stopped else "the docs site was not being served")
        if inp.generate:
            args = ["docs", "generate"]
            if inp.select:
                from tools.dbt.inputs import selection_terms

                args += ["--select", *selection_terms(inp.select)]
            if inp.static:
                args.append("--static")
            reply = await self._invoke(args, inp, progress, guard=True)
            result = self._result("docs generate", reply)
            catalog = reply.payload.get("catalog", {})
        else:
            result = DbtCommandResult(command="docs", success=True, counts={}, elapsed_s=0.0, nodes=[])
            catalog = {}
        paths = {name: str(self.target_dir / name) for name in ("index.html", "catalog.json", "manifest.json", "static_index.html")}
        result.extra = {"catalog": catalog, "paths": {k: v for k, v in paths.items() if Path(v).exists()}}
        result.artifact_path = paths["catalog.json"]
        if inp.serve and result.success:
            result.extra["url"] = server.start(self.target_dir, inp.port)
            result.note = f"docs site served at {result.extra['url']} (dbt_docs stop=true to stop)"
        return result


    async def parse(self, inp: ParseInput, progress: ProgressReporter) -> DbtCommandResult:
        reply = await self._invoke(["parse"], inp, progress, reuse_manifest=False, guard=True)
        result = self._result("parse", reply)
        result.extra = {"counts": reply.payload.get("counts", {}), "manifest_path": str(self.target_dir / "manifest.json")}
        return result

