"""The output columns of every node, from what dbt compiled and what the warehouse holds, never from the text of a
model's last select list (wrong on the style guide's `select * from final`).

Pure logic: the caller (column_service.py) gathers the facts (compiled SQL from the warm worker, target/catalog.json,
seed files, the manifest) and, where this model cannot resolve a node, asks the database. Stars are expanded by sqlglot's
qualify through CTEs and through the relations a node depends on, parents first, so a staging column reaches a mart
through any number of `select *` levels.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields, replace
from functools import cached_property, lru_cache
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import traverse_scope

# Columns dbt adds to every snapshot table.
SNAPSHOT_META = ["dbt_scd_id", "dbt_updated_at", "dbt_valid_from", "dbt_valid_to"]


def norm(*parts: str | None) -> str:
    return ".".join(p.strip('"`[]').lower() for p in parts if p)


@lru_cache(maxsize=100_000)
def relation_key(relation_name: str | None) -> str | None:
    """`"db"."main"."orders"` -> `db.main.orders`, the key relations are matched by."""
    if not relation_name:
        return None
    try:
        table = exp.to_table(relation_name)
    except (SqlglotError, ValueError):
        return norm(*relation_name.split("."))
    return norm(table.catalog, table.db, table.name)


@dataclass
class NodeFacts:
    """What dbt and the warehouse say about one node, gathered by the caller."""

    unique_id: str
    resource_type: str
    relation: str | None = None  # relation_key() of its relation_name
    parents: list[str] = field(default_factory=list)
    compiled_sql: str | None = None
    compile_error: str | None = None
    catalog: list[tuple[str, str | None]] | None = None  # (name, type) in the warehouse's order, from target/catalog.json
    declared: list[tuple[str, str | None]] = field(default_factory=list)  # YAML columns (name, data_type)
    seed_header: list[str] | None = None

    @cached_property
    def digest(self) -> str:
        """sha256 of every field, computed once per object (facts are not changed once made; the caller keeps a node's
        facts while its inputs are the same objects): what infer's memo key takes of the node."""
        h = hashlib.sha256()
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "compiled_sql" and value is not None:  # the long one: its bytes, not a repr that escapes them
                h.update(b"S%d:" % len(value) + value.encode())
            else:
                h.update(repr(value).encode() + b"\0")
        return h.hexdigest()

    @cached_property
    def compiled_lines(self) -> int | None:
        """Lines of the compiled SQL (None when it did not compile), once per object."""
        return len(self.compiled_sql.strip().splitlines()) if self.compiled_sql else None


@dataclass
class NodeColumns:
    names: list[str]
    types: dict[str, str | None]
    origin: str  # "sql" (compiled SQL, stars expanded), "catalog", "database", "seed file", "declared"
    unresolved: str | None = None  # why the names may be incomplete; None when they are the node's real output

    @property
    def known(self) -> bool:
        return self.unresolved is None

    @cached_property
    def digest(self) -> str:
        """sha256 of the columns, computed once per object (results are shared through the memo and never changed)."""
        return hashlib.sha256(repr((self.names, self.types, self.origin, self.unresolved)).encode()).hexdigest()


def parent_schema(facts: NodeFacts, known: dict[str, NodeColumns], nodes: dict[str, NodeFacts]) -> dict[str, Any]:
    """sqlglot's nested schema of the relations this node depends on (its parents only: a seed and a source over one
    table are told apart by depends_on, not by the table's name)."""
    schema: dict[str, Any] = {}
    for parent in facts.parents:
        columns, pf = known.get(parent), nodes.get(parent)
        if columns is None or not columns.names or pf is None or not pf.relation:
            continue
        parts = pf.relation.split(".")
        level = schema
        for part in parts[:-1]:
            level = level.setdefault(part, {})
        level[parts[-1]] = {c: (columns.types.get(c) or "unknown") for c in columns.names}
    return _even_depth(schema)


