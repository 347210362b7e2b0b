"""Pure checks a senior analytics engineer applies before a dbt file is written: names, layers, SQL shape.

SQL with Jinja cannot be parsed as SQL, so `neutralize` replaces dbt's Jinja with placeholder identifiers first
(`{{ ref('stg_orders') }}` -> `__ref__stg_orders`), keeps the body of `{% if %}` blocks, and drops config() calls.
The result parses with sqlglot in the project's dialect, which tells us the final select's columns, whether it
selects `*`, and whether it joins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

from server.errors import ToolFailure

NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
LAYERS = ("staging", "intermediate", "marts")
PREFIXES = {"staging": ("stg_",), "intermediate": ("int_",), "marts": ("fct_", "dim_")}
MATERIALIZATIONS = ("view", "table", "incremental", "ephemeral")

_REF = re.compile(r"""\bref\(\s*['"]([^'"]+)['"]\s*(?:,\s*['"]([^'"]+)['"]\s*)?(?:,\s*v(?:ersion)?\s*=\s*[^)]*)?\)""")
_SOURCE = re.compile(r"""\bsource\(\s*['"]([^'"]+)['"]\s*,\s*['"]([^'"]+)['"]\s*\)""")
_EXPR = re.compile(r"\{\{(.*?)\}\}", re.S)
_TAG = re.compile(r"\{%-?(.*?)-?%\}", re.S)
_COMMENT = re.compile(r"\{#.*?#\}", re.S)


def check_name(name: str, what: str) -> None:
    if not NAME.match(name or "") or len(name) > 128:
        raise ToolFailure("invalid_name", f"{what} name {name[:80]!r} is not a dbt name: lower-case letters, digits and _, starting with a letter or _ (at most 128).",
                          "Use snake_case, e.g. stg_orders; paths and '..' are not accepted in names.")


def check_layer(layer: str) -> None:
    if layer not in LAYERS:
        raise ToolFailure("invalid_layer", f"Unknown layer {layer!r}.", f"Use one of {', '.join(LAYERS)}.")


def check_prefix(name: str, layer: str) -> None:
    if not name.startswith(PREFIXES[layer]):
        raise ToolFailure("naming_convention", f"A {layer} model is named {' or '.join(p + '…' for p in PREFIXES[layer])}; got {name!r}.",
                          f"Rename it, e.g. {PREFIXES[layer][0]}{name.split('_', 1)[-1]}.")


@dataclass
class Relations:
    refs: list[str] = field(default_factory=list)  # model/seed/snapshot names (the last argument of ref)
    sources: list[tuple[str, str]] = field(default_factory=list)


def relations(sql: str) -> Relations:
    found = Relations()
    for first, second in _REF.findall(sql):
        name = second or first
        if name not in found.refs:
            found.refs.append(name)
    for pair in _SOURCE.findall(sql):
        if pair not in found.sources:
            found.sources.append(pair)
    return found


def _placeholder(expression: str) -> str:
    expression = expression.strip()
    ref = _REF.search(expression)
    if ref and expression.startswith("ref"):
        return f"__ref__{ref.group(2) or ref.group(1)}"
    src = _SOURCE.search(expression)
    if src and expression.startswith("source"):
        return f"__source__{src.group(1)}__{src.group(2)}"
    if expression.startswith("config("):
        return ""
    if expression == "this":
        return "__this"
    return "__jinja"


def neutralize(sql: str) -> str:
    """dbt SQL -> plain SQL for structure checks (never executed)."""
    text = _COMMENT.sub("", sql)
    text = _EXPR.sub(lambda m: _placeholder(m.group(1)), text)
    text = _TAG.sub("", text)  # {% if is_incremental() %} ... {% endif %}: keep the body
    return text


@dataclass
class SqlShape:
    columns: list[str]  # output column names of the final select, in order ("*" for a star)
    star: bool
    joins: int
    has_is_incremental: bool
    tree: exp.Expression | None = field(default=None, repr=False)  # the parsed statement, for further analysis
    # A star that passes a ref()/source()'s columns through unnamed (the column model's stars_reaching_relations);
    # `select * from final` over a CTE that names its columns (the dbt style guide's last line) does not.
    star_reads_relation: bool = False


def parse_sql(sql: str, dialect: str) -> SqlShape:
    plain = neutralize(sql)
    try:
        statements = [s for s in sqlglot.parse(plain, read=dialect) if s is not None]
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ToolFailure("invalid_sql", f"The SQL does not parse ({dialect}): {first}",
                          "Fix the SQL; Jinja is allowed for ref(), source(), var(), config() and {% if is_incremental() %}.") from None
    if len(statements) != 1:
        raise ToolFailure("invalid_sql", f"A model holds exactly one select statement; got {len(statements)} statements.",
                          "Remove the extra statements (and any trailing ';' followed by more SQL).")
    tree = statements[0]
    final = tree
    while isinstance(final, (exp.Union, exp.Subquery)):
        final = final.this if isinstance(final, exp.Subquery) else final.left
    if not isinstance(final, exp.Select):
        raise ToolFailure("invalid_sql", f"A model is a select statement; got {type(tree).__name__.upper()}.",
                          "Write the model as a select (dbt creates the table or view around it).")
    columns, star = [], False
    for projection in final.expressions:
        if isinstance(projection, exp.Star) or (isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)):
            star = True
            columns.append("*")
        else:
            columns.append(projection.alias_or_name)
    if star:  # the column model's check: CTEs expanded, does a star still pass a relation's columns through?
        from tools.lineage.column_model import stars_reaching_relations
    return SqlShape(columns=columns, star=star, joins=len(list(tree.find_all(exp.Join))), has_is_incremental="is_incremental()" in sql,
                    tree=tree, star_reads_relation=star and stars_reaching_relations(plain, dialect))


def layer_problems(layer: str, found: Relations, shape: SqlShape, seed_names: set[str]) -> list[str]:
    """The layering rules: staging reads sources (or seeds) and does not join; intermediate and marts read refs only."""
    problems = []
    if layer == "staging":
        if not found.sources and not any(r in seed_names for r in found.refs):
            problems.append("a staging model reads a source() (or a seed)")
        other = [r for r in found.refs if r not in seed_names]
        if other:
            problems.append(f"a staging model does not ref() other models ({', '.join(other)}); move that logic to intermediate")
        if shape.joins:
            problems.append("a staging model does not join; join in an intermediate or mart model")
    elif found.sources:
        names = ", ".join(f"{a}.{b}" for a, b in found.sources)
        problems.append(f"an {layer} model reads other models with ref(), not source() ({names}); add a staging model for it")
    if shape.star_reads_relation:
        problems.append("the final select lists its columns explicitly (no select * from a ref or source); import CTEs "
                        "may select *, and `select * from final` over a CTE that names its columns is fine")
    return problems
