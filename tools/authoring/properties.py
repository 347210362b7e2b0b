"""Properties entries (descriptions, columns, tests) that models, seeds and tests write into YAML."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tools.authoring import tests_catalog, yaml_props
from tools.authoring.base import AuthoringBase
from tools.authoring.files import project_path
from tools.authoring.inputs import (
    ColumnSpec,
)
from tools.authoring.plan import Plan, relation_jinja
from tools.authoring.project import ProjectIndex, ProjectLayout


class PropertiesAuthoring(AuthoringBase):
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
    def _merge_tests(entry: Any, tests: list[tuple[str, Any]], spelling: str = "data_tests") -> None:
        """Add tests to a model or column entry; a test of the same kind is replaced, the others stay."""
        key = "tests" if "tests" in entry and "data_tests" not in entry else "data_tests" if "data_tests" in entry else spelling
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
        text = plan.pending(path) or ""
        spelling = "tests" if re.search(r"^[ -]*tests:", text, re.M) and not re.search(r"^[ -]*data_tests:", text, re.M) else "data_tests"
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
                    self._merge_tests(existing, tests, spelling)
        if model_tests:
            self._merge_tests(entry, model_tests, spelling)
        plan.write(path, doc.dump())

