"""Inputs of the quality tools (pydantic models at the MCP boundary)."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from server.inputs import StrictInput
from tools.quality.lint import dialect_problem


class LintInput(StrictInput):
    path: str | None = Field(default=None, description="A SQL file in the project (relative path), e.g. models/marts/fct_orders.sql.")
    sql: str | None = Field(default=None, description="SQL text to lint instead of a file (unsaved work).")
    dialect: str | None = Field(default=None, description="sqlfluff dialect; default: the project's .sqlfluff, else the profile's adapter, else duckdb.")
    rules: list[str] | None = Field(default=None, description="Only these rules (codes or names), e.g. ['LT01', 'aliasing'].")
    exclude_rules: list[str] | None = Field(default=None, description="Rules to skip.")
    templater: str = Field(default="jinja", description="jinja (dbt builtins, no warehouse, default) or dbt (needs sqlfluff-templater-dbt).")

    @field_validator("dialect")
    @classmethod
    def known_dialect(cls, value: str | None) -> str | None:
        problem = dialect_problem(value) if value is not None else None
        if problem is not None:
            raise PydanticCustomError("unknown_dialect", problem[0], {"hint": problem[1]})
        return value


class FixInput(LintInput):
    write: bool = Field(default=False, description="Write the fixed SQL back to path (atomically). Default: only return it.")


class AnalyzeInput(StrictInput):
    filePath: str = Field(description="The model's SQL file, relative to the project (the seed prompt's analyze_file).")


class CheckInput(StrictInput):
    path: str | None = Field(default=None, description="One model file to check; default: the whole project.")
    rules: list[str] | None = Field(default=None, description="Only these rule ids.")
    cursor: str | None = Field(default=None, description="next_cursor of the previous page.")
    limit: int = Field(default=100, ge=1, le=1000, description="Most violations per page.")


class MetricsInput(StrictInput):
    cursor: str | None = Field(default=None, description="next_cursor of the previous page of the per-model breakdown.")
    limit: int = Field(default=50, ge=0, le=1000, description="Most models in the per-model breakdown (0: metrics only).")
