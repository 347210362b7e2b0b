"""data_quality_test: tests on a model's columns or on the model, merged into its properties file."""

from __future__ import annotations

from pathlib import Path

from server.errors import ToolFailure
from server.registration import ProgressReporter
from tools.authoring.files import project_path
from tools.authoring.inputs import (
    ColumnSpec,
    DataQualityInput,
)
from tools.authoring.plan import Plan, properties_file
from tools.authoring.properties import PropertiesAuthoring
from tools.authoring.results import AuthoringResult


class DataTestAuthoring(PropertiesAuthoring):
    async def data_quality_test(self, inp: DataQualityInput, progress: ProgressReporter) -> AuthoringResult:
        if not inp.columns and not inp.tests:
            raise ToolFailure("invalid_input", "No tests given.", "Give columns=[{'column': 'order_id', 'tests': ['unique', 'not_null']}] or model tests.")
        layout, index = await self._current(inp, progress)
        node = index.node(inp.model)
        if node is None:
            raise ToolFailure("model_not_found", f"No model, seed or snapshot named {inp.model}.", "Call dbt_list to see the names.")
        known = await self.real_columns(node["unique_id"])
        notes = []
        if known is None:
            notes.append(f"could not tell {inp.model}'s columns (it does not compile to known columns, is not built, has no catalog): column names not checked")
        plan = Plan(notes=notes, next_step=f"dbt_test select='{inp.model}'")
        columns = []
        for item in inp.columns:
            if known is not None and item.column.lower() not in {c.lower() for c in known}:
                raise ToolFailure("column_not_found", f"{inp.model} has no column {item.column} (it has: {', '.join(known)}).",
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

