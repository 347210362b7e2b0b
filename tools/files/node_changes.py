"""model_update and node_properties: dbt-aware changes to nodes that exist, written the authoring tools' way (one plan,
`commit`: parse, compile, zero-row query, every file put back byte for byte when dbt refuses) with a focused-change
baseline of every file they change.

- model_update replaces a model's SQL and leaves its properties YAML as it is. `config` keys go where the model keeps
  its config: the SQL's `{{ config(...) }}` block (edited in place: the other arguments keep their text), else the
  `config:` of its YAML entry when it has one, else a new `{{ config(...) }}` block at the top of the SQL.
- node_properties documents and tests a model, seed, snapshot or source table in the YAML that already describes it
  (comments kept, ruamel), or in the folder's properties file (a new one named like the project's others). `generate`
  adds every real output column (dbt's compiled SQL with stars expanded, the catalog or the database: the column model)
  that the entry lacks; existing entries stay as they are.
"""

from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from server.errors import ToolFailure
from server.registration import ProgressReporter
from tools.authoring import yaml_props
from tools.authoring.files import project_path, read_text
from tools.authoring.inputs import DocumentedColumn
from tools.authoring.plan import Plan, properties_file
from tools.authoring.project import ProjectIndex, ProjectLayout
from tools.authoring.render import config_block, python_literal
from tools.files.inputs import ModelUpdateInput, NodePropertiesInput
from tools.files.results import NodePropertiesResult, WriteResult

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_CONFIG_START = re.compile(r"\{\{-?\s*config\s*\(")
_SECTIONS = {"model": "models", "seed": "seeds", "snapshot": "snapshots"}


# -- the SQL's config() block ----------------------------------------------------------------------------------------
@dataclass
class ConfigBlock:
    args_start: int  # offsets in the SQL text of what is between config( and )
    args_end: int


def find_config(sql: str) -> ConfigBlock | None:
    """The first `{{ config(...) }}` of the SQL (brackets and quotes followed, so a ')' in a string does not end it)."""
    head = _CONFIG_START.search(sql)
    if head is None:
        return None
    depth, quote, n = 1, "", head.end()
    while n < len(sql):
        char = sql[n]
        if quote:
            if char == "\\":
                n += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return ConfigBlock(head.end(), n)
        n += 1
    return None


def set_config(sql: str, block: ConfigBlock, config: dict[str, Any], where: str) -> str:
    """The SQL with `config`'s keys set in its config() block: an argument present gets the new value (in its place),
    a new one is added after the last; every other argument keeps its text."""
    args = sql[block.args_start:block.args_end]
    unusable = ToolFailure("config_not_editable", f"The config() block of {where} is not plain keyword arguments, so it cannot be edited "
                           "safely. Nothing was written.", "Edit the block with file_edit, or pass the full new SQL (sql=...) with the config in it.")
    try:
        call = ast.parse(f"config({args})", mode="eval").body
    except SyntaxError:
        raise unusable from None
    if not isinstance(call, ast.Call) or call.args or any(k.arg is None for k in call.keywords):
        raise unusable
    raw = f"config({args})".encode()  # ast offsets count UTF-8 bytes
    starts = [0] + [m.end() for m in re.finditer(rb"\n", raw)]

    def offset(line: int, col: int) -> int:
        return starts[line - 1] + col

    edits: list[tuple[int, int, str]] = []
    present = {k.arg: k for k in call.keywords}
    for key, value in config.items():
        if key in present:
            node = present[key].value
            edits.append((offset(node.lineno, node.col_offset), offset(node.end_lineno or node.lineno, node.end_col_offset or 0),
                          python_literal(value)))
    added = [(k, v) for k, v in config.items() if k not in present]
    if added:
        if call.keywords:
            last = call.keywords[-1]
            end = offset(last.value.end_lineno or last.value.lineno, last.value.end_col_offset or 0)
            if b"\n" in raw[:end]:  # one argument a line: the new ones the same way, indented like the last
                line_start = starts[last.lineno - 1]
                indent = re.match(rb"[ \t]*", raw[line_start:]).group().decode()  # type: ignore[union-attr]
                text = "".join(f",\n{indent}{k}={python_literal(v)}" for k, v in added)
            else:
                text = "".join(f", {k}={python_literal(v)}" for k, v in added)
            edits.append((end, end, text))
        else:
            edits.append((len(b"config("), len(b"config("), ", ".join(f"{k}={python_literal(v)}" for k, v in added)))
    for start, end, text in sorted(edits, reverse=True):
        raw = raw[:start] + text.encode() + raw[end:]
    new_args = raw.decode()[len("config("):-1]
    return sql[:block.args_start] + new_args + sql[block.args_end:]


