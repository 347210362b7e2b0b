"""Inputs of the quality tools (pydantic models at the MCP boundary)."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from server.inputs import StrictInput
from tools.quality.lint import dialect_problem


class LintInput(StrictInput):
    path: str | None = Field(default=None, description="Project-relative SQL file.")
    sql: str | None = Field(default=None, description="SQL instead of path.")
    dialect: str | None = Field(default=None, description="Default: .sqlfluff's, else the adapter's.")
    rules: list[str] | None = Field(default=None, description="Only these, e.g. ['LT01'].")
    exclude_rules: list[str] | None = Field(default=None, description="Rules to skip.")
    templater: str = Field(default="jinja", description="dbt needs sqlfluff-templater-dbt.")

    @field_validator("dialect")
    @classmethod
    def known_dialect(cls, value: str | None) -> str | None:
        problem = dialect_problem(value) if value is not None else None
        if problem is not None:
            raise PydanticCustomError("unknown_dialect", problem[0], {"hint": problem[1]})
        return value


class FixInput(LintInput):
    write: bool = Field(default=False, description="Write the fix to path.")


class AnalyzeInput(StrictInput):
    filePath: str = Field(description="Project-relative model file.")


class CheckInput(StrictInput):
    path: str | None = Field(default=None, description="One model file (default: all).")
    rules: list[str] | None = Field(default=None, description="Only these (dbt-project-evaluator ids).")
    cursor: str | None = Field(default=None, description="next_cursor of the previous page.")
    limit: int = Field(default=100, ge=1, le=1000, description="Page size.")


class MetricsInput(StrictInput):
    cursor: str | None = Field(default=None, description="Per-model page cursor.")
    limit: int = Field(default=50, ge=0, le=1000, description="Models per page (0: metrics only).")