def lineage_schema(facts: NodeFacts, known: dict[str, NodeColumns], nodes: dict[str, NodeFacts]) -> dict[str, Any]:
    """parent_schema plus the node's own relation: an incremental model reads `{{ this }}` (`select max(updated_at)
    from <itself>`), and sqlglot cannot trace any column of a query that reads a table it has no columns for."""
    return parent_schema(replace(facts, parents=[*facts.parents, facts.unique_id]), known, nodes)


def parent_relations(facts: NodeFacts, nodes: dict[str, NodeFacts]) -> dict[str, str]:
    """relation_key -> unique_id of the relations this node depends on, also by schema.table and by table name."""
    out: dict[str, str] = {}
    for parent in facts.parents:
        pf = nodes.get(parent)
        if pf is None or not pf.relation:
            continue
        parts = pf.relation.split(".")
        for i in range(len(parts)):
            out.setdefault(".".join(parts[i:]), parent)
    return out


def _even_depth(schema: dict[str, Any]) -> dict[str, Any]:
    """sqlglot wants every table at the same depth; pad shorter keys with an empty catalog/db name."""
    def depth(d: Any) -> int:
        return 0 if not isinstance(d, dict) or not d or not all(isinstance(v, dict) for v in d.values()) else 1 + max(depth(v) for v in d.values())

    tables: list[tuple[list[str], dict[str, str]]] = []

    def walk(d: dict[str, Any], path: list[str]) -> None:
        for k, v in d.items():
            if isinstance(v, dict) and v and all(isinstance(x, dict) for x in v.values()):
                walk(v, path + [k])
            else:
                tables.append((path + [k], v))

    walk(schema, [])
    if not tables:
        return {}
    width = max(len(p) for p, _ in tables)
    out: dict[str, Any] = {}
    for path, columns in tables:
        path = [""] * (width - len(path)) + path
        level = out
        for part in path[:-1]:
            level = level.setdefault(part, {})
        level[path[-1]] = columns
    return out


def parse_compiled(sql: str, dialect: str) -> exp.Expression | None:
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except SqlglotError:
        return None
    return statements[-1] if statements else None


def qualified(sql: str, dialect: str, schema: dict[str, Any]) -> exp.Expression | None:
    """The compiled SQL with every column qualified and every star expanded that the schema allows; None if unparsable."""
    tree = parse_compiled(sql, dialect)
    if tree is None:
        return None
    try:
        return qualify(tree, schema=schema or None, dialect=dialect, expand_stars=True, validate_qualify_columns=False,
                       quote_identifiers=False, identify=False)
    except (SqlglotError, KeyError, ValueError, AttributeError):
        return None


def final_select(tree: exp.Expression) -> exp.Expression:
    final = tree
    while isinstance(final, (exp.Union, exp.Subquery)):
        final = final.this if isinstance(final, exp.Subquery) else final.left
    return final


def sql_output(sql: str, dialect: str, schema: dict[str, Any]) -> tuple[list[str], dict[str, str | None], str | None]:
    """(names, cast types, why unresolved) of compiled SQL's output with stars expanded through CTEs and the schema."""
    tree = qualified(sql, dialect, schema)
    if tree is None:
        return [], {}, "sqlglot could not parse or qualify the compiled SQL"
    projections = final_select(tree).selects if isinstance(final_select(tree), exp.Query) else []
    names: list[str] = []
    types: dict[str, str | None] = {}
    for projection in projections:
        if isinstance(projection, exp.Star) or (isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)):
            return [], {}, "a star reads a relation whose columns are not known yet (not built, no catalog)"
        name = projection.alias_or_name
        inner = projection.this if isinstance(projection, exp.Alias) else projection
        names.append(name)
        types[name] = inner.args["to"].sql(dialect=dialect).lower() if isinstance(inner, exp.Cast) else None
    if not names:
        return [], {}, "the compiled SQL has no select list"
    return names, types, None


ORDER_KEY = "\0topological"  # where infer keeps the last order in the caller's `recent` (no unique_id starts with NUL)


