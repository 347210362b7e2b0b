"""Lineage over dbt's manifest: parents and children of a node to a depth, as flat nodes + edges, Mermaid or SVG.

The graph is read from target/manifest.json (written by every parse the warm worker makes) and kept in memory until
that file changes, so a lineage query costs a breadth-first walk, not a dbt invocation, and never waits behind a
running dbt command.
"""

from __future__ import annotations

import html
import json
import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TYPES = ("model", "source", "seed", "snapshot", "test", "exposure", "analysis", "metric", "semantic_model", "unit_test")


@dataclass
class LineageGraph:
    nodes: dict[str, dict[str, Any]]
    parents: dict[str, list[str]]
    children: dict[str, list[str]]
    by_name: dict[str, list[str]] = field(default_factory=dict)
    generated_at: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # uid -> the manifest entry its node was made from

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any], previous: "LineageGraph | None" = None) -> "LineageGraph":
        """`previous`: a graph of an earlier summary of the same manifest; a node whose entry is the same object keeps
        its node dict (the worker's summary after an edit changes a few entries: callers' per-node caches stay warm)."""
        nodes: dict[str, dict[str, Any]] = {}
        kept = previous.raw if previous is not None else {}
        raws: dict[str, Any] = {}
        for section in ("nodes", "sources", "exposures", "metrics", "semantic_models", "unit_tests"):
            for uid, raw in (manifest.get(section) or {}).items():
                raws[uid] = raw
                if previous is not None and kept.get(uid) is raw:
                    nodes[uid] = previous.nodes[uid]
                    continue
                config = raw.get("config") or {}
                nodes[uid] = {
                    "unique_id": uid, "name": raw.get("name"), "resource_type": raw.get("resource_type"),
                    "materialized": config.get("materialized"), "path": raw.get("original_file_path"),
                    "package": raw.get("package_name"),
                    "contract_enforced": bool((config.get("contract") or {}).get("enforced")),
                    "relation_name": raw.get("relation_name"),
                    "columns": list((raw.get("columns") or {}).keys()),
                    "declared": [(name, (c or {}).get("data_type")) for name, c in (raw.get("columns") or {}).items()],
                    "documented": [name for name, c in (raw.get("columns") or {}).items() if ((c or {}).get("description") or "").strip()],
                    "checksum": (raw.get("checksum") or {}).get("checksum"),
                    "depends_on": list((raw.get("depends_on") or {}).get("nodes") or []),
                    "column_name": raw.get("column_name"),
                }
                if raw.get("resource_type") == "source":
                    nodes[uid]["name"] = f"{raw.get('source_name')}.{raw.get('name')}"
        parents = dict(manifest.get("parent_map") or {})  # the lists are shared: nothing changes a graph's lists
        children = dict(manifest.get("child_map") or {})
        if not parents:  # an older or partial manifest: derive from depends_on
            children = {k: list(v) for k, v in children.items()}
            for uid, raw in {**(manifest.get("nodes") or {}), **(manifest.get("exposures") or {})}.items():
                parents[uid] = list((raw.get("depends_on") or {}).get("nodes") or [])
            for uid, ps in parents.items():
                for p in ps:
                    children.setdefault(p, []).append(uid)
        graph = cls(nodes, parents, children, generated_at=(manifest.get("metadata") or {}).get("generated_at"), raw=raws)
        for uid, node in nodes.items():
            graph.by_name.setdefault(str(node["name"]), []).append(uid)
        return graph

    @classmethod
    def load(cls, path: Path) -> "LineageGraph":
        return cls.from_manifest(json.loads(path.read_text(encoding="utf-8")))

    def resolve(self, name: str, project: str | None = None) -> str | None:
        """A unique_id, a model/seed/snapshot name, 'source_name.table', or an exposure name."""
        if name in self.nodes:
            return name
        found = self.by_name.get(name, [])
        preferred = [u for u in found if self.nodes[u]["resource_type"] in ("model", "seed", "snapshot", "source", "exposure")]
        own = [u for u in preferred if self.nodes[u]["package"] == project] if project else []
        return (own or preferred or found or [None])[0]

    def walk(self, start: str, upstream: int, downstream: int, types: set[str] | None = None) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        """Nodes within `upstream` parent hops and `downstream` child hops (each listed once, with its distance:
        negative upstream), and the edges among them. Filtered types are walked through, not shown."""
        distance = {start: 0}
        for links, limit, sign in ((self.parents, upstream, -1), (self.children, downstream, 1)):
            queue = deque([(start, 0)])
            seen = {start}
            while queue:
                current, depth = queue.popleft()
                if depth >= limit:
                    continue
                for nxt in links.get(current, []):
                    if nxt in seen:
                        continue
                    seen.add(nxt)
                    if nxt not in distance:
                        distance[nxt] = sign * (depth + 1)
                    queue.append((nxt, depth + 1))
        shown = {u for u in distance if u == start or types is None or self.nodes.get(u, {}).get("resource_type") in types}
        nodes = [{**self.nodes.get(u, {"unique_id": u, "name": u, "resource_type": u.split(".")[0]}), "distance": distance[u]}
                 for u in sorted(shown, key=lambda u: (distance[u], u))]
        edges = sorted({(p, c) for c in shown for p in self.parents.get(c, []) if p in shown})
        return nodes, edges


