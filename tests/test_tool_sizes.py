"""What an agent pays for the toolkit on every turn: the compact tools/list JSON of every tool registered by default
(all toolsets) fits in 40,000 bytes, and no tool takes more than 2,500 (issue 14). Built in process: the server lists
the same schemas over stdio and HTTP (ToolServer.list_tools). Icons are left out of the count: they are pictures for
the client's UI, and clients do not send them to the model (server/icons.py); titles are counted."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from server.app import build_app
from server.schemas import compact_input, compact_output
from server.settings import Settings

TOTAL_LIMIT = 40_000
TOOL_LIMIT = 2_500


def listed_sizes(tmp_path: Path, **settings: object) -> dict[str, int]:
    app, _ = build_app(Settings(project_dir=tmp_path, data_dir=tmp_path / "data", **settings))
    tools = asyncio.run(app.list_tools())
    return {t.name: len(json.dumps(t.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"icons"}), separators=(",", ":")))
            for t in tools}


def table(sizes: dict[str, int]) -> str:
    return "\n".join(f"{size:6d}  {name}" for name, size in sorted(sizes.items(), key=lambda kv: -kv[1]))


def test_every_default_tool_fits_the_context_budget(tmp_path: Path) -> None:
    sizes = listed_sizes(tmp_path)
    assert len(sizes) >= 50  # with files (9) and git (4; git_push only with --allow-push)
    total = sum(sizes.values())
    assert total <= TOTAL_LIMIT, f"tools/list is {total:,} bytes (limit {TOTAL_LIMIT:,}):\n{table(sizes)}"
    over = {name: size for name, size in sizes.items() if size > TOOL_LIMIT}
    assert not over, f"tools over {TOOL_LIMIT:,} bytes:\n{table(sizes)}"


def test_every_tool_has_a_title_and_its_toolsets_icon(tmp_path: Path) -> None:
    app, _ = build_app(Settings(project_dir=tmp_path, data_dir=tmp_path / "data"))
    tools = asyncio.run(app.list_tools())
    untitled = [t.name for t in tools if not t.title]
    assert not untitled, f"tools without a title: {untitled}"
    assert all(t.icons and t.icons[0].src.startswith("data:image/svg+xml,") for t in tools)
    assert len({t.icons[0].src for t in tools if t.icons}) == len(Settings(project_dir=tmp_path).toolsets)  # one badge per toolset


def test_compact_schemas_keep_what_a_call_needs() -> None:
    schema = {"properties": {
        "select": {"anyOf": [{"type": "string"}, {"items": {"type": "string"}, "type": "array"}, {"type": "null"}], "default": None,
                   "description": "d", "title": "Select", "examples": ["x"]},
        "layer": {"anyOf": [{"enum": ["staging", "marts"], "type": "string"}, {"type": "string"}], "default": "marts"},
        "limit": {"type": "integer", "default": 10, "minimum": 1, "title": "Limit"},
        "dry_run": {"type": "boolean", "default": False},
        "vars": {"anyOf": [{"additionalProperties": True, "type": "object"}, {"type": "null"}], "default": None},
    }, "required": ["limit"], "type": "object"}
    assert compact_input(schema) == {"properties": {
        "select": {"description": "d", "type": ["string", "array"], "items": {"type": "string"}},
        "layer": {"enum": ["staging", "marts"], "type": "string", "default": "marts"},
        "limit": {"type": "integer", "default": 10, "minimum": 1},
        "dry_run": {"type": "boolean"},
        "vars": {"type": "object"},
    }, "required": ["limit"], "type": "object"}
    assert compact_output({"properties": {"a": {"type": "string"}, "b": {"type": "integer", "default": 0}}, "required": ["a"]}) == {
        "type": "object"}

