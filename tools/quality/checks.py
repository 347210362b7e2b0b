"""project_check: the seed prompt's guardrails and success criteria as rules with stable ids, without a warehouse.

Rule ids follow dbt-project-evaluator where one matches (fct_…); the others are ours. Input is the warm manifest's
summary (tools/dbt_engine/describe.py) and the models' SQL files; nothing runs in the warehouse.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from server import fastjson
from server.errors import ToolFailure
from tools.authoring import rules as sql_rules
from tools.authoring.project import ProjectIndex
from tools.quality.connascence import analyze

LAYER_OF_FOLDER = {"staging": "staging", "intermediate": "intermediate", "marts": "marts"}


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    description: str


RULES = {r.id: r for r in [
    Rule("no_select_star", "error", "A model lists the columns it outputs: a select * may read a CTE or an import, but some select must list them."),
    Rule("hard_coded_filter_values", "warn", "No literal values in WHERE / IN / CASE filters: use var() or a seed."),
    Rule("fct_hard_coded_references", "error", "Relations are read with ref() or source(), never by name."),
    Rule("fct_missing_primary_key_tests", "error", "Every model has a primary key tested unique and not_null (or unique_combination_of_columns)."),
    Rule("fct_undocumented_models", "warn", "Every model has a description."),
    Rule("undocumented_columns", "warn", "Every column a model outputs has a description."),
    Rule("documented_columns_not_in_output", "warn", "YAML documents only columns the model outputs."),
    Rule("incremental_missing_filter", "error", "An incremental model filters new rows with is_incremental() against {{ this }}."),
    Rule("incremental_missing_unique_key", "warn", "An incremental model (other than append) has a unique_key."),
    Rule("staging_joins", "error", "Staging models do not join: one source table per staging model."),
    Rule("fct_marts_or_intermediate_dependent_on_source", "error", "Intermediate and marts models read ref() only, not source()."),
    Rule("fct_staging_dependent_on_marts_or_intermediate", "error", "Staging models do not read intermediate or marts models."),
    Rule("fct_sources_without_freshness", "warn", "Source tables have freshness (or opt out explicitly with freshness: null)."),
    Rule("fct_model_naming_conventions", "warn", "Models are named by layer: stg_ (staging), int_ (intermediate), fct_/dim_ (marts)."),
    Rule("fct_test_coverage", "warn", "Every model has at least one test."),
]}


@dataclass(frozen=True)
class ModelColumns:
    """What the column model (tools/lineage/column_model.py) knows of one model: its real output columns (None when
    unresolved), whether a star reaches a relation whose columns no select of the model lists, and its compiled SQL's
    line count (both None when it did not compile)."""

    outputs: list[str] | None
    unlisted_star: bool | None
    compiled_lines: int | None = None

    @property
    def explicit(self) -> bool | None:
        """The seed's "explicit select": every column the model outputs is listed by one of its selects."""
        return None if self.unlisted_star is None else not self.unlisted_star


UNKNOWN_COLUMNS = ModelColumns(None, None)


@dataclass
class Violation:
    rule: str
    severity: str
    node: str
    path: str
    message: str
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def line_of_star(sql: str) -> int | None:
    """The source line of the star most likely at fault: a qualified `x.*`, else the last `select *`."""
    lines = sql.splitlines()
    qualified = [n for n, line in enumerate(lines, 1) if re.search(r"\w\.\*", line)]
    plain = [n for n, line in enumerate(lines, 1) if re.search(r"\bselect\s+\*", line, re.I)]
    return (qualified or plain[-1:] or [None])[0]


def layer_of(path: str) -> str | None:
    parts = Path(path).parts
    for part in parts[:-1]:
        if part in LAYER_OF_FOLDER:
            return LAYER_OF_FOLDER[part]
    return None


def _freshness_opt_outs(root: Path, index: ProjectIndex, read: Callable[[Path], str | None]) -> set[tuple[str, str]]:
    """Source tables whose YAML says `freshness: null` on purpose (the manifest cannot tell that from 'not set')."""
    out: set[tuple[str, str]] = set()
    for path in {s["path"] for s in index.raw.get("sources", []) if s["package"] == index.project_name}:
        out |= _opt_outs_in(read(root / path) or "")
    return out


