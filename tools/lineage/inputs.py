"""Inputs of the lineage tools (pydantic models at the MCP boundary)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from server.inputs import StrictInput
from tools.lineage.graph import TYPES


class LineageInput(StrictInput):
    model: str = Field(description="A model, seed, snapshot or exposure name, 'source_name.table', or a unique_id.", examples=["fct_orders"])
    upstream: int = Field(default=2, ge=0, le=50, description="Parent hops to include.")
    downstream: int = Field(default=1, ge=0, le=50, description="Child hops to include.")
    resource_types: list[Literal[TYPES]] | None = Field(default=None, description="Only show these types (others are walked through).")  # type: ignore[valid-type]
    format: Literal["structured", "mermaid", "image"] = Field(
        default="mermaid", description="structured: nodes+edges only; mermaid: plus a Mermaid diagram; image: plus an SVG picture (MCP image content).")


class TrackInput(StrictInput):
    filepath: str = Field(description="The file to track, relative to the project.", examples=["models/marts/fct_orders.sql"])
    content: str | None = Field(default=None, description="The baseline text; default: the file as it is now.")


class AnalyzeChangesInput(StrictInput):
    filepath: str | None = Field(default=None, description="One tracked file; default: every tracked file.")
    target: str | None = Field(default=None, description="What the change is meant to touch: 'cte:orders', 'column:order_total', 'config', or a name.")


class ColumnLineageInput(StrictInput):
    model: str = Field(description="The model (or seed/snapshot) whose column to trace.", examples=["fct_orders"])
    column: str = Field(description="The column.", examples=["order_total"])
    direction: Literal["upstream", "downstream", "both"] = Field(default="upstream", description="Where the values come from, where they go, or both.")
    depth: int = Field(default=3, ge=1, le=20, description="Model hops to follow.")


class StopInput(StrictInput):
    filepath: str = Field(description="The tracked file to forget.")
