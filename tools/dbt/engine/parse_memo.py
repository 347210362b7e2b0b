"""What an in-place re-parse (incremental.handing_over) asks dbt to compute again for objects that did not change,
kept: on a 1,000-model project each of these was whole-project work after a one-line edit.

- `RelationNames`: the relation name of every node, which dbt's uniqueness check builds after each parse;
- `build_node_edges`: dbt's parent and child maps (built three times per re-parse), the same dicts from what changed;
- `resource_fqns`: every resource's fqn by type (dbt's unused-config-path warning, after each parse), each entry kept
  while its object and fqn list are the same;
- `relation_updates`: each parser's generate_database/schema/alias_name macro contexts (dbt builds the whole macro
  namespace three times per parser), kept while the manifest, the config and every macro object are the same, and
  not kept for a generate macro that reads `graph` or `invocation_id` (values its context fixes when made).
- `query_headers`: the adapter's query comment (a macro context and a compiled Jinja template, set after every parse),
  kept on the same terms, for dbt's default comment only (a custom one may read values its context fixes when made).
"""

from __future__ import annotations

import copy
import threading
from typing import Any

_replaced: dict[str, Any] = {}  # dbt's own functions that install() replaced, by name (tests compare them with ours)


def install() -> None:
    """Once per process (incremental.install; a second call changes nothing)."""
    if _replaced:
        return
    import dbt.contracts.graph.manifest as graph_manifest
    import dbt.parser.base as parser_base
    import dbt.parser.manifest as manifest_module
    from dbt.parser.manifest import ManifestLoader

    manifest_module.get_relation_class_by_name = RelationNames.wrapping(manifest_module.get_relation_class_by_name)
    _replaced["build_node_edges"] = graph_manifest.build_node_edges
    _replaced["get_resource_fqns"] = graph_manifest.Manifest.get_resource_fqns
    graph_manifest.Manifest.get_resource_fqns = resource_fqns
    graph_manifest.build_node_edges = build_node_edges
    _replaced["RelationUpdate"] = parser_base.RelationUpdate
    parser_base.RelationUpdate = relation_updates(parser_base.RelationUpdate)
    _replaced["save_macros_to_adapter"] = ManifestLoader.save_macros_to_adapter
    ManifestLoader.save_macros_to_adapter = query_headers(ManifestLoader.save_macros_to_adapter)