def mermaid(nodes: list[dict[str, Any]], edges: list[tuple[str, str]], focus: str) -> str:
    ids = {n["unique_id"]: f"n{i}" for i, n in enumerate(nodes)}
    shapes = {"source": ("[(", ")]"), "seed": ("[/", "/]"), "snapshot": ("[[", "]]"), "test": ("{{", "}}"), "exposure": (">", "]")}
    lines = ["flowchart LR"]
    for n in nodes:
        left, right = shapes.get(n["resource_type"], ("[", "]"))
        label = f"{n['name']}" + (f"<br/><i>{n['materialized']}</i>" if n.get("materialized") and n["resource_type"] == "model" else "")
        lines.append(f"    {ids[n['unique_id']]}{left}\"{label}\"{right}")
    for parent, child in edges:
        lines.append(f"    {ids[parent]} --> {ids[child]}")
    lines.append(f"    style {ids[focus]} stroke-width:3px")
    return "\n".join(lines)


# Advance widths of DejaVu Sans (the font the PNG is drawn with: tools/lineage/fonts) for ' ' to '~', in 1/2048 em.
_ADVANCE = (651, 821, 942, 1716, 1303, 1946, 1597, 563, 799, 799, 1024, 1716, 651, 739, 651, 690, 1303, 1303, 1303, 1303, 1303,
            1303, 1303, 1303, 1303, 1303, 690, 690, 1716, 1716, 1716, 1087, 2048, 1401, 1405, 1430, 1577, 1294, 1178, 1587, 1540,
            604, 604, 1343, 1141, 1767, 1532, 1612, 1235, 1612, 1423, 1300, 1251, 1499, 1401, 2025, 1403, 1251, 1403, 799, 690,
            799, 1716, 1024, 1024, 1255, 1300, 1126, 1300, 1260, 721, 1300, 1298, 569, 569, 1186, 569, 1995, 1298, 1253, 1300,
            1300, 842, 1067, 803, 1298, 1212, 1675, 1212, 1212, 1075, 1303, 690, 1303, 1716)


def text_width(text: str, size: float) -> float:
    return sum(_ADVANCE[ord(c) - 32] if 32 <= ord(c) < 127 else 1300 for c in text) * size / 2048


def fit_label(text: str, room: float, size: float, squeeze: float = 0.8) -> tuple[str, bool]:
    """The label as drawn in `room` px: whole; squeezed (SVG textLength) when at most 1/squeeze too wide; else cut in the
    middle with '…' (the end of a dbt name tells models apart as often as its start). True when it must be squeezed."""
    if text_width(text, size) <= room:
        return text, False
    label, keep = text, len(text)
    while keep > 2 and text_width(label, size) * squeeze > room:
        keep -= 1
        label = text[:(keep + 1) // 2] + "…" + text[len(text) - keep // 2:]
    return label, text_width(label, size) > room


def svg(nodes: list[dict[str, Any]], edges: list[tuple[str, str]], focus: str) -> str:
    """A layered left-to-right picture (columns by distance from the focus), drawn without any graph library. A layer
    taller than `rows` wraps into more columns, so 50 nodes make a picture of about 1540 x 740, text 12 px."""
    columns: dict[int, list[dict[str, Any]]] = {}
    for n in nodes:
        columns.setdefault(n["distance"], []).append(n)
    width, height, gap_x, gap_y = 200, 40, 60, 20
    rows = max(12, math.ceil(1.7 * math.sqrt(len(nodes))))  # about 16:10 when one layer holds most nodes
    pos: dict[str, tuple[int, int]] = {}
    column = 0
    for d in sorted(columns):
        layer = columns[d]
        wraps = math.ceil(len(layer) / rows)
        per = math.ceil(len(layer) / wraps)
        for i, n in enumerate(layer):  # every other wrapped column half a row lower: edges pass between its boxes
            stagger = (i // per) % 2 * (height + gap_y) // 2
            pos[n["unique_id"]] = (20 + (column + i // per) * (width + gap_x), 20 + (i % per) * (height + gap_y) + stagger)
        column += wraps
    total_w = 40 + column * (width + gap_x) - gap_x
    total_h = 20 + max(y for _, y in pos.values()) + height
    colors = {"model": "#dbeafe", "source": "#dcfce7", "seed": "#fef9c3", "snapshot": "#f3e8ff", "test": "#f1f5f9", "exposure": "#ffedd5"}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{total_h}" font-family="sans-serif" font-size="12">',
             '<defs><marker id="a" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto">'
             '<path d="M0,0 L10,5 L0,10 z" fill="#64748b"/></marker></defs>',
             f'<rect width="{total_w}" height="{total_h}" fill="#ffffff"/>']
    for parent, child in edges:
        (x1, y1), (x2, y2) = pos[parent], pos[child]
        parts.append(f'<line x1="{x1 + width}" y1="{y1 + height // 2}" x2="{x2}" y2="{y2 + height // 2}" stroke="#64748b" marker-end="url(#a)"/>')
    for n in nodes:
        x, y = pos[n["unique_id"]]
        stroke = 3 if n["unique_id"] == focus else 1
        label, squeezed = fit_label(str(n["name"]), width - 16, 12)
        fit = f' textLength="{width - 16}" lengthAdjust="spacingAndGlyphs"' if squeezed else ""
        parts.append(f'<rect x="{x}" y="{y}" width="{width}" height="{height}" rx="6" fill="{colors.get(n["resource_type"], "#ffffff")}" '
                     f'stroke="#334155" stroke-width="{stroke}"/>')
        parts.append(f'<text x="{x + 8}" y="{y + 17}"{fit}>{html.escape(label)}</text>')
        kind = n["resource_type"] + (f" · {n['materialized']}" if n.get("materialized") not in (None, n["resource_type"]) else "")
        parts.append(f'<text x="{x + 8}" y="{y + 32}" fill="#475569" font-size="10">{html.escape(kind)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
