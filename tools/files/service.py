"""The files toolset's logic: list, read and search the project's files, and write or edit them the way the authoring
tools write (atomic; dbt files validated by dbt and put back byte for byte when dbt refuses them)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from server.budget import budget_chars
from server.context import AppContext
from server.errors import ToolFailure
from server.registration import ProgressReporter
from tools.authoring.files import FileChange, apply, plan_diffs
from tools.authoring.plan import Plan
from tools.authoring.project import ProjectIndex, ProjectLayout
from tools.authoring.results import FileOut
from tools.dbt.engine.serialize import redact
from tools.files import ignore
from tools.files.access import (
    MAX_WRITE_BYTES,
    ManifestFiles,
    dbt_file,
    decode,
    read_bytes,
    resolve,
)
from tools.files.edit import replace_exact
from tools.files.inputs import EditInput, FilesInput, ReadInput, SearchInput, WriteInput
from tools.files.results import FilesResult, ReadResult, SearchResult, WriteResult
from tools.files.search import matcher, search

log = logging.getLogger(__name__)
LINE_CHARS = 2000  # a longer line (minified JSON) is cut in file_read


# Files that hold credentials: read and searched with secrets shown as *** (as dbt_debug does).
SECRET_FILES = {"profiles.yml", ".env"}

class FilesService:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.root = ctx.engine.project_dir.resolve()
        self.manifest = ManifestFiles(self.root)

    @property
    def page_chars(self) -> int:
        """A page fits the text summary (a fifth of the output budget): what an agent reads is the whole page."""
        return max(1000, budget_chars(self.ctx.token_budget) // 5 - 400)

    # -- reading --------------------------------------------------------------------------------------------------
    def _listing(self) -> tuple[list[tuple[str, int]], str]:
        rules = ignore.ignore_rules(self.root)
        try:
            return ignore.project_files(self.root, rules), rules.how
        except (RuntimeError, OSError, ValueError) as exc:  # git refused (a broken repository): the parser decides
            log.warning("git check-ignore failed, using the .gitignore parser: %s", exc)
            parser = ignore.GitignoreParser(self.root)
            return ignore.project_files(self.root, parser), f"{parser.how}; git check-ignore failed"

    async def _files(self, glob: str | None) -> tuple[list[tuple[str, int]], str]:
        files, how = await asyncio.to_thread(self._listing)
        if glob:
            wanted = ignore.glob_matcher(glob)
            files = [f for f in files if wanted(f[0])]
        return files, how

    @staticmethod
    def _offset(cursor: str | None) -> int:
        if cursor is None:
            return 0
        if not cursor.isdigit() or len(cursor) > 9:
            raise ToolFailure("invalid_cursor", f"cursor {cursor[:40]!r} is not one this tool handed out.", "Pass next_cursor from the previous page, or no cursor.")
        return int(cursor)

    async def list_files(self, inp: FilesInput, progress: ProgressReporter) -> FilesResult:
        offset = self._offset(inp.cursor)
        files, how = await self._files(inp.glob)
        resources = self.manifest.resources()
        page: list[dict[str, Any]] = []
        used = 0
        for rel, size in files[offset:]:
            item: dict[str, Any] = {"path": rel, "size": size}
            if resources and resources.get(rel):
                found = resources[rel]
                item["resources"] = found[:10] + ([f"+{len(found) - 10} more"] if len(found) > 10 else [])
            used += len(rel) + 60 + sum(len(r) + 2 for r in item.get("resources", []))
            if page and used > self.page_chars:
                break
            page.append(item)
        end = offset + len(page)
        return FilesResult(files=page, total=len(files), ignore_rules=how, next_cursor=str(end) if end < len(files) else None,
                           note=None if resources is not None else "no target/manifest.json yet: dbt_parse adds each file's resources")

    async def read(self, inp: ReadInput, progress: ProgressReporter) -> ReadResult:
        path, rel = resolve(self.root, inp.path)
        text = decode(await asyncio.to_thread(read_bytes, path, rel), rel)
        if Path(rel).name in SECRET_FILES:
            text = redact(text)
        lines = text.splitlines()
        start = inp.start_line or 1
        last = min(inp.end_line or len(lines), len(lines))
        if inp.end_line is not None and inp.end_line < start:
            raise ToolFailure("invalid_input", f"end_line {inp.end_line} is before start_line {start}.", "Give end_line >= start_line.")
        if lines and start > len(lines):
            raise ToolFailure("invalid_input", f"start_line {start} is past the end of {rel} ({len(lines)} lines).", f"Give start_line <= {len(lines)}.")
        out: list[str] = []
        used = 0
        end = start - 1
        for number in range(start, last + 1):
            line = lines[number - 1]
            shown = f"{number}\t{line if len(line) <= LINE_CHARS else line[:LINE_CHARS] + ' … [line cut]'}"
            if out and used + len(shown) + 1 > self.page_chars:
                break
            out.append(shown)
            used += len(shown) + 1
            end = number
        return ReadResult(path=rel, text="\n".join(out), start_line=start if lines else 0, end_line=end, total_lines=len(lines),
                          next_start_line=end + 1 if end < last else None)

    async def search(self, inp: SearchInput, progress: ProgressReporter) -> SearchResult:
        offset = self._offset(inp.cursor)
        match = matcher(inp.pattern, inp.regex)
        files, _ = await self._files(inp.glob)
        found = await asyncio.to_thread(search, self.root, files, match)
        page: list[str] = []
        used = 0
        for line in found.matches[offset:]:
            if Path(line.split(":", 1)[0]).name in SECRET_FILES:
                line = redact(line)
            used += len(line) + 1
            if page and used > self.page_chars:
                break
            page.append(line)
        end = offset + len(page)
        return SearchResult(matches=page, total=len(found.matches), files_searched=found.files_searched, skipped=found.skipped,
                            capped=found.capped, next_cursor=str(end) if end < len(found.matches) else None)

    # -- writing --------------------------------------------------------------------------------------------------
    async def write(self, inp: WriteInput, progress: ProgressReporter) -> WriteResult:
        path, rel = resolve(self.root, inp.path, write=True)
        self._check_content(inp.content, rel)
        if path.is_dir():
            raise ToolFailure("invalid_path", f"{rel} is a folder.", "Give a file's path.")
        original = decode(read_bytes(path, rel), rel) if path.exists() else None
        return await self._change("file_write", path, rel, original, inp.content, inp.dry_run, progress)

    async def edit(self, inp: EditInput, progress: ProgressReporter) -> WriteResult:
        path, rel = resolve(self.root, inp.path, write=True)
        original = decode(read_bytes(path, rel), rel)
        content = replace_exact(original, inp.old_text, inp.new_text, inp.expected_count, rel)
        self._check_content(content, rel)
        return await self._change("file_edit", path, rel, original, content, inp.dry_run, progress)

    @staticmethod
    def _check_content(content: str, rel: str) -> None:
        size = len(content.encode("utf-8", "surrogatepass"))
        if size > MAX_WRITE_BYTES:
            raise ToolFailure("content_too_large", f"The new {rel} would be {size:,} bytes (at most {MAX_WRITE_BYTES:,}). Nothing was written.",
                              "Project files are code and small data; load large data another way (a source, not a seed).")
        if "\x00" in content or any(0xD800 <= ord(c) <= 0xDFFF for c in content):
            raise ToolFailure("binary_content", f"The new {rel} is not text (NUL or unpaired surrogates). Nothing was written.", "Write UTF-8 text.")

    async def _change(self, tool: str, path: Path, rel: str, original: str | None, content: str, dry_run: bool,
                      progress: ProgressReporter) -> WriteResult:
        from tools.authoring.service import AuthoringService

        authoring = self.ctx.shared("authoring", lambda: AuthoringService(self.ctx))
        try:
            layout = ProjectLayout.read(self.root)
        except ToolFailure:  # a broken dbt_project.yml must stay fixable: dbt's default folders
            layout = ProjectLayout(self.root, "", ["models"], ["seeds"], ["snapshots"], ["macros"], ["tests"], "dbt_packages")
        kind = dbt_file(rel, layout)
        async with authoring.lock:  # one write at a time, with the authoring tools: a parse sees exactly one change
            if kind is None:
                result = await asyncio.to_thread(self._write_plain, tool, path, rel, content, dry_run)
            else:
                plan = self._plan(authoring, path, rel, content, kind)
                done = await authoring.commit(tool, plan, SimpleNamespace(dry_run=dry_run, timeout_seconds=None), progress)  # type: ignore[arg-type]
                result = WriteResult.model_validate(done.model_dump())
            if not dry_run and any(f.action != "unchanged" for f in result.files):
                result.notes.append(await self._baseline(rel, original, progress))
        return result

    def _write_plain(self, tool: str, path: Path, rel: str, content: str, dry_run: bool) -> WriteResult:
        changes = [FileChange(path, content)]
        diff = plan_diffs(self.root, changes)[0]
        if not dry_run and diff.action != "unchanged":
            apply(changes)
        return WriteResult(tool=tool, dry_run=dry_run, files=[FileOut(path=rel, action=diff.action, diff=diff.diff or None)],
                               validated="not run (dry run)" if dry_run else "none (not a dbt file)")

    def _plan(self, authoring: Any, path: Path, rel: str, content: str, kind: str) -> Plan:
        """What dbt checks after the write: a parse always; the file's nodes compiled (a macro's: the models using it);
        a model's query run with zero rows."""
        plan = Plan(changes=[FileChange(path, content)])
        if path.suffix in (".sql", ".py") and kind in ("model", "snapshot", "test") and " " not in rel:
            plan.compile_select = f"path:{rel}"
        elif kind == "macro" and path.suffix == ".sql":
            users = self.manifest.macro_dependants(rel)
            plan.compile_select = " ".join(users) or None
            if users:
                plan.notes.append(f"compiled the models using its macros: {', '.join(users[:20])}")

        def expect(after: ProjectIndex) -> list[str]:
            return [n["unique_id"] for n in after.raw.get("nodes", []) if rel in (n.get("path"), n.get("patch_path"))]

        plan.expect = expect
        if kind == "model" and path.suffix == ".sql":
            async def against_the_data() -> None:
                plan.notes.extend(await authoring.zero_row_check(path.stem))

            plan.finish = against_the_data
            plan.next_step = f"analyze_changes filepath='{rel}', then dbt_build select='{path.stem}+'"
        return plan

    async def _baseline(self, rel: str, original: str | None, progress: ProgressReporter) -> str:
        """A focused-change baseline of the file as it was, unless one exists (an earlier edit's is kept)."""
        from tools.lineage.inputs import TrackInput
        from tools.lineage.tracking import ChangeTracking

        tracker = self.ctx.shared("files.tracking", lambda: ChangeTracking(self.ctx))
        try:
            if rel in tracker._load():
                return f"baseline of {rel} kept (analyze_changes compares with it)"
            await tracker.start(TrackInput(filepath=rel, content=original or ""), progress)
        except OSError as exc:  # the change is written; only the tracker's file in the data dir failed
            return f"no baseline of {rel}: the data dir refused it ({exc.strerror or type(exc).__name__})"
        except ToolFailure as failure:  # unreadable baselines, moved aside: the change is written all the same
            return f"no baseline of {rel}: {failure.message}"
        return f"baseline of {rel} taken (analyze_changes compares with it)"
