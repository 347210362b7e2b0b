"""sqlfluff linting and fixing of dbt SQL, with the project's .sqlfluff, cached by content and configuration.

The jinja templater with dbt's builtins (ref, source, config, var, is_incremental, this) is the default: it needs no
warehouse and no dbt parse, and works on unsaved text. Unlike `sqlfluff lint <path>`, which silently skips files over
20,000 bytes (`large_file_skip_byte_limit`), every file is linted: the limit is set to 0 here. For the CLI to give the
same violations on a large file, pass it the same override.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import pkgutil
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from server.errors import ToolFailure

CACHE_SIZE = 512


@dataclass(frozen=True)
class Violation:
    code: str
    rule: str
    line: int
    position: int
    description: str
    severity: str  # "error" | "warning"
    fixable: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LintOptions:
    dialect: str
    templater: str = "jinja"
    rules: tuple[str, ...] = ()
    exclude_rules: tuple[str, ...] = ()

    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


class SqlLinter:
    """One per project: sqlfluff's configuration is read once per options set, results are kept per content."""

    def __init__(self, project_dir: Path) -> None:
        self.project_dir = project_dir
        self._linters: dict[str, Any] = {}
        self._results: OrderedDict[tuple[str, str, str], list[Violation]] = OrderedDict()
        self._lock = threading.Lock()

    def _config_fingerprint(self) -> str:
        """Changes to .sqlfluff (or setup.cfg/tox.ini/pyproject.toml sections) must not serve stale results."""
        digest = hashlib.sha256()
        for name in (".sqlfluff", "setup.cfg", "tox.ini", "pyproject.toml"):
            path = self.project_dir / name
            if path.is_file():
                digest.update(name.encode() + path.read_bytes())
        return digest.hexdigest()

    def _linter(self, options: LintOptions) -> Any:
        key = options.key() + self._config_fingerprint()
        linter = self._linters.get(key)
        if linter is None:
            from sqlfluff.core import FluffConfig, Linter
            from sqlfluff.core.config import file as config_file
            from sqlfluff.core.config import loader as config_loader
            from sqlfluff.core.errors import SQLFluffUserError

            overrides: dict[str, Any] = {"templater": options.templater, "large_file_skip_byte_limit": 0}
            if options.dialect:  # empty: the project's .sqlfluff names it
                overrides["dialect"] = options.dialect
            if options.rules:
                overrides["rules"] = ",".join(options.rules)
            if options.exclude_rules:
                overrides["exclude_rules"] = ",".join(options.exclude_rules)
            if options.templater == "dbt":
                try:
                    import sqlfluff_templater_dbt  # noqa: F401
                except ImportError:
                    raise ToolFailure("templater_unavailable", "The dbt templater needs the package sqlfluff-templater-dbt, which is not installed.",
                                      "Use templater='jinja' (the default: dbt builtins, no warehouse), or install sqlfluff-templater-dbt.") from None
            config_loader.load_config_at_path.cache_clear()  # sqlfluff caches config files per path for the process's life
            config_file.load_config_file_as_dict.cache_clear()
            try:
                config = FluffConfig.from_path(str(self.project_dir), overrides=overrides)
            except (SQLFluffUserError, KeyError) as exc:  # KeyError: a dialect sqlfluff does not know (e.g. in .sqlfluff)
                raise ToolFailure("invalid_lint_config", f"sqlfluff refused the configuration: {exc}",
                                  "Check dialect, rules and the project's .sqlfluff.") from None
            linter = Linter(config=config)
            self._linters[key] = linter
        return linter

    def lint(self, sql: str, fname: str, options: LintOptions) -> tuple[list[Violation], bool]:
        """Violations, and whether they came from the cache."""
        key = (hashlib.sha256(sql.encode()).hexdigest(), fname, options.key() + self._config_fingerprint())
        with self._lock:
            cached = self._results.get(key)
            if cached is not None:
                self._results.move_to_end(key)
                return cached, True
            linted = self._linter(options).lint_string(sql, fname=fname)
            found = [to_violation(v) for v in linted.get_violations()]
            self._results[key] = found
            if len(self._results) > CACHE_SIZE:
                self._results.popitem(last=False)
            return found, False

    def fix(self, sql: str, fname: str, options: LintOptions) -> str:
        with self._lock:
            linted = self._linter(options).lint_string(sql, fname=fname, fix=True)
            try:
                fixed, _ = linted.fix_string()
            except AssertionError:  # sqlfluff asserts that it could template the text before it fixes it
                raise ToolFailure("sql_not_templatable", "sqlfluff could not template this SQL, so it cannot fix it.",
                                  "Call sql_lint to see the templating error (TMP) and fix the Jinja first.") from None
            return fixed


def known_dialects() -> list[str]:
    """sqlfluff's dialect labels, read from its dialects package without loading any of them (for hints only)."""
    import sqlfluff.dialects

    names = (m.name.removeprefix("dialect_") for m in pkgutil.iter_modules(sqlfluff.dialects.__path__) if m.name.startswith("dialect_"))
    return sorted(n for n in names if not n.endswith("_keywords"))


def dialect_problem(name: str) -> tuple[str, str] | None:
    """(message, hint) when sqlfluff has no dialect `name`, asked before linting so a typo is an input error rather
    than a crash inside sqlfluff; None when it has one, or when sqlfluff (an optional extra) is not installed.
    The message does not repeat `name`: pydantic fills {placeholders} in it."""
    try:
        from sqlfluff.core.dialects import load_raw_dialect
        from sqlfluff.core.errors import SQLFluffUserError
    except ImportError:
        return None
    try:
        load_raw_dialect(name)  # looks the label up in sqlfluff's own table before importing anything
        return None
    except SQLFluffUserError as exc:  # a retired label; sqlfluff names its successor
        return "a retired sqlfluff dialect", str(exc)
    except KeyError:
        known = known_dialects()
        guess = difflib.get_close_matches(name, known, n=1)
        return ("not a dialect sqlfluff knows",
                (f"Did you mean {guess[0]!r}? " if guess else "") + f"sqlfluff's dialects: {', '.join(known)}. "
                "Or leave dialect out: the project's .sqlfluff, else its adapter, decides.")


def to_violation(error: Any) -> Violation:
    code = error.rule_code() if hasattr(error, "rule_code") else "PRS"
    rule = getattr(getattr(error, "rule", None), "name", None) or {"PRS": "parsing", "TMP": "templating"}.get(code, code)
    return Violation(
        code=code, rule=rule, line=int(getattr(error, "line_no", 0) or 0), position=int(getattr(error, "line_pos", 0) or 0),
        description=error.desc(), severity="warning" if getattr(error, "warning", False) else "error",
        fixable=bool(getattr(error, "fixes", None)),
    )


def unified_diff(before: str, after: str, name: str) -> str:
    return "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True), fromfile=f"a/{name}", tofile=f"b/{name}"))
