"""The authoring tools' logic: plan the files, show or write them, prove them with dbt, put everything back on failure.

Every tool follows one path (`commit`): checks that need no dbt (names, layers, SQL shape, refs against the warm
manifest) run before anything is written; then the files are written atomically and the warm worker parses the
project (and compiles the new model); if dbt rejects the change, every touched file is restored byte for byte and
dbt's error is returned as a typed error.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.context import AppContext
from server.errors import ToolFailure
from server.registration import ProgressReporter
from tools.authoring import render, rules, tests_catalog, yaml_props
from tools.authoring.files import FileChange, apply, plan_diffs, project_path, read_text
from tools.authoring.inputs import (
    AuthoringInput,
    ColumnSpec,
    DataQualityInput,
    ExposureInput,
    FreshnessSpec,
    IncrementalInput,
    MacroInput,
    ModelBody,
    ModelInput,
    PackageInput,
    SourceInput,
)
from tools.authoring.project import DIALECTS, ProjectIndex, ProjectLayout, project_index
from tools.authoring.results import AuthoringResult, FileOut
from tools.dbt_engine.jinja_guard import JinjaFinding, agent_text_findings, blocking

PERIODS = ("minute", "hour", "day")
PARAMETER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\s*=\s*.+)?$")


@dataclass
class Plan:
    changes: list[FileChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    compile_select: str | None = None  # compile this after parsing (model SQL)
    next_step: str | None = None
    expect: Callable[[ProjectIndex], list[str]] | None = None  # post-parse check: returns the unique_ids, raises if missing
    finish: Callable[[], Awaitable[None]] | None = None  # last step after validation (e.g. load a seed); its failure rolls back

    def write(self, path: Path, content: str | None) -> None:
        for n, change in enumerate(self.changes):
            if change.path == path:
                self.changes[n] = FileChange(path, content)
                return
        self.changes.append(FileChange(path, content))

    def pending(self, path: Path) -> str | None:
        """The content this plan already gives `path`, else the file on disk."""
        for change in self.changes:
            if change.path == path:
                return change.content
        return read_text(path)


def added_text(before: str | None, after: str | None) -> str:
    """What a change adds to a file: all of a new file, else its added lines (the agent's part of the text)."""
    if after is None:
        return ""
    if before is None:
        return after
    import difflib

    return "".join(line[2:] for line in difflib.ndiff(before.splitlines(keepends=True), after.splitlines(keepends=True))
                   if line.startswith("+ "))


def plan_jinja_findings(changes: list[FileChange]) -> list[tuple[str, JinjaFinding]]:
    """Statements, hooks and unlexable Jinja in what a plan adds to project files."""
    found = []
    for change in changes:
        added = added_text(read_text(change.path), change.content)
        if added:
            yaml = change.path.suffix in (".yml", ".yaml")
            found += [(change.path.name, f) for f in agent_text_findings(added, yaml=yaml)]
    return found


def properties_file(folder: Path, section: str, default_name: str) -> Path:
    """The YAML file in `folder` that already has a top-level `section:`; else a new one named by convention."""
    if folder.is_dir():
        for candidate in sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]):
            text = read_text(candidate) or ""
            if re.search(rf"^{section}:", text, re.M):
                return candidate
    return folder / default_name


def relation_jinja(text: str, index: ProjectIndex) -> tuple[str, str]:
    """'raw.orders' / "source('raw','orders')" / 'stg_orders' / "ref('stg_orders')" -> (jinja-free form for YAML, kind)."""
    text = text.strip()
    found = rules.relations(text)
    if text.startswith("source(") and found.sources:
        source, table = found.sources[0]
        return f"source('{source}', '{table}')", "source"
    if text.startswith("ref(") and found.refs:
        return f"ref('{found.refs[0]}')", "ref"
    if "." in text and (text.split(".", 1)[0], text.split(".", 1)[1]) in index.sources:
        source, table = text.split(".", 1)
        return f"source('{source}', '{table}')", "source"
    return f"ref('{text}')", "ref"


