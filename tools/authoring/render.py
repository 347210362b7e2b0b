"""Text of the dbt files the authoring tools write: pure functions from specs to SQL and YAML-ready dicts."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

INDENT = "    "


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


def select_list(columns: list[Column]) -> str:
    lines = []
    for column in columns:
        expr = (column.expression or column.name).strip()
        lines.append(expr if expr == column.name else f"{expr} as {column.name}")
    return ",\n".join(f"{INDENT}{line}" for line in lines)


def model_sql(config: dict[str, Any], source: Relation, columns: list[Column], incremental_filter: str | None = None) -> str:
    """An import CTE (select * is fine there) and a final select that names every column."""
    cte = source.cte
    filter_block = f"\n{INDENT}{incremental_filter}" if incremental_filter else ""
    return (
        config_block(config)
        + f"with {cte} as (\n\n{INDENT}select * from {source.jinja}{filter_block}\n\n)\n\n"
        + f"select\n{select_list(columns)}\nfrom {cte}\n"
    )


def incremental_filter(updated_at: str, strategy: str, indent: str = INDENT) -> str:
    """Rows changed since the last run. Merge and delete+insert re-process the boundary timestamp (>=) because a
    re-upsert is harmless and a row with the same updated_at as the last run would otherwise be lost; append uses
    > because re-appending would duplicate it."""
    op = ">" if strategy == "append" else ">="
    return (
        "{% if is_incremental() %}\n"
        f"{indent}where {updated_at} {op} (select max({updated_at}) from {{{{ this }}}})\n"
        f"{indent}{{% endif %}}"
    )


def wrap_incremental(sql_body: str, config: dict[str, Any], columns: list[str], updated_at: str, strategy: str) -> str:
    """User SQL without an is_incremental() filter: select its explicit columns from it and filter on top."""
    body = sql_body.strip().rstrip(";")
    cols = ",\n".join(f"{INDENT}{c}" for c in columns)
    return (
        config_block(config)
        + "with source_rows as (\n\n" + "\n".join(INDENT + line if line else line for line in body.splitlines())
        + f"\n\n)\n\nselect\n{cols}\nfrom source_rows\n{incremental_filter(updated_at, strategy, indent='')}\n"
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