class NodeEdges:
    """dbt's build_node_edges (contracts/graph/manifest.py: the parent and child maps, built three times per re-parse
    over every node), the same dicts, from what changed since the last call: each node's parents are compared with
    those it had then (a list compare), and only the changed nodes' entries are sorted again. The dicts are new on
    every call; an unchanged entry's list is the one returned last time (copying them all was a third of this):
    dbt only reads the maps (dbt-core 1.11: parser/partial.py, parser/manifest.py, compilation.py, the writable
    manifest), and a list handed out is never changed here either: an entry that changes gets a new list."""

    def __init__(self) -> None:
        self.parents: dict[str, list[str]] = {}  # uid -> its parents as last seen (a copy: dbt appends in place)
        self.sorted_parents: dict[str, list[str]] = {}
        self.children: dict[str, dict[str, int]] = {}  # uid -> child -> how often the child lists it
        self.sorted_children: dict[str, list[str]] = {}  # uid -> its children sorted, while they did not change
        self.lock = threading.Lock()

    def __call__(self, nodes: list[Any]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        with self.lock:
            return self._build(nodes)

    def _build(self, nodes: list[Any]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        seen: dict[str, list[str]] = {}
        for node in nodes:
            seen[node.unique_id] = node.depends_on_nodes
        for uid in [u for u in self.parents if u not in seen]:
            self._set(uid, [])
            del self.parents[uid], self.sorted_parents[uid]
            self.sorted_children.pop(uid, None)
        for uid, parents in seen.items():
            if self.parents.get(uid) != parents:
                self._set(uid, parents)
        children, counts = self.sorted_children, self.children
        forward: dict[str, list[str]] = {}
        for uid in seen:
            listed = children.get(uid)
            if listed is None:
                listed = children[uid] = sorted(c for c, n in counts.get(uid, {}).items() for _ in range(n))
            forward[uid] = listed
        sorted_parents = self.sorted_parents
        return forward, {uid: sorted_parents[uid] for uid in seen}

    def _set(self, uid: str, parents: list[str]) -> None:
        for parent in self.parents.get(uid, ()):
            counts = self.children[parent]
            counts[uid] -= 1
            if not counts[uid]:
                del counts[uid]
                if not counts:
                    del self.children[parent]
            self.sorted_children.pop(parent, None)
        for parent in parents:
            counts = self.children.setdefault(parent, {})
            counts[uid] = counts.get(uid, 0) + 1
            self.sorted_children.pop(parent, None)
        self.parents[uid] = list(parents)
        self.sorted_parents[uid] = sorted(parents)


FQN_SECTIONS = ("exposures", "functions", "nodes", "sources", "metrics", "semantic_models", "saved_queries", "unit_tests")
_fqns: dict[str, tuple[Any, Any, str, tuple[str, ...]]] = {}  # unique_id -> (object, its fqn list, type plural, fqn)


def resource_fqns(manifest: Any) -> dict[str, set[tuple[str, ...]]]:
    """dbt's Manifest.get_resource_fqns (the same sets), each resource's (type plural, fqn) kept while its object and
    its fqn list are the ones last seen, of the same length."""
    global _fqns
    held, kept = _fqns, {}
    out: dict[str, set[tuple[str, ...]]] = {}
    for section in FQN_SECTIONS:
        for uid, obj in (getattr(manifest, section, None) or {}).items():
            entry = held.get(uid)
            if entry is None or entry[0] is not obj or entry[1] is not obj.fqn or len(obj.fqn) != len(entry[3]):  # (dbt
                # changes a versioned model's fqn list in place: its last part, and one appended)
                entry = (obj, obj.fqn, obj.resource_type.pluralize(), tuple(obj.fqn))
            kept[uid] = entry
            found = out.get(entry[2])
            if found is None:
                found = out[entry[2]] = set()
            found.add(entry[3])
    _fqns = kept
    return out


build_node_edges = NodeEdges()  # one per process, as dbt's function is: a new manifest shares most node lists' contents


class RelationNames:
    """What dbt's relation-uniqueness check (parser/manifest.py, _check_resource_uniqueness, after every parse) asks
    of the adapter's Relation class: `str(create_from(quoting=config, relation_config=node))`, a node's full name.
    That built a relation object for each of a big project's nodes on every re-parse (a fifth of a one-line edit's);
    the name is kept per node object and the fields it is made of, so only nodes dbt parsed again are named anew."""

    def __init__(self, relation_cls: Any) -> None:
        self.relation_cls = relation_cls
        self.held: dict[str, tuple[Any, ...]] = {}  # unique_id -> (node, quoting, fields, node quoting, base quoting, name)

    @classmethod
    def wrapping(cls, get_class: Any) -> Any:
        named: dict[Any, RelationNames] = {}

        def get_relation_class_by_name(name: str) -> Any:
            relation_cls = get_class(name)
            if relation_cls not in named:
                named[relation_cls] = cls(relation_cls)
            return named[relation_cls]

        return get_relation_class_by_name

    def create_from(self, quoting: Any, relation_config: Any, **kwargs: Any) -> Any:
        if kwargs:
            return self.relation_cls.create_from(quoting=quoting, relation_config=relation_config, **kwargs)
        node = relation_config
        node_quoting = getattr(getattr(node, "config", None), "quoting", None)
        base_quoting = getattr(quoting, "quoting", None)
        fields = (getattr(node, "created_at", None), node.database, node.schema, getattr(node, "identifier", None),
                  getattr(node, "alias", None))
        uid = getattr(node, "unique_id", None)
        held = self.held.get(uid) if uid is not None else None
        if (held is not None and held[0] is node and held[1] is quoting and held[2] == fields and held[3] == node_quoting
                and held[4] == base_quoting):
            return held[5]
        name = str(self.relation_cls.create_from(quoting=quoting, relation_config=node))
        if uid is not None:  # (copies of the quoting dicts: compared by value, a repr of each was half of this)
            self.held[uid] = (node, quoting, fields, copy.deepcopy(node_quoting), copy.deepcopy(base_quoting), name)
        return name


def relation_updates(relation_update: Any) -> Any:
    """dbt's RelationUpdate(config=, manifest=, component=), kept per (config, manifest, component) while every macro
    of the manifest is the same object: what its contexts hold (the macro namespace) is then unchanged, as it is
    between two files of one parse, which share one RelationUpdate."""
    held: dict[str, tuple[Any, Any, tuple[Any, ...], Any]] = {}  # component -> (config, manifest, macros, RelationUpdate)

    def make(config: Any, manifest: Any, component: str) -> Any:
        macros = tuple(manifest.macros.values())
        entry = held.get(component)
        if (entry is not None and entry[0] is config and entry[1] is manifest and len(entry[2]) == len(macros)
                and all(a is b for a, b in zip(entry[2], macros, strict=True))):
            return entry[3]
        made = relation_update(config=config, manifest=manifest, component=component)
        name = f"generate_{component}_name"
        if not any(m.name == name and ("graph" in m.macro_sql or "invocation_id" in m.macro_sql) for m in macros):
            held[component] = (config, manifest, macros, made)  # one per component: the last manifest's only
        return made

    return make


def query_headers(save_macros_to_adapter: Any) -> Any:
    """dbt's ManifestLoader.save_macros_to_adapter (after every parse: the adapter's macro resolver, and its query
    comment made anew from a context of every macro: a twentieth of a one-line edit's re-parse on 1,000 models), with
    the comment kept while the adapter, its config, the manifest and every macro object are the same as when it was
    made and the comment is dbt's default (which reads only the target, dbt's version and the node). Kept, it is
    reset as a new one starts."""
    from dbt.adapters.contracts.connection import DEFAULT_QUERY_COMMENT

    held: list[Any] = [None]  # (adapter, config, manifest, macros, the adapter's query header)

    def save(self: Any, adapter: Any) -> None:
        macros = tuple(self.manifest.macros.values())
        connections = adapter.connections
        comment = getattr(getattr(adapter.config, "query_comment", None), "comment", None)
        keepable = comment == DEFAULT_QUERY_COMMENT and self.macro_hook == connections.set_query_header
        entry = held[0]
        if (keepable and entry is not None and entry[0] is adapter and entry[1] is adapter.config and entry[2] is self.manifest
                and connections.query_header is entry[4] and entry[4] is not None
                and len(entry[3]) == len(macros) and all(a is b for a, b in zip(entry[3], macros, strict=True))):
            adapter.set_macro_resolver(self.manifest)
            entry[4].reset()
            return
        held[0] = None
        save_macros_to_adapter(self, adapter)
        if keepable:
            held[0] = (adapter, adapter.config, self.manifest, macros, connections.query_header)

    return save