class AuthoringService:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        if ctx.engine is None:
            raise RuntimeError("the authoring tools need the dbt engine")
        self.engine = ctx.engine
        self.lock = asyncio.Lock()  # one authoring call at a time: a parse must see exactly one change

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
        return AuthoringResult(tool=tool, dry_run=False, files=files, validated=validated, nodes=nodes, notes=plan.notes, next_step=plan.next_step)

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

    def _test_entries(self, plan: Plan, layout: ProjectLayout, index: ProjectIndex, specs: list[Any], column: str | None,
                      use_dbt_utils: bool | None = None) -> list[tuple[str, Any]]:
        """(kind name, YAML entry) per test; plans the shipped generic test files the tests need."""
        generic = index.generic_tests()
        utils = index.has_package("dbt_utils") if use_dbt_utils is None else use_dbt_utils
        out = []
        for spec in specs:
            request = tests_catalog.parse_spec(spec, column)
            kind = tests_catalog.check(request, set(generic))
            if kind is None or kind.builtin:
                name = generic.get(request.name, request.name) if kind is None else request.name
            elif utils and index.has_package("dbt_utils"):
                name = f"dbt_utils.{request.name}"
            elif request.name in generic and "." not in generic[request.name]:
                name = request.name  # the project's own generic test of that name
            else:
                name = request.name
                target = project_path(self.root, f"{layout.test_paths[0]}/generic/{request.name}.sql")
                if plan.pending(target) is None:
                    plan.write(target, tests_catalog.SHIPPED_SQL[request.name])
                    plan.notes.append(f"installed the generic test {request.name} (dbt_utils' name and arguments) at "
                                      f"{target.relative_to(self.root)}")
            if request.name == "relationships":
                to = str(request.arguments["to"])
                if not to.strip().startswith(("ref(", "source(")):
                    request.arguments["to"] = relation_jinja(to, index)[0]
                self._check_relations(str(request.arguments["to"]), index)
            if request.name == "equal_rowcount":
                compare = str(request.arguments["compare_model"])
                if not compare.strip().startswith(("ref(", "source(")):
                    request.arguments["compare_model"] = relation_jinja(compare, index)[0]
                self._check_relations(str(request.arguments["compare_model"]), index)
            out.append((request.name, tests_catalog.yaml_entry(request, name)))
        return out

    @staticmethod
    def _merge_tests(entry: Any, tests: list[tuple[str, Any]]) -> None:
        """Add tests to a model or column entry; a test of the same kind is replaced, the others stay."""
        key = "tests" if "tests" in entry and "data_tests" not in entry else "data_tests"
        current = entry.get(key)
        if current is None:
            current = yaml_props.to_yaml([])
            entry[key] = current
        for kind, yaml_entry in tests:
            for n in reversed(range(len(current))):
                if tests_catalog.same_test(current[n], kind):
                    del current[n]
            current.append(yaml_props.to_yaml(yaml_entry))

    def _model_properties(self, plan: Plan, path: Path, section: str, name: str, description: str | None,
                          columns: list[tuple[ColumnSpec, list[tuple[str, Any]]]], model_tests: list[tuple[str, Any]]) -> None:
        rel = path.relative_to(self.root).as_posix()
        doc = yaml_props.load(plan.pending(path), rel)
        entries = yaml_props.section(doc, section)
        entry = yaml_props.find(entries, name)
        if entry is None:
            entries.append(yaml_props.to_yaml({"name": name}))
            entry = entries[-1]
        if description:
            entry["description"] = description
        if columns:
            if entry.get("columns") is None:
                entry["columns"] = yaml_props.to_yaml([])
            for column, tests in columns:
                existing = yaml_props.find(entry["columns"], column.name)
                if existing is None:
                    entry["columns"].append(yaml_props.to_yaml({"name": column.name}))
                    existing = entry["columns"][-1]
                if column.description:
                    existing["description"] = column.description
                if column.data_type:
                    existing["data_type"] = column.data_type
                if tests:
                    self._merge_tests(existing, tests)
        if model_tests:
            self._merge_tests(entry, model_tests)
        plan.write(path, doc.dump())

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

    # -- models ----------------------------------------------------------------------------------------------
    def _model_sql(self, inp: ModelBody, config: dict[str, Any], index: ProjectIndex,
                   incremental: tuple[str, str] | None = None) -> str:
        """SQL from `sql`, or generated from columns + from_source/from_ref. `incremental` = (updated_at, strategy)."""
        if inp.sql is not None:
            if inp.from_source or inp.from_ref:
                raise ToolFailure("invalid_input", "Give sql, or columns with from_source/from_ref, not both.", "Drop one of them.")
            if "config(" in inp.sql and config:
                raise ToolFailure("invalid_input", "The SQL has its own config() and this call sets config too.",
                                  "Put every setting in one place: drop config() from the SQL, or the config arguments.")
            sql = inp.sql
            if incremental and "is_incremental()" not in sql:
                shape = rules.parse_sql(sql, index.dialect)
                if shape.star:
                    raise ToolFailure("select_star", "An incremental model's final select lists its columns.", "Name the columns in the final select.")
                return render.wrap_incremental(sql, config, shape.columns, *incremental)
            return render.with_config(sql, config)
        if bool(inp.from_source) == bool(inp.from_ref) or not inp.columns:
            raise ToolFailure("invalid_input", "Give sql, or columns plus exactly one of from_source / from_ref.",
                              "e.g. from_source='raw.orders', columns=[{'name': 'order_id', 'expression': 'cast(id as integer)'}].")
        if inp.from_source and "." not in inp.from_source:
            raise ToolFailure("invalid_input", f"from_source {inp.from_source!r} is 'source_name.table'.", "e.g. from_source='raw.orders'.")
        relation = render.Relation("source", inp.from_source) if inp.from_source else render.Relation("ref", inp.from_ref or "")
        columns = [render.Column(c.name, c.expression) for c in inp.columns]
        filter_sql = render.incremental_filter(*incremental) if incremental else None
        return render.model_sql(config, relation, columns, filter_sql)

    async def _author_model(self, tool: str, inp: ModelBody, name: str, layer: str, config: dict[str, Any],
                            progress: ProgressReporter, incremental: tuple[str, str] | None = None,
                            extra_column_tests: dict[str, list[Any]] | None = None, extra_model_tests: list[Any] | None = None,
                            notes: list[str] | None = None) -> AuthoringResult:
        rules.check_name(name, "Model")
        rules.check_layer(layer)
        rules.check_prefix(name, layer)
        layout, index = await self._current(inp, progress)
        if index.node(name) is not None:
            existing = index.node(name)
            raise ToolFailure("duplicate_name", f"{existing['resource_type']} {name} already exists ({existing['path']}).",  # type: ignore[index]
                              "Pick another name, or edit the existing file (analyze_changes shows the effect).")
        folder = project_path(self.root, f"{layout.model_paths[0]}/{layer}")
        sql_path = project_path(self.root, folder / f"{name}.sql")
        if sql_path.exists():
            raise ToolFailure("duplicate_name", f"{sql_path.relative_to(self.root)} already exists.", "Pick another name.")
        sql = self._model_sql(inp, config, index, incremental)
        found = self._check_relations(sql, index)
        shape = rules.parse_sql(sql, index.dialect)
        problems = rules.layer_problems(layer, found, shape, index.names("seed"))
        if problems:
            raise ToolFailure("layering_violation", f"{name}: " + "; ".join(problems) + ".",
                              "Follow staging -> intermediate -> marts: sources in staging, refs above it, explicit final columns.")
        plan = Plan(notes=list(notes or []), compile_select=name, next_step=f"dbt_build select='{name}'")
        known = set(shape.columns)
        columns = []
        extra_column_tests = dict(extra_column_tests or {})
        for column in inp.columns:
            if column.name not in known and not shape.star:
                raise ToolFailure("column_not_found", f"Column {column.name} is not in {name}'s final select ({', '.join(shape.columns)}).",
                                  "Document and test the columns the model outputs.")
            specs = list(column.tests) + extra_column_tests.pop(column.name, [])
            columns.append((column, self._test_entries(plan, layout, index, specs, column.name)))
        for column_name, specs in extra_column_tests.items():
            if column_name not in known and not shape.star:
                raise ToolFailure("column_not_found", f"unique_key column {column_name} is not in {name}'s final select.", "Select it.")
            columns.append((ColumnSpec(name=column_name), self._test_entries(plan, layout, index, specs, column_name)))
        model_tests = self._test_entries(plan, layout, index, list(inp.tests) + list(extra_model_tests or []), None)
        plan.write(sql_path, sql)
        props = properties_file(folder, "models", f"_{layer}__models.yml")
        self._model_properties(plan, props, "models", name, inp.description, columns, model_tests)
        plan.expect = self._expect_nodes([name])
        return await self.commit(tool, plan, inp, progress)

    async def model(self, inp: ModelInput, progress: ProgressReporter) -> AuthoringResult:
        config = {**({"materialized": inp.materialization} if inp.materialization else {}), **inp.config}
        if inp.materialization == "incremental":
            raise ToolFailure("invalid_input", "Incremental models have their own tool.", "Call incremental_model (unique_key, strategy, updated_at).")
        return await self._author_model("dbt_model", inp, inp.name, inp.layer, config, progress)

    async def incremental_model(self, inp: IncrementalInput, progress: ProgressReporter) -> AuthoringResult:
        if inp.incremental_strategy in ("merge", "delete+insert") and not inp.unique_key:
            raise ToolFailure("invalid_input", f"The {inp.incremental_strategy} strategy needs unique_key.", "Give the column(s) that identify a row.")
        has_filter = inp.sql is not None and "is_incremental()" in inp.sql
        if has_filter and "this" not in inp.sql:  # type: ignore[operator]
            raise ToolFailure("invalid_input", "The SQL's is_incremental() filter does not compare against {{ this }}.",
                              "Filter new rows against the existing table, e.g. where updated_at >= (select max(updated_at) from {{ this }}).")
        if not has_filter and not inp.updated_at:
            raise ToolFailure("invalid_input", "Give updated_at (the column that marks new or changed rows), or SQL with its own is_incremental() filter.",
                              "e.g. updated_at='updated_at'.")
        config: dict[str, Any] = {"materialized": "incremental", "incremental_strategy": inp.incremental_strategy}
        notes = []
        if inp.unique_key:
            config["unique_key"] = inp.unique_key
        if inp.incremental_strategy == "append" and inp.unique_key:
            notes.append("append ignores unique_key: late changes to a row are appended as new rows")
        config["on_schema_change"] = inp.on_schema_change
        for key in ("partition_by", "cluster_by"):
            value = getattr(inp, key)
            if value is not None:
                config[key] = value
                notes.append(f"{key} is adapter-specific: passed through to config() as given (adapters without it ignore it)")
        config.update(inp.config)
        keys = [inp.unique_key] if isinstance(inp.unique_key, str) else list(inp.unique_key or [])
        column_tests: dict[str, list[Any]] = {}
        model_tests: list[Any] = []
        if len(keys) == 1:
            declared = {c.name: c for c in inp.columns}
            have = {tests_catalog.parse_spec(t, keys[0]).name for t in (declared[keys[0]].tests if keys[0] in declared else [])}
            column_tests[keys[0]] = [t for t in ("unique", "not_null") if t not in have]
            notes.append(f"unique_key {keys[0]} is tested unique and not_null (a merge on a duplicated key multiplies rows)")
        elif len(keys) > 1:
            model_tests.append({"unique_combination_of_columns": {"combination_of_columns": keys}})
            notes.append(f"unique_key ({', '.join(keys)}) is tested with unique_combination_of_columns")
        if not has_filter:
            notes.append(f"is_incremental() filter on {inp.updated_at} "
                         f"({'>' if inp.incremental_strategy == 'append' else '>='} the latest value already loaded)")
        if isinstance(inp.partition_by, dict) and (await self._current(inp, progress))[1].raw.get("adapter_type") == "duckdb":
            raise ToolFailure("adapter_option_invalid", "dbt-duckdb takes partition_by as a column or a list of columns (used by DuckLake "
                              "tables, ignored with a warning elsewhere); the {'field': ..., 'data_type': ...} form is BigQuery's and fails the build.",
                              "Pass partition_by='order_date' (or a list), or leave it out on DuckDB.")
        return await self._author_model("incremental_model", inp, inp.name, inp.layer, config, progress,
                                        incremental=None if has_filter else (inp.updated_at or "", inp.incremental_strategy),
                                        extra_column_tests=column_tests, extra_model_tests=model_tests, notes=notes)

    # -- sources ---------------------------------------------------------------------------------------------
    @staticmethod
    def _freshness(spec: FreshnessSpec | None) -> dict[str, Any] | None:
        if spec is None:
            return None
        out = {}
        for key in ("warn_after", "error_after"):
            value = getattr(spec, key)
            if value is None:
                continue
            count, period = value.get("count"), value.get("period")
            if not isinstance(count, int) or count <= 0 or period not in PERIODS or set(value) - {"count", "period"}:
                raise ToolFailure("invalid_input", f"freshness {key} {value!r} is not {{'count': <positive int>, 'period': minute|hour|day}}.",
                                  "e.g. {'warn_after': {'count': 12, 'period': 'hour'}}.")
            out[key] = {"count": count, "period": period}
        return out or None

    async def source(self, inp: SourceInput, progress: ProgressReporter) -> AuthoringResult:
        rules.check_name(inp.name, "Source")
        if not inp.tables:
            raise ToolFailure("invalid_input", "A source needs at least one table.", "Give tables=[{'name': 'orders'}].")
        for table in inp.tables:
            rules.check_name(table.name, "Source table")
        layout, index = await self._current(inp, progress)
        defined = [s for s in index.raw.get("sources", []) if s["source_name"] == inp.name and s["package"] == index.project_name]
        if defined:
            path = project_path(self.root, defined[0]["path"])
        else:
            path = properties_file(project_path(self.root, f"{layout.model_paths[0]}/staging"), "sources", "_sources.yml")
        entry: dict[str, Any] = {"name": inp.name}
        for key, value in (("description", inp.description), ("database", inp.database), ("schema", inp.schema_name), ("loader", inp.loader)):
            if value:
                entry[key] = value
        config: dict[str, Any] = {}
        if inp.loaded_at_field:
            config["loaded_at_field"] = inp.loaded_at_field
        freshness = self._freshness(inp.freshness)
        if freshness:
            config["freshness"] = freshness
        if config:
            entry["config"] = config
        tables = []
        plan = Plan(next_step=f"dbt_source_freshness select='source:{inp.name}'")
        for table in inp.tables:
            item: dict[str, Any] = {"name": table.name}
            if table.identifier:
                item["identifier"] = table.identifier
            if table.description:
                item["description"] = table.description
            table_config: dict[str, Any] = {}
            if table.loaded_at_field:
                table_config["loaded_at_field"] = table.loaded_at_field
            if table.no_freshness:
                table_config["freshness"] = None
            elif table.freshness is not None:
                table_config["freshness"] = self._freshness(table.freshness)
            if table_config:
                item["config"] = table_config
            if table.columns:
                item["columns"] = [render.column_entry(render.Column(c.name, None, c.description, c.data_type), [e for _, e in self._test_entries(
                    plan, layout, index, c.tests, c.name)]) for c in table.columns]
            tables.append(item)
        entry["tables"] = tables
        if not (freshness or any("freshness" in (t.get("config") or {}) for t in tables)) and not defined:
            plan.notes.append("no freshness given: dbt_source_freshness will skip this source (project_check flags it)")
        rel = path.relative_to(self.root).as_posix()
        doc = yaml_props.load(plan.pending(path), rel)
        action = yaml_props.merge_entry(yaml_props.section(doc, "sources"), entry)
        plan.notes.append(f"source {inp.name} {action} in {rel}")
        plan.write(path, doc.dump())

        def expect(after: ProjectIndex) -> list[str]:
            ids = []
            for table in inp.tables:
                source = after.sources.get((inp.name, table.name))
                if source is None:
                    raise ToolFailure("validation_failed", f"dbt parsed the project but has no source {inp.name}.{table.name}.", "Check the file.")
                ids.append(source["unique_id"])
            return ids

        plan.expect = expect
        return await self.commit("dbt_source", plan, inp, progress)

    # -- tests -----------------------------------------------------------------------------------------------
    def _output_columns(self, node: dict[str, Any], index: ProjectIndex) -> set[str] | None:
        """The columns a node outputs, when they can be known without the warehouse."""
        if node["resource_type"] == "seed":
            header = (read_text(self.root / node["path"]) or "").splitlines()[:1]
            return {h.strip() for h in header[0].split(",")} if header else None
        if node["resource_type"] == "model" and node["path"].endswith(".sql"):
            try:
                shape = rules.parse_sql(read_text(self.root / node["path"]) or "", index.dialect)
            except ToolFailure:
                shape = None
            if shape is not None and not shape.star:
                return set(shape.columns)
        return set(node["columns"]) or None

    async def data_quality_test(self, inp: DataQualityInput, progress: ProgressReporter) -> AuthoringResult:
        if not inp.columns and not inp.tests:
            raise ToolFailure("invalid_input", "No tests given.", "Give columns=[{'column': 'order_id', 'tests': ['unique', 'not_null']}] or model tests.")
        layout, index = await self._current(inp, progress)
        node = index.node(inp.model)
        if node is None:
            raise ToolFailure("model_not_found", f"No model, seed or snapshot named {inp.model}.", "Call dbt_list to see the names.")
        known = self._output_columns(node, index)
        notes = []
        if known is None:
            notes.append(f"could not tell {inp.model}'s columns without the warehouse (select *): column names not checked")
        plan = Plan(notes=notes, next_step=f"dbt_test select='{inp.model}'")
        columns = []
        for item in inp.columns:
            if known is not None and item.column not in known:
                raise ToolFailure("column_not_found", f"{inp.model} has no column {item.column} (it has: {', '.join(sorted(known))}).",
                                  "Test a column the model outputs, or add the column to the model first.")
            columns.append((ColumnSpec(name=item.column), self._test_entries(plan, layout, index, item.tests, item.column, inp.use_dbt_utils)))
        model_tests = self._test_entries(plan, layout, index, inp.tests, None, inp.use_dbt_utils)
        section = {"model": "models", "seed": "seeds", "snapshot": "snapshots"}[node["resource_type"]]
        if node.get("patch_path"):
            path = project_path(self.root, node["patch_path"])
        else:
            folder = project_path(self.root, Path(node["path"]).parent)
            path = properties_file(folder, section, f"_{folder.name}__{section}.yml")
        self._model_properties(plan, path, section, inp.model, None, columns, model_tests)
        plan.expect = self._expect_nodes([inp.model], (node["resource_type"],))
        return await self.commit("data_quality_test", plan, inp, progress)

    # -- macros, exposures, packages -------------------------------------------------------------------------
    async def macro(self, inp: MacroInput, progress: ProgressReporter) -> AuthoringResult:
        rules.check_name(inp.name, "Macro")
        for parameter in inp.parameters:
            if not PARAMETER.match(parameter.strip()):
                raise ToolFailure("invalid_input", f"Parameter {parameter!r} is not 'name' or 'name=default'.", "e.g. parameters=['column_name', 'scale=2'].")
        if not inp.body.strip():
            raise ToolFailure("invalid_input", "The macro body is empty.", "Give the Jinja/SQL the macro renders.")
        layout, index = await self._current(inp, progress)
        clash = [m for m in index.raw.get("macros", []) if m["name"] == inp.name and m["package"] == index.project_name]
        if clash:
            raise ToolFailure("duplicate_name", f"Macro {inp.name} already exists ({clash[0]['path']}).", "Pick another name or edit that file.")
        folder = project_path(self.root, layout.macro_paths[0])
        sql_path = project_path(self.root, folder / f"{inp.name}.sql")
        if sql_path.exists():
            raise ToolFailure("duplicate_name", f"{sql_path.relative_to(self.root)} already exists.", "Pick another name.")
        plan = Plan(next_step=f"dbt_compile sql=\"{{{{ {inp.name}(...) }}}}\" to try it")
        plan.write(sql_path, render.macro_sql(inp.name, [p.strip() for p in inp.parameters], inp.body))
        props = properties_file(folder, "macros", "_macros.yml")
        doc = yaml_props.load(plan.pending(props), props.relative_to(self.root).as_posix())
        entry: dict[str, Any] = {"name": inp.name}
        if inp.description:
            entry["description"] = inp.description
        names = [p.split("=", 1)[0].strip() for p in inp.parameters]
        unknown = set(inp.argument_descriptions) - set(names)
        if unknown:
            raise ToolFailure("invalid_input", f"argument_descriptions names {sorted(unknown)}, which are not parameters.", "Describe the parameters the macro has.")
        if names:
            entry["arguments"] = [{"name": n, **({"description": inp.argument_descriptions[n]} if n in inp.argument_descriptions else {})} for n in names]
        yaml_props.merge_entry(yaml_props.section(doc, "macros"), entry)
        plan.write(props, doc.dump())
        plan.expect = self._expect_in("macros", inp.name, "macro")
        return await self.commit("dbt_macro", plan, inp, progress)

    async def exposure(self, inp: ExposureInput, progress: ProgressReporter) -> AuthoringResult:
        rules.check_name(inp.name, "Exposure")
        if not inp.depends_on:
            raise ToolFailure("invalid_input", "An exposure depends on at least one model.", "e.g. depends_on=['fct_orders'].")
        if not (inp.owner.name or inp.owner.email):
            raise ToolFailure("invalid_input", "An exposure's owner needs a name or an email.", "e.g. owner={'name': 'Finance', 'email': 'fin@x.com'}.")
        layout, index = await self._current(inp, progress)
        depends = []
        for item in inp.depends_on:
            jinja, _ = relation_jinja(item, index)
            self._check_relations(jinja, index)
            depends.append(jinja)
        existing = [e for e in index.raw.get("exposures", []) if e["name"] == inp.name and e["package"] == index.project_name]
        if existing:
            path = project_path(self.root, existing[0]["path"])
        else:
            path = None
            for folder in sorted({Path(n["path"]).parent for n in index.raw.get("exposures", []) if n["package"] == index.project_name}):
                path = properties_file(project_path(self.root, folder), "exposures", "_exposures.yml")
                break
            if path is None:
                path = project_path(self.root, f"{layout.model_paths[0]}/_exposures.yml")
        entry: dict[str, Any] = {"name": inp.name}
        if inp.label:
            entry["label"] = inp.label
        entry["type"] = inp.type
        if inp.maturity:
            entry["maturity"] = inp.maturity
        if inp.url:
            entry["url"] = inp.url
        if inp.description:
            entry["description"] = inp.description
        entry["depends_on"] = depends
        entry["owner"] = {k: v for k, v in inp.owner.model_dump().items() if v}
        plan = Plan(next_step=f"dbt_build select='+exposure:{inp.name}'")
        doc = yaml_props.load(plan.pending(path), path.relative_to(self.root).as_posix())
        action = yaml_props.merge_entry(yaml_props.section(doc, "exposures"), entry)
        if action == "updated":
            yaml_props.find(doc.data["exposures"], inp.name)["depends_on"] = yaml_props.to_yaml(depends)  # type: ignore[index]
        plan.write(path, doc.dump())
        plan.expect = self._expect_in("exposures", inp.name, "exposure")
        return await self.commit("exposure_define", plan, inp, progress)

    async def package(self, inp: PackageInput, progress: ProgressReporter) -> AuthoringResult:
        forms = [inp.name is not None, inp.git is not None, inp.local is not None]
        if sum(forms) != 1:
            raise ToolFailure("invalid_input", "Give exactly one of name (+version), git (+revision) or local.", "e.g. name='dbt-labs/dbt_utils', version='1.3.0'.")
        if inp.name is not None:
            if not re.match(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", inp.name) or not inp.version:
                raise ToolFailure("invalid_input", "A hub package is 'owner/name' with a version.", "e.g. name='dbt-labs/dbt_utils', version='1.3.0'.")
            entry: dict[str, Any] = {"package": inp.name, "version": inp.version}
            same = ("package", inp.name)
        elif inp.git is not None:
            if inp.git.startswith("-"):
                raise ToolFailure("invalid_input", "git must be a URL.", "e.g. git='https://github.com/org/pkg.git'.")
            entry = {"git": inp.git, **({"revision": inp.revision} if inp.revision else {})}
            same = ("git", inp.git)
        else:
            local = Path(inp.local or "")
            folder = (self.root / local).resolve() if not local.is_absolute() else local.resolve()
            if not (folder / "dbt_project.yml").is_file():
                raise ToolFailure("package_not_found", f"No dbt_project.yml in {inp.local}.", "Give the folder of a dbt package.")
            entry = {"local": inp.local}
            same = ("local", inp.local)
        await self._current(inp, progress)
        path = self.root / "packages.yml"
        dependencies = self.root / "dependencies.yml"
        if not path.exists() and dependencies.exists() and "packages:" in (read_text(dependencies) or ""):
            path = dependencies
        plan = Plan(next_step="dbt_build (the package's models and macros are now available)")
        doc = yaml_props.load(plan.pending(path), path.name)
        packages = doc.data.get("packages")
        if packages is None:
            doc.data["packages"] = yaml_props.to_yaml([])
            packages = doc.data["packages"]
        if "version" in doc.data and doc.data.get("version") == 2 and path.name == "packages.yml":
            del doc.data["version"]
        replaced = False
        for n, existing in enumerate(packages):
            if isinstance(existing, dict) and existing.get(same[0]) == same[1]:
                packages[n] = yaml_props.to_yaml(entry)
                replaced = True
        if not replaced:
            packages.append(yaml_props.to_yaml(entry))
        plan.write(path, doc.dump())
        lock = self.root / "package-lock.yml"
        plan.write(lock, read_text(lock))  # kept as it is now, so that a failed install puts it back
        diffs = plan_diffs(self.root, plan.changes)
        files = [FileOut(path=d.path, action=d.action, diff=d.diff or None) for d in diffs if d.path != lock.name]
        if inp.dry_run:
            return AuthoringResult(tool="dbt_package", dry_run=True, files=files, validated="not run (dry run)", next_step=plan.next_step)
        changes = [c for c, d in zip(plan.changes, diffs) if d.action != "unchanged" or c.path == lock]
        applied = apply(changes)
        try:
            reply = await self.engine.invoke(["deps"], timeout=self._timeout(inp), progress=progress, reuse_manifest=False)
            if not reply.success:
                error = reply.payload.get("exception") or {}
                raise ToolFailure("dbt_deps_failed", f"dbt deps failed: {error.get('message', 'see the server log')}",
                                  "Check the package name, version or path (and network access for hub/git packages).")
            after = await self.index(self._timeout(inp), progress)
        except BaseException as exc:
            applied.rollback()
            if isinstance(exc, ToolFailure):
                raise ToolFailure(exc.code, f"{exc.message} — packages.yml was put back as it was.", exc.hint, exc.details) from None
            raise
        adapters = {f"dbt_{name}" for name in DIALECTS}
        installed = sorted({m["package"] for m in after.raw.get("macros", [])} - {"dbt", after.project_name or ""} - adapters)
        return AuthoringResult(tool="dbt_package", dry_run=False, files=files, validated="deps+parse",
                               notes=[f"packages installed: {', '.join(installed) or 'none'}"], next_step=plan.next_step)

    # -- seeds and snapshots (the authoring forms of dbt_seed and dbt_snapshot) --------------------------------
    async def seed(self, inp: Any, progress: ProgressReporter, finish: Callable[[], Awaitable[None]] | None = None) -> AuthoringResult:
        name = inp.name
        rules.check_name(name, "Seed")
        if (inp.rows is None) == (inp.csv is None):
            raise ToolFailure("invalid_input", "Give the seed's data as rows or as csv (one of them).", "e.g. rows=[{'code': 'GB', 'name': 'United Kingdom'}].")
        try:
            text, header = render.seed_csv(inp.rows, inp.csv)
        except ValueError as exc:
            raise ToolFailure("invalid_csv", f"The seed data is not a usable CSV: {exc}.", "Give a header row and the same number of fields on every line.") from None
        if not header or any(not rules.NAME.match(h) for h in header):
            raise ToolFailure("invalid_csv", f"Seed column names must be snake_case identifiers; got {header}.", "Rename the header columns.")
        unknown = set(inp.column_types or {}) - set(header)
        if unknown:
            raise ToolFailure("column_not_found", f"column_types names {sorted(unknown)}, which are not in the CSV header {header}.", "Type the CSV's columns.")
        layout, index = await self._current(inp, progress)
        if index.node(name) is not None:
            raise ToolFailure("duplicate_name", f"{index.node(name)['resource_type']} {name} already exists.", "Pick another name.")  # type: ignore[index]
        folder = project_path(self.root, layout.seed_paths[0])
        csv_path = project_path(self.root, folder / f"{name}.csv")
        if csv_path.exists():
            raise ToolFailure("duplicate_name", f"{csv_path.relative_to(self.root)} already exists.", "Pick another name.")
        plan = Plan(next_step=f"dbt_seed select='{name}'" if not inp.load else f"dbt_build select='{name}+'")
        plan.write(csv_path, text)
        props = properties_file(folder, "seeds", "_seeds.yml")
        doc = yaml_props.load(plan.pending(props), props.relative_to(self.root).as_posix())
        entry: dict[str, Any] = {"name": name}
        if inp.description:
            entry["description"] = inp.description
        if inp.column_types:
            entry["config"] = {"column_types": dict(inp.column_types)}
        yaml_props.merge_entry(yaml_props.section(doc, "seeds"), entry)
        plan.write(props, doc.dump())
        plan.expect = self._expect_nodes([name], ("seed",))
        plan.finish = finish
        return await self.commit("dbt_seed", plan, inp, progress)

    async def snapshot(self, inp: Any, progress: ProgressReporter) -> AuthoringResult:
        name = inp.name
        rules.check_name(name, "Snapshot")
        if not inp.relation or not inp.unique_key:
            raise ToolFailure("invalid_input", "A snapshot needs relation and unique_key.", "e.g. relation='raw.customers', unique_key='customer_id'.")
        strategy = inp.strategy or "timestamp"
        if strategy == "timestamp" and not inp.updated_at:
            raise ToolFailure("invalid_input", "The timestamp strategy needs updated_at.", "Give the column that changes when the row changes, or use strategy='check'.")
        if strategy == "check" and not inp.check_cols:
            raise ToolFailure("invalid_input", "The check strategy needs check_cols (a list, or 'all').", "e.g. check_cols=['email', 'city'].")
        layout, index = await self._current(inp, progress)
        if index.node(name) is not None:
            raise ToolFailure("duplicate_name", f"{index.node(name)['resource_type']} {name} already exists.", "Pick another name.")  # type: ignore[index]
        relation, _kind = relation_jinja(inp.relation, index)
        self._check_relations(relation, index)
        config: dict[str, Any] = {"schema": inp.target_schema or "snapshots", "unique_key": inp.unique_key, "strategy": strategy}
        if strategy == "timestamp":
            config["updated_at"] = inp.updated_at
        else:
            config["check_cols"] = inp.check_cols
        config["hard_deletes"] = inp.hard_deletes or "invalidate"
        entry: dict[str, Any] = {"name": name}
        if inp.description:
            entry["description"] = inp.description
        entry["relation"] = relation
        entry["config"] = config
        folder = project_path(self.root, layout.snapshot_paths[0])
        path = project_path(self.root, folder / f"{name}.yml")
        if path.exists():
            raise ToolFailure("duplicate_name", f"{path.relative_to(self.root)} already exists.", "Pick another name.")
        plan = Plan(next_step=f"dbt_snapshot select='{name}', then dbt_show with a where dbt_valid_to is null (current rows)",
                    notes=[f"hard_deletes: {config['hard_deletes']} (rows deleted at the source get dbt_valid_to set)"
                           if config["hard_deletes"] == "invalidate" else f"hard_deletes: {config['hard_deletes']}"])
        doc = yaml_props.load(None, path.name)
        yaml_props.merge_entry(yaml_props.section(doc, "snapshots"), entry)
        plan.write(path, doc.dump())
        plan.expect = self._expect_nodes([name], ("snapshot",))
        return await self.commit("dbt_snapshot", plan, inp, progress)
