"""Round-trip edits of dbt YAML (properties, sources, snapshots, exposures, packages) that keep the user's file.

ruamel.yaml keeps comments, key order and quoting; the indentation is measured from the existing file so that an
edit of a file indented the dbt way ("  - name:") stays that way. Only the entries a tool touches change.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.util import load_yaml_guess_indent

from server.errors import ToolFailure


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap the user's long lines
    return yaml


@dataclass
class YamlDoc:
    data: CommentedMap
    mapping_indent: int = 2
    sequence_indent: int = 4
    sequence_offset: int = 2

    def dump(self) -> str:
        yaml = _yaml()
        yaml.indent(mapping=self.mapping_indent, sequence=self.sequence_indent, offset=self.sequence_offset)
        out = io.StringIO()
        yaml.dump(self.data, out)
        return out.getvalue()


def load(text: str | None, path: str) -> YamlDoc:
    """Parse a properties file; a file someone broke by hand is a typed error, never overwritten."""
    if text is None or not text.strip():
        return YamlDoc(CommentedMap([("version", 2)]))
    try:
        _, sequence, offset = load_yaml_guess_indent(text)  # measures the layout ("  - name:" is 4 and 2)
        data = _yaml().load(text)
    except Exception as exc:
        raise ToolFailure("invalid_yaml", f"{path} is not valid YAML: {str(exc).splitlines()[0]}",
                          f"Fix {path} by hand (or restore it from version control), then call again; nothing was written.") from None
    if data is None:
        data = CommentedMap([("version", 2)])
    if not isinstance(data, CommentedMap):
        raise ToolFailure("invalid_yaml", f"{path} does not hold a YAML mapping at the top.", f"Fix {path}, then call again.")
    sequence = sequence or 4
    offset = offset if offset is not None else 2
    return YamlDoc(data, mapping_indent=max(2, sequence - offset), sequence_indent=sequence, sequence_offset=offset)


def section(doc: YamlDoc, name: str) -> CommentedSeq:
    """The top-level list `name` (models, sources, seeds, snapshots, exposures, macros, packages), created if absent."""
    value = doc.data.get(name)
    if value is None:
        value = CommentedSeq()
        doc.data[name] = value
    if not isinstance(value, list):
        raise ToolFailure("invalid_yaml", f"'{name}:' is not a list in this file.", "Fix the file by hand, then call again.")
    return value


def find(entries: list[Any], name: str, key: str = "name") -> CommentedMap | None:
    for entry in entries:
        if isinstance(entry, dict) and entry.get(key) == name:
            return entry
    return None


def to_yaml(value: Any) -> Any:
    """Plain dicts and lists as ruamel nodes, so that they dump in block style like the rest of the file."""
    if isinstance(value, dict):
        out = CommentedMap()
        for k, v in value.items():
            out[k] = to_yaml(v)
        return out
    if isinstance(value, list):
        seq = CommentedSeq()
        for v in value:
            seq.append(to_yaml(v))
        return seq
    return value


def merge_entry(entries: CommentedSeq, entry: dict[str, Any], key: str = "name") -> str:
    """Add `entry`, or merge its keys into the existing entry with the same name (lists of named items merge by
    name too, so that adding a column keeps the others). Returns 'added' or 'updated'."""
    existing = find(entries, entry[key], key)
    if existing is None:
        entries.append(to_yaml(entry))
        return "added"
    _merge_into(existing, entry)
    return "updated"


def replace_entry(entries: CommentedSeq, entry: dict[str, Any], key: str = "name") -> str:
    """Put `entry` in place of the entry with the same name (no key of the old one survives), else add it."""
    existing = find(entries, entry[key], key)
    if existing is None:
        entries.append(to_yaml(entry))
        return "added"
    entries[next(i for i, item in enumerate(entries) if item is existing)] = to_yaml(entry)
    return "replaced"


def _merge_into(target: CommentedMap, patch: dict[str, Any]) -> None:
    for k, v in patch.items():
        current = target.get(k)
        if isinstance(v, dict) and isinstance(current, dict):
            _merge_into(current, v)  # type: ignore[arg-type]
        elif isinstance(v, list) and isinstance(current, list) and v and all(isinstance(i, dict) and "name" in i for i in v):
            for item in v:
                merge_entry(current, item)  # type: ignore[arg-type]
        else:
            target[k] = to_yaml(v)
