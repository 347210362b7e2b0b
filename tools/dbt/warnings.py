"""dbt's warnings as an agent should see them: each deprecation once per server process (with its fix), never
dbt's end-of-run summary of them, and no warning twice in one result."""

from __future__ import annotations

from typing import Any

# Fixes dbt's own message does not spell out; keyed by dbt's event name.
DEPRECATION_FIXES = {
    "MissingArgumentsPropertyInGenericTestDeprecation":
        "fix: nest the test's arguments under `arguments:` (or set the flag require_generic_test_arguments_property: true "
        "in dbt_project.yml once every test does)",
    "PropertyMovedToConfigDeprecation": "fix: move the property under the resource's `config:` block",
    "CustomKeyInObjectDeprecation": "fix: move custom keys under `config: meta:`",
    "CustomKeyInConfigDeprecation": "fix: move custom keys under `config: meta:`",
}
SKIPPED = {"NoNodesForSelectionCriteria", "DeprecationsSummary"}


def is_deprecation(event: dict[str, Any]) -> bool:
    return str(event.get("name", "")).endswith("Deprecation")


def agent_warnings(events: list[dict[str, Any]], reported: set[str]) -> list[str]:
    """The warn-level events to show in a result. `reported` (the deprecation kinds this process already showed) is
    updated: a deprecation kind appears in one result only."""
    out: list[str] = []
    for event in events:
        name = str(event.get("name", ""))
        if event.get("level") != "warn" or name in SKIPPED:
            continue
        text = " ".join(str(event.get("msg", "")).split())
        if is_deprecation(event):
            if name in reported:
                continue
            reported.add(name)
            fix = DEPRECATION_FIXES.get(name)
            text = f"{text} ({fix}; reported once per server process)" if fix else f"{text} (reported once per server process)"
        if text not in out:
            out.append(text)
    return out
