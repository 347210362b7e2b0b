"""Input models of the dbt command tools, and how they become dbt CLI arguments."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import Field, field_validator

from server.inputs import StrictInput

Selector = str | list[str] | None

_FLAG_MESSAGE = "values may not start with '-' (that would be read as a dbt flag)"
RESOURCE_TYPES = (
    "model", "test", "seed", "snapshot", "source", "exposure", "analysis", "macro",
    "metric", "semantic_model", "saved_query", "unit_test", "function", "all", "default",
)


def reject_flags(value: Any) -> Any:
    """Flag injection guard: no word of a user string handed to dbt as CLI values may look like a flag."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, str) and any(word.startswith("-") for word in item.split()):
            raise ValueError(f"{item!r}: {_FLAG_MESSAGE}")
    return value


# One term of dbt's node selection syntax: methods (tag:, path:, source:, config.x:), graph operators (+ @ n+),
# wildcards and set operators (`,` intersection). Quotes, shell and SQL punctuation have no place in one.
SELECTOR_TERM = re.compile(r"^[\w.:+@*/,=?~\[\]-]+$")
# A seed column type as the warehouse writes it: words (`double precision`, `timestamp with time zone`), an optional
# precision `(10, 2)` and an optional array suffix. Nothing else can reach the CREATE TABLE dbt writes from it.
COLUMN_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*( [A-Za-z][A-Za-z0-9_]*){0,3}(\(\s*\d{1,4}\s*(,\s*\d{1,4}\s*)?\))?(\[\])?$")
TARGET_NAME = re.compile(r"^[\w-]{1,128}$")
# A column or schema name that dbt pastes into SQL unquoted (unique_key, updated_at, check_cols, schema).
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,127}$")


def check_identifiers(value: Any) -> Any:
    """Names dbt writes into SQL as they are: plain identifiers only, so no value can carry SQL of its own."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if item is not None and item != "all" and not (isinstance(item, str) and IDENTIFIER.match(item)):
            raise ValueError(f"{str(item)[:80]!r} is not a plain column or schema name (letters, digits, _; not starting with a digit)")
    return value


def check_selectors(value: Any) -> Any:
    """Selection values are dbt selector terms: flags and characters outside the selector syntax are refused."""
    reject_flags(value)
    for term in selection_terms(value):
        if not SELECTOR_TERM.match(term):
            raise ValueError(f"{term!r} is not a dbt selector term (names, tag:x, path:dir, source:x.y, +, @, *, ',')")
    return value


def check_target(value: Any) -> Any:
    reject_flags(value)
    if value is not None and not TARGET_NAME.match(value):
        raise ValueError(f"{value!r} is not a target name from profiles.yml (letters, digits, _ and -)")
    return value


def selection_terms(value: Selector) -> list[str]:
    """`"a b"` and `["a", "b"]` both mean the union of a and b, as on the dbt command line."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [term for item in items for term in item.split() if term]


class ToolInput(StrictInput):

    timeout_seconds: float | None = Field(
        default=None, gt=0, le=86400, description="Seconds before giving up."
    )


class TargetInput(ToolInput):
    target: str | None = Field(default=None, description="profiles.yml target.")
    vars: dict[str, Any] | None = Field(
        default=None, description="dbt vars."
    )

    @field_validator("target")
    @classmethod
    def _no_flags_target(cls, value: Any) -> Any:
        return check_target(value)

    def vars_json(self) -> str | None:
        return json.dumps(self.vars, sort_keys=True) if self.vars else None


class SelectionInput(TargetInput):
    select: Selector = Field(
        default=None,
        description="--select syntax.",
        examples=["fct_orders", "+fct_orders", "tag:daily", ["stg_orders", "stg_customers"]],
    )
    exclude: Selector = Field(default=None, description="dbt --exclude, as select.")
    selector: str | None = Field(default=None, description="selectors.yml name.")

    @field_validator("select", "exclude", "selector")
    @classmethod
    def _selectors(cls, value: Any) -> Any:
        return check_selectors(value)

    def selection_args(self) -> list[str]:
        args: list[str] = []
        if terms := selection_terms(self.select):
            args += ["--select", *terms]
        if terms := selection_terms(self.exclude):
            args += ["--exclude", *terms]
        if self.selector:
            args += ["--selector", self.selector]
        return args

    @property
    def has_selection(self) -> bool:
        return bool(selection_terms(self.select) or self.selector)


class ExecutionInput(SelectionInput):
    fail_fast: bool = Field(default=False, description="--fail-fast.")
    threads: int | None = Field(default=None, ge=1, le=64, description="--threads.")

    def execution_args(self) -> list[str]:
        args = self.selection_args()
        if self.fail_fast:
            args.append("--fail-fast")
        if self.threads:
            args += ["--threads", str(self.threads)]
        return args


class RefreshableInput(ExecutionInput):
    full_refresh: bool = Field(default=False, description="Rebuild incrementals and seeds (--full-refresh).")

    def execution_args(self) -> list[str]:
        args = super().execution_args()
        if self.full_refresh:
            args.append("--full-refresh")
        return args


class RunInput(RefreshableInput):
    empty: bool = Field(default=False, description="--empty: zero-row build.")


