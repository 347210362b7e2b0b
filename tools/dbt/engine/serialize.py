"""Turns dbt's Python results into plain JSON-able dicts. Runs inside the worker, the only place dbt objects exist."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
import uuid
from pathlib import Path
from typing import Any

SECRET_PATTERN = re.compile(
    r"(?i)(password|passwd|pwd|token|secret|private_key|api_key|access_key|client_secret)([\"']?\s*[:=]\s*)"
    r"(\"[^\"]*\"|'[^']*'|\S+)"
)
URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,30}://[^\s:/@'\"]{1,256}:)[^\s@'\"]{1,256}(@)")


def redact(text: str) -> str:
    text = URL_PASSWORD.sub(r"\1***\2", text)
    return SECRET_PATTERN.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)


def json_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            return str(value)
        if value == value.to_integral_value():
            return int(value) if abs(value) < 2**53 else str(value)
        return float(value) if abs(value) < 2**53 else str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return str(value)


def _enum_value(value: Any) -> Any:
    return getattr(value, "value", value)


def _timing(result: Any) -> dict[str, str | None]:
    timing: dict[str, str | None] = {}
    for info in getattr(result, "timing", None) or []:
        timing[f"{info.name}_started_at"] = info.started_at.isoformat() if info.started_at else None
        timing[f"{info.name}_completed_at"] = info.completed_at.isoformat() if info.completed_at else None
    return timing


def _compiled_path(node: Any, project_dir: Path) -> str | None:
    path = getattr(node, "compiled_path", None)
    if not path:
        return None
    full = Path(path)
    if not full.is_absolute():
        full = project_dir / full
    return str(full)


# Resource types whose statements change a relation's rows: only their rows_affected means rows written.
CHANGES_ROWS = ("model", "seed", "snapshot")


def node_result(result: Any, project_dir: Path) -> dict[str, Any]:
    node = result.node
    config = getattr(node, "config", None)
    adapter_response = getattr(result, "adapter_response", None) or {}
    rows_affected = adapter_response.get("rows_affected") if isinstance(adapter_response, dict) else None
    if _enum_value(node.resource_type) not in CHANGES_ROWS:  # a test's count is its own query's rows (PostgreSQL: 1)
        rows_affected = None
    return {
        "unique_id": node.unique_id,
        "name": getattr(node, "name", None),
        "resource_type": _enum_value(node.resource_type),
        "status": str(_enum_value(result.status)),
        "execution_time_s": round(float(getattr(result, "execution_time", 0.0) or 0.0), 4),
        "message": result.message,
        "failures": getattr(result, "failures", None),
        "materialized": getattr(config, "materialized", None) if config is not None else None,
        "relation_name": getattr(node, "relation_name", None),
        "original_file_path": getattr(node, "original_file_path", None),
        "compiled_path": _compiled_path(node, project_dir),
        "compiled_sql": getattr(node, "compiled_code", None),
        "rows_affected": rows_affected if isinstance(rows_affected, int) and rows_affected >= 0 else None,
        "timing": _timing(result),
        **_test_facts(node),
    }


def _test_facts(node: Any) -> dict[str, Any]:
    """A generic test's kind and arguments (relationships: to/field; accepted_values: values), to explain a failure."""
    metadata = getattr(node, "test_metadata", None)
    if metadata is None:
        return {}
    kwargs = {k: v for k, v in (getattr(metadata, "kwargs", None) or {}).items() if k != "model" and isinstance(v, (str, int, float, bool, list))}
    return {"test_name": metadata.name, "column_name": getattr(node, "column_name", None),
            "test_kwargs": json.loads(json.dumps(kwargs, default=str))}


def _table(agate_table: Any) -> dict[str, Any]:
    columns = list(agate_table.column_names)
    rows = [[json_value(v) for v in row] for row in agate_table.rows]
    types = [type(t).__name__ for t in agate_table.column_types]
    return {"columns": columns, "column_types": types, "rows": rows}


