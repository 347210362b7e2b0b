"""Lineage and focused-change tracking through a real MCP client on the demo project."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest

from conftest import REPO, error, ok, serve_args, stdio_session
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from png_pixels import check_picture, svg_labels

from server.cli_demo import server_environment
from tools.lineage.picture import png

pytestmark = pytest.mark.e2e


def reach(start: str, links: dict[str, list[str]]) -> set[str]:
    found, frontier = set(), [start]
    while frontier:
        for nxt in links.get(frontier.pop(), []):
            if nxt not in found:
                found.add(nxt)
                frontier.append(nxt)
    return found


async def test_lineage_matches_the_manifest_node_by_node(shop: Path, data_dir: Path) -> None:
    async with stdio_session(shop, data_dir) as client:
        result = await client.call_tool("model_lineage", {"model": "fct_orders", "upstream": 50, "downstream": 50})  # a PNG by default
        lineage = ok(result)
        manifest = json.loads((shop / "target/manifest.json").read_text())
        parents, children = manifest["parent_map"], manifest["child_map"]
        # every ancestor and descendant of fct_orders in dbt's own maps, and nothing else
        expected, down = reach("model.shop.fct_orders", parents), reach("model.shop.fct_orders", children)
        ids = [n["unique_id"] for n in lineage["nodes"]]
        assert len(ids) == len(set(ids)), "a node is listed twice"
        assert set(ids) == expected | down | {"model.shop.fct_orders"}
        shown = set(ids)
        assert {tuple(e) for e in lineage["edges"]} == {(p, c) for c in shown for p in parents.get(c, []) if p in shown}
        # the diamond: stg_orders reaches dim_customers through two intermediate models; it is listed once
        diamond = ok(await client.call_tool("model_lineage", {"model": "dim_customers", "upstream": 50, "downstream": 0, "format": "mermaid"}))
        diamond_ids = [n["unique_id"] for n in diamond["nodes"]]
        assert diamond_ids.count("model.shop.stg_orders") == 1
        assert {c for p, c in diamond["edges"] if p == "model.shop.stg_orders"} == {
            "model.shop.int_order_totals", "model.shop.int_customer_order_history"}
        assert "flowchart LR" in diamond["mermaid"] and "dim_customers" in diamond["mermaid"]
        # the picture: a PNG (what clients show) as image content, never in structured content; the same graph as SVG
        images = [c for c in result.content if c.type == "image"]
        assert [c.mime_type for c in images] == ["image/png"] and lineage.get("mermaid") is None, lineage.get("image")
        assert "image_svg" not in {k for k, v in lineage.items() if v} and "iVBORw0KGgo" not in json.dumps(lineage)
        drawn = await client.call_tool("model_lineage", {"model": "fct_orders", "upstream": 50, "downstream": 50, "format": "svg"})
        svg_text = ok(drawn)["image_svg"]
        sent = [(c.mime_type, base64.b64decode(c.data).decode()) for c in drawn.content if c.type == "image"]
        assert sent == [("image/svg+xml", svg_text)]
        image = check_picture(base64.b64decode(images[0].data), svg_text, lambda text: png(text).data)
        assert lineage["image"] == f"image/png {image.width}x{image.height}" and lineage["image"] in result.content[0].text
        drawn_names = [label.name.split("…") for label in svg_labels(svg_text)]  # a long name is cut in the middle
        assert len(drawn_names) == len(lineage["nodes"])
        for name in (n["name"] for n in lineage["nodes"]):
            assert [name] in drawn_names or any(len(d) == 2 and name.startswith(d[0]) and name.endswith(d[1])
                                                for d in drawn_names), name
        near = ok(await client.call_tool("model_lineage", {"model": "fct_orders", "upstream": 1, "downstream": 0, "resource_types": ["model"],
                                                          "format": "structured"}))
        assert {n["name"] for n in near["nodes"]} == {"fct_orders", "int_order_totals"} and near.get("mermaid") is None
        source = ok(await client.call_tool("model_lineage", {"model": "raw.customers", "upstream": 0, "downstream": 1}))
        assert source["focus"] == "source.shop.raw.customers"
        assert error(await client.call_tool("model_lineage", {"model": "no_such_model"}))["code"] == "model_not_found"
        # column lineage, in the same session
        up = ok(await client.call_tool("column_lineage", {"model": "fct_orders", "column": "order_total", "depth": 2}))
        pairs = {(e["from_node"], e["from_column"], e["to_node"], e["to_column"]) for e in up["edges"]}
        assert ("model.shop.int_order_totals", "order_total_cents", "model.shop.fct_orders", "order_total") in pairs, up
        edge = next(e for e in up["edges"] if e["to_column"] == "order_total")
        assert edge["transformation"] != "direct" and "order_total_cents" in edge["transformation"]
        assert any(e["to_node"] == "model.shop.int_order_totals" for e in up["edges"]), "the second hop is missing"
        down = ok(await client.call_tool("column_lineage", {"model": "int_order_totals", "column": "order_total_cents", "direction": "downstream", "depth": 1}))
        targets = {(e["to_node"], e["to_column"]) for e in down["edges"]}
        assert {("model.shop.fct_orders", "order_total_cents"), ("model.shop.fct_orders", "order_total"),
                ("model.shop.dim_customers", "lifetime_value_cents")} <= targets, down
        assert error(await client.call_tool("column_lineage", {"model": "nope", "column": "x"}))["code"] == "model_not_found"


async def test_without_the_renderer_the_picture_falls_back_to_svg(built_shop: Path, data_dir: Path, tmp_path: Path) -> None:
    """resvg-py not importable (a `resvg_py` that fails to import shadows the wheel): the default call still answers,
    with the SVG as image content, the Mermaid text, and a note saying why and what to install."""
    blocker = tmp_path / "no-resvg" / "resvg_py"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('resvg_py is hidden by the test')\n")
    params = StdioServerParameters(command=sys.executable, args=serve_args(built_shop, data_dir, "--toolsets", "lineage"),
                                   cwd=str(REPO), env={**server_environment(), "PYTHONPATH": str(blocker.parent)})
    async with Client(params) as client:
        result = await client.call_tool("model_lineage", {"model": "fct_orders"})
    lineage = ok(result)
    assert [c.mime_type for c in result.content if c.type == "image"] == ["image/svg+xml"]
    assert lineage["image_svg"].startswith("<svg") and "flowchart LR" in lineage["mermaid"]
    assert lineage["image"].startswith("image/svg+xml, not PNG: resvg-py is not installed")
    assert "pip install resvg-py" in lineage["image"]
    assert "not PNG" in result.content[0].text


async def test_focused_change_tracking(shop: Path, data_dir: Path) -> None:
    upstream = shop / "models/intermediate/int_order_totals.sql"
    path = shop / "models/marts/fct_orders.sql"
    original = path.read_text()
    async with stdio_session(shop, data_dir) as client:
        ok(await client.call_tool("start_tracking", {"filepath": "models/intermediate/int_order_totals.sql"}))
        started = ok(await client.call_tool("start_tracking", {"filepath": "models/marts/fct_orders.sql"}))
        assert started["tracked"] == ["models/intermediate/int_order_totals.sql", "models/marts/fct_orders.sql"]
        # a rename of an output column: breaking, with the downstream models it breaks
        base = upstream.read_text()
        upstream.write_text(base.replace("\n    order_total_cents,\n", "\n    order_total_cents as total_cents,\n"))
        renamed = ok(await client.call_tool("analyze_changes", {"filepath": "models/intermediate/int_order_totals.sql"}))["files"][0]
        assert renamed["columns_removed"] == ["order_total_cents"] and renamed["columns_added"] == ["total_cents"], renamed
        assert renamed["breaking"] is True and renamed["broken_downstream"] == ["model.shop.dim_customers", "model.shop.fct_orders"], renamed
        assert renamed["build_select"] == "int_order_totals+"
        assert {"model.shop.dim_customers", "model.shop.fct_orders"} <= set(renamed["downstream"]["models"])
        assert "exposure.shop.revenue_dashboard" in renamed["downstream"]["exposures"]
        upstream.write_text(base)
        ok(await client.call_tool("stop_tracking", {"filepath": "models/intermediate/int_order_totals.sql"}))
        # an added column: not breaking; an edit outside the target lowers the focus score
        path.write_text(original.replace("        updated_at\n    from orders", "        updated_at,\n        item_count * 2 as double_items\n    from orders")
                        .replace("    updated_at\nfrom final", "    updated_at,\n    double_items\nfrom final"))
        added = ok(await client.call_tool("analyze_changes", {"target": "cte:final"}))["files"][0]
        assert added["columns_added"] == ["double_items"] and added["columns_removed"] == [] and added["breaking"] is False
        focused = added["focus_score"]
        path.write_text(path.read_text().replace("select * from {{ ref('int_order_totals') }}", "select * from {{ ref('int_order_totals') }} -- touched"))
        unfocused = ok(await client.call_tool("analyze_changes", {"target": "cte:final"}))["files"][0]
        assert unfocused["focus_score"] < focused, (unfocused["focus_score"], focused)
        # a changed unique_key is a config change
        path.write_text(original.replace("unique_key='order_id'", "unique_key=['order_id', 'customer_id']"))
        config = ok(await client.call_tool("analyze_changes", {"filepath": "models/marts/fct_orders.sql", "target": "config"}))["files"][0]
        assert config["config_changes"] == {"unique_key": ["order_id", ["order_id", "customer_id"]]} and config["focus_score"] == 1.0
        stopped = ok(await client.call_tool("stop_tracking", {"filepath": "models/marts/fct_orders.sql"}))
        assert "tracked" not in stopped  # an empty list is the default: not sent
        assert error(await client.call_tool("analyze_changes", {"filepath": "models/marts/fct_orders.sql"}))["code"] == "not_tracked"
        assert error(await client.call_tool("start_tracking", {"filepath": "../etc/passwd"}))["code"] == "path_outside_project"

