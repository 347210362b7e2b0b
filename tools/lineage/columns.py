"""Column lineage from compiled SQL with sqlglot: which upstream columns a model's column is computed from, and
which downstream columns are computed from it.

sqlglot resolves columns through CTEs, subqueries and stars when it knows the columns of the relations a query reads;
those come from the column model (column_model.py: compiled SQL of the parents, the catalog, the database). A
relation whose columns are unknown ends the trace there (reported as `unresolved`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.lineage import lineage

from tools.lineage.column_model import norm


@dataclass
class ColumnEdge:
    from_node: str
    from_column: str
    to_node: str
    to_column: str
    transformation: str  # "direct" when the column is passed through unchanged, else the expression


@dataclass
class ColumnTrace:
    edges: list[ColumnEdge] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)


def upstream_of_all(node: str, sql: str, dialect: str, relations: dict[str, str], schema: dict[str, Any]) -> dict[str, ColumnTrace]:
    """One model hop for every output column at once: sqlglot qualifies the SQL once and shares the walk."""
    try:
        roots = lineage(None, sql, schema, dialect=dialect)
    except (SqlglotError, KeyError, ValueError) as exc:
        return {"": ColumnTrace(unresolved=[f"{node}: {str(exc).splitlines()[0][:200]}"])}
    return {column: _edges(node, column, root, relations, dialect) for column, root in roots.items()}


def _edges(node: str, column: str, root: Any, relations: dict[str, str], dialect: str) -> ColumnTrace:
    trace = ColumnTrace()
    seen: set[tuple[str, str]] = set()
    stack: list[tuple[Any, list[Any]]] = [(root, [])]
    while stack:  # depth-first, keeping the path from the model's column down to each source column
        item, path = stack.pop()
        path = path + [item]
        if item.downstream:
            stack.extend((child, path) for child in item.downstream)
            continue
        if not isinstance(item.source, exp.Table):
            continue
        table = item.source
        uid = relations.get(norm(table.catalog, table.db, table.name)) or relations.get(norm(table.db, table.name)) or relations.get(norm(table.name))
        source_column = item.name.split(".")[-1]
        if uid is None or uid == node or (uid, source_column) in seen:
            continue  # {{ this }} in an incremental filter, a relation outside dbt, or already listed
        seen.add((uid, source_column))
        computed = [step.expression.this if isinstance(step.expression, exp.Alias) else step.expression for step in path]
        transform = next((e for e in computed if not isinstance(e, (exp.Column, exp.Table))), None)
        trace.edges.append(ColumnEdge(uid, source_column, node, column, "direct" if transform is None else transform.sql(dialect=dialect)[:200]))
    return trace
