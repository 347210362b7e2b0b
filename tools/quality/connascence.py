"""Connascence analysis of dbt SQL: which parts of a model must change together with what, and how to loosen it.

Kinds (weakest first, as in Page-Jones's scale): name, meaning, position, algorithm, timing, identity. Each finding
says where (line), how strong (1 = weak … 5 = strong), whether the coupling stays inside the model or reaches other
models, and the usual dbt fix. The SQL is read with sqlglot after dbt's Jinja is replaced by placeholders
(tools/authoring/rules.py), so ref() and source() relations are told apart from hard-coded ones.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

import sqlglot
from sqlglot import exp

from tools.authoring.rules import neutralize

STRENGTH = {"name": 1, "meaning": 2, "position": 3, "algorithm": 4, "timing": 4, "identity": 5}
TIME_FUNCTIONS = re.compile(r"\b(now\s*\(\s*\)|current_date\b|current_timestamp\b|getdate\s*\(\s*\)|sysdate\b|today\s*\(\s*\)|localtimestamp\b)", re.I)
DATE_LITERAL = re.compile(r"^\d{4}-\d{2}-\d{2}")
PLACEHOLDER = re.compile(r"^__(ref|source|this|jinja)")


@dataclass
class Finding:
    kind: str
    strength: int
    locality: str  # "within model" | "across models"
    line: int
    message: str
    fix: str
    related: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def line_of(text: str, needle: str, start_line: int = 1) -> int:
    """First line (1-based, at or after start_line) whose text contains `needle`, case-insensitively."""
    lines = text.splitlines()
    low = needle.lower()
    for n in range(max(0, start_line - 1), len(lines)):
        if low in lines[n].lower():
            return n + 1
    for n, line in enumerate(lines):
        if low in line.lower():
            return n + 1
    return 1


def _parse(sql: str, dialect: str) -> exp.Expression | None:
    try:
        return sqlglot.parse_one(neutralize(sql), read=dialect)
    except Exception:
        return None


def _fingerprints(tree: exp.Expression, dialect: str) -> dict[str, str]:
    """Normalised SQL of the non-trivial computed expressions in a model (what 'the same logic' means here)."""
    found: dict[str, str] = {}
    for node in tree.find_all(exp.Alias, exp.Case):
        inner = node.this if isinstance(node, exp.Alias) else node
        if isinstance(inner, (exp.Column, exp.Literal, exp.Star)) or isinstance(inner, exp.Cast) and isinstance(inner.this, exp.Column):
            continue
        size = sum(1 for _ in inner.walk())
        if size < 6:  # cast(x as int), lower(x): conventions, not copied logic
            continue
        text = inner.sql(dialect=dialect, normalize=True, pretty=False).lower()
        found.setdefault(re.sub(r"\s+", " ", text), inner.sql(dialect=dialect))
    return found


def analyze(sql: str, dialect: str, *, others: dict[str, str] | None = None, incremental_key: list[str] | None = None,
            unique_tested: set[str] | None = None, combination_tested: list[set[str]] | None = None,
            tree: exp.Expression | None = None) -> list[Finding]:
    """Findings for one model. `others`: name -> SQL of the project's other models (for copied logic across models);
    `incremental_key`: the model's unique_key when it is incremental; `unique_tested`: its columns with a unique
    test; `combination_tested`: column sets under unique_combination_of_columns."""
    findings: list[Finding] = []
    tree = tree if tree is not None else _parse(sql, dialect)
    plain = neutralize(sql)
    if tree is None:
        return findings
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}

    # position: ordinals in GROUP BY / ORDER BY, INSERT without columns, select * in the final select
    for group in tree.find_all(exp.Group):
        ordinals = [e for e in group.expressions if isinstance(e, exp.Literal) and not e.is_string]
        if ordinals:
            nums = ", ".join(o.this for o in ordinals)
            findings.append(Finding("position", STRENGTH["position"], "within model", line_of(sql, "group by"),
                                    f"GROUP BY {nums}: the grouping depends on the order of the select list",
                                    "Group by column names (or dbt_utils.group_by(n) if you must), so reordering the select cannot regroup.", []))
    for order in tree.find_all(exp.Order):
        ordinals = [o for o in order.expressions if isinstance(o.this, exp.Literal) and not o.this.is_string]
        if ordinals:
            findings.append(Finding("position", STRENGTH["position"], "within model", line_of(sql, "order by"),
                                    f"ORDER BY {', '.join(o.this.this for o in ordinals)}: the sort depends on the select list's order",
                                    "Order by column names.", []))
    for insert in tree.find_all(exp.Insert):
        if not isinstance(insert.this, exp.Schema):
            findings.append(Finding("position", STRENGTH["position"], "across models", line_of(sql, "insert"),
                                    "INSERT without a column list: values land by position in the target's columns",
                                    "Name the target columns, or let dbt materialize the model instead of inserting by hand.", []))
    final = tree
    while isinstance(final, (exp.Union, exp.Subquery)):
        final = final.this if isinstance(final, exp.Subquery) else final.left
    if isinstance(final, exp.Select) and any(isinstance(p, exp.Star) or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star)) for p in final.expressions):
        lines = [n + 1 for n, line in enumerate(sql.splitlines()) if re.search(r"select\s+(\w+\.)?\*", line, re.I)]
        findings.append(Finding("position", STRENGTH["position"], "across models", lines[-1] if lines else 1,
                                "The final select is `select *`: downstream models and tools see whatever columns, in whatever order, the upstream has",
                                "List the output columns explicitly in the final select (import CTEs may keep select *).", []))

    # meaning: magic literals in filters and CASE
    seen: set[str] = set()
    for literal in tree.find_all(exp.Literal):
        if not literal.is_string and literal.this in ("0", "1"):
            continue
        context = literal.find_ancestor(exp.Where, exp.Case, exp.If, exp.In, exp.Having, exp.Join)
        if context is None or (not literal.is_string and not isinstance(context, (exp.Where, exp.Having))):
            continue
        shown = f"'{literal.this}'" if literal.is_string else literal.this
        if shown in seen:
            continue
        seen.add(shown)
        where = {exp.Where: "WHERE", exp.Case: "CASE", exp.If: "CASE", exp.In: "IN list", exp.Having: "HAVING", exp.Join: "JOIN"}[type(context)]
        dated = literal.is_string and DATE_LITERAL.match(literal.this)
        findings.append(Finding("meaning", STRENGTH["meaning"], "across models" if dated else "within model", line_of(sql, shown),
                                f"Magic {'date' if dated else 'value'} {shown} in a {where}: its meaning lives only in this SQL",
                                "Move it to a var() in dbt_project.yml (e.g. var('revenue_statuses')) or a seed that names the values.", []))

    # name: relations hard-coded instead of ref() / source()
    for table in tree.find_all(exp.Table):
        name = table.name.lower()
        if not name or PLACEHOLDER.match(name) or (name in ctes and not table.db):
            continue
        full = ".".join(part for part in (table.catalog, table.db, table.name) if part)
        findings.append(Finding("name", STRENGTH["name"], "across models", line_of(sql, table.name),
                                f"Relation {full} is named directly: dbt cannot see the dependency and environments cannot swap it",
                                "Use {{ ref('model') }} for models and seeds, {{ source('source', 'table') }} for raw tables.", [full]))

    # timing: the model's result depends on when it runs
    for match in TIME_FUNCTIONS.finditer(plain):
        findings.append(Finding("timing", STRENGTH["timing"], "within model", line_of(sql, match.group(1).split("(")[0]),
                                f"{match.group(1)} makes the output depend on when the model runs (reruns and backfills differ)",
                                "Take the reference time from the data (max(updated_at)) or a var('run_date') passed at run time.", []))

    # algorithm: the same computation written in more than one place
    mine = _fingerprints(tree, dialect)
    for key, shown in mine.items():
        copies = []
        for other_name, other_sql in (others or {}).items():
            other_tree = _parse(other_sql, dialect)
            if other_tree is not None and key in _fingerprints(other_tree, dialect):
                copies.append(other_name)
        if copies:
            findings.append(Finding("algorithm", STRENGTH["algorithm"], "across models", line_of(sql, shown.split("(")[0]),
                                    f"The expression {shown[:120]} is also computed in {', '.join(sorted(copies))}",
                                    "Compute it once (an upstream model column, or a macro) and reuse it.", sorted(copies)))

    # identity: an incremental merge key that nothing proves unique
    keys = incremental_key or []
    if keys:
        covered = (len(keys) == 1 and keys[0] in (unique_tested or set())) or any(set(keys) <= s for s in (combination_tested or []))
        if not covered:
            findings.append(Finding("identity", STRENGTH["identity"], "across models", line_of(sql, "unique_key"),
                                    f"unique_key {', '.join(keys)} identifies rows for the incremental merge, but no unique test covers it",
                                    "Add unique + not_null on the key (data_quality_test), or unique_combination_of_columns for a compound key.", []))
    # A finding about a Jinja placeholder (the value is rendered by dbt, e.g. '{{ var(...) }}') is not the author's literal.
    findings = [f for f in findings if "__jinja" not in f.message and "__this" not in f.message]
    return sorted(findings, key=lambda f: (f.line, f.kind))
