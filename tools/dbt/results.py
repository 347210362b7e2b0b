"""Result models of the dbt command tools: per-node results, summaries, and fitting into the output budget."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from server.registration import ToolResult

FAILED = {"error", "fail", "runtime error"}
COUNTER_OF = {
    "success": "PASS", "pass": "PASS", "warn": "WARN", "error": "ERROR", "fail": "ERROR",
    "runtime error": "ERROR", "skipped": "SKIP", "no-op": "NO-OP", "partial success": "WARN",
}
SQL_CUT = 1500
MESSAGE_CUT = 1500


class NodeResult(BaseModel):
    """One dbt node's outcome."""

    unique_id: str
    name: str | None = None
    resource_type: str
    status: str = Field(description="dbt status: success, error, pass, fail, warn, skipped, runtime error, no-op…")
    execution_time_s: float = 0.0
    message: str | None = None
    failures: int | None = Field(default=None, description="Failing rows of a test.")
    materialized: str | None = None
    relation_name: str | None = None
    original_file_path: str | None = None
    compiled_path: str | None = Field(default=None, description="Absolute path of the compiled SQL on disk.")
    compiled_sql: str | None = Field(default=None, description="Compiled SQL (compile, or a failing node).")
    compiled_sql_truncated: bool = False
    rows_affected: int | None = None
    max_loaded_at: str | None = Field(default=None, description="Source freshness: newest loaded_at value.")
    snapshotted_at: str | None = None
    age_s: float | None = Field(default=None, description="Source freshness: age of the newest row in seconds.")
    criteria: dict[str, Any] | None = Field(default=None, description="Source freshness: warn_after / error_after.")

    @property
    def failed(self) -> bool:
        return self.status in FAILED


def order_nodes(nodes: list[NodeResult]) -> list[NodeResult]:
    """Failing nodes first, then warnings, then the rest in execution order."""
    rank = {True: 0, False: 1}
    return sorted(nodes, key=lambda n: (rank[n.failed], 0 if n.status == "warn" else 1))


def count_statuses(nodes: list[NodeResult]) -> dict[str, int]:
    counts = {"PASS": 0, "WARN": 0, "ERROR": 0, "SKIP": 0, "NO-OP": 0}
    for node in nodes:
        counter = COUNTER_OF.get(node.status, node.status.upper())
        counts[counter] = counts.get(counter, 0) + 1
    counts["TOTAL"] = len(nodes)
    return counts


def _cut_node(node: NodeResult) -> NodeResult:
    update: dict[str, object] = {}
    if node.compiled_sql is not None and len(node.compiled_sql) > SQL_CUT:
        update.update(compiled_sql=node.compiled_sql[:SQL_CUT] + "\n-- … cut: full SQL at compiled_path", compiled_sql_truncated=True)
    if node.message is not None and len(node.message) > MESSAGE_CUT:
        update["message"] = node.message[:MESSAGE_CUT] + " … [cut]"
    return node.model_copy(update=update) if update else node


def failed_node_lines(node: "NodeResult") -> list[str]:
    """A failing node as an agent needs it: dbt's line, the database's own lines under it (dbt's first line only
    wraps them), and the next step."""
    message = [line.strip() for line in (node.message or "").strip().splitlines() if line.strip()]
    lines = [f"- {node.status.upper()} {node.unique_id}: {message[0] if message else ''}"]
    lines += [f"    {line}" for line in message[1:6]]
    name = node.unique_id.split(".")[-1]
    if node.resource_type == "test" and node.status in ("fail", "warn"):
        where = f" ({node.compiled_path})" if node.compiled_path else ""
        lines.append(f"    next: dbt_show the test's compiled SQL{where} to see the failing rows; fix the data or the model it tests")
    elif node.status == "error":
        where = f" in {node.original_file_path}" if node.original_file_path else ""
        lines.append(f"    next: fix{where}, then dbt_build select='{name}+'")
    return lines


