"""Read-only by construction: what a preview may read, and the database connection that keeps it from writing.

The database is the wall: on DuckDB a preview runs on its own connection opened `read_only=True` with external
access disabled and the configuration locked, so no statement can write a table, read or write a file, attach a
database or change a setting back; on PostgreSQL it runs in a `READ ONLY` transaction that is always rolled back
(no write, DDL, nextval() or lock can happen in one, and it cannot be switched back). Other adapters get no preview. The checks here come second and fail closed: exactly one statement as the
database's own parser counts it, a query that sqlglot cannot parse is refused, and every relation it reads is a
CTE or a relation of the project (models, seeds, snapshots, sources) unless the server allows any relation.
Runs inside the dbt worker (it needs the manifest and the adapter's credentials).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Functions that reveal the server's environment (paths, settings) or reach outside the query's data: DuckDB's, then
# PostgreSQL's (server files, large objects, other databases, settings, signals to other sessions).
DENIED_FUNCTIONS = ("current_setting", "getenv", "duckdb_", "pragma_", "which_secret", "read_", "glob(",
                    "pg_read", "pg_ls_", "pg_stat_file", "lo_", "dblink", "set_config", "pg_terminate", "pg_cancel",
                    "pg_reload", "pg_rotate", "pg_sleep", "pg_advisory", "pg_notify", "query_to_xml")
# Adapters whose database enforces a read-only transaction (`BEGIN ... READ ONLY`): previews run in one, rolled back.
READ_ONLY_TRANSACTION_ADAPTERS = frozenset({"postgres"})
RESOURCE_TYPES = ("model", "seed", "snapshot")
# PostgreSQL (14+) checks this often (ms) during a preview whether its client is still there, and stops the query if not.
CLIENT_CHECK_MS = 500
# Table functions that generate rows and touch nothing outside the query.
ROW_GENERATORS = ("range", "generate_series", "unnest")


class PreviewRefused(Exception):
    """A preview query that is not a single read-only query over project relations."""


class StatementRefused(Exception):
    """A statement dbt was about to send while rendering agent Jinja that is not a read-only query."""


@dataclass(frozen=True)
class ProjectRelations:
    """Project relations as (database, schema, identifier), lower-cased, plus the bare identifiers."""

    full: frozenset[tuple[str, str, str]]
    names: frozenset[str]

    def allows(self, catalog: str, schema: str, name: str) -> bool:
        if not schema:
            return name in self.names
        return any(s == schema and n == name and (not catalog or d == catalog) for d, s, n in self.full)


def project_relations(manifest: Any) -> ProjectRelations:
    full: set[tuple[str, str, str]] = set()
    for node in manifest.nodes.values():
        if node.resource_type in RESOURCE_TYPES and node.config.materialized != "ephemeral":
            full.add(((node.database or "").lower(), (node.schema or "").lower(), (node.alias or node.name).lower()))
    for source in manifest.sources.values():
        full.add(((source.database or "").lower(), (source.schema or "").lower(), (source.identifier or source.name).lower()))
    return ProjectRelations(frozenset(full), frozenset(name for _, _, name in full))


def _write_nodes() -> tuple[type, ...]:
    """sqlglot expressions that change data or run a command: never inside a read-only query."""
    from sqlglot import exp

    return (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter, exp.Command, exp.Copy)


def preview_problem(sql: str, dialect: str, relations: ProjectRelations | None) -> tuple[str, str] | None:
    """(error code, why) the compiled preview `sql` may not run, or None. `relations=None` allows any relation."""
    import sqlglot
    from sqlglot import exp

    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError) as exc:
        return "invalid_sql", f"it does not parse as {dialect} SQL ({str(exc).splitlines()[0][:200]}); previews must parse"
    if len(statements) != 1:
        return "not_read_only", f"it holds {len(statements)} statements; give exactly one query"
    statement = statements[0]
    if not isinstance(statement, exp.Query):
        return "not_read_only", f"it is a {statement.key.upper()} statement, not a query"
    ctes = {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
    writes = _write_nodes()
    for node in statement.walk():
        if isinstance(node, writes):
            return "not_read_only", f"it contains {node.key.upper()}"
        if isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if f"{name}(".startswith(DENIED_FUNCTIONS):
                return "relation_not_allowed", f"it calls {name}(), which reads the server's environment or files, not project data"
        if isinstance(node, exp.Table):
            if not isinstance(node.this, exp.Identifier):
                # PostgreSQL's generate_series() parses as ExplodingGenerateSeries, a GenerateSeries by another name
                if isinstance(node.this, exp.GenerateSeries) or (
                        isinstance(node.this, exp.Func) and {node.this.name.lower(), node.this.sql_name().lower()} & set(ROW_GENERATORS)):
                    continue
                return "relation_not_allowed", f"it reads from {node.this.sql(dialect=dialect)[:80]!r}, which is not a table; previews read project relations"
            if relations is None:
                continue
            name, schema, catalog = node.name.lower(), node.db.lower(), node.catalog.lower()
            if not schema and name in ctes:
                continue
            if not relations.allows(catalog, schema, name):
                shown = ".".join(p for p in (catalog, schema, name) if p)
                return "relation_not_allowed", f"it reads {shown}, which is not a model, seed, snapshot or source of this project"
    return None


def statement_problem(sql: str, adapter_type: str) -> str | None:
    """Second wall while agent Jinja renders: only single read-only queries (and transaction control) may be sent."""
    text = sql.strip()
    if not text:
        return None
    if adapter_type == "duckdb":
        import duckdb

        try:
            statements = duckdb.extract_statements(text)
        except duckdb.Error as exc:
            return f"the database cannot parse it ({str(exc).splitlines()[0][:160]})"
        allowed = {duckdb.StatementType.SELECT, duckdb.StatementType.TRANSACTION, duckdb.StatementType.EXPLAIN}
        kinds = [s.type for s in statements]
        if len(kinds) > 1 and any(k != duckdb.StatementType.TRANSACTION for k in kinds):
            return f"it holds {len(kinds)} statements"
        bad = [k for k in kinds if k not in allowed]
        return f"it is a {bad[0].name} statement" if bad else None
    import sqlglot
    from sqlglot import exp

    try:
        statements = [s for s in sqlglot.parse(text, read=adapter_type) if s is not None]
    except Exception as exc:  # an unknown dialect or unparsable text fails closed
        return f"it does not parse ({str(exc).splitlines()[0][:160]})"
    if len(statements) != 1:
        return f"it holds {len(statements)} statements"
    statement = statements[0]
    if isinstance(statement, (exp.Transaction, exp.Commit, exp.Rollback)):
        return None
    if not isinstance(statement, exp.Query) or any(isinstance(n, _write_nodes()) for n in statement.walk()):
        return f"it is a {statement.key.upper()} statement, not a read-only query"
    return None


def duckdb_database_path(credentials: Any, project_dir: Path) -> Path:
    path = str(getattr(credentials, "path", "") or "")
    if not path or path == ":memory:" or path.startswith(("md:", "motherduck:")) or "://" in path:
        raise PreviewRefused(f"the target's DuckDB database is {path or 'in memory'!r}, which a separate read-only connection cannot open")
    resolved = Path(path) if os.path.isabs(path) else project_dir / path
    if not resolved.parent.is_dir():
        raise PreviewRefused(f"the folder of the target's DuckDB database {path!r} does not exist or is not a folder; fix the "
                             "target's path in profiles.yml (dbt_debug checks the connection)")
    if not resolved.exists():
        raise PreviewRefused(f"the target's DuckDB database {path!r} does not exist yet; build something first")
    return resolved


def close_duckdb_environment() -> None:
    """DuckDB refuses a second configuration of an open file in one process: release dbt's handle (the next dbt call reopens it)."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
        if env is not None:
            env.close()


