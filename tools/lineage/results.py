"""Results of the lineage tools, each with its text summary."""

from __future__ import annotations

import base64
from typing import Any

from pydantic import BaseModel, Field, PrivateAttr

from server.registration import ToolResult
from tools.lineage.picture import Png


class LineageResult(ToolResult):
    focus: str
    nodes: list[dict[str, Any]] = Field(description="unique_id, name, resource_type, materialized, path, distance (negative = upstream).")
    edges: list[list[str]] = Field(description="[parent, child] pairs among the listed nodes.")
    mermaid: str | None = None
    manifest_generated_at: str | None = None
    image: str | None = Field(default=None, description="The picture sent as image content: type and size, or why it is not PNG.")
    image_svg: str | None = Field(default=None, description="(format=svg) the SVG, also sent as image content.")
    _png: bytes | None = PrivateAttr(default=None)  # sent as image content only, never in structured content

    def summary(self) -> str:
        listed = "\n".join(f"- {n['resource_type']} {n['name']} ({n['distance']:+d})" for n in self.nodes[:60])
        picture = f"; picture: {self.image}" if self.image else ""
        return f"lineage of {self.focus}: {len(self.nodes)} node(s), {len(self.edges)} edge(s){picture}\n{listed}\n" + (self.mermaid or "")

    def attach_png(self, picture: Png) -> None:
        self._png, self.image = picture.data, f"image/png {picture.width}x{picture.height}"

    def extra_content(self) -> list[Any]:
        from mcp_types import ImageContent

        if self._png:
            return [ImageContent(type="image", data=base64.b64encode(self._png).decode(), mime_type="image/png")]
        if self.image_svg:
            return [ImageContent(type="image", data=base64.b64encode(self.image_svg.encode()).decode(), mime_type="image/svg+xml")]
        return []


class TrackResult(ToolResult):
    filepath: str
    tracking: bool
    baseline_sha256: str | None = None
    tracked: list[str] = Field(default_factory=list, description="Every file tracked now.")

    def summary(self) -> str:
        return f"{'tracking' if self.tracking else 'stopped tracking'} {self.filepath}; tracked: {', '.join(self.tracked) or 'none'}"


class FileChanges(BaseModel):
    filepath: str
    node: str | None = None
    diff: str
    hunks: list[dict[str, int]]
    lines_added: int
    lines_removed: int
    focus_score: float | None = Field(default=None, description="Share of changed lines inside the target (1.0 = all on target); null without target.")
    target: str | None = None
    touched_ctes: list[str]
    columns_before: list[str]
    columns_after: list[str]
    columns_added: list[str]
    columns_removed: list[str]
    columns_renamed: dict[str, str] = Field(default_factory=dict, description="Likely renames: removed -> added at the same position.")
    columns_retyped: dict[str, list[str | None]]
    columns_unresolved: str | None = Field(default=None, description="Why the output columns could not be compared, if so.")
    config_changes: dict[str, list[Any]]
    breaking: bool
    breaking_reasons: list[str]
    broken_downstream: list[str] = Field(description="Downstream models, snapshots and data tests that read a column this change removes.")
    broken_reads: list[dict[str, Any]] = Field(default_factory=list, description="node, name, column, from (the parent), path, line of each such read.")
    downstream: dict[str, list[str]] = Field(description="Affected nodes by type (models, tests, exposures, …), all hops.")
    build_select: str | None = Field(default=None, description="The dbt build --select that covers the blast radius.")


class ChangesResult(ToolResult):
    files: list[FileChanges]

    def summary(self) -> str:
        lines = []
        for f in self.files:
            lines.append(f"{f.filepath}: +{f.lines_added}/-{f.lines_removed}, focus {f.focus_score}, "
                         f"{'BREAKING: ' + '; '.join(f.breaking_reasons) if f.breaking else 'not breaking'}; "
                         f"config {f.config_changes or 'unchanged'}; build: {f.build_select}")
            lines += [f"  - {r['path']}:{r['line']} {r['name']} reads {r['from'].split('.')[-1]}.{r['column']}" for r in f.broken_reads[:20]]
            if f.columns_unresolved:
                lines.append(f"  - columns not compared: {f.columns_unresolved}")
        return "\n".join(lines) or "no tracked files"


class ColumnLineageResult(ToolResult):
    focus: str
    edges: list[dict[str, Any]] = Field(description="from_node, from_column, to_node, to_column, transformation ('direct' or the SQL).")
    unresolved: list[str] = Field(description="Where the trace stopped (unknown relation columns, SQL sqlglot could not read).")
    columns_source: str = Field(description="Where the columns came from: sql (compiled SQL, stars expanded), catalog, database, seed file, declared.")

    def summary(self) -> str:
        lines = [f"column lineage of {self.focus}: {len(self.edges)} edge(s) (columns from {self.columns_source})"]
        lines += [f"- {e['from_node'].split('.')[-1]}.{e['from_column']} -> {e['to_node'].split('.')[-1]}.{e['to_column']} ({e['transformation']})"
                  for e in self.edges]  # whole expressions: only the output budget cuts (and says so)
        return "\n".join(lines + [f"- stopped: {u}" for u in self.unresolved])
