"""exposure_define: an exposure with its models, owner, maturity and url."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server.errors import ToolFailure
from server.registration import ProgressReporter
from tools.authoring import rules, yaml_props
from tools.authoring.base import AuthoringBase
from tools.authoring.files import project_path
from tools.authoring.inputs import (
    ExposureInput,
)
from tools.authoring.plan import Plan, properties_file, relation_jinja
from tools.authoring.results import AuthoringResult


class ExposureAuthoring(AuthoringBase):
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

