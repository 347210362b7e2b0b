"""Inputs of the files tools (pydantic models at the MCP boundary)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field
from pydantic.json_schema import WithJsonSchema

from server.inputs import StrictInput
from tools.authoring.inputs import DocumentedColumn, TestSpec


class FilesInput(StrictInput):
    glob: str | None = Field(default=None, description="e.g. models/**/*.sql")
    cursor: str | None = Field(default=None, description="next_cursor")


class ReadInput(StrictInput):
    path: str = Field(description="Project file.")
    start_line: int | None = Field(default=None, ge=1, description="First line.")
    end_line: int | None = Field(default=None, ge=1, description="Last line.")


class SearchInput(StrictInput):
    pattern: str = Field(description="Text to find.")
    glob: str | None = Field(default=None, description="Filter, e.g. *.sql")
    regex: bool = Field(default=False, description="Regex, not text.")
    cursor: str | None = Field(default=None, description="next_cursor")


class WriteInput(StrictInput):
    path: str = Field(description="Project file.")
    content: str = Field(description="Full new text.")
    dry_run: bool = Field(default=False, description="Return the diff only.")


class EditInput(StrictInput):
    path: str = Field(description="Project file.")
    old_text: str = Field(description="Exact text to replace.")
    new_text: str = Field(description="Replacement.")
    expected_count: int = Field(default=1, ge=1, description="Occurrences of old_text.")
    dry_run: bool = Field(default=False, description="Return the diff only.")


# -- model_update and node_properties (tools/files/node_changes.py) -------------------------------------------------
class ModelUpdateInput(StrictInput):
    name: str = Field(description="Existing model.")
    sql: str | None = Field(default=None, description="New SQL.")
    config: dict[str, Any] = Field(default_factory=dict, description="config() keys to set.")
    dry_run: bool = Field(default=False, description="Return the diff only.")


class NodePropertiesInput(StrictInput):
    name: str = Field(description="Model, seed, snapshot or source.table")
    description: str | None = Field(default=None, description="Docs.")
    # Listed as plain objects (the $def would cost ~300 bytes of every turn); validated as DocumentedColumn, unknown keys refused.
    columns: list[Annotated[DocumentedColumn, WithJsonSchema({"type": "object"})]] = Field(
        default_factory=list, description="[{name, description, data_type, tests}] by name")
    tests: list[TestSpec] = Field(default_factory=list, description="Node tests.")
    generate: bool = Field(default=False, description="Add missing real columns.")
    dry_run: bool = Field(default=False, description="Return the diff only.")


class NodeRenameInput(StrictInput):
    name: str = Field(description="Node name.")
    new_name: str = Field(description="New name.")
    dry_run: bool = False


class NodeDeleteInput(StrictInput):
    name: str = Field(description="Node name.")
    cascade_check: bool | None = Field(default=None, description="false: even if used.")  # None is true (a shorter schema)
    dry_run: bool = False