def topological(nodes: dict[str, NodeFacts], held: dict[str, Any] | None = None) -> list[str]:
    """Parents before children (nodes outside `nodes` are ignored); a cycle's remainder comes last. `held` (a dict
    the caller keeps) keeps the last order with the nodes it came from: the same node ids in the same order, each
    with the same parents, give it again (after an edit of a 1,000-model project: the same graph, sorted again was a
    tenth of the check)."""
    last = held.get(ORDER_KEY) if held is not None else None
    if last is not None and len(last[0]) == len(nodes) and all(
            uid == was and (facts is had or facts.parents == had.parents) for (uid, facts), (was, had) in zip(nodes.items(), last[0], strict=True)):
        held[ORDER_KEY] = (list(nodes.items()), last[1])  # (held is not None: `last` came from it)
        return list(last[1])
    order = _topological(nodes)
    if held is not None:
        held[ORDER_KEY] = (list(nodes.items()), order)
    return list(order)


def _topological(nodes: dict[str, NodeFacts]) -> list[str]:
    pending = {uid: {p for p in f.parents if p in nodes and p != uid} for uid, f in nodes.items()}
    order: list[str] = []
    ready = sorted(uid for uid, ps in pending.items() if not ps)
    children: dict[str, list[str]] = {}
    for uid, ps in pending.items():
        for p in ps:
            children.setdefault(p, []).append(uid)
    while ready:
        uid = ready.pop()
        order.append(uid)
        for child in children.get(uid, []):
            pending[child].discard(uid)
            if not pending[child]:
                ready.append(child)
    seen = set(order)
    return order + sorted(uid for uid in nodes if uid not in seen)


def infer(nodes: dict[str, NodeFacts], dialect: str, known: dict[str, NodeColumns] | None = None,
          memo: dict[str, NodeColumns] | None = None, recent: dict[str, Any] | None = None) -> dict[str, NodeColumns]:
    """The output columns of every node in `nodes`, parents first. `known` holds results the caller already has (e.g.
    from the database) and is never recomputed; `memo` keeps results by everything they depend on (the node's facts and
    its parents' columns), so a second call re-qualifies only what changed. `recent` (the caller's, kept between
    calls) holds each node's last answer with the objects it came from: while its facts, the dialect and its parents'
    columns are the same objects, the answer stands without its memo key (a digest per node per call)."""
    out: dict[str, NodeColumns] = dict(known or {})
    for uid in topological(nodes, recent):
        if uid in out:
            continue
        facts = nodes[uid]
        held = recent.get(uid) if recent is not None else None
        if held is not None and held[0] is facts and held[1] == dialect and all(
                out.get(p) is c and nodes.get(p) is f for p, c, f in held[2]):
            out[uid] = held[3]
            continue
        key = memo_key(facts, out, nodes, dialect) if memo is not None else ""
        if memo is not None and key in memo:
            out[uid] = memo[key]
        else:
            out[uid] = node_columns(facts, parent_schema(facts, out, nodes), dialect)
            if memo is not None:
                memo[key] = out[uid]
        if recent is not None:
            recent[uid] = (facts, dialect, tuple((p, out.get(p), nodes.get(p)) for p in facts.parents), out[uid])
    return out


def memo_key(facts: NodeFacts, known: dict[str, NodeColumns], nodes: dict[str, NodeFacts], dialect: str) -> str:
    """Everything node_columns(facts, parent_schema(facts, known, nodes), dialect) depends on: the node's facts, and
    each parent that parent_schema takes (its relation and its columns), in order; from digests each object computes
    once, so a memo hit costs no repr of SQL or schemas."""
    parts = [dialect, facts.digest]
    for parent in facts.parents:
        columns, pf = known.get(parent), nodes.get(parent)
        if columns is None or not columns.names or pf is None or not pf.relation:
            continue  # as parent_schema skips it
        parts += [pf.relation, columns.digest]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def node_columns(facts: NodeFacts, schema: dict[str, Any], dialect: str) -> NodeColumns:
    catalog_types = dict(facts.catalog or [])
    declared_types = {n: t for n, t in facts.declared}
    if facts.resource_type in ("model", "snapshot", "analysis"):
        why = facts.compile_error or ("not compiled" if facts.compiled_sql is None else None)
        if facts.compiled_sql is not None:
            names, cast_types, why = sql_output(facts.compiled_sql, dialect, schema)
            if why is None:
                if facts.resource_type == "snapshot":
                    names += [m for m in SNAPSHOT_META if m not in names]
                types = {n: catalog_types.get(n) or cast_types.get(n) or declared_types.get(n) for n in names}
                return NodeColumns(names, types, "sql")
        if facts.catalog:
            return NodeColumns([n for n, _ in facts.catalog], catalog_types, "catalog",
                               unresolved=f"from the last docs catalog (may be stale): {why}")
        return NodeColumns([], {}, "sql", unresolved=why)
    if facts.catalog:
        return NodeColumns([n for n, _ in facts.catalog], catalog_types, "catalog")
    if facts.seed_header:
        return NodeColumns(list(facts.seed_header), {n: declared_types.get(n) for n in facts.seed_header}, "seed file")
    if facts.declared:
        return NodeColumns([n for n, _ in facts.declared], declared_types, "declared",
                           unresolved="only the columns declared in YAML (no catalog entry: dbt_docs generates one)")
    return NodeColumns([], {}, "declared", unresolved="no catalog entry and no declared columns (dbt_docs generates the catalog)")


