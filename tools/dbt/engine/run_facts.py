"""What a run did beyond dbt's status, gathered inside the worker: rows each statement changed, whether an incremental
model ran incrementally or was rebuilt, and the first rows a failing test returned (read on a read-only connection)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

FAILING_ROWS = 5
MAX_TESTS_READ = 10
FULL_REFRESH = "full_refresh"
INCREMENTAL = "incremental"


def report_duckdb_rows() -> None:
    """dbt-duckdb answers every statement with a bare "OK" while DuckDB's cursor knows how many rows an insert, merge,
    delete or create-table-as changed (-1 for anything else). Pass that count on as dbt's rows_affected, as other
    adapters do; reading `rowcount` does not consume the cursor's result."""
    try:
        from dbt.adapters.contracts.connection import AdapterResponse
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    if getattr(DuckDBConnectionManager.get_response, "_reports_rows", False):
        return

    def get_response(cls: Any, cursor: Any) -> AdapterResponse:
        try:
            rows = int(cursor.rowcount)
        except Exception:  # a cursor without a count: say only what dbt-duckdb says
            rows = -1
        return AdapterResponse(_message="OK", rows_affected=rows) if rows >= 0 else AdapterResponse(_message="OK")

    get_response._reports_rows = True  # type: ignore[attr-defined]
    DuckDBConnectionManager.get_response = classmethod(get_response)  # type: ignore[method-assign]


def incremental_mode(node: Any, adapter: Any) -> str | None:
    """How dbt's incremental materialization will build `node`, decided as it decides (should_full_refresh, an
    existing relation that is a table): read when the node starts, before anything of it has run."""
    configured = getattr(node.config, "full_refresh", None)
    if configured is None:
        from dbt.flags import get_flags

        configured = bool(getattr(get_flags(), "FULL_REFRESH", False))
    if configured:
        return FULL_REFRESH
    database, schema, identifier = node.database, node.schema, node.alias or node.name
    try:
        if not adapter._schema_is_cached(database, schema):
            return None  # the relation cache is off (--no-populate-cache): not worth a query of our own
        relation = adapter.get_relation(database, schema, identifier)
    except Exception:  # not knowing must not fail the run
        return None
    if relation is None or getattr(relation, "is_view", False):
        return FULL_REFRESH
    return INCREMENTAL


def _relation(database: Any, schema: Any, identifier: Any) -> tuple[str, str, str]:
    """A relation as dbt's cache keys it: lower case, a missing part empty."""
    return (str(database or "").lower(), str(schema or "").lower(), str(identifier or "").lower())


def cascade_consequences(data: Any) -> set[tuple[str, str, str]]:
    """The relations a `drop_cascade` CacheAction says go with the dropped one (not the dropped one itself: that is the
    backup or temp relation of a rebuild)."""
    refs = [_relation(r.database, r.schema, r.identifier) for r in data.ref_list]
    return set(refs) - {_relation(data.ref_key.database, data.ref_key.schema, data.ref_key.identifier)}


def dropped_dependents(cascaded: set[tuple[str, str, str]], adapter: Any, manifest: Any) -> str | None:
    """A warning naming the views a run's rebuilds took with them (PostgreSQL and other databases that drop a
    relation's dependent views with it: dbt replaces a view or table by renaming it away and dropping it CASCADE) and
    that the run did not build again: they are missing from the database until rebuilt. Known from dbt's relation cache,
    which links dependencies on the adapters where drops cascade; none on the others."""
    with adapter.cache.lock:
        present = {_relation(*key) for key in adapter.cache.relations}
    gone = sorted(k for k in cascaded if k not in present)
    if not gone:
        return None
    by_relation = {_relation(n.database, n.schema, n.alias or n.name): n.name
                   for n in manifest.nodes.values() if n.resource_type in ("model", "seed", "snapshot")}
    models = [by_relation[k] for k in gone if k in by_relation]
    others = [".".join(p for p in k[1:] if p) for k in gone if k not in by_relation]
    named = models + [f"{o} (not a dbt node)" for o in others]
    text = (f"rebuilding dropped {len(gone)} dependent view(s) with it (the database drops the views that read a replaced "
            f"relation): {', '.join(named[:20])}{' …' if len(named) > 20 else ''}. They are missing from the database now")
    if models:
        text += f"; rebuild them with dbt_run select={' '.join(models[:20])!r} (or select a rebuilt model with a trailing +)"
    return text


def _reopens_cleanly(credentials: Any) -> bool:
    """Reading the rows closes dbt's DuckDB handle (a file opens read-only only when no handle holds it; dbt_show does
    the same): only where dbt reopens the same state next time, i.e. no attachment other than a DuckDB file."""
    return all(a.type in (None, "duckdb") and "://" not in a.path and not a.path.startswith("md:")
               for a in getattr(credentials, "attach", None) or [])


def failing_rows(nodes: list[dict[str, Any]], manifest: Any, adapter_type: str, credentials: Any,
                 project_dir: Path) -> None:
    """Adds `failing_rows` (columns, first rows) to failing tests that returned rows. Only where the database can keep
    the query read-only, as dbt_show does (DuckDB: a read_only connection; PostgreSQL: a read-only transaction, rolled
    back); other adapters get none."""
    tests = [n for n in nodes if n.get("resource_type") == "test" and n.get("status") in ("fail", "warn")
             and n.get("compiled_sql")][:MAX_TESTS_READ]
    if not tests:
        return
    from tools.dbt.engine import readonly

    if adapter_type in readonly.READ_ONLY_TRANSACTION_ADAPTERS:
        from dbt.adapters.factory import FACTORY

        adapter = FACTORY.adapters.get(adapter_type)
        if adapter is not None:
            _read_each(tests, manifest, adapter_type, lambda sql: readonly.run_in_read_only_transaction(adapter, sql, FAILING_ROWS))
        return
    if adapter_type != "duckdb" or not _reopens_cleanly(credentials):
        return
    try:
        con = readonly.open_duckdb_read_only(credentials, project_dir)
    except Exception:
        return
    try:
        _read_each(tests, manifest, adapter_type, lambda sql: readonly.run_duckdb_preview(con, sql, FAILING_ROWS))
    finally:
        con.close()


def _read_each(tests: list[dict[str, Any]], manifest: Any, adapter_type: str, read: Callable[[str], dict[str, Any]]) -> None:
    """Each test's query through `read` (on a connection or transaction the database keeps read-only), if it passes the
    preview checks."""
    from tools.dbt.engine import readonly

    relations = readonly.project_relations(manifest)
    for node in tests:
        sql = node["compiled_sql"]
        if readonly.preview_problem(sql, adapter_type, relations) is not None:
            continue
        try:
            node["failing_rows"] = read(sql)
        except Exception as exc:  # the rows are a courtesy; the test's own failure is already reported
            node["failing_rows_error"] = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
