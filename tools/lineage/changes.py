"""Focused-change analysis of one dbt model file against its tracked baseline: what changed, whether the change stayed
on its stated target, what it does to the model's output and config, and what downstream it can break."""

from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass, field
from typing import Any

_CTE = re.compile(r"(?:\bwith\s+|,\s*)([A-Za-z_][A-Za-z0-9_]*)\s+as\s*\(", re.I)
_CONFIG = re.compile(r"\{\{\s*config\s*\((.*?)\)\s*\}\}", re.S)


@dataclass
class Hunk:
    old_start: int
    old_lines: int
    new_start: int
    new_lines: int


@dataclass
class ChangeReport:
    diff: str
    hunks: list[Hunk]
    lines_added: int
    lines_removed: int
    changed_lines_before: list[int]
    changed_lines_after: list[int]
    touched_ctes: list[str]
    focus_score: float | None
    target: str | None
    columns_before: list[str]
    columns_after: list[str]
    columns_added: list[str]
    columns_removed: list[str]
    columns_retyped: dict[str, tuple[str | None, str | None]]
    config_changes: dict[str, tuple[Any, Any]]
    columns_renamed: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def cte_spans(sql: str) -> dict[str, tuple[int, int]]:
    """CTE name -> (first line, last line), 1-based, by matching the parenthesis after `name as (`."""
    spans = {}
    for match in _CTE.finditer(sql):
        depth, end = 0, None
        for i in range(match.end() - 1, len(sql)):
            if sql[i] == "(":
                depth += 1
            elif sql[i] == ")":
                depth -= 1
                if depth == 0:
                    end = i
                    break
        if end is not None:
            spans[match.group(1).lower()] = (sql.count("\n", 0, match.start(1)) + 1, sql.count("\n", 0, end) + 1)
    return spans


def config_of(sql: str) -> dict[str, Any]:
    """The keyword arguments of the model's {{ config(...) }}, as Python literals where they are literals."""
    match = _CONFIG.search(sql)
    if not match:
        return {}
    try:
        call = ast.parse(f"f({match.group(1)})", mode="eval").body
    except SyntaxError:
        return {"<unparsed>": match.group(1).strip()}
    out: dict[str, Any] = {}
    for keyword in getattr(call, "keywords", []):
        try:
            out[keyword.arg] = ast.literal_eval(keyword.value)
        except ValueError:
            out[keyword.arg] = ast.unparse(keyword.value)
    return out


def _target_lines(target: str, sql: str, spans: dict[str, tuple[int, int]]) -> set[int]:
    kind, _, name = target.partition(":") if ":" in target else ("", "", target)
    name = name.strip().lower()
    lines = sql.splitlines()
    if kind in ("cte", "") and name in spans:
        a, b = spans[name]
        return set(range(a, b + 1))
    if kind == "config" or name == "config":
        match = _CONFIG.search(sql)
        if match:
            return set(range(sql.count("\n", 0, match.start()) + 1, sql.count("\n", 0, match.end()) + 2))
        return set()
    word = re.compile(rf"\b{re.escape(name)}\b", re.I)
    return {n + 1 for n, line in enumerate(lines) if word.search(line)}


@dataclass
class OutputColumns:
    """A model's output columns and the types its SQL casts them to (the column model computes them)."""

    names: list[str]
    types: dict[str, str | None]


def likely_renames(before: list[str], after: list[str]) -> dict[str, str]:
    """Removed -> added pairs at the same position of the output (the usual shape of a rename in a select list)."""
    removed, added = [c for c in before if c not in after], [c for c in after if c not in before]
    pairs = {}
    for old in removed:
        i = before.index(old)
        if i < len(after) and after[i] in added and len(before) == len(after):
            pairs[old] = after[i]
    return pairs


def analyze(before: str, after: str, path: str, columns_before: OutputColumns, columns_after: OutputColumns,
            target: str | None = None) -> ChangeReport:
    a, b = before.splitlines(), after.splitlines()
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    hunks, removed, added = [], [], []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        hunks.append(Hunk(i1 + 1, i2 - i1, j1 + 1, j2 - j1))
        removed += range(i1 + 1, i2 + 1)
        added += range(j1 + 1, j2 + 1)
    diff = "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True), fromfile=f"a/{path}", tofile=f"b/{path}"))
    spans_before, spans_after = cte_spans(before), cte_spans(after)
    touched = sorted({name for name, (s, e) in spans_before.items() if any(s <= n <= e for n in removed)}
                     | {name for name, (s, e) in spans_after.items() if any(s <= n <= e for n in added)})
    total = len(removed) + len(added)
    focus = 1.0 if not total else None  # an unchanged file is on target whatever the target
    if target and total:
        inside_before = _target_lines(target, before, spans_before)
        inside_after = _target_lines(target, after, spans_after)
        inside = sum(n in inside_before for n in removed) + sum(n in inside_after for n in added)
        focus = round(inside / total, 4)
    cols_before, types_before = columns_before.names, columns_before.types
    cols_after, types_after = columns_after.names, columns_after.types
    retyped = {c: (types_before.get(c), types_after.get(c)) for c in cols_before if c in types_after and types_before.get(c) != types_after.get(c)}
    config_before, config_after = config_of(before), config_of(after)
    config_changes = {k: (config_before.get(k), config_after.get(k)) for k in sorted(set(config_before) | set(config_after))
                      if config_before.get(k) != config_after.get(k)}
    return ChangeReport(
        diff=diff, hunks=hunks, lines_added=len(added), lines_removed=len(removed), changed_lines_before=removed, changed_lines_after=added,
        touched_ctes=touched, focus_score=focus, target=target, columns_before=cols_before, columns_after=cols_after,
        columns_added=[c for c in cols_after if c not in cols_before], columns_removed=[c for c in cols_before if c not in cols_after],
        columns_retyped=retyped, config_changes=config_changes, columns_renamed=likely_renames(cols_before, cols_after),
    )


def breaking_reasons(report: ChangeReport, contract_enforced: bool) -> list[str]:
    """dbt's rules for a model contract (a removed column, a changed type, a dropped contract) also hold, for a model
    without one, for whatever reads the removed columns downstream."""
    reasons = [f"column {c} renamed to {report.columns_renamed[c]}" if c in report.columns_renamed else f"column {c} removed"
               for c in report.columns_removed]
    if contract_enforced:
        reasons += [f"column {c} changes type {old} -> {new}" for c, (old, new) in report.columns_retyped.items()]
    contract = report.config_changes.get("contract")
    if contract and isinstance(contract[0], dict) and contract[0].get("enforced") and not (isinstance(contract[1], dict) and contract[1].get("enforced")):
        reasons.append("the contract is no longer enforced")
    if "materialized" in report.config_changes:
        old, new = report.config_changes["materialized"]
        if old in ("table", "incremental", "view") and new == "ephemeral":
            reasons.append(f"materialized {old} -> ephemeral: the relation disappears for anything outside dbt")
    return reasons