def _freshness_node(result: Any) -> dict[str, Any]:
    node = result.node
    base = {
        "unique_id": node.unique_id,
        "name": f"{node.source_name}.{node.name}",
        "resource_type": "source",
        "status": str(_enum_value(result.status)),
        "execution_time_s": round(float(getattr(result, "execution_time", 0.0) or 0.0), 4),
        "message": getattr(result, "message", None),
        "timing": _timing(result),
    }
    max_loaded_at = getattr(result, "max_loaded_at", None)
    if max_loaded_at is not None:
        base["max_loaded_at"] = max_loaded_at.isoformat()
        base["snapshotted_at"] = result.snapshotted_at.isoformat()
        base["age_s"] = round(float(result.age), 1)
    base["loaded_at_field"] = getattr(node, "loaded_at_field", None) or getattr(getattr(node, "config", None), "loaded_at_field", None)
    criteria = getattr(node, "freshness", None)
    if criteria is not None:
        base["criteria"] = json.loads(json.dumps(criteria.to_dict(), default=str))
    return base


def serialize_result(command: str, result: Any, project_dir: Path) -> dict[str, Any]:
    """One shape for every command: `nodes` (per node), plus command-specific extras."""
    payload: dict[str, Any] = {"command": command, "nodes": []}
    if result is None:
        return payload
    if command in ("list", "ls"):
        items = []
        for line in result:
            try:
                items.append(json.loads(line))
            except (TypeError, json.JSONDecodeError):
                items.append({"name": str(line)})
        payload["items"] = items
        return payload
    if command == "debug":
        payload["connection_ok"] = bool(result)
        return payload
    if command == "parse":
        counts: dict[str, int] = {}
        for node in result.nodes.values():
            key = str(_enum_value(node.resource_type))
            counts[key] = counts.get(key, 0) + 1
        counts["source"] = len(result.sources)
        counts["macro"] = len([m for m in result.macros.values() if m.package_name == result.metadata.project_name])
        counts["exposure"] = len(result.exposures)
        payload["counts"] = counts
        return payload
    if command == "docs":
        payload["catalog"] = {
            "nodes": len(getattr(result, "nodes", {}) or {}),
            "sources": len(getattr(result, "sources", {}) or {}),
            "errors": list(getattr(result, "errors", None) or []),
        }
        return payload
    results = getattr(result, "results", None)
    if results is None:
        payload["raw"] = str(result)[:2000]
        return payload
    if command == "source":
        payload["nodes"] = [_freshness_node(r) for r in results]
        return payload
    nodes = []
    for item in results:
        entry = node_result(item, project_dir)
        agate_table = getattr(item, "agate_table", None)
        if command == "show" and agate_table is not None:
            payload["table"] = _table(agate_table)
        nodes.append(entry)
    payload["nodes"] = nodes
    payload["elapsed_dbt_s"] = round(float(getattr(result, "elapsed_time", 0.0) or 0.0), 4)
    return payload


EXCEPTION_CODES = [
    ("ParsingError", "dbt_parse_error", "Fix the file named in the message; dbt_parse re-checks the project."),
    ("CompilationError", "dbt_compilation_error", "Fix the Jinja/SQL named in the message, then dbt_compile it."),
    ("DbtProfileError", "profile_error", "Check profiles.yml and the target; dbt_debug shows the connection."),
    ("DbtProjectError", "project_error", "Check dbt_project.yml; dbt_debug checks the project set-up."),
    ("DbtSelectorsError", "invalid_selector", "Fix the selector; dbt_list shows what a selection matches."),
    # before DbtDatabaseError, its base class: a server that refuses the connection is not SQL to fix (PostgreSQL)
    ("FailedToConnectError", "connection_error", "The warehouse is not reachable: run dbt_debug and check the profile."),
    ("DbtDatabaseError", "dbt_database_error", "The warehouse rejected the SQL: read the message, fix the model."),
    ("DbtInternalError", "dbt_internal_error", "dbt failed internally; try dbt_parse, then report the message."),
    ("DbtRuntimeError", "dbt_runtime_error", "Read the message; dbt_debug and dbt_parse narrow it down."),
    ("DbtException", "dbt_error", "Read the message; dbt_debug and dbt_parse narrow it down."),
]


MESSAGE_MARKERS = [
    ("depends on a node named", "model_not_found"),
    ("Error parsing inline query", "dbt_compilation_error"),
    ("Compilation Error", "dbt_compilation_error"),
    ("Parsing Error", "dbt_parse_error"),
    ("profiles.yml", "profile_error"),
    ("Could not find profile", "profile_error"),
    ("Database Error", "dbt_database_error"),
    ("Catalog Error", "dbt_database_error"),
    ("Binder Error", "dbt_database_error"),
    ("Parser Error", "dbt_database_error"),
    ("IO Error", "connection_error"),
    ("Could not connect", "connection_error"),
]
GENERIC = {"DbtRuntimeError", "DbtException", "Exception"}
HINTS = {code: hint for _, code, hint in EXCEPTION_CODES} | {
    "model_not_found": "A ref() or source() names a node that does not exist: dbt_list shows the names.",
    "connection_error": "The profile was read, but the connection failed: check the target's connection settings in "
                        "profiles.yml (host, port, user, password, database or path), then run dbt_debug to check it.",
}