class BuildInput(RunInput):
    resource_types: list[Literal["model", "test", "seed", "snapshot", "unit_test", "source", "function"]] | None = Field(
        default=None, description="--resource-type filter."
    )


class TestInput(ExecutionInput):
    store_failures: bool = Field(default=False, description="--store-failures (writes tables).")


class SeedInput(RefreshableInput):
    name: str | None = Field(default=None, description="Define a new seed (rows or csv); without it, load seeds.",
                             examples=["country_codes"])
    rows: list[dict[str, Any]] | None = Field(default=None, description="Row objects; keys are the header.")
    csv: str | None = Field(default=None, description="CSV text with a header row.")
    column_types: dict[str, str] | None = Field(default=None, description="e.g. {'code': 'varchar'}.")
    description: str | None = Field(default=None, description="New seed's description.")
    load: bool = Field(default=True, description="Load the new seed.")
    dry_run: bool = Field(default=False, description="With name: diff only, no write.")

    @field_validator("column_types")
    @classmethod
    def _column_types(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for column, type_ in (value or {}).items():
            if not COLUMN_TYPE.match(type_.strip()):
                raise ValueError(f"column_types[{column!r}] = {type_[:80]!r} is not a column type: give a type name with an optional "
                                 "precision, e.g. 'varchar', 'decimal(10, 2)', 'timestamp with time zone'")
        return {column: type_.strip() for column, type_ in value.items()} if value else value

    @property
    def defines(self) -> bool:
        return self.name is not None or self.rows is not None or self.csv is not None


class SnapshotInput(ExecutionInput):
    name: str | None = Field(default=None, description="Define a new SCD2 snapshot; without it, run snapshots.",
                             examples=["customers_snapshot"])
    relation: str | None = Field(default=None, description="'source.table', model, source() or ref().")
    unique_key: str | list[str] | None = Field(default=None, description="Record key column(s).", examples=["customer_id"])
    strategy: Literal["timestamp", "check"] | None = Field(default=None, description="Default timestamp.")
    updated_at: str | None = Field(default=None, description="timestamp strategy's column.")
    check_cols: list[str] | Literal["all"] | None = Field(default=None, description="check strategy: columns or 'all'.")
    hard_deletes: Literal["ignore", "invalidate", "new_record"] | None = Field(
        default=None, description="Source deletions; default invalidate.")
    target_schema: str | None = Field(default=None, description="Default 'snapshots'.")
    description: str | None = Field(default=None, description="New snapshot's description.")
    replace: bool = Field(default=False, description="Redefine an existing snapshot.")
    dry_run: bool = Field(default=False, description="With name: diff only, no write.")

    @field_validator("unique_key", "updated_at", "check_cols", "target_schema")
    @classmethod
    def _identifiers(cls, value: Any) -> Any:
        return check_identifiers(value)

    @property
    def defines(self) -> bool:
        return self.name is not None or self.relation is not None


class FreshnessInput(SelectionInput):
    threads: int | None = Field(default=None, ge=1, le=64, description="--threads.")


class CompileInput(ExecutionInput):
    sql: str | None = Field(
        default=None,
        description="Inline SQL instead of nodes.",
        examples=["select * from {{ ref('fct_orders') }} where order_id = 1"],
    )
    include_sql: bool = Field(default=True, description="Return compiled SQL.")
    include_tests: bool = Field(
        default=False,
        description="Also compile their tests.",
    )


class ShowInput(TargetInput):
    sql: str | None = Field(
        default=None,
        description="select/with query (Jinja, ref, source).",
        examples=["select status, count(*) as n from {{ ref('fct_orders') }} group by status"],
    )
    model: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_.]+$",
        description="Model, seed or snapshot instead of sql.", examples=["dim_customers"],
    )
    limit: int = Field(default=10, ge=1, le=10000, description="Most rows.")

    @field_validator("model")
    @classmethod
    def _no_flags_model(cls, value: Any) -> Any:
        return reject_flags(value)


class ListInput(SelectionInput):
    resource_types: list[Literal[RESOURCE_TYPES]] | None = Field(  # type: ignore[valid-type]
        default=None, description="--resource-type filter."
    )
    cursor: str | None = Field(default=None, description="Opaque cursor from a previous page's next_cursor.")
    limit: int = Field(default=100, ge=1, le=1000, description="Page size.")


class DocsInput(TargetInput):
    select: Selector = Field(default=None, description="Catalog only these (--select).")
    static: bool = Field(default=False, description="Also write static_index.html.")
    generate: bool = Field(default=True, description="Run docs generate.")
    serve: bool = Field(default=False, description="Serve on 127.0.0.1 until stop=true.")
    port: int = Field(default=8080, ge=0, le=65535, description="0: any free port.")
    stop: bool = Field(default=False, description="Stop serving.")

    @field_validator("select")
    @classmethod
    def _selectors(cls, value: Any) -> Any:
        return check_selectors(value)


class DebugInput(ToolInput):
    target: str | None = Field(default=None, description="dbt target to check; default: the server's target.")

    @field_validator("target")
    @classmethod
    def _no_flags_target(cls, value: Any) -> Any:
        return check_target(value)


class RetryInput(TargetInput):
    pass


class ParseInput(TargetInput):
    pass


class DepsInput(ToolInput):
    upgrade: bool = Field(default=False, description="--upgrade: ignore package-lock.yml.")
