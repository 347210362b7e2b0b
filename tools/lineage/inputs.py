"""Inputs of the lineage tools (pydantic models at the MCP boundary)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from server.inputs import StrictInput
from server.schemas import KEEP_DESCRIPTION
from tools.lineage.graph import TYPES


class LineageInput(StrictInput):
    model: str = Field(description="Node name, 'source.table' or unique_id.", examples=["fct_orders"])
    upstream: int = Field(default=2, ge=0, le=50, description="Parent hops.")
    downstream: int = Field(default=1, ge=0, le=50, description="Child hops.")
    resource_types: list[Literal[TYPES]] | None = Field(default=None, description="Only show these types (others are walked through).")  # type: ignore[valid-type]
    format: Literal["png", "svg", "mermaid", "structured"] = Field(default="png", description="Picture; structured: none.")


class TrackInput(StrictInput):
    filepath: str = Field(description="Project-relative file.", examples=["models/marts/fct_orders.sql"])
    content: str | None = Field(default=None, description="Default: the file now.")


class AnalyzeChangesInput(StrictInput):
    filepath: str | None = Field(default=None, description="One tracked file (default: all).")
    target: str | None = Field(default=None, description="Intended scope: 'cte:x', 'column:x', 'config' or a name.",
                               json_schema_extra={KEEP_DESCRIPTION: True})  # not a dbt target


class ColumnLineageInput(StrictInput):
    model: str = Field(description="Model, seed, snapshot or source.", examples=["fct_orders"])
    column: str = Field(description="Column name.", examples=["order_total"])
    direction: Literal["upstream", "downstream", "both"] = Field(default="upstream", description="Trace direction.")
    depth: int = Field(default=3, ge=1, le=20, description="Model hops to follow.")


class StopInput(StrictInput):
    filepath: str = Field(description="The tracked file to forget.")
