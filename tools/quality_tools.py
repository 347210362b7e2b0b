"""The quality toolset: sql_lint, sql_fix (sqlfluff), analyze_file (connascence), project_check (guardrails)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from server.context import AppContext
from server.errors import ToolFailure
from server.registration import ProgressReporter, ToolResult, add_tools
from tools.authoring.files import FileChange, apply, project_path, read_text
from tools.authoring.project import ProjectIndex, profile_dialect, project_index
from tools.quality import checks, connascence
from tools.quality.lint import LintOptions, SqlLinter, dialect_problem, unified_diff

READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
FIX = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LintInput(Strict):
    path: str | None = Field(default=None, description="A SQL file in the project (relative path), e.g. models/marts/fct_orders.sql.")
    sql: str | None = Field(default=None, description="SQL text to lint instead of a file (unsaved work).")
    dialect: str | None = Field(default=None, description="sqlfluff dialect; default: the project's .sqlfluff, else the profile's adapter, else duckdb.")
    rules: list[str] | None = Field(default=None, description="Only these rules (codes or names), e.g. ['LT01', 'aliasing'].")
    exclude_rules: list[str] | None = Field(default=None, description="Rules to skip.")
    templater: str = Field(default="jinja", description="jinja (dbt builtins, no warehouse, default) or dbt (needs sqlfluff-templater-dbt).")

    @field_validator("dialect")
    @classmethod
    def known_dialect(cls, value: str | None) -> str | None:
        problem = dialect_problem(value) if value is not None else None
        if problem is not None:
            raise PydanticCustomError("unknown_dialect", problem[0], {"hint": problem[1]})
        return value


class FixInput(LintInput):
    write: bool = Field(default=False, description="Write the fixed SQL back to path (atomically). Default: only return it.")


class AnalyzeInput(Strict):
    filePath: str = Field(description="The model's SQL file, relative to the project (the seed prompt's analyze_file).")


class CheckInput(Strict):
    path: str | None = Field(default=None, description="One model file to check; default: the whole project.")
    rules: list[str] | None = Field(default=None, description="Only these rule ids.")
    cursor: str | None = Field(default=None, description="next_cursor of the previous page.")
    limit: int = Field(default=100, ge=1, le=1000, description="Most violations per page.")


class MetricsInput(Strict):
    pass


class MetricsResult(ToolResult):
    metrics: dict[str, dict[str, Any]] = Field(description="Per metric: value (None when its source does not exist yet), source, details.")

    def summary(self) -> str:
        return "project_metrics: " + ", ".join(f"{k}={v['value']}" for k, v in self.metrics.items())


class LintResult(ToolResult):
    path: str | None
    dialect: str
    violations: list[dict[str, Any]] = Field(description="code, rule, line, position, description, severity, fixable.")
    count: int
    cached: bool = Field(description="Served from the cache (same content and configuration).")
    elapsed_ms: float

    def summary(self) -> str:
        lines = [f"{self.path or 'sql'}: {self.count} violation(s) ({self.dialect}{', cached' if self.cached else ''})"]
        lines += [f"- L{v['line']}:{v['position']} {v['code']} {v['description']}" for v in self.violations[:30]]
        return "\n".join(lines)

    def fit(self, limit_chars: int) -> "LintResult":
        fitted = self
        while len(fitted.model_dump_json()) > limit_chars and fitted.violations:
            fitted = fitted.model_copy(update={"violations": fitted.violations[: len(fitted.violations) // 2]})
        return fitted


class FixResult(ToolResult):
    path: str | None
    fixed_sql: str
    diff: str
    changed: bool
    written: bool
    remaining: list[dict[str, Any]] = Field(description="Violations sqlfluff could not fix.")

    def summary(self) -> str:
        verb = "wrote" if self.written else ("would change" if self.changed else "nothing to fix in")
        return f"{verb} {self.path or 'sql'}; {len(self.remaining)} violation(s) remain\n{self.diff[:3000]}"


class AnalyzeResult(ToolResult):
    path: str
    findings: list[dict[str, Any]] = Field(description="kind, strength (1-5), locality, line, message, fix, related.")
    by_kind: dict[str, int]

    def summary(self) -> str:
        lines = [f"{self.path}: {len(self.findings)} connascence finding(s) {self.by_kind}"]
        lines += [f"- L{f['line']} {f['kind']} (strength {f['strength']}, {f['locality']}): {f['message']}" for f in self.findings[:30]]
        return "\n".join(lines)


class CheckResult(ToolResult):
    violations: list[dict[str, Any]] = Field(description="rule, severity, node, path, message, line.")
    total: int
    errors: int
    warnings: int
    by_rule: dict[str, int] = Field(description="Count per rule id (every rule listed, 0 when clean).")
    rules: dict[str, str] = Field(description="Rule id -> what it checks.")
    elapsed_s: float
    next_cursor: str | None = None

    def summary(self) -> str:
        failing = {k: v for k, v in self.by_rule.items() if v}
        lines = [f"project_check: {self.total} violation(s), {self.errors} error(s), {self.warnings} warning(s) in {self.elapsed_s:.2f}s"
                 + (f"; by rule {failing}" if failing else "; every rule passes")]
        lines += [f"- {v['severity'].upper()} {v['rule']} {v['path']}: {v['message']}" for v in self.violations[:30]]
        return "\n".join(lines)


class QualityTools:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.root = ctx.engine.project_dir.resolve()
        self.linter = SqlLinter(self.root)
        self._dialect_cache: tuple[tuple[int, ...], str] | None = None

    async def _index(self) -> ProjectIndex:
        return await project_index(self.ctx.engine, self.ctx.settings.timeout_seconds)

    def _source(self, inp: LintInput) -> tuple[str, str | None, Path | None]:
        if (inp.path is None) == (inp.sql is None):
            raise ToolFailure("invalid_input", "Give path or sql (one of them).", "e.g. path='models/marts/fct_orders.sql'.")
        if inp.sql is not None:
            return inp.sql, None, None
        path = project_path(self.root, inp.path or "")
        text = read_text(path) if path.is_file() else None
        if text is None:
            raise ToolFailure("file_not_found", f"No file {inp.path} in the project.", "Give a path relative to the project, e.g. models/x.sql.")
        return text, path.relative_to(self.root).as_posix(), path

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
        index = await self._index()
        if only is not None and not any(n["path"] == only for n in index.raw.get("nodes", [])):
            raise ToolFailure("model_not_found", f"No model at {inp.path}.", "Give a model's SQL path, or no path for the whole project.")
        found = await anyio.to_thread.run_sync(lambda: checks.check_project(self.root, index, read_text, only))
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


    async def metrics(self, inp: MetricsInput, progress: ProgressReporter) -> MetricsResult:
        from tools.quality.metrics import compute
        from tools.run_history import RunHistory

        index = await self._index()
        history = RunHistory(self.ctx.settings.data_dir, self.root).load()
        return MetricsResult(metrics=await anyio.to_thread.run_sync(lambda: compute(self.root, index, history, read_text)))


def register(app: MCPServer, ctx: AppContext) -> list[str]:
    tools = QualityTools(ctx)
    specs: list[tuple[str, str, type[BaseModel], type[ToolResult], Any, ToolAnnotations, bool]] = [
        ("sql_lint", "Lint SQL with sqlfluff (dialect from the project, jinja templater with dbt builtins; the project's .sqlfluff "
         "applies). Per violation: code, rule, line, position, description, severity, fixable. Cached by content and config.",
         LintInput, LintResult, tools.lint, READ, False),
        ("sql_fix", "Fix what sqlfluff can fix: returns the fixed SQL and a unified diff; writes the file (atomically) only with write=true.",
         FixInput, FixResult, tools.fix, FIX, True),
        ("analyze_file", "Connascence analysis of a model: position (GROUP BY 1, select *), meaning (magic literals), name (hard-coded "
         "relations), algorithm (logic copied across models), identity (untested incremental key), timing (now()) with lines and fixes.",
         AnalyzeInput, AnalyzeResult, tools.analyze, READ, False),
        ("project_check", "Check the project (or one model) against the guardrails: no select *, no hard-coded filters, primary keys "
         "tested, descriptions, incremental logic, layering, source freshness, naming, test coverage. Rule ids follow "
         "dbt-project-evaluator; counts per rule; no warehouse needed.", CheckInput, CheckResult, tools.check, READ, False),
        ("project_metrics", "The seed prompt's metrics: models_built, models_failed, build_duration_avg/p95, test_pass_rate, "
         "data_freshness_sla, schema_compliance, documentation_coverage, incremental_models_ratio, query_efficiency, from dbt's "
         "artifacts, the manifest and this server's run history.", MetricsInput, MetricsResult, tools.metrics, READ, False),
    ]
    return add_tools(app, specs, read_only=ctx.settings.read_only, token_budget=ctx.token_budget)
