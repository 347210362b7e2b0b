"""dbt_source: define or extend a source in the project's sources YAML."""

from __future__ import annotations

import re
from typing import Any

from server.errors import ToolFailure
from server.registration import ProgressReporter
from tools.authoring import render, rules, yaml_props
from tools.authoring.files import project_path
from tools.authoring.inputs import (
    FreshnessSpec,
    SourceInput,
)
from tools.authoring.plan import Plan, properties_file
from tools.authoring.project import ProjectIndex
from tools.authoring.properties import PropertiesAuthoring
from tools.authoring.results import AuthoringResult

PERIODS = ("minute", "hour", "day")


class SourceAuthoring(PropertiesAuthoring):
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

        async def against_the_data() -> None:
            """Each table's loaded_at_field and declared columns exist in the warehouse (when the table is there)."""
            for table in inp.tables:
                field = table.loaded_at_field or inp.loaded_at_field
                wanted = [(field, "loaded_at_field")] if field and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", field) else []
                wanted += [(c.name, "column") for c in table.columns]
                if wanted:
                    uid = f"source.{index.project_name}.{inp.name}.{table.name}"
                    plan.notes += await self.require_columns(uid, f"source {inp.name}.{table.name}", wanted)

        plan.finish = against_the_data
        return await self.commit("dbt_source", plan, inp, progress)

