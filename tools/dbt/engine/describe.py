"""A compact, JSON-ready summary of the warm manifest: what the authoring and lineage tools need, nothing more.

Runs inside the worker (the only process that holds dbt objects). Never the whole manifest: names, types, files,
the config keys tools reason about, declared columns, dependencies and test attachments.
"""

from __future__ import annotations

from typing import Any

# dbt's own macros and the adapters': hundreds of them, never what an agent's project defines or installs
INTERNAL_PACKAGES = {"dbt", "dbt_duckdb", "dbt_postgres", "dbt_snowflake", "dbt_bigquery", "dbt_redshift", "dbt_databricks", "dbt_spark",
                     "dbt_trino", "dbt_athena", "dbt_clickhouse", "dbt_sqlserver", "dbt_fabric"}
CONFIG_KEYS = ("materialized", "unique_key", "incremental_strategy", "on_schema_change", "schema", "strategy", "updated_at",
               "check_cols", "contract", "tags", "enabled")


def _config(node: Any) -> dict[str, Any]:
    config = getattr(node, "config", None)
    if config is None:
        return {}
    raw = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    out = {k: raw.get(k) for k in CONFIG_KEYS if raw.get(k) not in (None, [], {})}
    if isinstance(out.get("contract"), dict):
        out["contract"] = bool(out["contract"].get("enforced"))
    return out


def _columns(node: Any) -> list[str]:
    return list((getattr(node, "columns", None) or {}).keys())


def _patch_path(node: Any) -> str | None:
    patch = getattr(node, "patch_path", None)
    return patch.split("://", 1)[-1] if patch else None  # "shop://models/x.yml" -> "models/x.yml"


def describe(manifest: Any) -> dict[str, Any]:
    project_name = getattr(manifest.metadata, "project_name", None)
    nodes = []
    for unique_id, node in manifest.nodes.items():
        item: dict[str, Any] = {
            "unique_id": unique_id,
            "name": node.name,
            "resource_type": str(node.resource_type),
            "package": node.package_name,
            "path": node.original_file_path,
            "patch_path": _patch_path(node),
            "config": _config(node),
            "columns": _columns(node),
            "documented_columns": [n for n, c in (getattr(node, "columns", None) or {}).items() if (c.description or "").strip()],
            "description": (getattr(node, "description", "") or "").strip(),
            "depends_on": list(getattr(node.depends_on, "nodes", []) or []),
        }
        if str(node.resource_type) == "test":
            metadata = getattr(node, "test_metadata", None)
            item["test_name"] = metadata.name if metadata is not None else None
            item["test_namespace"] = metadata.namespace if metadata is not None else None
            item["column_name"] = getattr(node, "column_name", None)
            combination = (metadata.kwargs or {}).get("combination_of_columns") if metadata is not None else None
            item["combination_of_columns"] = list(combination) if isinstance(combination, (list, tuple)) else None
            attached = getattr(node, "attached_node", None)
            item["attached_node"] = attached
        if str(node.resource_type) == "snapshot":
            item["relation"] = getattr(node, "relation_name", None)
        nodes.append(item)
    sources = [
        {"unique_id": uid, "name": s.name, "source_name": s.source_name, "package": s.package_name, "path": s.original_file_path,
         "columns": _columns(s), "loaded_at_field": s.loaded_at_field, "description": (s.description or "").strip(),
         "freshness": bool(s.freshness and (s.freshness.warn_after.count or s.freshness.error_after.count)) if s.freshness else False}
        for uid, s in manifest.sources.items()
    ]
    macros = [
        {"unique_id": uid, "name": m.name, "package": m.package_name, "path": m.original_file_path}
        for uid, m in manifest.macros.items()
        if m.package_name not in INTERNAL_PACKAGES
    ]
    exposures = [
        {"unique_id": uid, "name": e.name, "package": e.package_name, "path": e.original_file_path,
         "depends_on": list(e.depends_on.nodes or [])}
        for uid, e in manifest.exposures.items()
    ]
    adapter_type = getattr(manifest.metadata, "adapter_type", None)
    return {"project_name": project_name, "adapter_type": adapter_type, "nodes": nodes, "sources": sources, "macros": macros, "exposures": exposures}