@functools.lru_cache(maxsize=256)
def _opt_outs_in(text: str) -> frozenset[tuple[str, str]]:
    """One sources YAML file's opt-outs; memoized by its text (a big project's sources YAML took 50 ms to load per check)."""
    from ruamel.yaml import YAML

    try:
        data = YAML(typ="safe").load(text) or {}
    except Exception:
        return frozenset()
    out = set()
    for source in (data.get("sources") or []) if isinstance(data, dict) else []:
        for table in source.get("tables") or []:
            config = table.get("config") or {}
            if ("freshness" in config and config["freshness"] is None) or ("freshness" in table and table["freshness"] is None):
                out.add((source.get("name"), table.get("name")))
    return frozenset(out)


@dataclass
class CheckCache:
    """check_project's memory between calls: each model's violations by a digest of everything they are computed from.
    Per model it keeps the objects those inputs came from (its text, manifest entry, tests, parents' entries, columns)
    with the digest they gave: while they are equal (the same objects, most often: the reader returns the same str
    for an unchanged file, the manifest summary keeps unchanged entries' dicts) the inputs are neither projected nor
    digested again. After a one-line edit of a 1,000-model project only the edited model is."""

    results: dict[str, list[Violation]] = field(default_factory=dict)
    inputs: dict[str, tuple[tuple[Any, ...], str]] = field(default_factory=dict)
    sources: dict[str, tuple[tuple[Any, ...], str]] = field(default_factory=dict)  # uid -> (the objects, their digest)
    tests: tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]] | None = None  # (test entries, tests_by_node of them)

    def key(self, uid: str, inputs: tuple[Any, ...]) -> str:
        held = self.inputs.get(uid)
        if held is not None and len(held[0]) == len(inputs) and all(a is b or a == b for a, b in zip(held[0], inputs, strict=True)):
            return held[1]
        key = hashlib.sha256(fastjson.digest_text(list(inputs))).hexdigest()
        self.inputs[uid] = (inputs, key)
        return key

    def prune(self, alive: set[str]) -> None:
        """Forget renamed and deleted models, and results no model's inputs lead to now (each edit leaves one), once
        they are over a hundred. Checks running at once share this: each table is copied before it is walked."""
        if len(self.sources) > len(alive) + 100 or len(self.inputs) > len(alive) + 100:
            for table in (self.sources, self.inputs):
                for uid in [u for u in list(table) if u not in alive]:
                    table.pop(uid, None)
        if len(self.results) > 2 * len(alive) + 100:
            live = {held[1] for held in list(self.inputs.values())}
            for key in [k for k in list(self.results) if k not in live]:
                self.results.pop(key, None)

    def tests_by_node(self, tests: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        """attached_tests(tests): the last answer while the test entries are the same objects."""
        held = self.tests
        if held is not None and len(held[0]) == len(tests) and all(a is b for a, b in zip(held[0], tests, strict=True)):
            return held[1]
        self.tests = (tests, attached_tests(tests))
        return self.tests[1]

    def key_of(self, uid: str, sources: tuple[Any, ...], inputs: Callable[[], tuple[Any, ...]]) -> str:
        """key(uid, inputs()), where `inputs()` is computed from `sources` alone: not called while they are equal."""
        held = self.sources.get(uid)
        if held is not None and held[0] == sources:
            return held[1]
        key = self.key(uid, inputs())
        self.sources[uid] = (sources, key)
        return key


def attached_tests(tests: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The tests attached to each node, by unique_id."""
    out: dict[str, list[dict[str, Any]]] = {}
    for test in tests:
        for parent in test.get("depends_on", []):
            if parent == test.get("attached_node") or test.get("attached_node") is None:
                out.setdefault(parent, []).append(test)
    return out


@dataclass(frozen=True)
class TextFacts:
    """What a model's violations take from its text alone (sqlglot's parse and the connascence analysis: most of the
    time a changed model costs)."""

    joins: int  # 0 also when the text is not a parseable select
    sources: tuple[tuple[str, str], ...]  # source() calls
    findings: tuple[Any, ...]  # connascence.analyze's findings


@functools.lru_cache(maxsize=64)
def text_facts(sql: str, dialect: str, is_sql: bool = True) -> TextFacts:
    """TextFacts of a model's text, kept for the last few texts: project_check computes them for an edited model
    while the worker parses (QualityTools.check), then finds them here."""
    try:
        shape = sql_rules.parse_sql(sql, dialect) if is_sql else None
    except ToolFailure:
        shape = None
    return TextFacts(shape.joins if shape is not None else 0, tuple(sql_rules.relations(sql).sources),
                     tuple(analyze(sql, dialect, tree=shape.tree if shape is not None else None)))


def read_models(root: Path, index: ProjectIndex, read: Callable[[Path | str], str | None], cache: CheckCache,
                limit: int = 16) -> tuple[dict[str, str | None], list[tuple[str, str]]]:
    """Every model file's text, by the path check_project reads it from; and (text, path) of the models whose text
    is not the one `cache` last checked, at most `limit`: what a check after an edit will analyze."""
    folder, texts, edited = os.fspath(root), {}, []
    for model in index.raw.get("nodes", []):
        if model["resource_type"] != "model" or model["package"] != index.project_name:
            continue
        where = f"{folder}{os.sep}{model['path']}"
        sql = texts[where] = read(where)
        held = cache.sources.get(model["unique_id"])
        if sql is not None and len(edited) < limit and (held is None or held[0][0] is not sql):
            edited.append((sql, model["path"]))
    return texts, edited


def check_project(root: Path, index: ProjectIndex, read: Callable[[Path | str], str | None], only_path: str | None = None,
                  columns: dict[str, ModelColumns] | None = None, cache: CheckCache | None = None) -> list[Violation]:
    """Violations of every rule. `columns` (by unique_id) comes from the column model; a model missing from it is
    checked for columns and stars only where its SQL text is unambiguous. `cache` keeps each model's violations by
    everything they are computed from (its text, manifest entry, tests, parents, columns), so a second check of an
    unchanged project re-parses nothing (and, with a StatReader as `read`, re-reads and re-digests nothing)."""
    out: list[Violation] = []
    nodes = index.raw.get("nodes", [])
    by_id = {n["unique_id"]: n for n in nodes}
    test_entries = [n for n in nodes if n["resource_type"] == "test"]
    tests_by_node = cache.tests_by_node(test_entries) if cache is not None else attached_tests(test_entries)
    models = [n for n in nodes if n["resource_type"] == "model" and n["package"] == index.project_name]
    if only_path is not None:
        models = [n for n in models if n["path"] == only_path]
    folder = os.fspath(root)
    dialect = index.dialect
    for model in models:
        uid, path, name = model["unique_id"], model["path"], model["name"]
        sql = read(f"{folder}{os.sep}{path}") or ""  # a str: a Path (or os.path.join) per model per call was a third of reading them
        seen = (columns or {}).get(uid) or UNKNOWN_COLUMNS
        tests = tests_by_node.get(uid, [])
        parents = [by_id.get(p) for p in model.get("depends_on", [])]

        def inputs() -> tuple[Any, ...]:
            parents_seen = tuple((p, (e or {}).get("resource_type"), (e or {}).get("path")) for p, e in zip(model.get("depends_on", []), parents, strict=True))
            return (sql, model, *tests, parents_seen, dialect,
                    (tuple(seen.outputs) if seen.outputs is not None else None, seen.unlisted_star, seen.compiled_lines))

        if cache is not None:
            key = cache.key_of(uid, (sql, model, *tests, *parents, dialect, seen), inputs)
        else:
            key = hashlib.sha256(fastjson.digest_text(list(inputs()))).hexdigest()
        if cache is not None and key in cache.results:
            out += cache.results[key]
            continue
        start = len(out)

        def flag(rule: str, message: str, line: int | None = None) -> None:
            out.append(Violation(rule, RULES[rule].severity, uid, path, message, line))

        layer = layer_of(path)
        text = text_facts(sql, dialect, path.endswith(".sql"))
        known = (columns or {}).get(uid)
        if known is not None and known.unlisted_star:
            flag("no_select_star", f"{name} outputs a relation's columns through select * without listing them: list them in a CTE or the final select.",
                 line_of_star(sql))
        for finding in text.findings:
            if finding.kind == "meaning":
                flag("hard_coded_filter_values", finding.message, finding.line)
            elif finding.kind == "name":
                flag("fct_hard_coded_references", finding.message, finding.line)
        tests = tests_by_node.get(uid, [])
        unique = {t.get("column_name") for t in tests if t.get("test_name") == "unique"}
        not_null = {t.get("column_name") for t in tests if t.get("test_name") == "not_null"}
        combos = [t for t in tests if t.get("test_name") == "unique_combination_of_columns"]
        if not (unique & not_null - {None}) and not combos:
            flag("fct_missing_primary_key_tests", f"{name} has no column tested both unique and not_null (nor unique_combination_of_columns).")
        if not model.get("description"):
            flag("fct_undocumented_models", f"{name} has no description.")
        outputs = known.outputs if known is not None else None
        if outputs is not None:
            documented = {c.lower() for c in model.get("documented_columns", [])}
            undocumented = [c for c in outputs if c.lower() not in documented]
            if undocumented:
                flag("undocumented_columns", f"{name}: no description for {', '.join(undocumented)}.")
            output_names = {c.lower() for c in outputs}
            stale = [c for c in model.get("columns", []) if c.lower() not in output_names]
            if stale:
                flag("documented_columns_not_in_output", f"{name}'s YAML documents {', '.join(stale)}, which it does not output: "
                     "remove or rename the entries.", None)
        config = model.get("config", {})
        if config.get("materialized") == "incremental":
            if "is_incremental()" not in sql or "this" not in sql:
                flag("incremental_missing_filter", f"{name} is incremental but has no is_incremental() filter against {{{{ this }}}}: every run reprocesses everything.")
            if not config.get("unique_key") and config.get("incremental_strategy") not in ("append", "microbatch"):
                flag("incremental_missing_unique_key", f"{name} is incremental without unique_key: changed rows are duplicated, not updated.")
        if layer == "staging":
            if text.joins:
                flag("staging_joins", f"{name} joins {text.joins} time(s); join in an intermediate model.")
            upper = [p["name"] for p in parents if p and p["resource_type"] == "model" and layer_of(p["path"]) in ("intermediate", "marts")]
            if upper:
                flag("fct_staging_dependent_on_marts_or_intermediate", f"{name} reads {', '.join(upper)}.")
        if layer in ("intermediate", "marts") and text.sources:
            flag("fct_marts_or_intermediate_dependent_on_source", f"{name} reads {', '.join(f'{a}.{b}' for a, b in text.sources)} directly; add a staging model.")
        if layer is not None and not name.startswith(sql_rules.PREFIXES[layer]):
            flag("fct_model_naming_conventions", f"{name} is in {layer} but not named {' or '.join(p + '…' for p in sql_rules.PREFIXES[layer])}.")
        if not tests:
            flag("fct_test_coverage", f"{name} has no tests.")
        if cache is not None:
            if len(cache.results) > 50_000:
                cache.results.clear()
                cache.inputs.clear()
                cache.sources.clear()
            cache.results[key] = out[start:]
    if cache is not None and only_path is None:
        cache.prune({m["unique_id"] for m in models})
    if only_path is None:
        opted_out = _freshness_opt_outs(root, index, read)
        for source in index.raw.get("sources", []):
            if source["package"] != index.project_name or source.get("freshness") or (source["source_name"], source["name"]) in opted_out:
                continue
            out.append(Violation("fct_sources_without_freshness", RULES["fct_sources_without_freshness"].severity, source["unique_id"], source["path"],
                                 f"source {source['source_name']}.{source['name']} has no freshness (add warn_after/error_after, or freshness: null if it is reference data)."))
    return out


def summary(violations: list[Violation]) -> dict[str, int]:
    counts = {rule: 0 for rule in RULES}
    for v in violations:
        counts[v.rule] += 1
    return counts
