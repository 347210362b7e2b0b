"""Inputs of the authoring tools (pydantic models at the MCP boundary)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from server.inputs import StrictInput
from tools.dbt.inputs import check_identifiers

TestSpec = str | dict[str, Any]


class AuthoringInput(StrictInput):
    dry_run: bool = Field(default=False, description="Diff only, no write.")
    timeout_seconds: float | None = Field(default=None, gt=0, le=3600, description="Seconds before giving up.")


class DocumentedColumn(StrictInput):
    """A column as properties YAML documents and tests it (a source table's columns)."""

    name: str = Field(description="Column name.")
    description: str | None = Field(default=None, description="Docs.")
    data_type: str | None = Field(default=None, description="SQL type.")
    tests: list[TestSpec] = Field(default_factory=list, description="'unique' or {'accepted_values': {...}}.")


class ColumnSpec(DocumentedColumn):
    """A model's output column: documented, tested, and (with expression) generated."""

    expression: str | None = Field(default=None, description="e.g. cast(id as int).")


class ModelBody(AuthoringInput):
    sql: str | None = Field(default=None, description="Or columns + from_source/from_ref.")
    from_source: str | None = Field(default=None, description="'source.table' to read.", examples=["raw.orders"])
    from_ref: str | None = Field(default=None, description="Node to read.", examples=["stg_orders"])
    columns: list[ColumnSpec] = Field(default_factory=list, description="Select list, docs, tests.")
    description: str | None = Field(default=None, description="Docs.")
    tests: list[TestSpec] = Field(default_factory=list, description="Model-level tests.")
    config: dict[str, Any] = Field(default_factory=dict, description="Extra config() keys.")


class ModelInput(ModelBody):
    name: str = Field(description="With layer prefix: stg_, int_, fct_, dim_.", examples=["stg_orders"])
    layer: Literal["staging", "intermediate", "marts"] | str = Field(description="Folder and rules.")
    materialization: Literal["view", "table", "incremental", "ephemeral"] | None = Field(
        default=None, description="Default: the folder's.")


class IncrementalInput(ModelBody):
    name: str = Field(description="fct_, dim_ or int_ name.", examples=["fct_orders"])
    layer: Literal["staging", "intermediate", "marts"] | str = Field(default="marts", description="Folder.")
    unique_key: str | list[str] | None = Field(default=None, description="Row key (merge, delete+insert).", examples=["order_id"])
    incremental_strategy: Literal["merge", "append", "delete+insert"] = Field(default="merge", description="How rows are applied.")
    updated_at: str | None = Field(default=None, description="Column marking new/changed rows.",
                                   examples=["updated_at"])
    on_schema_change: Literal["ignore", "append_new_columns", "sync_all_columns", "fail"] = Field(
        default="append_new_columns", description="On new upstream columns.")

    @field_validator("unique_key", "updated_at")
    @classmethod
    def _identifiers(cls, value: Any) -> Any:
        return check_identifiers(value)


class FreshnessSpec(StrictInput):
    warn_after: dict[str, Any] | None = Field(default=None, description="{'count': 12, 'period': 'hour'}")
    error_after: dict[str, Any] | None = Field(default=None)


class SourceTableSpec(StrictInput):
    name: str = Field(description="As in source(.., '<name>').", examples=["orders"])
    identifier: str | None = Field(default=None, description="Warehouse name, if different.")
    description: str | None = Field(default=None, description="Docs.")
    loaded_at_field: str | None = Field(default=None, description="Overrides the source's.")
    freshness: FreshnessSpec | None = Field(default=None, description="Overrides the source's.")
    no_freshness: bool = Field(default=False, description="No freshness check.")
    columns: list[DocumentedColumn] = Field(default_factory=list)


class SourceInput(AuthoringInput):
    name: str = Field(description="As in source('<name>', 'table').", examples=["raw"])
    schema_name: str | None = Field(default=None, description="Default: the source name.")
    database: str | None = Field(default=None, description="If not the target's.")
    description: str | None = Field(default=None, description="Docs.")
    loader: str | None = Field(default=None, description="e.g. fivetran.")
    loaded_at_field: str | None = Field(default=None, description="Timestamp column for freshness.", examples=["updated_at"])
    freshness: FreshnessSpec | None = Field(default=None, description="For every table.")
    tables: list[SourceTableSpec] = Field(description="Merged by name.")


class MacroInput(AuthoringInput):
    name: str = Field(description="Macro name.", examples=["cents_to_dollars"])
    parameters: list[str] = Field(default_factory=list, description="e.g. ['column_name', 'scale=2'].")
    body: str = Field(description="Jinja/SQL between macro and endmacro.")
    description: str | None = Field(default=None, description="Docs.")
    argument_descriptions: dict[str, str] = Field(default_factory=dict, description="Per parameter name.")


class ColumnTests(StrictInput):
    column: str = Field(description="Column name.")
    tests: list[TestSpec] = Field(description="Its tests.")


class DataQualityInput(AuthoringInput):
    model: str = Field(description="Model, seed or snapshot.", examples=["fct_orders"])
    columns: list[ColumnTests] = Field(default_factory=list, description="Column tests.")
    tests: list[TestSpec] = Field(default_factory=list, description="Model tests: unique_combination_of_columns, recency, equal_rowcount.")
    use_dbt_utils: bool | None = Field(default=None, description="Default: when installed.")


class OwnerSpec(StrictInput):
    name: str | None = Field(default=None, description="Name or team.")
    email: str | None = Field(default=None, description="Email.")


class ExposureInput(AuthoringInput):
    name: str = Field(description="snake_case name.", examples=["revenue_dashboard"])
    type: Literal["dashboard", "notebook", "analysis", "ml", "application"] = Field(description="Consumer kind.")
    maturity: Literal["high", "medium", "low"] | None = Field(default=None, description="How settled it is.")
    url: str | None = Field(default=None, description="Link.")
    description: str | None = Field(default=None, description="What it shows and who uses it.")
    label: str | None = Field(default=None, description="Display name.")
    depends_on: list[str] = Field(description="Names, ref() or source().", examples=[["fct_orders", "dim_customers"]])
    owner: OwnerSpec = Field(description="name and/or email.")


class PackageInput(AuthoringInput):
    name: str | None = Field(default=None, description="Hub package, e.g. 'dbt-labs/dbt_utils' (with version).")
    version: str | list[str] | None = Field(default=None, description="e.g. '1.3.0' or ['>=1.0.0', '<2.0.0'].")
    git: str | None = Field(default=None, description="Git URL (with revision).")
    revision: str | None = Field(default=None, description="Tag, branch or commit.")
    local: str | None = Field(default=None, description="Package folder, project-relative or absolute.")
