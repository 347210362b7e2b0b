"""Results of the files tools (the writers' is the authoring tools' result: files with diffs, how dbt validated them)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from server.registration import ToolResult
from tools.authoring.results import AuthoringResult, FileOut


class FilesResult(ToolResult):
    files: list[dict[str, Any]] = Field(default_factory=list, description="path, size, resources (dbt's, from the manifest).")
    total: int = 0
    ignore_rules: str = ""
    next_cursor: str | None = None
    note: str | None = None

    def summary(self) -> str:
        more = f"; next_cursor={self.next_cursor}" if self.next_cursor else ""
        lines = [f"project_files: {len(self.files)} of {self.total} file(s) (ignored by {self.ignore_rules}){more}"]
        if self.note:
            lines.append(self.note)
        lines += [f"{f['path']} {f['size']}" + (f" [{', '.join(f['resources'])}]" if f.get("resources") else "") for f in self.files]
        return "\n".join(lines)



class ReadResult(ToolResult):
    path: str = ""
    text: str = Field(default="", description="The lines, each as 'number<TAB>text'.")
    start_line: int = 0
    end_line: int = 0
    total_lines: int = 0
    next_start_line: int | None = None

    def summary(self) -> str:
        more = f"; the rest: start_line={self.next_start_line}" if self.next_start_line else ""
        return f"{self.path}: lines {self.start_line}-{self.end_line} of {self.total_lines}{more}\n{self.text}"


class SearchResult(ToolResult):
    matches: list[str] = Field(default_factory=list, description="file:line:text")
    total: int = 0
    files_searched: int = 0
    skipped: list[str] = Field(default_factory=list, description="Binary or over 2 MB: not searched.")
    capped: bool = False
    next_cursor: str | None = None

    def summary(self) -> str:
        more = f"; next_cursor={self.next_cursor}" if self.next_cursor else ""
        capped = " (stopped at the cap: narrow the search)" if self.capped else ""
        lines = [f"file_search: {self.total} match(es){capped} in {self.files_searched} file(s), showing {len(self.matches)}{more}"]
        if self.skipped:
            lines.append(f"not searched (binary or large): {', '.join(self.skipped[:20])}")
        return "\n".join(lines + self.matches)


class WriteResult(AuthoringResult):
    """The authoring tools' result (files with diffs, how dbt validated them, notes); every field has a default, so the
    listed output schema stays `{"type": "object"}` (structured content leaves defaults out)."""

    tool: str = ""
    dry_run: bool = False
    files: list[FileOut] = Field(default_factory=list)
    validated: str = Field(default="", description="How dbt checked the change: 'parse', 'parse+compile', 'none (not a dbt file)' or 'not run (dry run)'.")


class NodePropertiesResult(WriteResult):
    """node_properties: the files' result, plus the columns generate added (the real output columns the YAML lacked)."""

    added_columns: list[str] = Field(default_factory=list, description="Columns generate added, in output order.")

    def summary(self) -> str:
        added = f"\ngenerate added {len(self.added_columns)} column(s): {', '.join(self.added_columns)}" if self.added_columns else ""
        return super().summary() + added


class NodeChangeResult(WriteResult):
    """node_rename / node_delete: the written files plus, for a delete with cascade_check false, what it broke."""

    broken: list[str] = Field(default_factory=list, description="Dependants left with a ref to a deleted node.")

    def summary(self) -> str:
        text = super().summary()
        return text + (f"\nbroken dependants: {', '.join(self.broken)}" if self.broken else "")