@dataclass
class ColumnRead:
    """A column of a parent relation that a node's SQL names itself (not only through a star), with the line of the
    compiled SQL where it is named."""

    parent: str
    column: str
    line: int | None


def _branches(scope: Any) -> list[Any]:
    """The select scopes of a union (each side, recursively), or the scope itself."""
    if not scope.set_operation_scopes:
        return [scope]
    return [b for side in scope.set_operation_scopes for b in _branches(side)]


def _origins(scope: Any, table: str, name: str, depth: int = 0) -> list[tuple[exp.Table, str]]:
    """The relation columns a column reference `table.name` in this scope comes from, through CTEs and subqueries."""
    source = scope.sources.get(table)
    if isinstance(source, exp.Table):
        return [(source, name)]
    if source is None or depth > 50 or not hasattr(source, "expression"):
        return []
    out: list[tuple[exp.Table, str]] = []
    for branch in _branches(source):
        select = branch.expression
        projection = next((p for p in getattr(select, "selects", []) if p.alias_or_name.lower() == name.lower()), None)
        if projection is None:
            continue
        for column in projection.find_all(exp.Column):
            out += _origins(branch, column.table, column.name, depth + 1)
    return out


def columns_read(sql: str, dialect: str, schema: dict[str, Any], parents: dict[str, str]) -> list[ColumnRead]:
    """Every (parent, column) the compiled SQL names itself, resolved through CTEs and stars: a column only passed
    through an import CTE's `select *` is not read. The schema must hold the parents' columns (as they were, to find
    what reads a removed one); `parents` maps relation_key -> unique_id."""
    tree = parse_compiled(sql, dialect)
    if tree is None:
        return []
    for column in tree.find_all(exp.Column):
        column.meta["named"] = True
    try:
        tree = qualify(tree, schema=schema or None, dialect=dialect, expand_stars=True, validate_qualify_columns=False,
                       quote_identifiers=False, identify=False)
    except (SqlglotError, KeyError, ValueError, AttributeError):
        return []
    found: dict[tuple[str, str], ColumnRead] = {}
    for scope in traverse_scope(tree):
        for column in scope.columns:
            if not column.meta.get("named"):
                continue
            for table, name in _origins(scope, column.table, column.name):
                uid = parents.get(norm(table.catalog, table.db, table.name)) or parents.get(norm(table.db, table.name))
                key = (uid or "", name.lower())
                if uid is not None and key not in found:
                    found[key] = ColumnRead(uid, name, column.this.meta.get("line") if isinstance(column.this, exp.Identifier) else None)
    return list(found.values())


def stars_reaching_relations(sql: str, dialect: str) -> bool:
    """True when the output still has a star after expanding CTEs only: the model passes a relation's columns through
    without listing them anywhere (an import CTE `select * from ref()` followed by an explicit select does not)."""
    tree = qualified(sql, dialect, {})
    if tree is None:
        return False
    final = final_select(tree)
    return any(isinstance(p, exp.Star) or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star)) for p in getattr(final, "selects", []))
