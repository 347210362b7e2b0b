"""model_lineage's picture at the size that matters: 50 nodes from a manifest drawn as the server draws them (graph.svg,
then picture.png: the real resvg and the bundled font, in this process). The picture through a real MCP client on the
demo project, and the SVG fallback without resvg, are in test_lineage_e2e.py."""

from __future__ import annotations

import time
from typing import Any

from png_pixels import check_picture, decode, svg_labels

from tools.lineage.graph import LineageGraph, svg
from tools.lineage.picture import png


def fifty_node_manifest() -> dict[str, Any]:
    """The lineage of one intermediate model at the tool's default hops (2 up, 1 down) that has 50 nodes: 20 sources,
    12 staging models reading them, the model, and 17 marts and exposures reading it; names as long as real
    projects' (up to 36 characters: some are squeezed into their box)."""
    sources = [f"app_db.customer_events_{i:02d}" for i in range(20)]
    staging = [f"stg_app_db__customer_events_{i:02d}" for i in range(12)]
    focus = "int_customer_events_sessionised"
    below = [f"fct_sessions_by_channel_{i:02d}" for i in range(12)] + [f"weekly_sessions_dashboard_{i}" for i in range(5)]
    manifest: dict[str, Any] = {"nodes": {}, "sources": {}, "exposures": {}, "parent_map": {}, "child_map": {}}

    def add(kind: str, name: str, ups: list[str]) -> str:
        uid = f"{kind}.p.{name}"
        raw = {"name": name, "resource_type": kind, "package_name": "p", "depends_on": {"nodes": ups},
               "config": {"materialized": "table" if name.startswith("fct") else "view"} if kind == "model" else {}}
        if kind == "source":
            raw.update(source_name=name.split(".")[0], name=name.split(".")[1])
        manifest[{"source": "sources", "exposure": "exposures"}.get(kind, "nodes")][uid] = raw
        manifest["parent_map"][uid] = ups
        manifest["child_map"].setdefault(uid, [])
        for up in ups:
            manifest["child_map"][up].append(uid)
        return uid

    source_ids = [add("source", name, []) for name in sources]
    staging_ids = [add("model", name, sorted({source_ids[i], source_ids[(i + 12) % 20]})) for i, name in enumerate(staging)]
    focus_id = add("model", focus, staging_ids)
    for name in below:
        add("exposure" if "dashboard" in name else "model", name, [focus_id])
    return manifest


def test_fifty_nodes_make_a_legible_png() -> None:
    graph = LineageGraph.from_manifest(fifty_node_manifest())
    focus = graph.resolve("int_customer_events_sessionised")
    assert focus
    nodes, edges = graph.walk(focus, 2, 1)  # the tool's defaults
    assert len(nodes) == 50
    drawing = svg(nodes, edges, focus)
    started = time.perf_counter()
    picture = png(drawing)
    seconds = time.perf_counter() - started
    # 20 sources wrap into 2 columns of 10 and 17 children into 2 of 9 (at most 13 rows for 50 nodes): 6 columns,
    # 1540 x 740 in SVG units, drawn at 1.005x (about 1.15 MP, what Claude shows without scaling it down): 12 px names
    assert (picture.width, picture.height) == (1547, 743), (picture.width, picture.height)
    image = check_picture(picture.data, drawing, lambda text: png(text).data)
    names = {label.name for label in svg_labels(drawing)}
    assert {"stg_app_db__customer_events_00", "app_db.customer_events_00", "weekly_sessions_dashboard_0"} <= names
    print(f"50 nodes: {image.width}x{image.height} px, {len(picture.data):,} bytes, rendered in {seconds * 1000:.0f} ms")


def test_a_tall_layer_wraps_so_the_picture_stays_legible() -> None:
    """One source read by 49 staging models: the layer wraps into columns, not one 3,000-px column."""
    nodes = [{"unique_id": "source.p.raw.events", "name": "raw.events", "resource_type": "source", "distance": 0}]
    nodes += [{"unique_id": f"model.p.stg_events_{i:02d}", "name": f"stg_events_{i:02d}", "resource_type": "model",
               "materialized": "view", "distance": 1} for i in range(49)]
    drawing = svg(nodes, [("source.p.raw.events", n["unique_id"]) for n in nodes[1:]], "source.p.raw.events")
    image = decode(png(drawing).data)
    assert image.height <= 900 and image.width <= 1568, (image.width, image.height)
    check_picture(png(drawing).data, drawing, lambda text: png(text).data)
