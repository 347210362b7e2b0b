"""Result models of the dbt command tools: per-node results, summaries, and fitting into the output budget."""

from __future__ import annotations

from collections import Counter
from typing import Any

from mcp_types import ResourceLink
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
    incremental: str | None = Field(default=None, description="An incremental model's run: incremental or full_refresh.")
    test_name: str | None = Field(default=None, description="A generic test's kind: relationships, accepted_values…")
    column_name: str | None = None
    test_kwargs: dict[str, Any] | None = None
    failing_rows: dict[str, Any] | None = Field(default=None, description="A failing test's first rows: columns, rows.")
    failing_rows_error: str | None = None
    max_loaded_at: str | None = Field(default=None, description="Source freshness: newest loaded_at value.")
    snapshotted_at: str | None = None
    age_s: float | None = Field(default=None, description="Source freshness: age of the newest row in seconds.")
    criteria: dict[str, Any] | None = Field(default=None, description="Source freshness: warn_after / error_after.")
    loaded_at_field: str | None = None

    @property
    def failed(self) -> bool:
        return self.status in FAILED

    @property
    def short_name(self) -> str:
        return self.name or self.unique_id


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


ROW_VALUE_CUT = 200


def _cut_node(node: NodeResult) -> NodeResult:
    update: dict[str, object] = {}
    if node.failing_rows:
        rows = [[v[:ROW_VALUE_CUT] + "…" if isinstance(v, str) and len(v) > ROW_VALUE_CUT else v for v in row]
                for row in node.failing_rows.get("rows") or []]
        update["failing_rows"] = {**node.failing_rows, "rows": rows}
    if node.test_kwargs and len(str(node.test_kwargs)) > MESSAGE_CUT:
        update["test_kwargs"] = None
    if node.compiled_sql is not None and len(node.compiled_sql) > SQL_CUT:
        update.update(compiled_sql=node.compiled_sql[:SQL_CUT] + "\n-- … cut: full SQL at compiled_path", compiled_sql_truncated=True)
    if node.message is not None and len(node.message) > MESSAGE_CUT:
        update["message"] = node.message[:MESSAGE_CUT] + " … [cut]"
    return node.model_copy(update=update) if update else node


def compact_size(model: BaseModel) -> int:
    """Characters of the structured content as sent (server/registration.py leaves out nulls and defaults)."""
    return len(model.model_dump_json(exclude_none=True, exclude_defaults=True))


def _value(value: Any) -> str:
    return "null" if value is None else str(value)


def failing_rows_lines(node: NodeResult) -> list[str]:
    """What a failing test found, in the test's own terms: the orphan keys of a relationships test, the values an
    accepted_values test does not accept, else the first rows as the test returned them."""
    table = node.failing_rows or {}
    columns, rows = table.get("columns") or [], table.get("rows") or []
    if not rows:
        return []
    shown = f"{len(rows)} of {node.failures}" if node.failures is not None else str(len(rows))
    kwargs = node.test_kwargs or {}
    if node.test_name == "relationships" and columns:
        keys = ", ".join(dict.fromkeys(_value(row[0]) for row in rows))  # one row per child row: a key can repeat
        return [f"    orphan keys ({shown}): {node.column_name or columns[0]} = {keys}: not found in {kwargs.get('to', 'the parent')}"
                f".{kwargs.get('field', '?')}"]
    if node.test_name == "accepted_values" and columns:
        counts = {str(c).lower(): i for i, c in enumerate(columns)}
        count_at = counts.get("n_records")
        values = ", ".join(_value(row[0]) + (f" ({row[count_at]} rows)" if count_at is not None else "") for row in rows)
        accepted = f"; accepted: {kwargs['values']}" if isinstance(kwargs.get("values"), list) else ""
        return [f"    values not accepted ({shown}): {values}{accepted}"]
    lines = [f"    failing rows ({shown}): " + " | ".join(map(str, columns))]
    lines += ["      " + " | ".join(_value(v) for v in row) for row in rows]
    return lines


