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


def _graph_entry(node: Any) -> dict[str, Any]:
    """The fields tools/lineage/graph.py LineageGraph.from_manifest reads, under manifest.json's names."""
    config = getattr(node, "config", None)
    contract = getattr(config, "contract", None)
    checksum = getattr(node, "checksum", None)
    entry: dict[str, Any] = {
        "name": node.name, "resource_type": str(node.resource_type), "original_file_path": getattr(node, "original_file_path", None),
        "package_name": node.package_name, "relation_name": getattr(node, "relation_name", None),
        "config": {"materialized": getattr(config, "materialized", None), "contract": {"enforced": bool(getattr(contract, "enforced", False))}},
        "columns": {name: {"data_type": c.data_type, "description": "x" if (c.description or "").strip() else ""}
                    for name, c in (getattr(node, "columns", None) or {}).items()},
        "checksum": {"checksum": getattr(checksum, "checksum", None)},
        "depends_on": {"nodes": list(getattr(getattr(node, "depends_on", None), "nodes", None) or [])},
        "column_name": getattr(node, "column_name", None),
    }
    if str(node.resource_type) == "source":
        entry["source_name"] = node.source_name
    return entry


GRAPH_SECTIONS = ("nodes", "sources", "exposures", "metrics", "semantic_models", "unit_tests")
EDGE_SECTIONS = ("nodes", "sources", "exposures", "functions", "metrics", "semantic_models", "saved_queries", "unit_tests")  # dbt's edge members


def _sorted_parents(node: Any) -> list[str]:
    return sorted(node.depends_on_nodes)


_children_memo: list[Any] = [None, None]  # [the parent map the child map below was made from, that child map]


def _children_of(parents: dict[str, list[str]]) -> dict[str, list[str]]:
    """The child map of `parents`: the last one while every member's parents are as they were (a one-line edit
    changes no edge), else made again. Callers must not change it."""
    before, children = _children_memo
    if before is not None and before.keys() == parents.keys() and all(before[k] is v or before[k] == v for k, v in parents.items()):
        return children  # in the order of its making (dbt moves a re-parsed node to the end: the same edges)
    made: dict[str, list[str]] = {uid: [] for uid in parents}
    for uid, ps in parents.items():
        for parent in ps:
            if parent in made:
                made[parent].append(uid)
    children = {k: sorted(v) for k, v in made.items()}
    _children_memo[:] = [parents, children]
    return children


Entries = tuple[dict[str, Any] | None, dict[str, Any] | None, list[str]]  # (node item, graph entry, sorted parents)
_memo: dict[str, tuple[Any, Any, Entries]] = {}  # unique_id -> (object, created_at, its entries)


def entries(section: str, uid: str, obj: Any) -> Entries:
    """What the summary holds of one dbt object: its node item (nodes only), its graph entry (GRAPH_SECTIONS) and
    its sorted parents, made again only for an object dbt parsed anew (a new object or created_at: incremental.py's
    test). After a one-line edit of a 1,000-model project, building every entry again was a second of each call."""
    held = _memo.get(uid)
    created = getattr(obj, "created_at", None)
    if held is not None and held[0] is obj and held[1] == created:
        return held[2]
    value = (_node_item(obj) if section == "nodes" else None, _graph_entry(obj) if section in GRAPH_SECTIONS else None,
             _sorted_parents(obj))
    _memo[uid] = (obj, created, value)
    return value


def forget_removed(live: int, manifest: Any) -> None:
    """Drop the entries of objects no longer in the manifest: after a pass that made or kept an entry for each of the
    `live` objects, more entries than that means some are (a walk of every key only then: not after a plain edit)."""
    if len(_memo) <= live:
        return
    kept = {uid for section in EDGE_SECTIONS for uid in getattr(manifest, section, None) or {}}
    for uid in [u for u in _memo if u not in kept]:
        del _memo[uid]


def _node_item(node: Any) -> dict[str, Any]:
    unique_id = node.unique_id
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
    return item


