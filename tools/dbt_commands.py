"""The dbt command toolset: every dbt command as a typed tool on the warm dbt worker."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

from server.context import AppContext
from server.errors import ToolFailure
from server.registration import ProgressReporter, ToolResult, add_tool
from tools.dbt_engine.engine import WorkerReply
from tools.dbt_inputs import (
    BuildInput,
    CompileInput,
    DebugInput,
    DepsInput,
    DocsInput,
    FreshnessInput,
    ListInput,
    ParseInput,
    RetryInput,
    RunInput,
    SeedInput,
    SelectionInput,
    ShowInput,
    SnapshotInput,
    TargetInput,
    TestInput,
    ToolInput,
)
from tools.dbt_engine.jinja_guard import agent_text_findings, blocking
from tools.dbt_results import DbtCommandResult, DebugResult, ListItem, ListResult, NodeResult, ShowResult, count_statuses, order_nodes
from tools.dbt_engine.serialize import redact
from tools.run_history import RunHistory

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
BUILDS = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)
IDEMPOTENT_WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)


class DbtCommands:
    """Tool logic for dbt commands; the MCP layer stays in register()."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.engine = ctx.engine
        self.history = RunHistory(ctx.settings.data_dir, ctx.engine.project_dir)

    @property
    def target_dir(self) -> Path:
        return self.engine.project_dir / "target"

    @property
    def guarded(self) -> bool:
        """Whether statements dbt sends during read-type commands must be read-only queries (the default)."""
        return not self.ctx.settings.jinja_statements_allowed

    async def _invoke(self, args: list[str], inp: ToolInput, progress: ProgressReporter, reuse_manifest: bool = True,
                      guard: bool = False, options: dict[str, Any] | None = None) -> WorkerReply:
        target = getattr(inp, "target", None)
        vars_json = inp.vars_json() if isinstance(inp, TargetInput) else None
        timeout = inp.timeout_seconds or self.ctx.settings.timeout_seconds
        return await self.engine.invoke(
            args, target=target, vars_json=vars_json, timeout=timeout, progress=progress, reuse_manifest=reuse_manifest,
            options={**(options or {}), "guard": guard and self.guarded},
        )

    def _check_agent_jinja(self, text: str, what: str) -> None:
        """Agent-sent Jinja may not run statements, import, write or add hooks (unless the setting allows it)."""
        found = blocking(agent_text_findings(text, inline=True), self.ctx.settings.jinja_statements_allowed)
        if found:
            raise ToolFailure(
                "jinja_not_allowed", f"The {what} uses Jinja that could run statements: " + "; ".join(f.describe() for f in found[:5]) + ".",
                "Use ref(), source(), var() and project macros only; change data through models and dbt_build "
                "(the server setting DBT_AE_ALLOW_SQL_IN_JINJA=true lifts this).")

    def _check_selection(self, reply: WorkerReply, inp: SelectionInput) -> None:
        nothing = any(e.get("name") == "NoNodesForSelectionCriteria" for e in reply.events)
        if inp.has_selection and nothing and not reply.payload.get("nodes") and not reply.payload.get("items"):
            raise ToolFailure(
                "model_not_found",
                f"Nothing in the project matches select={inp.select!r}" + (f" selector={inp.selector!r}" if inp.selector else "") + ".",
                "Call dbt_list to see node names; selection syntax: name, +name, path:models/x, tag:x.",
            )

    def _result(self, command: str, reply: WorkerReply, keep_sql: bool = False) -> DbtCommandResult:
        nodes = []
        for raw in reply.payload.get("nodes", []):
            node = NodeResult(**{k: v for k, v in raw.items() if k in NodeResult.model_fields})
            if not keep_sql and not node.failed:
                node.compiled_sql = None
            nodes.append(node)
        artifact = self.target_dir / ("sources.json" if command == "source freshness" else "run_results.json")
        warnings = [e["msg"] for e in reply.events if e.get("level") == "warn" and e.get("name") != "NoNodesForSelectionCriteria"]
        error = reply.payload.get("exception")
        success = reply.success and not any(n.failed for n in nodes)
        self.history.record(command, success, float(reply.payload.get("elapsed_s", 0.0)), [n.model_dump() for n in nodes])
        return DbtCommandResult(
            command=command,
            success=success,
            counts=count_statuses(nodes),
            elapsed_s=float(reply.payload.get("elapsed_s", 0.0)),
            nodes=order_nodes(nodes),
            artifact_path=str(artifact) if artifact.exists() else None,
            warnings=[redact(w) for w in warnings],
            error=error,
        )

    async def _execution(self, command: list[str], inp: SelectionInput, progress: ProgressReporter, extra_args: list[str],
                         guard: bool = False) -> DbtCommandResult:
        reply = await self._invoke([*command, *extra_args], inp, progress, guard=guard)
        self._check_selection(reply, inp)
        return self._result(" ".join(command), reply)

    async def run(self, inp: RunInput, progress: ProgressReporter) -> DbtCommandResult:
        return await self._execution(["run"], inp, progress, inp.execution_args() + (["--empty"] if inp.empty else []))

    async def build(self, inp: BuildInput, progress: ProgressReporter) -> DbtCommandResult:
        args = inp.execution_args() + (["--empty"] if inp.empty else [])
        for resource_type in inp.resource_types or []:
            args += ["--resource-type", resource_type]
        return await self._execution(["build"], inp, progress, args)

    async def test(self, inp: TestInput, progress: ProgressReporter) -> DbtCommandResult:
        if inp.store_failures and self.ctx.settings.read_only:
            raise ToolFailure("not_read_only", "store_failures writes tables, and the server runs read-only.", "Call without store_failures.")
        return await self._execution(["test"], inp, progress, inp.execution_args() + (["--store-failures"] if inp.store_failures else []),
                                     guard=not inp.store_failures)

    async def seed(self, inp: SeedInput, progress: ProgressReporter) -> DbtCommandResult:
        if not inp.defines:
            return await self._execution(["seed"], inp, progress, inp.execution_args())
        if not inp.load or inp.dry_run:
            return await self._define("seed", inp, progress)
        loaded: list[DbtCommandResult] = []

        async def load() -> None:
            """Load only the new seed; a failed load fails the call, and the authoring commit removes what it wrote."""
            only = inp.model_copy(update={"select": inp.name})
            result = await self._execution(["seed"], only, progress, only.execution_args())
            if not result.success:
                failed = next((n for n in result.nodes if n.failed), None)
                message = (failed.message if failed else None) or (result.error or {}).get("message") or "dbt seed failed"
                raise ToolFailure("dbt_database_error", f"Loading seed {inp.name} failed: {redact(message)}",
                                  "Fix the data or column_types and call again.")
            loaded.append(result)

        authored = await self._define("seed", inp, progress, finish=load)
        result = loaded[0]
        result.extra["authoring"] = authored.extra["authoring"]
        result.note = authored.note
        return result

    async def snapshot(self, inp: SnapshotInput, progress: ProgressReporter) -> DbtCommandResult:
        if not inp.defines:
            return await self._execution(["snapshot"], inp, progress, inp.execution_args())
        return await self._define("snapshot", inp, progress)

    async def _define(self, what: str, inp: SeedInput | SnapshotInput, progress: ProgressReporter,
                      finish: Callable[[], Awaitable[None]] | None = None) -> DbtCommandResult:
        """The authoring form of dbt_seed / dbt_snapshot: write the files (tools/authoring), return them in `extra`."""
        if inp.name is None:
            raise ToolFailure("invalid_input", f"Defining a {what} needs name.", f"Give name='...' to define a {what}, or no definition fields to run {what}s.")
        if inp.select or inp.exclude or inp.selector:
            raise ToolFailure("invalid_input", f"select/exclude/selector choose {what}s to run; name defines a new one.", "Give one or the other.")
        from tools.authoring.service import AuthoringService

        service = self.ctx.shared("authoring", lambda: AuthoringService(self.ctx))
        async with service.lock:
            authored = await (service.seed(inp, progress, finish=finish) if what == "seed" else service.snapshot(inp, progress))
        return DbtCommandResult(command=f"{what} (define)", success=True, counts={}, elapsed_s=0.0, nodes=[],
                                extra={"authoring": authored.model_dump(mode="json")}, note=authored.summary())

    async def source_freshness(self, inp: FreshnessInput, progress: ProgressReporter) -> DbtCommandResult:
        args = inp.selection_args() + (["--threads", str(inp.threads)] if inp.threads else [])
        return await self._execution(["source", "freshness"], inp, progress, args, guard=True)

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
        from tools.docs_server import DocsServer

        server = self.ctx.shared("docs_server", DocsServer)
        if inp.stop:
            stopped = server.stop()
            return DbtCommandResult(command="docs serve (stop)", success=True, counts={}, elapsed_s=0.0, nodes=[],
                                    note="stopped serving the docs site" if stopped else "the docs site was not being served")
        if inp.generate:
            args = ["docs", "generate"]
            if inp.select:
                from tools.dbt_inputs import selection_terms

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

    async def retry(self, inp: RetryInput, progress: ProgressReporter) -> DbtCommandResult:
        if not (self.target_dir / "run_results.json").exists():
            raise ToolFailure("nothing_to_retry", "No previous run_results.json to retry from.", "Run dbt_build or dbt_run first.")
        return self._result("retry", await self._invoke(["retry"], inp, progress))

    async def parse(self, inp: ParseInput, progress: ProgressReporter) -> DbtCommandResult:
        reply = await self._invoke(["parse"], inp, progress, reuse_manifest=False, guard=True)
        result = self._result("parse", reply)
        result.extra = {"counts": reply.payload.get("counts", {}), "manifest_path": str(self.target_dir / "manifest.json")}
        return result

    async def deps(self, inp: DepsInput, progress: ProgressReporter) -> DbtCommandResult:
        reply = await self._invoke(["deps", *(["--upgrade"] if inp.upgrade else [])], inp, progress, reuse_manifest=False)
        return self._result("deps", reply)


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    input_model: type[ToolInput]
    output_model: type[ToolResult]
    method: str
    annotations: ToolAnnotations
    writes: bool


