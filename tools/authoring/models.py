"""dbt_model and incremental_model."""

from __future__ import annotations

from typing import Any

from server.errors import ToolFailure
from server.registration import ProgressReporter
from tools.authoring import render, rules, tests_catalog
from tools.authoring.files import project_path
from tools.authoring.inputs import (
    ColumnSpec,
    IncrementalInput,
    ModelBody,
    ModelInput,
)
from tools.authoring.plan import Plan, properties_file
from tools.authoring.project import ProjectIndex
from tools.authoring.properties import PropertiesAuthoring
from tools.authoring.results import AuthoringResult


class ModelAuthoring(PropertiesAuthoring):
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
        unchecked: list[tuple[str, str]] = []  # named columns the text cannot confirm (a star): checked after compiling
        columns = []
        extra_column_tests = dict(extra_column_tests or {})
        for column in inp.columns:
            if column.name not in known and not shape.star:
                raise ToolFailure("column_not_found", f"Column {column.name} is not in {name}'s final select ({', '.join(shape.columns)}).",
                                  "Document and test the columns the model outputs.")
            if shape.star:
                unchecked.append((column.name, "documented"))
            specs = list(column.tests) + extra_column_tests.pop(column.name, [])
            columns.append((column, self._test_entries(plan, layout, index, specs, column.name)))
        for column_name, specs in extra_column_tests.items():
            if column_name not in known and not shape.star:
                raise ToolFailure("column_not_found", f"unique_key column {column_name} is not in {name}'s final select.", "Select it.")
            if shape.star:
                unchecked.append((column_name, "unique_key"))
            columns.append((ColumnSpec(name=column_name), self._test_entries(plan, layout, index, specs, column_name)))
        model_tests = self._test_entries(plan, layout, index, list(inp.tests) + list(extra_model_tests or []), None)
        plan.write(sql_path, sql)
        props = properties_file(folder, "models", f"_{layer}__models.yml")
        self._model_properties(plan, props, "models", name, inp.description, columns, model_tests)
        plan.expect = self._expect_nodes([name])
        uid = f"model.{index.project_name}.{name}"

        async def against_the_data() -> None:
            """After parse and compile: the real output has the columns the call names, and the database accepts the query."""
            if unchecked:
                plan.notes += await self.require_columns(uid, name, unchecked)
            plan.notes += await self.zero_row_check(name)

        plan.finish = against_the_data
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
            if inp.config.get(key) is not None:
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
        if isinstance(inp.config.get("partition_by"), dict) and (await self._current(inp, progress))[1].raw.get("adapter_type") == "duckdb":
            raise ToolFailure("adapter_option_invalid", "dbt-duckdb takes partition_by as a column or a list of columns (used by DuckLake "
                              "tables, ignored with a warning elsewhere); the {'field': ..., 'data_type': ...} form is BigQuery's and fails the build.",
                              "Pass partition_by='order_date' (or a list), or leave it out on DuckDB.")
        return await self._author_model("incremental_model", inp, inp.name, inp.layer, config, progress,
                                        incremental=None if has_filter else (inp.updated_at or "", inp.incremental_strategy),
                                        extra_column_tests=column_tests, extra_model_tests=model_tests, notes=notes)

