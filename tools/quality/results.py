"""Results of the quality tools, each with its text summary."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from server.registration import ToolResult


class MetricsResult(ToolResult):
    metrics: dict[str, dict[str, Any]] = Field(description="Per metric: value (None when its source does not exist yet), source, details.")
    models: list[dict[str, Any]] = Field(default_factory=list, description="Per model: columns, documented, undocumented, explicit, compiled_lines.")
    models_total: int = 0
    next_cursor: str | None = None

    def summary(self) -> str:
        return "project_metrics: " + ", ".join(f"{k}={v['value']}" for k, v in self.metrics.items())


class LintResult(ToolResult):
    path: str | None = None
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
    path: str | None = None
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