def check_config(config: dict[str, Any]) -> None:
    bad = [k for k in config if not _IDENTIFIER.match(k)]
    if bad:
        raise ToolFailure("invalid_input", f"config key {bad[0][:60]!r} is not a name config() takes.", "Use dbt's config names, e.g. materialized, tags.")
    try:
        for value in config.values():
            python_literal(value)
    except TypeError as exc:
        raise ToolFailure("invalid_input", f"config value: {exc}.", "Give strings, numbers, booleans, lists or objects.") from None


# -- YAML ------------------------------------------------------------------------------------------------------------
_NULLS = (" null", " Null", " NULL", " ~")


def dump_keeping(doc: yaml_props.YamlDoc, before: str | None) -> str:
    """The edited YAML, with the lines ruamel rewrote without a change of meaning put back: it writes an explicit
    `key: null` as `key:`, which would show in the diff as an edit nobody asked for."""
    after = doc.dump()
    if not before:
        return after
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    out: list[str] = []
    for op, a1, a2, b1, b2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if op == "replace" and a2 - a1 == b2 - b1:
            out += [o if any(o.rstrip("\r\n") == n.rstrip("\r\n") + null for null in _NULLS) else n for o, n in zip(old[a1:a2], new[b1:b2])]
        else:
            out += new[b1:b2]
    return "".join(out)


# -- finding the node ------------------------------------------------------------------------------------------------
def not_found(name: str, candidates: set[str], what: str) -> ToolFailure:
    close = difflib.get_close_matches(name, sorted(candidates), n=5, cutoff=0.5)
    hint = f"Did you mean {', '.join(close)}?" if close else "dbt_list shows the project's nodes."
    return ToolFailure("model_not_found", f"No {what} named {name[:120]!r} in the project.", hint, {"closest": close} if close else None)


def own_node(index: ProjectIndex, name: str, types: tuple[str, ...], what: str) -> dict[str, Any]:
    node = index.node(name)
    if node is None or node["resource_type"] not in types:
        names = {n for n, nodes in index.by_name.items() if any(x["resource_type"] in types for x in nodes)}
        if node is not None:
            raise ToolFailure("model_not_found", f"{name} is a {node['resource_type']}, not a {what}.", f"Give a {what}'s name.")
        raise not_found(name, names, what)
    if node["package"] != index.project_name:
        raise ToolFailure("node_not_editable", f"{name} belongs to the package {node['package']}, not to this project.",
                          "Packages are reinstalled by dbt deps: override the node in the project instead.")
    return node


