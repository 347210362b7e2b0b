"""The authoring forms of dbt_seed and dbt_snapshot (they live in the dbt toolset's table, since without a name
they load seeds and run snapshots)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from server.errors import ToolFailure
from server.registration import ProgressReporter
from tools.authoring import render, rules, yaml_props
from tools.authoring.files import project_path
from tools.authoring.plan import Plan, properties_file, relation_jinja
from tools.authoring.properties import PropertiesAuthoring
from tools.authoring.results import AuthoringResult


class SeedSnapshotAuthoring(PropertiesAuthoring):
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
        existing = index.node(name)
        if existing is not None and not (inp.replace and existing["resource_type"] == "snapshot"):
            raise ToolFailure("duplicate_name", f"{existing['resource_type']} {name} already exists ({existing['path']}).",
                              "Pick another name" + (", or pass replace=true to redefine it (validated like a new one; rolled back on failure)."
                                                     if existing["resource_type"] == "snapshot" else "."))
        if existing is not None and not str(existing["path"]).endswith((".yml", ".yaml")):
            raise ToolFailure("invalid_input", f"snapshot {name} is a {{% snapshot %}} block in {existing['path']}; replace redefines YAML snapshots only.",
                              "Edit that file, or delete it and define the snapshot again.")
        relation, _kind = relation_jinja(inp.relation, index)
        found = self._check_relations(relation, index)
        read_from = (index.sources[found.sources[0]] if found.sources else index.node(found.refs[0]) if found.refs else None)
        keys = [inp.unique_key] if isinstance(inp.unique_key, str) else list(inp.unique_key)
        wanted = [(k, "unique_key") for k in keys]
        wanted += [(inp.updated_at, "updated_at")] if strategy == "timestamp" else [(c, "check_cols") for c in inp.check_cols if inp.check_cols != "all"]
        column_notes = await self.require_columns(read_from["unique_id"], inp.relation, wanted) if read_from else []
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
        path = project_path(self.root, existing["path"] if existing is not None else folder / f"{name}.yml")
        if existing is None and path.exists():
            raise ToolFailure("duplicate_name", f"{path.relative_to(self.root)} already exists.", "Pick another name.")
        plan = Plan(next_step=f"dbt_snapshot select='{name}', then dbt_show with a where dbt_valid_to is null (current rows)",
                    notes=[f"hard_deletes: {config['hard_deletes']} (rows deleted at the source get dbt_valid_to set)"
                           if config["hard_deletes"] == "invalidate" else f"hard_deletes: {config['hard_deletes']}", *column_notes])
        if existing is not None:
            plan.notes.append(f"replaces the definition in {existing['path']} (its table keeps its history; a changed "
                              "unique_key or strategy may need dbt_snapshot with full_refresh)")
        doc = yaml_props.load(plan.pending(path) if existing is not None else None, path.name)
        yaml_props.replace_entry(yaml_props.section(doc, "snapshots"), entry)
        plan.write(path, doc.dump())
        plan.expect = self._expect_nodes([name], ("snapshot",))
        return await self.commit("dbt_snapshot", plan, inp, progress)

