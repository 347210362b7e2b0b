"""Icons for tools and prompts (MCP 2025-11-25): small SVG badges as data: URIs, so a client fetches nothing.

Clients show them beside a tool or prompt; they are not sent to the model, so the context budget
(tests/test_tool_sizes.py) does not count them."""

from __future__ import annotations

from functools import cache
from urllib.parse import quote

from mcp_types import Icon

# toolset -> (badge, colour): dbt's orange for the dbt commands, a colour of its own for each other toolset
TOOLSET_BADGES = {
    "dbt": ("dbt", "#ff694b"),
    "authoring": ("Au", "#d9480f"),
    "quality": ("Q", "#2b8a3e"),
    "lineage": ("L", "#1971c2"),
    "files": ("F", "#5f3dc4"),
    "git": ("G", "#e8590c"),
    "memory": ("M", "#0b7285"),
    "delegation": ("D", "#862e9c"),
}


def icon_for(badge: str, colour: str = "#ff694b") -> Icon:
    """A badge: up to three letters, white on a rounded square."""
    size = 13 if len(badge) <= 2 else 10
    svg = (f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'><rect width='32' height='32' rx='6' fill='{colour}'/>"
           f"<text x='16' y='21' font-family='DejaVu Sans,sans-serif' font-size='{size}' font-weight='bold' fill='#fff' "
           f"text-anchor='middle'>{badge}</text></svg>")
    return Icon(src="data:image/svg+xml," + quote(svg), mime_type="image/svg+xml", sizes=["any"])


@cache
def toolset_icon(toolset: str) -> Icon:
    badge, colour = TOOLSET_BADGES.get(toolset, (toolset[:2].title(), "#495057"))
    return icon_for(badge, colour)