def describe(manifest: Any) -> dict[str, Any]:
    """The summary; its `lineage` is what LineageGraph reads of manifest.json, from the manifest in memory (the server
    builds its graph from this rather than waiting for manifest.json, written off the request path after an in-place
    re-parse), with parent and child maps as dbt's build_parent_and_child_maps makes them (sorted lists, every edge
    member a key). One pass over dbt's objects makes it all."""
    project_name = getattr(manifest.metadata, "project_name", None)
    nodes: list[dict[str, Any]] = []
    lineage: dict[str, Any] = {"metadata": {"generated_at": str(getattr(manifest.metadata, "generated_at", "") or "")}}
    parents: dict[str, list[str]] = {}
    live = 0
    for section in EDGE_SECTIONS:
        table = getattr(manifest, section, None)
        if table is None:
            continue
        live += len(table)
        graph: dict[str, Any] | None = lineage.setdefault(section, {}) if section in GRAPH_SECTIONS else None
        for uid, obj in table.items():
            item, entry, parents[uid] = entries(section, uid, obj)
            if item is not None:
                nodes.append(item)
            if graph is not None:
                graph[uid] = entry
    forget_removed(live, manifest)
    lineage["parent_map"] = parents
    lineage["child_map"] = _children_of(parents)
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
    return {"project_name": project_name, "adapter_type": adapter_type, "nodes": nodes, "sources": sources, "macros": macros, "exposures": exposures,
            "lineage": lineage}


def lineage_manifest(manifest: Any) -> dict[str, Any]:
    """What LineageGraph reads of manifest.json (describe's `lineage`)."""
    return describe(manifest)["lineage"]


# -- sending only what changed: after a one-line edit the summary of a 1,000-model project is megabytes, of which one
# entry is new (the worker's entries are memoized objects, so "unchanged" is mostly an identity test).

DELTA_KEYED = ("nodes",)  # lists of entries with a unique_id
DELTA_SECTIONS = (*GRAPH_SECTIONS, "parent_map", "child_map")  # dicts under "lineage"


def _same(a: Any, b: Any) -> bool:
    return a is b or a == b


def dict_delta(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """What turns `old` into `new` (apply_dict_delta): changed or added entries, dropped keys, and the key order when
    merging in place would not give new's (dbt moves a re-parsed node to the end)."""
    if old is new:  # the child map while no edge changed (_children_of)
        return {"set": {}, "drop": []}
    changed = {k: v for k, v in new.items() if k not in old or not _same(old[k], v)}
    dropped = [k for k in old if k not in new]
    out: dict[str, Any] = {"set": changed, "drop": dropped}
    gone = set(dropped)
    merged_order = [k for k in old if k not in gone] + [k for k in changed if k not in old]
    if merged_order != list(new):
        out["order"] = list(new)
    return out


def apply_dict_delta(old: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """The dict dict_delta was made from; `old` itself when nothing changed (callers do not change either)."""
    if not delta["set"] and not delta["drop"] and "order" not in delta:
        return old
    dropped = set(delta["drop"])
    merged = {k: v for k, v in old.items() if k not in dropped}
    merged.update(delta["set"])
    if "order" in delta:
        merged = {k: merged[k] for k in delta["order"]}
    return merged


def describe_delta(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """`new` as changes to `old` (both describe() payloads); the small lists (sources, macros, exposures) whole."""
    out = {k: v for k, v in new.items() if k not in (*DELTA_KEYED, "lineage")}
    for key in DELTA_KEYED:
        out[key] = dict_delta({e["unique_id"]: e for e in old[key]}, {e["unique_id"]: e for e in new[key]})
    lineage = {k: v for k, v in new["lineage"].items() if k not in DELTA_SECTIONS}
    for section in DELTA_SECTIONS:
        lineage[section] = dict_delta(old["lineage"].get(section, {}), new["lineage"].get(section, {}))
    out["lineage"] = lineage
    return out


def apply_describe_delta(old: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """The payload describe_delta was made from. Unchanged entries stay the objects `old` held."""
    out = {k: v for k, v in delta.items() if k not in (*DELTA_KEYED, "lineage")}
    for key in DELTA_KEYED:
        out[key] = list(apply_dict_delta({e["unique_id"]: e for e in old[key]}, delta[key]).values())
    lineage = {k: v for k, v in delta["lineage"].items() if k not in DELTA_SECTIONS}
    for section in DELTA_SECTIONS:
        lineage[section] = apply_dict_delta(old["lineage"].get(section, {}), delta["lineage"][section])
    out["lineage"] = lineage
    return out
