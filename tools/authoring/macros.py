"""dbt_macro: a macro file and its properties entry."""

from __future__ import annotations

import re
from typing import Any

from server.errors import ToolFailure
from server.registration import ProgressReporter
from tools.authoring import render, rules, yaml_props
from tools.authoring.base import AuthoringBase
from tools.authoring.files import project_path
from tools.authoring.inputs import (
    MacroInput,
)
from tools.authoring.plan import Plan, properties_file
from tools.authoring.results import AuthoringResult

PARAMETER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\s*=\s*.+)?$")


class MacroAuthoring(AuthoringBase):
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