TOOLS: list[ToolSpec] = [
    ToolSpec("dbt_run", "Run models (dbt run) on the warm dbt worker. Results per node, failing nodes first; progress per node.", RunInput, DbtCommandResult, "run", BUILDS, True),
    ToolSpec("dbt_test", "Run data and unit tests (dbt test). A failing test is success=false with the failing node first, not an error.", TestInput, DbtCommandResult, "test", READ_ONLY, False),
    ToolSpec("dbt_build", "Seed, run, snapshot and test in DAG order (dbt build). The usual way to prove a change.", BuildInput, DbtCommandResult, "build", BUILDS, True),
    ToolSpec("dbt_compile", "Compile models, a selection, or inline SQL with Jinja/ref/source; returns the compiled SQL per node.", CompileInput, DbtCommandResult, "compile", READ_ONLY, False),
    ToolSpec("dbt_seed", "Load seed CSVs into the warehouse (dbt seed).", SeedInput, DbtCommandResult, "seed", IDEMPOTENT_WRITE, True),
    ToolSpec("dbt_snapshot", "Run snapshots (SCD type 2) (dbt snapshot).", SnapshotInput, DbtCommandResult, "snapshot", BUILDS, True),
    ToolSpec("dbt_source_freshness", "Check source freshness against each source's warn_after/error_after (dbt source freshness).", FreshnessInput, DbtCommandResult, "source_freshness", READ_ONLY, False),
    ToolSpec("dbt_docs", "Generate the docs site and catalog (dbt docs generate) and, with serve=true, serve it on 127.0.0.1:port until stop=true; returns the paths and the URL.", DocsInput, DbtCommandResult, "docs", READ_ONLY, False),
    ToolSpec("dbt_debug", "Check the profile, connection and project set-up (dbt debug); credentials are redacted.", DebugInput, DebugResult, "debug", READ_ONLY, False),
    ToolSpec("dbt_list", "List project nodes (dbt ls) by selection and resource type, paginated with cursor/limit.", ListInput, ListResult, "list", READ_ONLY, False),
    ToolSpec("dbt_show", "Preview rows of one query or a model (dbt show), default limit 10. Runs on a read-only database connection over project relations.", ShowInput, ShowResult, "show", READ_ONLY, False),
    ToolSpec("dbt_retry", "Re-run the nodes that failed or were skipped in the previous call (dbt retry).", RetryInput, DbtCommandResult, "retry", BUILDS, True),
    ToolSpec("dbt_parse", "Parse the project and refresh the warm manifest (dbt parse); returns node counts.", ParseInput, DbtCommandResult, "parse", READ_ONLY, False),
    ToolSpec("dbt_deps", "Install the packages of packages.yml (dbt deps).", DepsInput, DbtCommandResult, "deps", IDEMPOTENT_WRITE, True),
]


def truthful_annotations(spec: ToolSpec, ctx: AppContext) -> ToolAnnotations:
    """A tool is read-only only while nothing it runs can write: agent Jinja is guarded, and dbt_test stores no failures."""
    if spec.annotations is not READ_ONLY:
        return spec.annotations
    if ctx.settings.jinja_statements_allowed or (spec.method == "test" and not ctx.settings.read_only):
        return IDEMPOTENT_WRITE if spec.method != "test" else ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
    return spec.annotations


def register(app: MCPServer, ctx: AppContext) -> list[str]:
    """Register the dbt command tools; in read-only mode only those that write nothing."""
    commands = DbtCommands(ctx)
    registered = []
    for spec in TOOLS:
        if ctx.settings.read_only and spec.writes:
            continue
        handler: Callable[[Any, ProgressReporter], Awaitable[ToolResult]] = getattr(commands, spec.method)
        add_tool(
            app, name=spec.name, description=spec.description, input_model=spec.input_model,
            output_model=spec.output_model, handler=handler, annotations=truthful_annotations(spec, ctx), token_budget=ctx.token_budget,
        )
        registered.append(spec.name)
    return registered
