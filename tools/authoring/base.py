"""What every authoring tool shares; the tools themselves are the mixins in models.py, sources.py, data_tests.py,
macros.py, exposures.py, packages.py and seeds_snapshots.py.

Every tool follows one path (`commit`): checks that need no dbt (names, layers, SQL shape, refs against the warm
manifest) run before anything is written; then the files are written atomically and the warm worker parses the
project (and compiles the new model); if dbt rejects the change, every touched file is restored byte for byte and
dbt's error is returned as a typed error."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable
from pathlib import Path

from server.context import AppContext
from server.errors import ToolFailure
from server.registration import ProgressReporter
from tools.authoring import rules
from tools.authoring.files import apply, plan_diffs, sweep_temp_files
from tools.authoring.journal import ChangeJournal
from tools.authoring.inputs import (
    AuthoringInput,
)
from tools.authoring.plan import Plan, plan_jinja_findings
from tools.authoring.project import ProjectIndex, ProjectLayout, project_index
from tools.authoring.results import AuthoringResult, FileOut
from tools.dbt.engine.jinja_guard import blocking


class AuthoringBase:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        if ctx.engine is None:
            raise RuntimeError("the authoring tools need the dbt engine")
        self.engine = ctx.engine
        self.lock = asyncio.Lock()  # one authoring call at a time: a parse must see exactly one change
        sweep_temp_files([self.root], recursive=True)  # what a writer killed mid-write left (files.py)
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        self.journal = ChangeJournal(ctx.settings.data_dir / "authoring" / f"{self.root.name}-{digest}", self.root)
        # changes a killed server wrote and dbt never validated: undone (not by a read-only server: it writes nothing)
        self.recovered = [] if ctx.settings.read_only else self.journal.recover()

    @property
    def root(self) -> Path:
        return self.engine.project_dir.resolve()

    def _timeout(self, inp: AuthoringInput) -> float:
        return inp.timeout_seconds or self.ctx.settings.timeout_seconds

    async def index(self, timeout: float, progress: ProgressReporter | None = None) -> ProjectIndex:
        return await project_index(self.engine, timeout, progress)

    async def _current(self, inp: AuthoringInput, progress: ProgressReporter) -> tuple[ProjectLayout, ProjectIndex]:
        layout = ProjectLayout.read(self.root)
        try:
            index = await self.index(self._timeout(inp), progress)
        except ToolFailure as failure:
            raise ToolFailure(failure.code, f"The project does not parse before this change: {failure.message}",
                              "Fix the project first (dbt_parse shows the error); nothing was written.", failure.details) from None
        return layout, index

    # -- the one way files are written ----------------------------------------------------------------------
    def _guard(self, plan: Plan) -> None:
        """Authored text runs on every build: no statements or hooks unless the server allows them, and then listed."""
        found = plan_jinja_findings(plan.changes)
        refused = blocking([f for _, f in found], self.ctx.settings.jinja_statements_allowed)
        if refused:
            listed = "; ".join(f"{name} {f.describe()}" for name, f in found if f in refused)
            raise ToolFailure("jinja_not_allowed", f"The authored text could run statements on every build: {listed[:600]}. Nothing was written.",
                              "Write models as select queries using ref(), source() and macros without run_query/statement/hooks "
                              "(the server setting DBT_AE_ALLOW_SQL_IN_JINJA=true lifts this).")
        plan.notes += [f"runs on every build: {f.name} in {name} (line {f.line})" for name, f in found if f.kind == "hook"]

    async def commit(self, tool: str, plan: Plan, inp: AuthoringInput, progress: ProgressReporter) -> AuthoringResult:
        self._guard(plan)
        diffs = plan_diffs(self.root, plan.changes)
        files = [FileOut(path=d.path, action=d.action, diff=d.diff or None) for d in diffs]
        if inp.dry_run:
            return AuthoringResult(tool=tool, dry_run=True, files=files, validated="not run (dry run)", notes=plan.notes, next_step=plan.next_step)
        changes = [c for c, d in zip(plan.changes, diffs) if d.action != "unchanged"]
        with self.journal.recording(tool, changes):
            applied = apply(changes)
            validated = "parse"
            try:
                after = await self.index(self._timeout(inp), progress)
                nodes = plan.expect(after) if plan.expect is not None else []
                if plan.compile_select:
                    reply = await self.engine.invoke(["compile", "--select", plan.compile_select], timeout=self._timeout(inp), progress=progress,
                                                     options={"guard": not self.ctx.settings.jinja_statements_allowed})
                    failing = [n for n in reply.payload.get("nodes", []) if n.get("status") in ("error", "fail")]
                    if not reply.success or failing:
                        message = (failing[0].get("message") if failing else None) or (reply.payload.get("exception") or {}).get("message") or "compile failed"
                        raise ToolFailure("dbt_compilation_error", f"dbt could not compile {plan.compile_select}: {message}",
                                          "Fix the SQL or Jinja and call again.")
                    validated = "parse+compile"
                if plan.finish is not None:
                    await plan.finish()
            except BaseException as exc:
                applied.rollback()
                if isinstance(exc, ToolFailure):
                    raise ToolFailure(exc.code, f"{exc.message} — every file was put back as it was.", exc.hint, exc.details) from None
                raise
        notes, self.recovered = [*plan.notes, *(f"recovered at start: {line}" for line in self.recovered)], []
        return AuthoringResult(tool=tool, dry_run=False, files=files, validated=validated, nodes=nodes, notes=notes, next_step=plan.next_step)

    # -- columns from the column model (tools/lineage/column_model.py), never from a select list's text ------------
    async def real_columns(self, uid: str) -> list[str] | None:
        """A node's output columns from its compiled SQL (stars expanded), the catalog or the database; None if unknown."""
        from tools.lineage.column_service import column_service

        service = column_service(self.ctx)
        view = await service.view(await service.graph(), [uid])
        found = view.columns.get(uid)
        return list(found.names) if found is not None and found.known else None

    async def require_columns(self, uid: str, label: str, wanted: list[tuple[str, str]]) -> list[str]:
        """Refuse (column_not_found) when the node's real output lacks a column the change names, as (column, role);
        returns a note instead when its columns cannot be known (not built, no catalog)."""
        have = await self.real_columns(uid)
        if have is None:
            return [f"could not tell {label}'s columns (not built and no catalog): {', '.join(c for c, _ in wanted)} not checked"]
        lower = {c.lower() for c in have}
        missing = [f"{column} ({role})" for column, role in wanted if column.lower() not in lower]
        if missing:
            raise ToolFailure("column_not_found", f"{label} has no column {', '.join(missing)}; its columns: {', '.join(have[:60])}.",
                              "Name columns the relation outputs (column_lineage or dbt_show with limit 0 shows them), then call again.")
        return []

    async def zero_row_check(self, name: str) -> list[str]:
        """Run the new model's compiled SQL as a zero-row query on the read-only preview connection, so a column the
        database does not know fails here (rolled back) rather than on the next build. Notes when it cannot run."""
        try:
            reply = await self.engine.invoke(["preview"], timeout=self.ctx.settings.timeout_seconds, options={
                "model": name, "limit": 0, "any_relation": False, "guard": not self.ctx.settings.jinja_statements_allowed})
        except ToolFailure as failure:
            return [f"not checked against the database: {failure.message}"]
        if reply.success:
            return []
        nodes = reply.payload.get("nodes") or [{}]
        message = str(nodes[0].get("message") or "the database refused the query")
        # DuckDB: Binder Error ... not found; PostgreSQL: column "x" does not exist (its missing relation "does not exist" too)
        no_column = "Binder Error" in message or "not found" in message.lower() or re.search(r"\bcolumn \S+ does not exist", message)
        if not no_column and ("Catalog Error" in message or "does not exist" in message):  # an upstream relation is not built yet
            return [f"not checked against the database (an upstream relation is not built): {message.splitlines()[0][:200]}"]
        code = "column_not_found" if no_column else "dbt_database_error"
        raise ToolFailure(code, f"{name} compiles, but the database rejects its query: {message.splitlines()[0][:400]}",
                          "Fix the SQL (the column names of its inputs: column_lineage shows them) and call again.")

    # -- shared pieces ----------------------------------------------------------------------------------------
    def _check_relations(self, sql: str, index: ProjectIndex) -> rules.Relations:
        found = rules.relations(sql)
        known = index.names("model", "seed", "snapshot")
        missing = [r for r in found.refs if r not in known]
        if missing:
            raise ToolFailure("unknown_ref", f"ref() to {', '.join(repr(m) for m in missing)}: no such model, seed or snapshot in the project.",
                              "Call dbt_list to see the names, or create the upstream model first.")
        unknown = [f"{a}.{b}" for a, b in found.sources if (a, b) not in index.sources]
        if unknown:
            raise ToolFailure("unknown_source", f"source() {', '.join(unknown)} is not defined.", "Define it with dbt_source first.")
        return found


    def _expect_nodes(self, names: list[str], types: tuple[str, ...] = ("model",)) -> Callable[[ProjectIndex], list[str]]:
        def check(after: ProjectIndex) -> list[str]:
            found = []
            for name in names:
                node = after.node(name)
                if node is None or node["resource_type"] not in types:
                    raise ToolFailure("validation_failed", f"dbt parsed the project but has no {'/'.join(types)} named {name}.",
                                      "Check the file names and the project's paths in dbt_project.yml.")
                found.append(node["unique_id"])
                found += [t["unique_id"] for t in after.tests_on(node["unique_id"])]
            return found
        return check

    @staticmethod
    def _expect_in(section: str, name: str, what: str) -> Callable[[ProjectIndex], list[str]]:
        """Post-parse check for macros and exposures: the project now defines `name`."""
        def check(after: ProjectIndex) -> list[str]:
            found = [x["unique_id"] for x in after.raw.get(section, []) if x["name"] == name and x["package"] == after.project_name]
            if not found:
                raise ToolFailure("validation_failed", f"dbt parsed the project but has no {what} {name}.", f"Check the {what}'s file.")
            return found
        return check