# -- the service -------------------------------------------------------------------------------------------------------
class NodeChanges:
    def __init__(self, files: Any) -> None:
        self.files = files  # the FilesService: root, content checks, baselines
        self.ctx = files.ctx
        self.root: Path = files.root

    @property
    def authoring(self) -> Any:
        from tools.authoring.service import AuthoringService

        return self.ctx.shared("authoring", lambda: AuthoringService(self.ctx))

    async def _commit(self, tool: str, plan: Plan, dry_run: bool, originals: dict[str, str | None],
                      progress: ProgressReporter) -> WriteResult:
        done = await self.authoring.commit(tool, plan, SimpleNamespace(dry_run=dry_run, timeout_seconds=None), progress)
        result = WriteResult.model_validate(done.model_dump())
        if not dry_run:
            for f in result.files:
                if f.action != "unchanged":
                    result.notes.append(await self.files._baseline(f.path, originals.get(f.path), progress))
        return result

    async def _index(self, progress: ProgressReporter) -> tuple[ProjectLayout, ProjectIndex]:
        return await self.authoring._current(SimpleNamespace(timeout_seconds=None), progress)  # type: ignore[no-any-return]

    # -- model_update ---------------------------------------------------------------------------------------------------
    async def model_update(self, inp: ModelUpdateInput, progress: ProgressReporter) -> WriteResult:
        if inp.sql is None and not inp.config:
            raise ToolFailure("invalid_input", "Nothing to change: give sql, config or both.", "e.g. config={'materialized': 'table'}.")
        check_config(inp.config)
        if inp.sql is not None and not inp.sql.strip():
            raise ToolFailure("invalid_input", "sql is empty.", "Give the model's full new SQL.")
        async with self.authoring.lock:  # one write at a time with the authoring and file tools
            _, index = await self._index(progress)
            node = own_node(index, inp.name, ("model",), "model")
            rel = str(node["path"])
            path = project_path(self.root, rel)
            if path.suffix != ".sql":
                raise ToolFailure("invalid_input", f"{inp.name} is a {path.suffix} model; model_update edits SQL models.", f"Edit {rel} with file_edit.")
            original = read_text(path) or ""
            sql = original if inp.sql is None else inp.sql
            self.files._check_content(sql, rel)
            plan = Plan(next_step=f"analyze_changes filepath='{rel}', then dbt_build select='{inp.name}+'")
            originals: dict[str, str | None] = {rel: original}
            if inp.config:
                sql = self._config(plan, node, path, sql, inp.config, originals)
            if sql != original or not plan.changes:  # config kept in YAML: the SQL is not listed as a file of the change
                plan.write(path, sql)
            plan.compile_select = f"path:{rel}" if " " not in rel else inp.name
            plan.expect = self.authoring._expect_nodes([inp.name])

            async def against_the_data() -> None:
                plan.notes.extend(await self.authoring.zero_row_check(inp.name))

            plan.finish = against_the_data
            return await self._commit("model_update", plan, inp.dry_run, originals, progress)

    def _config(self, plan: Plan, node: dict[str, Any], path: Path, sql: str, config: dict[str, Any],
                originals: dict[str, str | None]) -> str:
        """Set the keys where the model keeps its config (see the module's docstring); says where in a note."""
        rel = str(node["path"])
        block = find_config(sql)
        if block is not None:
            plan.notes.append(f"config set in the config() block of {rel}: {', '.join(config)}")
            return set_config(sql, block, config, rel)
        patch = node.get("patch_path")
        if patch:
            yml = project_path(self.root, patch)
            text = read_text(yml)
            doc = yaml_props.load(text, patch)
            entry = yaml_props.find(yaml_props.section(doc, "models"), node["name"])
            if entry is not None and isinstance(entry.get("config"), dict):
                for key, value in config.items():
                    entry["config"][key] = yaml_props.to_yaml(value)
                plan.write(yml, dump_keeping(doc, text))
                originals[patch] = text
                plan.notes.append(f"config set under config: of {node['name']} in {patch}, where the model keeps it: {', '.join(config)}")
                return sql
        plan.notes.append(f"config set in a new config() block at the top of {rel}: {', '.join(config)}")
        return config_block(config) + sql.lstrip("\n")

    # -- node_properties ------------------------------------------------------------------------------------------------
    async def node_properties(self, inp: NodePropertiesInput, progress: ProgressReporter) -> NodePropertiesResult:
        if not (inp.description or inp.columns or inp.tests or inp.generate):
            raise ToolFailure("invalid_input", "Nothing to change: give description, columns, tests or generate=true.",
                              "e.g. generate=true adds every output column the YAML lacks.")
        names = [c.name for c in inp.columns]
        if len({n.lower() for n in names}) != len(names):
            raise ToolFailure("invalid_input", "A column is listed twice in columns.", "List each column once.")
        async with self.authoring.lock:
            layout, index = await self._index(progress)
            target = self._target(layout, index, inp.name)
            plan = Plan()
            text = plan.pending(target.yml)
            originals: dict[str, str | None] = {target.yml_rel: text}
            doc = yaml_props.load(text, target.yml_rel)
            entry = target.entry(doc)
            spelling = "tests" if re.search(r"^[ -]*tests:", text or "", re.MULTILINE) and not re.search(r"^[ -]*data_tests:", text or "", re.MULTILINE) else "data_tests"
            real = await self.authoring.real_columns(target.uid) if (inp.generate or inp.columns) else None
            if inp.generate and real is None:
                raise ToolFailure("columns_unknown", f"dbt cannot tell {inp.name}'s output columns yet (not compiled or built, no catalog). "
                                  "Nothing was written.", f"Build it first (dbt_build select='{target.select}'), then call again.")
            if real is None and inp.columns:
                plan.notes.append(f"could not tell {inp.name}'s output columns (not built, no catalog): the column names were not checked")
            if real is not None:
                have = {c.lower() for c in real}
                missing = [n for n in names if n.lower() not in have]
                if missing:
                    raise ToolFailure("column_not_found", f"{inp.name} has no column {', '.join(missing)}; its columns: {', '.join(real[:60])}. "
                                      "Nothing was written.", "Document the columns it outputs (generate=true adds them all).")
            if inp.description:
                entry["description"] = inp.description
            columns = entry.get("columns")
            if (inp.columns or inp.generate) and not isinstance(columns, list):
                if columns is not None:
                    raise ToolFailure("invalid_yaml", f"columns: of {inp.name} in {target.yml_rel} is not a list.", "Fix the file by hand, then call again.")
                entry["columns"] = columns = yaml_props.to_yaml([])
            for column in inp.columns:
                self._column(plan, layout, index, columns, column, spelling)  # type: ignore[arg-type]
            added: list[str] = []
            if inp.generate and real is not None:
                documented = {str(c.get("name", "")).lower() for c in columns if isinstance(c, dict)}  # type: ignore[union-attr]
                for name in real:
                    if name.lower() not in documented:
                        columns.append(yaml_props.to_yaml({"name": name, "description": ""}))  # type: ignore[union-attr]
                        added.append(name)
                stale = sorted(documented - {c.lower() for c in real})
                plan.notes.append(f"generate: {len(added)} column(s) added, {len(real) - len(added)} already in the YAML (kept as they are)"
                                  + (f"; in the YAML but not in the output: {', '.join(stale)}" if stale else ""))
            if inp.tests:
                self.authoring._merge_tests(entry, self.authoring._test_entries(plan, layout, index, list(inp.tests), None), spelling)
            plan.write(target.yml, dump_keeping(doc, text))
            if inp.tests or any(c.tests for c in inp.columns):
                plan.compile_select = target.select  # its tests are selected with it, so their SQL compiles too
            plan.expect = target.expect
            plan.next_step = f"dbt_build select='{target.select}'"
            result = await self._commit("node_properties", plan, inp.dry_run, originals, progress)
        return NodePropertiesResult.model_validate({**result.model_dump(), "added_columns": added})

    def _column(self, plan: Plan, layout: ProjectLayout, index: ProjectIndex, columns: Any, column: DocumentedColumn, spelling: str) -> None:
        existing = yaml_props.find(columns, column.name)
        if existing is None:
            existing = next((c for c in columns if isinstance(c, dict) and str(c.get("name", "")).lower() == column.name.lower()), None)
        if existing is None:
            columns.append(yaml_props.to_yaml({"name": column.name}))
            existing = columns[-1]
        if column.description:
            existing["description"] = column.description
        if column.data_type:
            existing["data_type"] = column.data_type
        if column.tests:
            self.authoring._merge_tests(existing, self.authoring._test_entries(plan, layout, index, list(column.tests), column.name), spelling)

    def _target(self, layout: ProjectLayout, index: ProjectIndex, name: str) -> Target:
        if "." in name and index.node(name) is None:
            source_name, table = name.split(".", 1)
            source = index.sources.get((source_name, table))
            if source is None:
                raise not_found(name, {f"{a}.{b}" for a, b in index.sources}, "source table")
            if source["package"] != index.project_name:
                raise ToolFailure("node_not_editable", f"{name} is defined by the package {source['package']}.", "Define the source in the project instead.")
            return Target(self.root, source["unique_id"], f"source:{name}", str(source["path"]), None, source_name, table, "source")
        node = own_node(index, name, ("model", "seed", "snapshot"), "model, seed or snapshot")
        kind = node["resource_type"]
        section = _SECTIONS[kind]
        yml_rel = node.get("patch_path")
        if not yml_rel and str(node["path"]).endswith((".yml", ".yaml")):
            yml_rel = node["path"]  # a snapshot defined in YAML: its entry holds its properties too
        if not yml_rel:
            folder = project_path(self.root, node["path"]).parent
            yml = properties_file(folder, section, self._convention(layout, folder, section))
            yml_rel = yml.relative_to(self.root).as_posix()
        return Target(self.root, node["unique_id"], name, str(yml_rel), section, name, None, kind)

    def _convention(self, layout: ProjectLayout, folder: Path, section: str) -> str:
        """A new properties file's name, like the project's others: `_<folder>.yml` or `_<folder>__<section>.yml`."""
        short = long = 0
        for base in {*layout.model_paths, *layout.seed_paths, *layout.snapshot_paths}:
            top = self.root / base
            if not top.is_dir():
                continue
            for found in top.rglob("_*.y*ml"):
                stem = found.stem
                short += stem == f"_{found.parent.name}"
                long += stem.startswith(f"_{found.parent.name}__")
        return f"_{folder.name}.yml" if short > long else f"_{folder.name}__{section}.yml"


