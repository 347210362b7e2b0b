"""Structured content leaves out nulls and defaults (issue 14), and the SDK validates it against each tool's output
model before it is sent: a field that may be null must therefore have a default, or a tool fails when it is null."""

from __future__ import annotations

import importlib
import inspect
import typing

from pydantic import BaseModel

from server.registration import ToolResult

TOOLSETS = ["tools.dbt.tools", "tools.authoring.tools", "tools.quality.tools", "tools.lineage.tools", "memory.tools"]


def models_of(model: type[BaseModel], seen: set[type[BaseModel]]) -> None:
    if model in seen:
        return
    seen.add(model)
    for field in model.model_fields.values():
        stack = [field.annotation]
        while stack:
            kind = stack.pop()
            if inspect.isclass(kind) and issubclass(kind, BaseModel):
                models_of(kind, seen)
            stack.extend(typing.get_args(kind))


def test_no_result_field_is_required_and_nullable() -> None:
    seen: set[type[BaseModel]] = set()
    for module in TOOLSETS:
        for spec in importlib.import_module(module).TOOLS:
            assert issubclass(spec.output_model, ToolResult)
            models_of(spec.output_model, seen)
    assert len(seen) > 20
    bad = [f"{model.__name__}.{name}" for model in seen for name, field in model.model_fields.items()
           if field.is_required() and type(None) in typing.get_args(field.annotation)]
    assert bad == [], f"give these a default (None): {bad}"