class DbtCommandResult(ToolResult):
    """The outcome of a dbt command, node by node, failing nodes first."""

    command: str
    success: bool = Field(description="False when any node failed; the run still happened.")
    counts: dict[str, int] = Field(description="PASS / WARN / ERROR / SKIP / NO-OP / TOTAL.")
    elapsed_s: float = Field(description="Wall time inside dbt.")
    nodes: list[NodeResult]
    omitted_nodes: int = Field(default=0, description="Nodes left out to respect the output budget (the last ones: failing nodes come first).")
    truncated: bool = False
    artifact_path: str | None = Field(default=None, description="run_results.json with every node, when written.")
    warnings: list[str] = Field(default_factory=list, description="dbt warnings of this call.")
    error: dict[str, Any] | None = Field(default=None, description="An exception dbt raised after running nodes.")
    extra: dict[str, Any] = Field(default_factory=dict, description="Command-specific output (docs paths, parse counts, authored files…).")
    note: str | None = Field(default=None, description="What a defining call (dbt_seed/dbt_snapshot with name) wrote.")

    def summary(self) -> str:
        counts = " ".join(f"{k}={v}" for k, v in self.counts.items())
        lines = [f"dbt {self.command}: {'OK' if self.success else 'FAILED'} {counts} in {self.elapsed_s:.2f}s"]
        if self.note:
            lines.append(self.note)
        for node in self.nodes:
            if node.failed or node.status == "warn":
                lines += failed_node_lines(node)
        if self.error:
            lines.append(f"- {self.error.get('code')}: {self.error.get('message')}")
        lines += [f"- warning: {warning.strip()}" for warning in self.warnings]
        if self.omitted_nodes:
            lines.append(f"({self.omitted_nodes} node(s) left out to fit the output budget; all of them in {self.artifact_path})")
        if self.command == "compile":
            for node in [n for n in self.nodes if n.compiled_sql][:3]:
                lines.append(f"-- {node.unique_id} ({node.compiled_path})\n{node.compiled_sql.strip()}")
        return "\n".join(lines)

    def fit(self, limit_chars: int) -> "DbtCommandResult":
        """Cut long texts, then keep the longest prefix of nodes (failing first) that fits. Linear in nodes."""
        if len(self.model_dump_json()) <= limit_chars:
            return self
        nodes = [_cut_node(n) for n in self.nodes]
        error = dict(self.error) if self.error else None
        if error and isinstance(error.get("message"), str):
            error["message"] = error["message"][:MESSAGE_CUT]
        extra = {k: (v[:20] if isinstance(v, list) else v) for k, v in self.extra.items()}
        base = self.model_copy(update={"nodes": [], "error": error, "extra": extra, "truncated": True,
                                       "warnings": [w[:500] for w in self.warnings[:10]]})
        room = limit_chars - len(base.model_dump_json()) - 100
        kept: list[NodeResult] = []
        for node in nodes:
            size = len(node.model_dump_json()) + 1
            if size > room:
                break
            kept.append(node)
            room -= size
        return base.model_copy(update={"nodes": kept, "omitted_nodes": self.omitted_nodes + len(nodes) - len(kept)})


class ShowResult(ToolResult):
    """Rows of a preview query."""

    columns: list[str]
    column_types: list[str]
    rows: list[list[Any]]
    row_count: int = Field(description="Rows the query returned (up to limit); `rows` may hold fewer when truncated.")
    limit: int
    truncated: bool = Field(default=False, description="Rows were cut to respect the output budget.")
    compiled_sql: str | None = None
    elapsed_s: float

    def summary(self) -> str:
        head = f"{self.row_count} row(s) (limit {self.limit}) in {self.elapsed_s:.2f}s" + (", cut to fit" if self.truncated else "")
        lines = [head, " | ".join(self.columns)]
        for row in self.rows[:20]:
            lines.append(" | ".join("" if v is None else str(v) for v in row))
        if len(self.rows) > 20:
            lines.append(f"… {len(self.rows) - 20} more row(s) in the structured result")
        return "\n".join(lines)

    def fit(self, limit_chars: int) -> "ShowResult":
        fitted = self
        if len(fitted.model_dump_json()) > limit_chars and fitted.compiled_sql and len(fitted.compiled_sql) > SQL_CUT:
            fitted = fitted.model_copy(update={"compiled_sql": fitted.compiled_sql[:SQL_CUT] + "\n-- … cut", "truncated": True})
        while len(fitted.model_dump_json()) > limit_chars and fitted.rows:
            fitted = fitted.model_copy(update={"rows": fitted.rows[: len(fitted.rows) // 2], "truncated": True})
        return fitted


class ListItem(BaseModel):
    unique_id: str | None = None
    name: str | None = None
    resource_type: str | None = None
    package_name: str | None = None
    original_file_path: str | None = None
    materialized: str | None = None
    tags: list[str] = Field(default_factory=list)


class ListResult(ToolResult):
    """One page of dbt ls."""

    items: list[ListItem]
    total: int
    offset: int = Field(description="Index of the first item of this page.")
    next_cursor: str | None = Field(default=None, description="Pass as cursor to get the next page; null on the last page.")

    def summary(self) -> str:
        shown = ", ".join(i.unique_id or i.name or "?" for i in self.items[:50])
        more = f"; next_cursor={self.next_cursor}" if self.next_cursor else ""
        return f"{len(self.items)} of {self.total} node(s) from {self.offset}{more}\n{shown}"

    def fit(self, limit_chars: int) -> "ListResult":
        fitted = self
        while len(fitted.model_dump_json()) > limit_chars and len(fitted.items) > 1:
            keep = len(fitted.items) // 2
            fitted = fitted.model_copy(update={"items": fitted.items[:keep], "next_cursor": str(self.offset + keep)})
        return fitted


class DebugResult(ToolResult):
    """dbt debug: whether the profile connects and the project is set up, with credentials redacted."""

    connection_ok: bool
    success: bool
    output: list[str] = Field(description="dbt debug's report lines, secrets redacted.")
    elapsed_s: float

    def summary(self) -> str:
        state = "connection OK" if self.connection_ok else "connection FAILED"
        return f"dbt debug: {state}\n" + "\n".join(line for line in self.output if line.strip())[:3000]
