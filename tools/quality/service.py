"""The quality toolset's logic: lint and fix with sqlfluff, connascence analysis, the project's guardrail checks and metrics."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import anyio

from server.context import AppContext
from server.errors import ToolFailure
from server.registration import ProgressReporter
from tools.authoring.files import FileChange, StatReader, apply, project_path, read_text
from tools.authoring.project import ProjectIndex, profile_dialect, project_index
from tools.lineage.column_service import column_service
from tools.quality import checks, connascence
from tools.quality.inputs import AnalyzeInput, CheckInput, FixInput, LintInput, MetricsInput
from tools.quality.lint import LintOptions, SqlLinter, unified_diff
from tools.quality.results import AnalyzeResult, CheckResult, FixResult, LintResult, MetricsResult


MAX_LINT_CHARS = 64_000  # sqlfluff's time grows much faster than its input: 90 k characters took over a minute to fix


def check_size(sql: str, what: str) -> str:
    if len(sql) > MAX_LINT_CHARS:
        raise ToolFailure("sql_too_large", f"{what[:120]} has {len(sql):,} characters; sql_lint and sql_fix take at most {MAX_LINT_CHARS:,}.",
                          "Lint the model in parts (its CTEs), or run sqlfluff on it outside the server.")
    return sql


class QualityTools:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.root = ctx.engine.project_dir.resolve()
        self.linter = SqlLinter(self.root)
        self._dialect_cache: tuple[tuple[int, ...], str] | None = None
        self._checked = checks.CheckCache()  # project_check's per-model results (checks.check_project)
        self._read = StatReader()  # project_check reads every model on each call: unchanged files are not read again
        self._columns: dict[str, tuple[Any, Any, str, checks.ModelColumns]] = {}  # uid -> (NodeColumns, NodeFacts, dialect, answer)

    async def _index(self, compile_ahead: dict[str, Any] | None = None) -> ProjectIndex:
        return await project_index(self.ctx.engine, self.ctx.settings.timeout_seconds, compile_ahead=compile_ahead)

    def _source(self, inp: LintInput) -> tuple[str, str | None, Path | None]:
        if (inp.path is None) == (inp.sql is None):
            raise ToolFailure("invalid_input", "Give path or sql (one of them).", "e.g. path='models/marts/fct_orders.sql'.")
        if inp.sql is not None:
            return check_size(inp.sql, "sql"), None, None
        path = project_path(self.root, inp.path or "")
        text = read_text(path) if path.is_file() else None
        if text is None:
            raise ToolFailure("file_not_found", f"No file {inp.path} in the project.", "Give a path relative to the project, e.g. models/x.sql.")
        return check_size(text, inp.path or ""), path.relative_to(self.root).as_posix(), path

    def _default_dialect(self) -> str:
        """'' when the project's .sqlfluff names the dialect, else the profile's adapter; re-read only when a file changes."""
        files = (self.root / ".sqlfluff", self.root / "dbt_project.yml", self.ctx.settings.effective_profiles_dir / "profiles.yml")
        stamp = tuple(f.stat().st_mtime_ns if f.exists() else 0 for f in files)
        if self._dialect_cache is None or self._dialect_cache[0] != stamp:
            value = "" if self._has_dialect_config() else profile_dialect(self.root, self.ctx.settings.effective_profiles_dir, self.ctx.settings.target)
            self._dialect_cache = (stamp, value)
        return self._dialect_cache[1]

    async def _options(self, inp: LintInput) -> LintOptions:
        dialect = inp.dialect if inp.dialect is not None else self._default_dialect()
        return LintOptions(dialect=dialect or "", templater=inp.templater, rules=tuple(inp.rules or ()), exclude_rules=tuple(inp.exclude_rules or ()))

    def _has_dialect_config(self) -> bool:
        text = read_text(self.root / ".sqlfluff") or ""
        return any(line.strip().replace(" ", "").startswith("dialect=") for line in text.splitlines())

    async def lint(self, inp: LintInput, progress: ProgressReporter) -> LintResult:
        sql, rel, _ = self._source(inp)
        options = await self._options(inp)
        started = time.perf_counter()
        found, cached = await anyio.to_thread.run_sync(lambda: self.linter.lint(sql, rel or "stdin.sql", options))
        return LintResult(path=rel, dialect=options.dialect or "from .sqlfluff", violations=[v.as_dict() for v in found], count=len(found),
                          cached=cached, elapsed_ms=round((time.perf_counter() - started) * 1000, 2))

    async def fix(self, inp: FixInput, progress: ProgressReporter) -> FixResult:
        sql, rel, path = self._source(inp)
        if inp.write and path is None:
            raise ToolFailure("invalid_input", "write=true needs path (there is no file to write for sql).", "Pass path, or drop write.")
        options = await self._options(inp)
        fixed = await anyio.to_thread.run_sync(lambda: self.linter.fix(sql, rel or "stdin.sql", options))
        remaining, _ = await anyio.to_thread.run_sync(lambda: self.linter.lint(fixed, rel or "stdin.sql", options))
        changed = fixed != sql
        if inp.write and changed and path is not None:
            apply([FileChange(path, fixed)])
        return FixResult(path=rel, fixed_sql=fixed, diff=unified_diff(sql, fixed, rel or "sql"), changed=changed,
                         written=bool(inp.write and changed), remaining=[v.as_dict() for v in remaining])

    async def analyze(self, inp: AnalyzeInput, progress: ProgressReporter) -> AnalyzeResult:
        path = project_path(self.root, inp.filePath)
        sql = read_text(path) if path.is_file() else None
        if sql is None:
            raise ToolFailure("file_not_found", f"No file {inp.filePath} in the project.", "Give a model's path relative to the project.")
        rel = path.relative_to(self.root).as_posix()
        index = await self._index()
        me = next((n for n in index.raw.get("nodes", []) if n["path"] == rel and n["package"] == index.project_name), None)
        others = {n["name"]: read_text(self.root / n["path"]) or "" for n in index.raw.get("nodes", [])
                  if n["resource_type"] == "model" and n["package"] == index.project_name and n["path"] != rel and n["path"].endswith(".sql")}
        key: list[str] = []
        unique: set[str] = set()
        combos: list[set[str]] = []
        if me is not None and me["config"].get("materialized") == "incremental" and me["config"].get("unique_key"):
            raw_key = me["config"]["unique_key"]
            key = [raw_key] if isinstance(raw_key, str) else list(raw_key)
            for test in index.tests_on(me["unique_id"]):
                if test.get("test_name") == "unique" and test.get("column_name"):
                    unique.add(test["column_name"])
                if test.get("combination_of_columns"):
                    combos.append(set(test["combination_of_columns"]))
        findings = await anyio.to_thread.run_sync(lambda: connascence.analyze(
            sql, index.dialect, others=others, incremental_key=key, unique_tested=unique, combination_tested=combos))
        by_kind: dict[str, int] = {}
        for f in findings:
            by_kind[f.kind] = by_kind.get(f.kind, 0) + 1
        return AnalyzeResult(path=rel, findings=[f.as_dict() for f in findings], by_kind=by_kind)

    async def check(self, inp: CheckInput, progress: ProgressReporter) -> CheckResult:
        started = time.perf_counter()
        unknown = set(inp.rules or []) - set(checks.RULES)
        if unknown:
            raise ToolFailure("invalid_input", f"Unknown rule id(s) {sorted(unknown)}.", f"Rule ids: {', '.join(checks.RULES)}.")
        only = None
        if inp.path is not None:
            only = project_path(self.root, inp.path).relative_to(self.root).as_posix()
        # the model files read (and the edited ones analyzed) while the worker parses them again
        engine, idle = self.ctx.engine, self.ctx.engine.idle
        calls = engine.calls_run
        ahead = asyncio.ensure_future(self._read_ahead() if only is None else asyncio.sleep(0, {}))
        try:  # (the whole project's check: the worker compiles the edited models after its reply, which it compiles next)
            index = await self._index(column_service(self.ctx).ahead if only is None else None)
        except BaseException:
            ahead.cancel()  # its thread finishes on its own; what it analyzed is kept for the next check
            raise
        parsed_at_once = idle and engine.calls_run == calls + 1  # before the wait below: a later call changes nothing read
        texts = await ahead
        if not parsed_at_once:
            texts = {}  # the parse did not follow at once (it queued behind another call): read the files as they are now
        if only is not None and not any(n["path"] == only for n in index.raw.get("nodes", [])):
            raise ToolFailure("model_not_found", f"No model at {inp.path}.", "Give a model's SQL path, or no path for the whole project.")
        columns = await self._model_columns(index, only)
        def read(path: Path | str) -> str | None:
            """The texts read ahead: what the files held while the worker parsed them (read at the same moment, give or
            take milliseconds), where reading them after the parse gave the check's whole run for an edit to slip in."""
            held = texts.get(path) if isinstance(path, str) else None
            return held if held is not None else self._read(path)

        found = await anyio.to_thread.run_sync(lambda: checks.check_project(self.root, index, read, only, columns, self._checked))
        if inp.rules:
            found = [v for v in found if v.rule in inp.rules]
        offset = int(inp.cursor) if inp.cursor and inp.cursor.isdigit() else 0
        page = found[offset: offset + inp.limit]
        following = offset + len(page)
        return CheckResult(
            violations=[v.as_dict() for v in page], total=len(found), errors=sum(v.severity == "error" for v in found),
            warnings=sum(v.severity == "warn" for v in found), by_rule=checks.summary(found),
            rules={r.id: f"[{r.severity}] {r.description}" for r in checks.RULES.values()},
            elapsed_s=round(time.perf_counter() - started, 3), next_cursor=str(following) if following < len(found) else None,
        )


    async def _read_ahead(self) -> dict[str, str | None]:
        """The model files' texts (checks.read_models, by the last summary the server holds), read in a thread while
        the worker parses them again, with checks.text_facts of the edited ones (check_project then finds them kept).
        Ahead of time only: any failure here is the check's own, later."""
        held = self.ctx.engine.description
        if held is None or not self._checked.sources:
            return {}

        def read() -> dict[str, str | None]:
            index = ProjectIndex(held)
            texts, edited = checks.read_models(self.root, index, self._read, self._checked)
            for sql, path in edited:
                checks.text_facts(sql, index.dialect, path.endswith(".sql"))
            return texts

        try:
            return await anyio.to_thread.run_sync(read)
        except Exception:
            return {}

    async def _model_columns(self, index: ProjectIndex, only: str | None = None, progress: ProgressReporter | None = None
                             ) -> dict[str, checks.ModelColumns]:
        """The column model's answer for the project's models (or the one at `only`)."""
        service = column_service(self.ctx)
        graph = await service.graph()
        models = [n["unique_id"] for n in index.raw.get("nodes", []) if n["resource_type"] == "model" and n["package"] == index.project_name
                  and (only is None or n["path"] == only) and n["unique_id"] in graph.nodes]
        view = await service.view(graph, models, progress=progress)
        out: dict[str, checks.ModelColumns] = {}
        kept = self._columns
        for uid in models:
            known, facts = view.columns.get(uid), view.facts.get(uid)
            held = kept.get(uid)
            if held is not None and held[0] is known and held[1] is facts and held[2] == view.dialect:
                out[uid] = held[3]  # the same object as last call: project_check's memo compares it by identity first
                continue
            sql = facts.compiled_sql if facts is not None else None
            out[uid] = checks.ModelColumns(known.names if known is not None and known.known else None,
                                           service.unlisted_star(sql, view.dialect) if sql else None,
                                           facts.compiled_lines if facts is not None else None)
            kept[uid] = (known, facts, view.dialect, out[uid])
        if only is None and len(kept) > len(models) + 100:  # renamed and deleted models
            for uid in [u for u in kept if u not in out]:
                del kept[uid]
        service.save_soon()
        return out

    async def metrics(self, inp: MetricsInput, progress: ProgressReporter) -> MetricsResult:
        from tools.dbt.history import RunHistory
        from tools.quality.metrics import compute, per_model

        index = await self._index()
        history = RunHistory(self.ctx.settings.data_dir, self.root).load()
        facts = await self._model_columns(index, progress=progress)
        metrics = await anyio.to_thread.run_sync(lambda: compute(self.root, index, history, read_text, facts))
        rows = per_model(index, facts)
        offset = int(inp.cursor) if inp.cursor and inp.cursor.isdigit() else 0
        page = rows[offset: offset + inp.limit]
        following = offset + len(page)
        return MetricsResult(metrics=metrics, models=page, models_total=len(rows), next_cursor=str(following) if following < len(rows) else None)
