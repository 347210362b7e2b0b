"""What tools/list sends: compact JSON schemas. An agent pays for every byte of them on every turn, so they carry what a
model needs to call a tool right and what a client validates, and nothing pydantic adds for humans.

- Inputs keep types, enums, non-null defaults, bounds and each argument's description (examples, where they matter,
  are in it), except for arguments whose name says it all (SELF_EXPLANATORY: target, vars, threads, …); `title`s, `examples`, `default: null`, a boolean's `default: false`, empty-collection defaults and `additionalProperties: true` go, and a `null` option of an
  `anyOf` goes (an argument not given is optional already; the server validates arguments with the full pydantic
  model, not with this schema).
- Outputs declare an object: structured content always validates against it, and the server checks every result
  against the tool's full pydantic model before sending it. Field lists would cost every turn (about 2 KB for all
  tools) and no model reads them: the text summary is what the agent reads; structured content is for programs.
- Annotations leave out hints that say what a client assumes anyway (the spec's defaults: readOnlyHint false,
  destructiveHint true, idempotentHint false, openWorldHint true), and destructive/idempotent hints on a read-only tool
  (meaningless there, per the MCP spec).
"""

from __future__ import annotations

from typing import Any

_NULL = {"type": "null"}


def compact_input(schema: dict[str, Any]) -> dict[str, Any]:
    out = _strip(schema)
    for shape in [out, *(out.get("$defs") or {}).values()]:
        properties = shape.get("properties") or {}
        for name in SELF_EXPLANATORY & set(properties):
            if properties[name].get(KEEP_DESCRIPTION):  # a field that shares a common name but means something else
                properties[name] = {k: v for k, v in properties[name].items() if k != KEEP_DESCRIPTION}
            else:
                properties[name] = {k: v for k, v in properties[name].items() if k != "description"}
    return out


_DROP = {"title", "examples"}
# Field(json_schema_extra={KEEP_DESCRIPTION: True}): keep the description of a SELF_EXPLANATORY name.
KEEP_DESCRIPTION = "x-keep-description"
# Arguments whose name says all a model needs (dbt's own flags and the server's common ones): no description.
SELF_EXPLANATORY = frozenset({"target", "vars", "threads", "fail_fast", "timeout_seconds", "dry_run", "description",
                              "exclude", "selector", "full_refresh", "resource_types", "cursor", "id"})


def _strip(node: Any, in_properties: bool = False) -> Any:
    if isinstance(node, list):
        return [_strip(item) for item in node]
    if not isinstance(node, dict):
        return node
    if in_properties:  # keys here are argument names, never schema keywords
        return {k: _strip(v) for k, v in node.items()}
    out = {k: _strip(v, in_properties=k in ("properties", "$defs")) for k, v in node.items() if k not in _DROP}
    if "$defs" in node:  # the top level: where additionalProperties false is the server's own promise, kept
        out["$defs"] = {name: {k: v for k, v in d.items() if k not in ("additionalProperties", "description")}  # docstrings are for us
                        for name, d in out["$defs"].items()}
    if out.get("default", 0) in (None, [], {}) or (out.get("default") is False and out.get("type") == "boolean"):
        del out["default"]  # not given = null / false: what a model assumes of an optional argument
    if out.get("additionalProperties") is True:
        del out["additionalProperties"]
    options = out.get("anyOf")
    if isinstance(options, list):
        kept = [o for o in options if o != _NULL]
        rest = {k: v for k, v in out.items() if k != "anyOf"}
        if len(kept) == 1 and isinstance(kept[0], dict):
            out = {**kept[0], **rest}
        elif len(kept) == 2 and {"type": "string"} in kept and all(o.get("type") == "string" for o in kept):
            out = {**next(o for o in kept if o != {"type": "string"}), **rest}  # a Literal | str: the known values say more
        elif _plain_types(kept):  # [string, array of X] -> type: [string, array], items: X
            items = next((o["items"] for o in kept if "items" in o), None)
            out = {**rest, "type": [o["type"] for o in kept], **({"items": items} if items is not None else {})}
        else:
            out = {**rest, "anyOf": kept}
    return out


def _plain_types(options: list[Any]) -> bool:
    """Options that differ only by type (at most one array, with its items): a type list says the same."""
    if not all(isinstance(o, dict) and set(o) <= {"type", "items"} and isinstance(o.get("type"), str) for o in options):
        return False
    return sum("items" in o for o in options) <= 1 and len({o["type"] for o in options}) == len(options)


def compact_output(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """An object, and nothing more: the field lists cost every turn and no model reads them (the text summary is what
    an agent reads; the SDK checks each result against the full pydantic model before it is sent)."""
    return {"type": "object"} if schema else schema


def compact_annotations(annotations: Any) -> Any:
    """Only hints that differ from the MCP spec's defaults (readOnly false, destructive true, idempotent false, open
    world true); destructive and idempotent are meaningless on a read-only tool, per the spec."""
    if annotations is None:
        return None
    update: dict[str, Any] = {}
    if annotations.read_only_hint is False:
        update["read_only_hint"] = None
    if annotations.destructive_hint is True or annotations.read_only_hint:
        update["destructive_hint"] = None
    if annotations.idempotent_hint is False or annotations.read_only_hint:
        update["idempotent_hint"] = None
    if annotations.open_world_hint is True:
        update["open_world_hint"] = None
    return annotations.model_copy(update=update) if update else annotations
