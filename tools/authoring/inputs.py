"""Inputs of the authoring tools (pydantic models at the MCP boundary)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from server.inputs import StrictInput
from tools.dbt.inputs import check_identifiers

TestSpec = str | dict[str, Any]


class AuthoringInput(StrictInput):
    dry_run: bool = Field(default=False, description="Return the planned files and a diff; write nothing.")
    timeout_seconds: float | None = Field(default=None, gt=0, le=3600, description="Limit for the dbt validation of this call.")


class ColumnSpec(StrictInput):
    name: str = Field(description="Output column name.", examples=["order_id"])
    expression: str | None = Field(default=None, description="SQL for the column when it is not selected as is, e.g. 'cast(id as integer)'.")
    description: str | None = Field(default=None, description="Column description for the docs.")
    data_type: str | None = Field(default=None, description="Declared data type (documentation, and contracts when enforced).")
    tests: list[TestSpec] = Field(default_factory=list, description="Column tests: 'unique', 'not_null', {'accepted_values': {'values': [...]}}, "
                                  "{'relationships': {'to': \"ref('dim_customers')\", 'field': 'customer_id'}}, {'accepted_range': {'min_value': 0}}.")


class ModelBody(AuthoringInput):
    sql: str | None = Field(default=None, description="The model's SQL (Jinja with ref()/source() allowed). Or give columns + from_source/from_ref.")
    from_source: str | None = Field(default=None, description="Generate the SQL reading this source table, 'source_name.table'.", examples=["raw.orders"])
    from_ref: str | None = Field(default=None, description="Generate the SQL reading this model/seed/snapshot.", examples=["stg_orders"])
    columns: list[ColumnSpec] = Field(default_factory=list, description="Output columns: generate the select list from them, and document/test them.")
    description: str | None = Field(default=None, description="Model description for the docs.")
    tests: list[TestSpec] = Field(default_factory=list, description="Model-level tests, e.g. {'unique_combination_of_columns': {'combination_of_columns': ['a', 'b']}}.")
    config: dict[str, Any] = Field(default_factory=dict, description="Extra config() keys, passed through as written (adapter-specific ones included).")


class ModelInput(ModelBody):
    name: str = Field(description="Model name, prefixed by layer: stg_, int_, fct_ or dim_.", examples=["stg_orders"])
    layer: Literal["staging", "intermediate", "marts"] | str = Field(description="staging, intermediate or marts: the folder and the rules.")
    materialization: Literal["view", "table", "incremental", "ephemeral"] | None = Field(
        default=None, description="Written into config(); default: the folder's configuration in dbt_project.yml.")


class IncrementalInput(ModelBody):
    name: str = Field(description="Model name (fct_, dim_ or int_ prefix).", examples=["fct_orders"])
    layer: Literal["staging", "intermediate", "marts"] | str = Field(default="marts", description="Folder and rules (default marts).")
    unique_key: str | list[str] | None = Field(default=None, description="Column(s) identifying a row; required for merge and delete+insert.", examples=["order_id"])
    incremental_strategy: Literal["merge", "append", "delete+insert"] = Field(default="merge", description="How new rows are applied.")
    updated_at: str | None = Field(default=None, description="Column whose increase marks a new or changed row; drives the is_incremental() filter.",
                                   examples=["updated_at"])
    on_schema_change: Literal["ignore", "append_new_columns", "sync_all_columns", "fail"] = Field(
        default="append_new_columns", description="What a new upstream column does to the existing table.")
    partition_by: dict[str, Any] | str | None = Field(default=None, description="Adapter-specific (BigQuery, Databricks, Spark): passed through to config().")
    cluster_by: list[str] | str | None = Field(default=None, description="Adapter-specific (BigQuery, Snowflake): passed through to config().")

    @field_validator("unique_key", "updated_at")
    @classmethod
    def _identifiers(cls, value: Any) -> Any:
        return check_identifiers(value)


class FreshnessSpec(StrictInput):
    warn_after: dict[str, Any] | None = Field(default=None, description="{'count': 12, 'period': 'hour'}")
    error_after: dict[str, Any] | None = Field(default=None, description="{'count': 24, 'period': 'hour'}")


class SourceTableSpec(StrictInput):
    name: str = Field(description="Table name as dbt refers to it.", examples=["orders"])
    identifier: str | None = Field(default=None, description="The table's real name in the warehouse, when it differs.")
    description: str | None = Field(default=None, description="Table description for the docs.")
    loaded_at_field: str | None = Field(default=None, description="Overrides the source's loaded_at_field.")
    freshness: FreshnessSpec | None = Field(default=None, description="Overrides the source's freshness.")
    no_freshness: bool = Field(default=False, description="Reference data: never checked for freshness.")
    columns: list[ColumnSpec] = Field(default_factory=list)


class SourceInput(AuthoringInput):
    name: str = Field(description="Source name, as in source('<name>', 'table').", examples=["raw"])
    schema_name: str | None = Field(default=None, description="Warehouse schema of the tables (default: the source name).")
    database: str | None = Field(default=None, description="Warehouse database, when not the target's.")
    description: str | None = Field(default=None, description="Source description for the docs.")
    loader: str | None = Field(default=None, description="What loads the tables (e.g. fivetran), for the docs.")
    loaded_at_field: str | None = Field(default=None, description="Timestamp column used for freshness.", examples=["updated_at"])
    freshness: FreshnessSpec | None = Field(default=None, description="warn_after / error_after for every table.")
    tables: list[SourceTableSpec] = Field(description="Tables of the source (merged into an existing definition by name).")


class MacroInput(AuthoringInput):
    name: str = Field(description="Macro name.", examples=["cents_to_dollars"])
    parameters: list[str] = Field(default_factory=list, description="Parameters, with defaults where wanted: ['column_name', 'scale=2'].")
    body: str = Field(description="The macro body (Jinja/SQL between macro and endmacro).")
    description: str | None = Field(default=None, description="Macro description for the docs.")
    argument_descriptions: dict[str, str] = Field(default_factory=dict, description="Description per parameter name.")


class ColumnTests(StrictInput):
    column: str = Field(description="The model column to test.")
    tests: list[TestSpec] = Field(description="Tests for the column.")


class DataQualityInput(AuthoringInput):
    model: str = Field(description="The model (or seed/snapshot) to test.", examples=["fct_orders"])
    columns: list[ColumnTests] = Field(default_factory=list, description="Column tests.")
    tests: list[TestSpec] = Field(default_factory=list, description="Model-level tests: unique_combination_of_columns, recency, equal_rowcount.")
    use_dbt_utils: bool | None = Field(default=None, description="Use dbt_utils' tests (when installed) instead of the shipped ones; default: when installed.")


class OwnerSpec(StrictInput):
    name: str | None = Field(default=None, description="Owner's name or team.")
    email: str | None = Field(default=None, description="Owner's email.")


class ExposureInput(AuthoringInput):
    name: str = Field(description="Exposure name.", examples=["revenue_dashboard"])
    type: Literal["dashboard", "notebook", "analysis", "ml", "application"] = Field(description="What consumes the models.")
    maturity: Literal["high", "medium", "low"] | None = Field(default=None, description="How settled the consumer is: high, medium or low.")
    url: str | None = Field(default=None, description="Where the dashboard/notebook lives.")
    description: str | None = Field(default=None, description="What it shows and who uses it.")
    label: str | None = Field(default=None, description="Display name.")
    depends_on: list[str] = Field(description="Models (names, or ref()/source() expressions) it reads.", examples=[["fct_orders", "dim_customers"]])
    owner: OwnerSpec = Field(description="Who owns it (name and/or email).")


class PackageInput(AuthoringInput):
    name: str | None = Field(default=None, description="Hub package, e.g. 'dbt-labs/dbt_utils' (with version).")
    version: str | list[str] | None = Field(default=None, description="Hub version or range, e.g. '1.3.0' or ['>=1.0.0', '<2.0.0'].")
    git: str | None = Field(default=None, description="Git URL (with revision).")
    revision: str | None = Field(default=None, description="Git tag, branch or commit.")
    local: str | None = Field(default=None, description="Local folder of a dbt package, relative to the project or absolute.")