def freshness_lines(node: NodeResult) -> list[str]:
    if node.max_loaded_at is None:
        return []
    criteria = node.criteria or {}
    limits = ", ".join(f"{kind} {c.get('count')} {c.get('period')}" for kind in ("warn_after", "error_after")
                       if isinstance(c := criteria.get(kind), dict) and c.get("count") is not None)
    field = f"max({node.loaded_at_field})" if node.loaded_at_field else "newest loaded_at"
    age = f"{node.age_s / 3600:.1f} h old" if node.age_s is not None else ""
    return [f"    {field} = {node.max_loaded_at}, {age}; threshold: {limits or 'none set'}"]


def failed_node_lines(node: NodeResult) -> list[str]:
    """A failing node as an agent needs it: dbt's line, the database's own lines under it (dbt's first line only
    wraps them), what a failing test found, and the next step."""
    message = [line.strip() for line in (node.message or "").strip().splitlines() if line.strip()]
    lines = [f"- {node.status.upper()} {node.unique_id}: {message[0] if message else ''}"]
    lines += [f"    {line}" for line in message[1:6]]
    name = node.unique_id.split(".")[-1] if node.resource_type != "test" else node.short_name
    if node.resource_type == "test" and node.status in ("fail", "warn"):
        lines += failing_rows_lines(node)
        if node.failing_rows_error:
            lines.append(f"    (the failing rows could not be read: {node.failing_rows_error})")
        lines.append(f"    next: dbt_show model='{node.short_name}' limit=100 lists the failing rows; fix the data or the model it tests")
    elif node.resource_type == "source" and node.max_loaded_at is not None:
        stale = [line.strip() for line in freshness_lines(node)]
        if stale and not message:
            lines[0] += stale[0]
        else:
            lines += freshness_lines(node)
        lines.append(f"    next: load fresh data into {node.short_name}, or widen its freshness threshold in the source's YAML")
    elif node.status == "error":
        where = f" in {node.original_file_path}" if node.original_file_path else ""
        lines.append(f"    next: fix{where}, then dbt_build select='{name}+'")
    return lines


def shown_in_full(command: str, node: NodeResult) -> bool:
    """Failing and warning nodes always; a compile's nodes too (their SQL is the result)."""
    return node.failed or node.status == "warn" or (command == "compile" and node.compiled_sql is not None)