LOCK_HELD = re.compile(r'Could not set lock on file "(?P<path>[^"]+)": Conflicting lock is held in (?P<holder>[^\n]+?)'
                       r'(?: \(PID (?P<pid>\d+)\)|\. See also|$)', re.MULTILINE)
NO_ADAPTER = re.compile(r"Could not find adapter type (?P<type>[\w.-]+)")
CANNOT_OPEN = re.compile(r'Cannot open file "(?P<path>[^"]+)": (?P<why>No such file or directory|Not a directory|Permission denied|Read-only file system)')


def warehouse_problem(message: str) -> tuple[str, str] | None:
    """A code and a dbt_debug-style hint for the warehouse failures an agent can act on: a DuckDB file another process
    holds (`warehouse_locked`), a DuckDB path whose folder is missing or not writable (`connection_error`)."""
    held = LOCK_HELD.search(message)
    if held:
        holder = f"PID {held['pid']} ({held['holder'].strip()})" if held["pid"] else held["holder"].strip()
        return "warehouse_locked", (
            f"Another process, {holder}, holds the DuckDB file {held['path']} open for writing, and DuckDB allows one writer "
            "process per file. Close that process (a DuckDB shell, notebook, BI tool or another dbt/server on this file) or "
            "wait for it to finish, then call again; to work alongside it, point the target's path in profiles.yml at another file.")
    cannot = CANNOT_OPEN.search(message)
    if cannot:
        folder = str(Path(cannot["path"]).parent)
        return "connection_error", (
            f"The profile was read, but the connection failed: the target's DuckDB file {cannot['path']} cannot be opened "
            f"({cannot['why'].lower()}: check the folder {folder}). Fix the target's `path:` in profiles.yml or create a writable "
            "folder there, then run dbt_debug to check the connection before calling again.")
    adapter = NO_ADAPTER.search(message)
    if adapter:
        return "profile_error", (
            f"The profile failed before any connection: its target's `type: {adapter['type']}` names no installed dbt adapter. "
            f"Fix `type:` in profiles.yml (e.g. duckdb) or install dbt-{adapter['type']} into the server's environment, then run "
            "dbt_debug to check the profile and the connection.")
    return None


def classify_exception(exc: BaseException | None, events: list[dict[str, Any]]) -> dict[str, Any]:
    """A stable error code and hint for a dbt failure, with the error events dbt fired folded into the message."""
    error_events = [
        e["msg"] for e in events
        if e.get("level") == "error" and e.get("msg") and e.get("name") not in ("MainEncounteredError", "MainStackTrace")
    ]
    if exc is None:
        return {
            "code": "dbt_error",
            "message": redact("; ".join(error_events) or "dbt failed without an exception"),
            "hint": "Read the message; dbt_debug and dbt_parse narrow it down.",
        }
    names = [cls.__name__ for cls in type(exc).__mro__]
    message = str(exc).strip()
    extra = [m for m in error_events if m.strip() and m.strip() not in message]
    if extra:
        message = message + "\n" + "\n".join(extra[:5])
    message = redact(message)
    code = None
    if names[0] not in GENERIC:
        for class_name, candidate, _ in EXCEPTION_CODES:
            if class_name in names and class_name not in GENERIC:
                code = candidate
                break
    if code is None:
        for marker, candidate in MESSAGE_MARKERS:
            if marker in message:
                code = candidate
                break
    if code is None:
        for class_name, candidate, _ in EXCEPTION_CODES:
            if class_name in names:
                code = candidate
                break
    code = code or "dbt_error"
    hint = HINTS.get(code, "Read the message; dbt_debug checks the set-up.")
    problem = warehouse_problem(message) if code in ("connection_error", "profile_error", "dbt_runtime_error", "dbt_error", "dbt_database_error") else None
    if problem is not None:
        code, hint = problem
    return {"code": code, "message": message, "hint": hint, "exception": names[0]}
