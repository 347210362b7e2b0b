"""node_rename and node_delete: dbt-aware changes of an existing model, seed or snapshot, written the authoring way.

Which files change comes from dbt, not from a text search: the warm manifest's dependencies (every node and exposure
whose depends_on names the node; metrics and semantic models from target/manifest.json) choose the files, and only in
those files (plus the project's macros, whose refs dbt records on the models calling them) are the `ref()` calls
rewritten. The node's properties entry is found with ruamel (its line and column) and changed as text, so every other
byte of the YAML file (comments, quoting, layout) stays. A rename is validated by a parse and a compile of the renamed
node and its children; a delete by a parse. Either puts every file back byte for byte when dbt refuses.

node_delete with cascade_check false and dependants: the files are deleted even when dbt then cannot parse the
project, but only when dbt's error names the deleted node (the dependants' broken ref); any other parse error rolls
back. The agent asked for exactly that breakage, and the result lists the broken dependants and dbt's error.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from server.errors import ToolFailure
from server.registration import ProgressReporter, closest
from tools.authoring import yaml_props
from tools.authoring.files import apply, plan_diffs, project_path, read_text
from tools.authoring.plan import Plan
from tools.authoring.project import ProjectIndex
from tools.authoring.results import FileOut
from tools.files.inputs import NodeDeleteInput, NodeRenameInput
from tools.files.results import NodeChangeResult

NEW_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
KINDS = ("model", "seed", "snapshot")
# ref('name') / ref("name") / ref('package', 'name'), any whitespace, a version argument after it (v=2, version=2)
REF = re.compile(r"""\bref\s*\(\s*(?:(?P<pq>['"])(?P<pkg>[^'"\n]+)(?P=pq)\s*,\s*)?(?P<q>['"])(?P<name>[^'"\n]+)(?P=q)(?=\s*[,)])""")
SNAPSHOT_BLOCK = r"(\{%-?\s*snapshot\s+){name}(\s*-?%\}})"


def rewrite_refs(text: str, old: str, new: str, project: str | None) -> tuple[str, int]:
    """Every ref to `old` (unqualified, or qualified with this project's name) pointed at `new`; other text unchanged."""
    out, last, count = [], 0, 0
    for match in REF.finditer(text):
        if match["name"] != old or (match["pkg"] is not None and match["pkg"] != project):
            continue
        out.append(text[last:match.start("name")] + new)
        last = match.end("name")
        count += 1
    return "".join(out) + text[last:], count


def _entries(text: str, rel: str, section: str, name: str) -> tuple[yaml_props.YamlDoc, Any, int]:
    doc = yaml_props.load(text, rel)
    entries = doc.data.get(section)
    if isinstance(entries, list):
        for i, entry in enumerate(entries):
            if isinstance(entry, dict) and entry.get("name") == name:
                return doc, entries, i
    raise ToolFailure("yaml_entry_not_found", f"{rel} has no {section} entry named {name}.", f"Check {rel} (file_read); nothing was written.")


def rename_entry(text: str, rel: str, section: str, old: str, new: str) -> str:
    """The entry `- name: old` of `section` renamed in place: only that token of the file changes."""
    _, entries, i = _entries(text, rel, section, old)
    line, col = entries[i].lc.value("name")
    lines = text.splitlines(keepends=True)
    for token in (old, f'"{old}"', f"'{old}'"):
        if lines[line][col:].startswith(token):
            lines[line] = lines[line][:col] + token.replace(old, new) + lines[line][col + len(token):]
            return "".join(lines)
    raise ToolFailure("yaml_edit_failed", f"Could not find the name {old} of the {section} entry at {rel}:{line + 1}.",
                      f"Rename the entry in {rel} with file_edit; nothing was written.")


def _blank_or_comment(line: str) -> bool:
    return not line.strip() or line.lstrip().startswith("#")


def remove_entry(text: str, rel: str, section: str, name: str) -> str | None:
    """`text` without the entry `name` of `section` (its tests and columns with it); the section goes when it is left
    empty, and the file (None) when nothing but `version:` is left. Other lines stay byte for byte."""
    doc, entries, i = _entries(text, rel, section, name)
    lines = text.splitlines(keepends=True)
    keys = list(doc.data.keys())
    after = keys.index(section) + 1
    section_end = doc.data.lc.key(keys[after])[0] if after < len(keys) else len(lines)
    if len(entries) == 1:
        start, end = doc.data.lc.key(section)[0], section_end
    else:
        start = entries.lc.item(i)[0]
        end = entries.lc.item(i + 1)[0] if i + 1 < len(entries) else section_end
    while end > start + 1 and _blank_or_comment(lines[end - 1]):  # comments above the next entry are the next entry's
        end -= 1
    if end < len(lines) and not lines[end].strip() and (start == 0 or not lines[start - 1].strip() or start - 1 == doc.data.lc.key(section)[0]):
        end += 1  # one blank line between the neighbours, not two
    rest = "".join(lines[:start] + lines[end:])
    left = yaml_props.load(rest, rel).data
    if not set(left) - {"version"}:
        return None
    kept = left.get(section) or []
    if len(kept) != len(entries) - 1 or any(isinstance(e, dict) and e.get("name") == name for e in kept):
        raise ToolFailure("yaml_edit_failed", f"Could not take the {section} entry {name} out of {rel} cleanly.",
                          "Remove it with file_edit; nothing was written.")
    return rest


class NodeMoves:
    """The two tools; `files` is the toolset's FilesService (paths, the manifest on disk, baselines)."""

    def __init__(self, files: Any) -> None:
        self.files = files
        self.ctx = files.ctx
        self.root: Path = files.root

    def _authoring(self) -> Any:
        from tools.authoring.service import AuthoringService

        return self.ctx.shared("authoring", lambda: AuthoringService(self.ctx))

    async def _index(self, authoring: Any, progress: ProgressReporter) -> ProjectIndex:
        try:
            return await authoring.index(self.ctx.settings.timeout_seconds, progress)
        except ToolFailure as failure:
            raise ToolFailure(failure.code, f"The project does not parse before this change: {failure.message}",
                              "Fix the project first (dbt_parse shows the error); nothing was written.", failure.details) from None

    @staticmethod
    def _node(index: ProjectIndex, name: str) -> dict[str, Any]:
        node = index.node(name) if len(name) <= 256 else None
        if node is None or node["resource_type"] not in KINDS or node["package"] != index.project_name:
            names = sorted(index.names(*KINDS))
            near = closest(name[:256], names)
            raise ToolFailure("node_not_found", f"No model, seed or snapshot {name[:80]!r} in this project.",
                              f"Did you mean {near}?" if near else "project_files or dbt_list shows the names.")
        return node

    def _manifest_children(self, uid: str) -> list[tuple[str, str | None]]:
        """(unique_id, file) of metrics, semantic models and saved queries using `uid`, from target/manifest.json."""
        manifest = self.files.manifest._load() or {}
        out = []
        for section in ("metrics", "semantic_models", "saved_queries"):
            for child_uid, raw in (manifest.get(section) or {}).items():
                if uid in ((raw.get("depends_on") or {}).get("nodes") or []):
                    out.append((child_uid, raw.get("original_file_path")))
        return out

    def _dependants(self, index: ProjectIndex, node: dict[str, Any]) -> list[tuple[str, str | None]]:
        """(unique_id, file) of everything that depends on the node, but its own generic tests (they go with its entry)."""
        uid = node["unique_id"]
        out = [(n["unique_id"], n.get("path")) for n in index.raw.get("nodes", [])
               if uid in (n.get("depends_on") or []) and n.get("attached_node") != uid]
        out += [(e["unique_id"], e.get("path")) for e in index.raw.get("exposures", []) if uid in (e.get("depends_on") or [])]
        return out + self._manifest_children(uid)

    def _relation(self, uid: str) -> str | None:
        raw = ((self.files.manifest._load() or {}).get("nodes") or {}).get(uid) or {}
        return raw.get("relation_name")

    def _path(self, rel: str | None) -> Path:
        return project_path(self.root, rel or "")

    async def _baselines(self, result: NodeChangeResult, before: dict[str, str | None], progress: ProgressReporter) -> None:
        for f in result.files:
            if f.action != "unchanged":
                result.notes.append(await self.files._baseline(f.path, before.get(f.path), progress))

    # -- node_rename ----------------------------------------------------------------------------------------------
    async def node_rename(self, inp: NodeRenameInput, progress: ProgressReporter) -> NodeChangeResult:
        new = inp.new_name
        if not NEW_NAME.match(new) or len(new) > 128:
            raise ToolFailure("invalid_name", f"{new[:80]!r} is not a dbt name: letters, digits and _, starting with a letter or _ (at most 128).",
                              "Use snake_case, e.g. stg_orders; paths are not names.")
        authoring = self._authoring()
        async with authoring.lock:
            index = await self._index(authoring, progress)
            node = self._node(index, inp.name)
            old, kind, project = node["name"], node["resource_type"], index.project_name
            taken = [n["unique_id"] for n in index.raw.get("nodes", []) if n["name"].lower() == new.lower()]
            taken += [x["unique_id"] for x in index.raw.get("exposures", []) if x["name"].lower() == new.lower()]
            if new == old or taken:
                raise ToolFailure("name_conflict", f"{new} is already {'its name' if new == old else 'taken by ' + ', '.join(taken[:5])}. Nothing was written.",
                                  "Choose a name no model, seed, snapshot, test or exposure has.")
            raw = ((self.files.manifest._load() or {}).get("nodes") or {}).get(node["unique_id"]) or {}
            if raw.get("version") is not None:
                raise ToolFailure("not_supported", f"{old} is a versioned model; renaming versions is not supported.", "Rename its files and YAML with file_edit.")
            plan, before, notes = Plan(), {}, []
            source = self._path(node["path"])
            text = original = read_text(source) or ""
            before[node["path"]] = original
            if source.suffix in (".yml", ".yaml"):  # a snapshot defined in YAML: its entry is the definition
                plan.write(source, rename_entry(text, node["path"], "snapshots", old, new))
            else:
                if kind == "snapshot":
                    text, found = re.subn(SNAPSHOT_BLOCK.format(name=re.escape(old)), rf"\g<1>{new}\g<2>", text)
                    if not found:
                        raise ToolFailure("not_supported", f"No {{% snapshot {old} %}} block in {node['path']}.", "Rename it with file_edit.")
                target = source.with_name(new + source.suffix) if source.stem == old else source
                if target != source:
                    if target.exists():
                        raise ToolFailure("name_conflict", f"{target.relative_to(self.root).as_posix()} exists already. Nothing was written.", "Choose another name.")
                    plan.write(source, None)
                    before[target.relative_to(self.root).as_posix()] = original  # the baseline of the moved file is its old text
                plan.write(target, text)
            if node.get("patch_path") and node["patch_path"] != node["path"]:
                patch = self._path(node["patch_path"])
                pending = plan.pending(patch) or ""
                before.setdefault(node["patch_path"], read_text(patch))
                plan.write(patch, rename_entry(pending, node["patch_path"], kind + "s", old, new))
            dependants = self._dependants(index, node)
            files = {p for _, p in dependants if p}
            files |= {m["path"] for m in index.raw.get("macros", []) if m["package"] == project and m.get("path")}
            rewritten: dict[str, int] = {}
            for rel in sorted(files):
                path = self._path(rel)
                pending = plan.pending(path)
                if pending is None:
                    continue
                changed, count = rewrite_refs(pending, old, new, project)
                if count:
                    before.setdefault(rel, read_text(path))
                    plan.write(path, changed)
                    rewritten[rel] = count
            silent = sorted({uid.split(".")[-1] for uid, p in dependants if p and p not in rewritten and p != node.get("patch_path")})
            if silent:
                notes.append(f"depend on {old} but their files hold no ref('{old}') (a macro or variable builds it): {', '.join(silent[:20])}")
            notes.append("ref() rewritten: " + (", ".join(f"{rel} ({n})" for rel, n in rewritten.items()) or "none (no dependants)"))
            relation = self._relation(node["unique_id"])
            if relation and (node.get("config") or {}).get("materialized") != "ephemeral":
                notes.append(f"the old relation {relation} stays in the warehouse until you drop it; dbt_build select='{new}+' builds the new one")
            if re.search(rf"^\s*\+?{re.escape(old)}\s*:", read_text(self.root / "dbt_project.yml") or "", re.MULTILINE):
                notes.append(f"dbt_project.yml configures {old} by name: rename that key too (file_edit)")
            plan.notes = notes
            plan.compile_select = f"{new}+1"
            plan.next_step = f"dbt_build select='{new}+'"

            def expect(after: ProjectIndex) -> list[str]:
                renamed = after.node(new)
                if renamed is None or after.node(old) is not None and after.node(old)["package"] == project:
                    raise ToolFailure("validation_failed", f"dbt parsed the project but has no {kind} {new} (or still has {old}).",
                                      "Check the files the diff shows.")
                return [renamed["unique_id"]] + [n["unique_id"] for n in after.raw.get("nodes", []) if renamed["unique_id"] in (n.get("depends_on") or [])]

            plan.expect = expect
            done = await authoring.commit("node_rename", plan, SimpleNamespace(dry_run=inp.dry_run, timeout_seconds=None), progress)  # type: ignore[arg-type]
            result = NodeChangeResult.model_validate(done.model_dump())
            if not inp.dry_run:
                await self._baselines(result, before, progress)
        return result

    # -- node_delete ----------------------------------------------------------------------------------------------
    async def node_delete(self, inp: NodeDeleteInput, progress: ProgressReporter) -> NodeChangeResult:
        authoring = self._authoring()
        async with authoring.lock:
            index = await self._index(authoring, progress)
            node = self._node(index, inp.name)
            name, kind = node["name"], node["resource_type"]
            dependants = self._dependants(index, node)
            broken = sorted({uid for uid, _ in dependants})
            if broken and inp.cascade_check is not False:
                raise ToolFailure("has_dependants", f"{name} is used by {len(broken)} node(s): {', '.join(broken[:30])}. Nothing was written.",
                                  "Change or delete them first (node_rename, file_edit), or call again with cascade_check: false to delete it anyway.")
            plan, before = Plan(), {}
            source = self._path(node["path"])
            text = read_text(source)
            before[node["path"]] = text
            if source.suffix in (".yml", ".yaml"):
                plan.write(source, remove_entry(text or "", node["path"], "snapshots", name))
            else:
                plan.write(source, None)
            if node.get("patch_path") and node["patch_path"] != node["path"]:
                patch = self._path(node["patch_path"])
                before.setdefault(node["patch_path"], read_text(patch))
                plan.write(patch, remove_entry(plan.pending(patch) or "", node["patch_path"], kind + "s", name))
            relation = self._relation(node["unique_id"])
            if relation and (node.get("config") or {}).get("materialized") != "ephemeral":
                plan.notes.append(f"the relation {relation} stays in the warehouse until you drop it")

            def expect(after: ProjectIndex) -> list[str]:
                if any(n["unique_id"] == node["unique_id"] for n in after.raw.get("nodes", [])):
                    raise ToolFailure("validation_failed", f"dbt still has {node['unique_id']} after the delete.", "Check the files the diff shows.")
                return []

            plan.expect = expect
            if broken:
                result = await self._delete_anyway(plan, node, broken, inp.dry_run, progress)
            else:
                done = await authoring.commit("node_delete", plan, SimpleNamespace(dry_run=inp.dry_run, timeout_seconds=None), progress)  # type: ignore[arg-type]
                result = NodeChangeResult.model_validate(done.model_dump())
            if not inp.dry_run:
                await self._baselines(result, before, progress)
        return result

    async def _delete_anyway(self, plan: Plan, node: dict[str, Any], broken: list[str], dry_run: bool,
                             progress: ProgressReporter) -> NodeChangeResult:
        """cascade_check false with dependants: the deletion stays even when the parse then fails on their refs to it."""
        diffs = plan_diffs(self.root, plan.changes)
        files = [FileOut(path=d.path, action=d.action, diff=d.diff or None) for d in diffs]
        result = NodeChangeResult(tool="node_delete", dry_run=dry_run, files=files, broken=broken, notes=plan.notes,
                                  next_step="fix or delete the broken dependants (file_edit, node_delete), then dbt_parse")
        if dry_run:
            result.validated = "not run (dry run)"
            return result
        changes = [c for c, d in zip(plan.changes, diffs) if d.action != "unchanged"]
        with self._authoring().journal.recording("node_delete", changes):
            applied = apply(changes)
            try:
                await self._authoring().index(self.ctx.settings.timeout_seconds, progress)
                result.validated = "parse"
            except ToolFailure as failure:
                if node["name"] not in failure.message:
                    applied.rollback()
                    raise ToolFailure(failure.code, f"{failure.message} — every file was put back as it was.", failure.hint, failure.details) from None
                result.validated = "parse failed (the broken dependants)"
                result.notes.append(f"the project does not parse until the dependants are fixed: {failure.message[:600]}")
            except BaseException:
                applied.rollback()
                raise
        return result