def open_duckdb_read_only(credentials: Any, project_dir: Path) -> Any:
    """A connection that cannot write, reach files or the network, or be reconfigured."""
    import duckdb

    database = duckdb_database_path(credentials, project_dir)
    close_duckdb_environment()
    con = duckdb.connect(str(database), read_only=True, config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        for attachment in getattr(credentials, "attach", None) or []:
            if attachment.type not in (None, "duckdb") or "://" in attachment.path or attachment.path.startswith("md:"):
                continue
            attached = Path(attachment.path) if os.path.isabs(attachment.path) else project_dir / attachment.path
            alias = attachment.alias or attached.stem
            con.execute(f"ATTACH '{str(attached).replace(chr(39), chr(39) * 2)}' AS \"{alias.replace(chr(34), chr(34) * 2)}\" (READ_ONLY)")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except Exception:
        con.close()
        raise
    return con


def run_duckdb_preview(con: Any, sql: str, limit: int) -> dict[str, Any]:
    """Run one SELECT (as DuckDB's parser counts it) on the read-only connection; at most `limit` rows."""
    import duckdb

    from tools.dbt.engine.serialize import json_value

    statements = con.extract_statements(sql)
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        kinds = ", ".join(s.type.name for s in statements) or "nothing"
        raise PreviewRefused(f"the database reads it as {len(statements)} statement(s) ({kinds}); a preview is exactly one SELECT")
    relation = con.sql(sql)
    columns = list(relation.columns)
    types = [str(t) for t in relation.types]
    rows = [[json_value(v) for v in row] for row in relation.limit(limit).fetchall()]
    return {"columns": columns, "column_types": types, "rows": rows}


# numeric, varchar, bpchar and their arrays: the types whose modifier psycopg2 reports less its 4-byte header
_NUMERIC, _HEADER_MODIFIED = 1700, {1700, 1231, 1043, 1015, 1042, 1014}


def postgres_type_modifier(column: Any) -> int:
    """The result column's type modifier (what `numeric(10,2)` or `varchar(20)` keeps beyond the type), recovered from
    psycopg2's description, which does not expose it directly; -1 (none) where it cannot tell (then `timestamp(3)`
    reads as `timestamp`)."""
    oid, size = int(column[1]), column[3]
    if oid == _NUMERIC:
        precision, scale = column[4], column[5]
        if precision is None or scale is None or precision >= 0xFFFF:
            return -1
        return ((precision << 16) | scale) + 4
    if oid in _HEADER_MODIFIED and size is not None and size >= 0:
        return size + 4
    return -1


def run_in_read_only_transaction(adapter: Any, sql: str, limit: int, timeout_s: float = 120.0) -> dict[str, Any]:
    """Run one query inside a read-only transaction that is always rolled back, on the adapter's own connection
    (PostgreSQL: the database refuses any write, DDL, nextval() or a switch back to read-write inside it). The
    transaction is checked to really be read-only before the query runs; at most `limit` rows are fetched, and a
    statement timeout bounds it. Column types are the database's own names (format_type)."""
    from tools.dbt.engine.serialize import json_value

    with adapter.connection_named("dbt_ae_read_only"):
        handle = adapter.connections.get_thread_connection().handle
        autocommit = handle.autocommit
        handle.rollback()
        handle.autocommit = True  # so that BEGIN below is ours, not a driver's implicit one
        cursor = handle.cursor()
        try:
            cursor.execute("BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            cursor.execute("SELECT current_setting('transaction_read_only')")
            if cursor.fetchone()[0] != "on":
                raise PreviewRefused("the database did not start a read-only transaction")
            cursor.execute(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}")
            if getattr(handle, "server_version", 0) >= 140000:
                # A timed-out or cancelled call kills this worker; without this the server would run the query on to
                # statement_timeout, since it notices a client is gone only when it next writes to it.
                cursor.execute(f"SET LOCAL client_connection_check_interval = {CLIENT_CHECK_MS}")
            cursor.execute(sql)
            described = cursor.description or []
            rows = [[json_value(v) for v in row] for row in cursor.fetchmany(limit)] if limit > 0 and described else []
            typed = [(int(d[1]), postgres_type_modifier(d)) if d[1] is not None else None for d in described]
            names: dict[tuple[int, int] | None, str] = {}
            pairs = sorted({t for t in typed if t is not None})
            if pairs:
                cursor.execute("SELECT t.oid, t.mod, format_type(t.oid, nullif(t.mod, -1)) FROM unnest(%s::oid[], %s::int[]) AS t(oid, mod)",
                               ([o for o, _ in pairs], [m for _, m in pairs]))
                names = {(int(oid), int(mod)): str(name) for oid, mod, name in cursor.fetchall()}
            return {"columns": [d[0] for d in described], "column_types": [names.get(t, "unknown") for t in typed], "rows": rows}
        finally:
            try:
                cursor.execute("ROLLBACK")
            finally:
                cursor.close()
                handle.autocommit = autocommit