@dataclass
class Target:
    """Where a node's properties live: its YAML file and the entry in it (created when absent)."""

    root: Path
    uid: str
    select: str
    yml_rel: str
    section: str | None  # models/seeds/snapshots; None for a source table (sources: -> tables:)
    name: str  # the entry's name (the source's name for a source table)
    table: str | None
    kind: str

    @property
    def yml(self) -> Path:
        return project_path(self.root, self.yml_rel)

    def entry(self, doc: yaml_props.YamlDoc) -> Any:
        entries = yaml_props.section(doc, self.section or "sources")
        entry = yaml_props.find(entries, self.name)
        if entry is None:
            if self.table is not None:
                raise ToolFailure("invalid_yaml", f"{self.yml_rel} has no source {self.name}.", "Fix the file, or define the source with dbt_source.")
            entries.append(yaml_props.to_yaml({"name": self.name}))
            entry = entries[-1]
        if self.table is None:
            return entry
        tables = entry.get("tables")
        table = yaml_props.find(tables, self.table) if isinstance(tables, list) else None
        if table is None:
            raise ToolFailure("invalid_yaml", f"{self.yml_rel} has no table {self.table} under the source {self.name}.",
                              "Fix the file, or define the table with dbt_source.")
        return table

    def expect(self, after: ProjectIndex) -> list[str]:
        """After the parse: the node is still there (with its tests)."""
        if self.table is not None:
            source = after.sources.get((self.name, self.table))
            if source is None:
                raise ToolFailure("validation_failed", f"dbt parsed the project but has no source {self.name}.{self.table}.", "Check the YAML.")
            uid = source["unique_id"]
            return [uid] + [t["unique_id"] for t in after.raw.get("nodes", []) if t["resource_type"] == "test" and uid in (t.get("depends_on") or [])]
        node = after.node(self.name)
        if node is None or node["resource_type"] != self.kind:
            raise ToolFailure("validation_failed", f"dbt parsed the project but has no {self.kind} named {self.name}.", "Check the YAML.")
        return [node["unique_id"]] + [t["unique_id"] for t in after.tests_on(node["unique_id"])]
