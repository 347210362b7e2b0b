"""Inputs of the memory tools (pydantic models at the MCP boundary)."""

from __future__ import annotations

from pydantic import Field

from server.inputs import StrictInput


class MemoryMetadata(StrictInput):
    key: str = Field(description="'{agent}/{project}/{data_type}'.",
                     examples=["dbt-analytics-engineer/shop/fct-orders-config"])
    namespace: str | None = Field(default=None, description="Free grouping.")
    layer: str | None = Field(default=None, description="short_term (24 h), mid_term (30 d), long_term (default).")
    category: str | None = Field(default=None, description="e.g. testing-pattern.")
    project: str | None = Field(default=None, description="dbt project.")
    agent: str | None = Field(default=None, description="Who learned it.")
    intent: str | None = Field(default=None, description="Why stored.")


class MemoryItem(StrictInput):
    text: str = Field(description="What to remember.")
    metadata: MemoryMetadata = Field(description="Key and metadata.")


class StoreInput(StrictInput):
    text: str | None = Field(default=None, description="Use with metadata.")
    metadata: MemoryMetadata | None = Field(default=None, description="Key and metadata.")
    key: str | None = Field(default=None, description="Short form: key (with value).")
    value: str | None = Field(default=None, description="Short form: text (with key).")
    items: list[MemoryItem] | None = Field(default=None, description="Batch form.")


class Filters(StrictInput):
    key: str | None = Field(default=None, description="'*' matches one segment.")
    namespace: str | None = Field(default=None, description="Exact namespace.")
    layer: str | None = Field(default=None, description="short_term, mid_term or long_term.")
    category: str | None = Field(default=None, description="Exact category.")
    project: str | None = Field(default=None, description="Exact project.")
    agent: str | None = Field(default=None, description="Exact agent.")


class SearchInput(StrictInput):
    query: str = Field(description="Words or dbt names.", examples=["incremental model with merge strategy"])
    limit: int = Field(default=5, ge=1, le=50, description="Most hits.")
    filters: Filters | None = Field(default=None, description="Key pattern and metadata.")
    min_score: float | None = Field(default=None, description="Drop hits below (cosine + 0.35 x name match).")


class RetrieveInput(StrictInput):
    key: str = Field(description="Key or pattern, e.g. 'dbt-analytics-engineer/*/testing-patterns'.", examples=["dbt-analytics-engineer/*/testing-patterns"])
    cursor: str | None = Field(default=None, description="next_cursor of the previous page.")
    limit: int = Field(default=20, ge=1, le=200, description="Page size; sorted by key.")


class DeleteInput(StrictInput):
    key: str = Field(description="Exact key or pattern with '*' segments.")
    dry_run: bool = Field(default=True, description="Only list what would go.")


class ListInput(StrictInput):
    filters: Filters | None = Field(default=None, description="Metadata filters.")
    cursor: str | None = Field(default=None, description="next_cursor of the previous page.")
    limit: int = Field(default=50, ge=1, le=500, description="Page size.")


class StatsInput(StrictInput):
    pass
