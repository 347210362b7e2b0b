"""Text of the dbt files the authoring tools write: pure functions from specs to SQL and YAML-ready dicts."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

INDENT = "    "
LINE_LIMIT = 80  # sqlfluff's default max_line_length (LT05)


@dataclass
class Column:
    name: str
    expression: str | None = None  # SQL for the column; None selects the column as is
    description: str | None = None
    data_type: str | None = None
    tests: list[Any] = field(default_factory=list)


@dataclass
class Relation:
    """Where a generated model reads from: a source table or another model."""

    kind: str  # "source" | "ref"
    name: str  # "raw.orders" for a source, "stg_orders" for a ref

    @property
    def jinja(self) -> str:
        if self.kind == "source":
            source, table = self.name.split(".", 1)
            return f"{{{{ source('{source}', '{table}') }}}}"
        return f"{{{{ ref('{self.name}') }}}}"

    @property
    def cte(self) -> str:
        return self.name.split(".")[-1]


def python_literal(value: Any) -> str:
    """A config() argument in Jinja: strings quoted, dicts and lists in Jinja's literal syntax."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if value is None:
        return "none"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{python_literal(str(k))}: {python_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(python_literal(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} into config()")


def config_block(config: dict[str, Any]) -> str:
    if not config:
        return ""
    args = ",\n".join(f"{INDENT * 2}{k}={python_literal(v)}" for k, v in config.items() if v is not None)
    return "{{\n" + f"{INDENT}config(\n{args}\n{INDENT})\n" + "}}\n\n"


_NAME = r'(?:[A-Za-z_][A-Za-z0-9_$]*|"[^"]+"|`[^`]+`)'
_ATOM = re.compile(rf"(?:{_NAME}(?:\.{_NAME})*|\d+(?:\.\d*)?|\.\d+|'(?:[^']|'')*'|null|true|false)", re.IGNORECASE)
_TYPE_CAST = re.compile(r"(?:\s*::\s*[A-Za-z_][A-Za-z0-9_ ]*(?:\([\d\s,]*\))?)+")
_NILADIC = {"current_date", "current_time", "current_timestamp", "localtime", "localtimestamp", "current_user",
            "session_user", "current_role", "current_catalog", "current_schema"}  # functions without brackets


def _one_cast_call(text: str) -> bool:
    """`cast( ... )` whose opening bracket closes at the very end (not `cast(a as int) + 1`)."""
    head = re.match(r"cast\s*\(", text, re.IGNORECASE)
    if not head:
        return False
    depth = 0
    for n, char in enumerate(text[head.end() - 1:], start=head.end() - 1):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return n == len(text) - 1
    return False


def target_rank(expression: str) -> int:
    """sqlfluff's ST06 wants simple targets (columns, literals, casts) before calculations: 0 simple, 2 calculation,
    1 for Jinja, whose rendering decides (kept between the two, it cannot break the order either way)."""
    text = expression.strip()
    if "{{" in text or "{%" in text:
        return 1
    if text.lower() in _NILADIC:
        return 2
    head = _ATOM.match(text)
    if _ATOM.fullmatch(text) or _one_cast_call(text) or (head and _TYPE_CAST.fullmatch(text, head.end())):
        return 0
    return 2


def _target(column: Column) -> str:
    expr = (column.expression or column.name).strip()
    return expr if expr == column.name else f"{expr} as {column.name}"


def select_clause(targets: list[str], indent: str = "") -> str:
    """`select` and its targets: one target on the select line, several one per line (sqlfluff LT09)."""
    if len(targets) == 1:
        return f"{indent}select {targets[0]}"
    return f"{indent}select\n" + ",\n".join(f"{indent}{INDENT}{t}" for t in targets)


def _import_select(source: Relation) -> str:
    line = f"{INDENT}select * from {source.jinja}"
    return line if len(line) <= LINE_LIMIT else f"{INDENT}select *\n{INDENT}from {source.jinja}"


def model_sql(config: dict[str, Any], source: Relation, columns: list[Column], incremental_filter: str | None = None) -> str:
    """An import CTE (select * is fine there) and a final select that names every column, in the order given. When
    that order puts a column or cast after a calculation (sqlfluff ST06), the expressions move into a `renamed` CTE
    ordered simple-first and the final select lists the names."""
    cte = source.cte
    filter_block = f"\n{INDENT}{incremental_filter}" if incremental_filter else ""
    head = config_block(config) + f"with {cte} as (\n\n{_import_select(source)}{filter_block}\n\n)"
    ranks = [target_rank(c.expression or c.name) for c in columns]
    if ranks == sorted(ranks):
        return head + f"\n\n{select_clause([_target(c) for c in columns])}\nfrom {cte}\n"
    renamed = "renamed" if cte != "renamed" else "renamed_columns"
    ordered = [c for _, c in sorted(zip(ranks, columns), key=lambda pair: pair[0])]
    return (
        head + f",\n\n{renamed} as (\n\n{select_clause([_target(c) for c in ordered], INDENT)}\n{INDENT}from {cte}\n\n)\n\n"
        + f"{select_clause([c.name for c in columns])}\nfrom {renamed}\n"
    )


def incremental_filter(updated_at: str, strategy: str, indent: str = INDENT) -> str:
    """Rows changed since the last run. Merge and delete+insert re-process the boundary timestamp (>=) because a
    re-upsert is harmless and a row with the same updated_at as the last run would otherwise be lost; append uses
    > because re-appending would duplicate it. The subquery's column is qualified by an alias of {{ this }}: sqlfluff
    (RF02) counts the subquery's table as a second one in the filtered select."""
    op = ">" if strategy == "append" else ">="
    inner = indent + INDENT
    return (
        "{% if is_incremental() %}\n"
        f"{inner}where {updated_at} {op} (\n"
        f"{inner}{INDENT}select max(existing_rows.{updated_at})\n"
        f"{inner}{INDENT}from {{{{ this }}}} as existing_rows\n"
        f"{inner})\n"
        f"{indent}{{% endif %}}"
    )


def wrap_incremental(sql_body: str, config: dict[str, Any], columns: list[str], updated_at: str, strategy: str) -> str:
    """User SQL without an is_incremental() filter: select its explicit columns from it and filter on top."""
    body = sql_body.strip().rstrip(";")
    return (
        config_block(config)
        + "with source_rows as (\n\n" + "\n".join(INDENT + line if line else line for line in body.splitlines())
        + f"\n\n)\n\n{select_clause(columns)}\nfrom source_rows\n{incremental_filter(updated_at, strategy, indent='')}\n"
    )


def with_config(sql: str, config: dict[str, Any]) -> str:
    return config_block(config) + sql.strip() + "\n" if config else sql.strip() + "\n"


def column_entry(column: Column, tests: list[Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": column.name}
    if column.description:
        entry["description"] = column.description
    if column.data_type:
        entry["data_type"] = column.data_type
    if tests:
        entry["data_tests"] = tests
    return entry


def macro_sql(name: str, parameters: list[str], body: str) -> str:
    text = body.strip("\n")
    indented = "\n".join(INDENT + line if line.strip() else "" for line in text.splitlines()) if not text.startswith(INDENT) else text
    return f"{{% macro {name}({', '.join(parameters)}) %}}\n{indented}\n{{% endmacro %}}\n"


def seed_csv(rows: list[dict[str, Any]] | None, text: str | None) -> tuple[str, list[str]]:
    """CSV text and its header; rows become CSV with the union of their keys in first-seen order."""
    if text is not None:
        lines = list(csv.reader(io.StringIO(text)))
        if not lines or not lines[0]:
            raise ValueError("the CSV has no header row")
        width = len(lines[0])
        for n, line in enumerate(lines[1:], start=2):
            if line and len(line) != width:
                raise ValueError(f"CSV line {n} has {len(line)} fields; the header has {width}")
        return (text if text.endswith("\n") else text + "\n"), [h.strip() for h in lines[0]]
    assert rows is not None
    header: list[str] = []
    for row in rows:
        for key in row:
            if key not in header:
                header.append(key)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if row.get(k) is None else _csv_value(row.get(k)) for k in header])
    return out.getvalue(), header


def _csv_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
