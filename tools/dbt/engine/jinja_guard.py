"""Jinja an agent sends may not run statements: the names it may not use, found on Jinja's own token stream.

dbt renders Jinja with a context that can execute SQL (`run_query`, `statement`, `adapter.execute`), import
Python (`modules`), write files (`write`) and attach hooks that run on every build. Agent-sent text (inline SQL of
dbt_show/dbt_compile, authored models, macros, tests and YAML) is checked here before dbt ever sees it. Jinja's
lexer is used rather than a regex: it knows strings, comments and raw blocks, and works on dbt's own block tags
(`{% test %}`, `{% snapshot %}`) without knowing them. Text that does not lex is refused. The worker adds a
second wall: while agent Jinja is rendered, every statement dbt sends must be a single read-only query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import jinja2

# Names that run statements, import or write: never in agent Jinja unless the setting allows it.
STATEMENT_NAMES = frozenset({
    "run_query", "statement", "execute", "modules", "write", "submit_python_job", "load_result", "store_result",
    "store_raw_result", "set_sql_header", "context", "builtins", "self", "attr",
})
HOOK_NAMES = frozenset({"pre_hook", "post_hook", "pre-hook", "post-hook", "on-run-start", "on-run-end",
                        "on_run_start", "on_run_end", "sql_header"})
# Inline preview/compile text may not read the server's environment either.
INLINE_ONLY_NAMES = frozenset({"env_var"})
# `adapter` may be used only through these methods (introspection and quoting, no statements of their own).
ADAPTER_METHODS = frozenset({
    "dispatch", "quote", "quote_as_configured", "quote_seed_column", "get_relation", "get_columns_in_relation",
    "type", "get_missing_columns", "check_schema_exists",
})
YAML_HOOK = re.compile(r"(?im)^\s*[\"']?(pre[-_]hook|post[-_]hook|on[-_]run[-_](?:start|end)|sql_header)[\"']?\s*:")
_ENV = jinja2.Environment()


@dataclass(frozen=True)
class JinjaFinding:
    kind: str  # "statement" (runs SQL, imports or writes), "hook" (runs on every build), or "syntax"
    name: str
    line: int

    def describe(self) -> str:
        if self.kind == "syntax":
            return f"line {self.line}: the Jinja does not lex ({self.name})"
        what = "a hook (a statement that runs on every build)" if self.kind == "hook" else "it can run statements, import or write"
        return f"line {self.line}: {self.name!r} ({what})"


def _unquote(token: str) -> str:
    return token[1:-1] if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"" else token


def jinja_findings(text: str, *, inline: bool = False) -> list[JinjaFinding]:
    """Every use in `text` of a name that runs statements or adds hooks; a text that does not lex is one finding."""
    denied = STATEMENT_NAMES | (INLINE_ONLY_NAMES if inline else frozenset())
    try:
        tokens = [(line, kind, value) for line, kind, value in _ENV.lex(text) if kind != "whitespace"]
    except jinja2.TemplateSyntaxError as exc:
        return [JinjaFinding("syntax", str(exc.message or exc), exc.lineno or 1)]
    findings: list[JinjaFinding] = []
    for n, (line, kind, value) in enumerate(tokens):
        if kind == "name":
            name = value
        elif kind == "string":
            name = _unquote(value).strip().lower()
        else:
            continue
        if name in HOOK_NAMES:
            findings.append(JinjaFinding("hook", name, line))
        elif name in denied or (kind == "name" and name.startswith("_")):
            findings.append(JinjaFinding("statement", name, line))
        elif kind == "name" and name == "adapter":
            follows = tokens[n + 1: n + 3]
            method = follows[1][2] if len(follows) == 2 and follows[0][2] == "." and follows[1][1] == "name" else None
            if method not in ADAPTER_METHODS:
                findings.append(JinjaFinding("statement", f"adapter.{method}" if method else "adapter[...]", line))
    return findings


def yaml_hook_findings(text: str) -> list[JinjaFinding]:
    """Hook keys in YAML (dbt_project.yml or properties `config:`): statements that run on every build."""
    return [JinjaFinding("hook", m.group(1), text.count("\n", 0, m.start()) + 1) for m in YAML_HOOK.finditer(text)]


def agent_text_findings(text: str, *, yaml: bool = False, inline: bool = False) -> list[JinjaFinding]:
    findings = jinja_findings(text, inline=inline)
    if yaml:
        findings += yaml_hook_findings(text)
    return findings


def blocking(findings: list[JinjaFinding], allow_sql_in_jinja: bool) -> list[JinjaFinding]:
    """What refuses the call: everything, unless the setting allows statements (a text that does not lex always refuses)."""
    if allow_sql_in_jinja:
        return [f for f in findings if f.kind == "syntax"]
    return findings