class DbtCommandResult(ToolResult):
    """The outcome of a dbt command: failing nodes in full and first, passing nodes by status."""

    command: str
    success: bool = Field(description="False when any node failed; the run still happened.")
    counts: dict[str, int] = Field(description="PASS / WARN / ERROR / SKIP / NO-OP / TOTAL.")
    elapsed_s: float = Field(description="Wall time inside dbt.")
    nodes: list[NodeResult] = Field(default_factory=list, description="Nodes in full: failing and warning ones first; a compile's nodes.")
    passed: dict[str, list[str]] = Field(default_factory=dict, description="The other nodes' names by dbt status.")
    slowest: list[dict[str, Any]] = Field(default_factory=list, description="The five slowest of them: name, s.")
    rows_affected: dict[str, int] = Field(default_factory=dict, description="Rows each of them changed, where the adapter says.")
    incremental: dict[str, str] = Field(default_factory=dict, description="Incremental models of them: incremental or full_refresh.")
    omitted_nodes: int = Field(default=0, description="Nodes left out to respect the output budget (the last ones: failing nodes come first).")
    truncated: bool = False
    artifact_path: str | None = Field(default=None, description="run_results.json with every node, when written.")
    warnings: list[str] = Field(default_factory=list, description="dbt warnings of this call.")
    error: dict[str, Any] | None = Field(default=None, description="An exception dbt raised after running nodes.")
    extra: dict[str, Any] = Field(default_factory=dict, description="Command-specific output (docs paths, parse counts, authored files…).")
    note: str | None = Field(default=None, description="What a defining call (dbt_seed/dbt_snapshot with name) wrote.")
    run_id: str | None = Field(default=None, description="The whole result: resource dbt://run/{run_id}.")

    @classmethod
    def of_nodes(cls, command: str, nodes: list[NodeResult], **fields: Any) -> DbtCommandResult:
        """Nodes shown in full where the agent must act (or read SQL); the rest collapsed to names, timings and rows."""
        full = order_nodes([n for n in nodes if shown_in_full(command, n)])
        rest = [n for n in nodes if not shown_in_full(command, n)]
        taken = Counter(n.short_name for n in rest)
        label = {n.unique_id: n.short_name if taken[n.short_name] == 1 else n.unique_id for n in rest}  # a source and a model may share a name
        passed: dict[str, list[str]] = {}
        for node in rest:
            passed.setdefault(node.status, []).append(label[node.unique_id])
        timed = sorted((n for n in rest if n.execution_time_s > 0), key=lambda n: -n.execution_time_s)[:5]
        return cls(
            command=command, counts=count_statuses(nodes), nodes=full, passed=passed,
            slowest=[{"name": label[n.unique_id], "s": round(n.execution_time_s, 3)} for n in timed],
            rows_affected={label[n.unique_id]: n.rows_affected for n in rest if n.rows_affected is not None},
            incremental={label[n.unique_id]: n.incremental for n in rest if n.incremental and n.status == "success"},
            **fields,
        )

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
        built = [f"{name} {self.incremental[name]}" + (f" ({self.rows_affected[name]} rows)" if name in self.rows_affected else "")
                 for name in self.incremental]
        rows = [f"{name} {n}" for name, n in self.rows_affected.items() if name not in self.incremental]
        if built:
            lines.append("incremental models: " + ", ".join(built))
        if rows:
            lines.append("rows: " + ", ".join(rows[:20]) + (f" … ({len(rows) - 20} more in rows_affected)" if len(rows) > 20 else ""))
        if self.slowest:
            lines.append("slowest: " + ", ".join(f"{s['name']} {s['s']:.2f}s" for s in self.slowest))
        if self.omitted_nodes:
            where = f"all of them in {self.artifact_path}" if self.artifact_path else "call again with a narrower select"
            lines.append(f"({self.omitted_nodes} node(s) left out to fit the output budget; {where})")
        lines += [f"escalated: {line}" for line in self.extra.get("escalated", [])]
        if self.command == "compile":
            for node in [n for n in self.nodes if n.compiled_sql][:3]:
                lines.append(f"-- {node.unique_id} ({node.compiled_path})\n{node.compiled_sql.strip()}")
        return "\n".join(lines)

    def extra_content(self) -> list[Any]:
        """A result cut by the output budget ends with a link to the whole of it (a remote client cannot read a path on disk)."""
        if not (self.truncated and self.run_id):
            return []
        return [ResourceLink(type="resource_link", uri=f"dbt://run/{self.run_id}", name=f"dbt-run-{self.run_id}",
                             title=f"Full result of dbt {self.command}", mime_type="application/json",
                             description="Every node in full, as this call returned it before the output budget cut it.")]

    def fit(self, limit_chars: int) -> DbtCommandResult:
        """Cut long texts; if the full nodes (failing first) still do not fit beside the passing names, keep the
        first 20 names per status; then keep the full nodes that fit, in order. Linear in nodes."""
        if compact_size(self) <= limit_chars:
            return self
        nodes = [_cut_node(n) for n in self.nodes]
        error = dict(self.error) if self.error else None
        if error and isinstance(error.get("message"), str):
            error["message"] = error["message"][:MESSAGE_CUT]
        extra = {k: (v[:20] if isinstance(v, list) else v) for k, v in self.extra.items()}
        base = self.model_copy(update={"nodes": [], "error": error, "extra": extra, "truncated": True,
                                       "note": self.note[:MESSAGE_CUT] if self.note else None,
                                       "warnings": [w[:500] for w in self.warnings[:10]]})
        wanted = sum(compact_size(n) + 1 for n in nodes)
        if compact_size(base) + wanted + 100 > limit_chars:  # the failing nodes come before the passing names
            omitted = sum(max(0, len(names) - 20) for names in self.passed.values())
            base = base.model_copy(update={
                "passed": {status: names[:20] for status, names in self.passed.items()},
                "rows_affected": dict(list(self.rows_affected.items())[:20]),
                "incremental": dict(list(self.incremental.items())[:20]), "omitted_nodes": self.omitted_nodes + omitted})
        room = limit_chars - compact_size(base) - 100
        kept: list[NodeResult] = []
        for node in nodes:
            size = compact_size(node) + 1
            if size <= room:
                kept.append(node)
                room -= size
        return base.model_copy(update={"nodes": kept, "omitted_nodes": base.omitted_nodes + len(nodes) - len(kept)})


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

    def fit(self, limit_chars: int) -> ShowResult:
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

    def fit(self, limit_chars: int) -> ListResult:
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
