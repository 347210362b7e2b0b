"""Agent text that reaches git's command line: branch and remote names, and paths. None of it may become an option."""

from __future__ import annotations

import os
import re
from pathlib import Path

from server.errors import ToolFailure

MAX_PATH_CHARS = 1024
REMOTE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
BRANCH_CHARS = re.compile(r"[A-Za-z0-9._/-]{1,200}")


def ref_name_problem(name: str) -> str | None:
    """Why `name` is not a branch name git accepts (git check-ref-format's rules) within a strict character set, or None.
    The set leaves out what a shell, a refspec (+ :) or a revision (@{ ^ ~) would read."""
    if not BRANCH_CHARS.fullmatch(name):
        return "use letters, digits and . _ / - only (at most 200)"
    if name.startswith("-"):
        return "must not start with '-'"
    if name == "HEAD" or name.startswith("refs/"):
        return "give a branch name such as main or feature/x, not a ref"
    parts = name.split("/")
    if any(not part for part in parts):
        return "no empty component ('//', or a leading or trailing '/')"
    if any(part.startswith(".") or part.endswith(".lock") for part in parts):
        return "no component may start with '.' or end with '.lock'"
    if ".." in name or name.endswith("."):
        return "no '..' and no trailing '.'"
    return None


def remote_name_problem(name: str) -> str | None:
    if not REMOTE_NAME.fullmatch(name):
        return "a configured remote's name (letters, digits, . _ -; not starting with '-'), e.g. origin; not a URL"
    if ".." in name or name.endswith(".lock"):
        return "no '..' and no '.lock' suffix"
    return None


def path_problem(raw: str) -> str | None:
    """What makes an agent's path unusable before it is resolved (flag-like, NUL, control characters, too long)."""
    if not raw or not raw.strip():
        return "empty path"
    if len(raw) > MAX_PATH_CHARS:
        return f"longer than {MAX_PATH_CHARS} characters"
    if raw.startswith("-"):
        return "must not start with '-'"
    if any(ord(c) < 32 or c == "\x7f" for c in raw):
        return "control characters (NUL, newline, escape) are not allowed"
    return None


def project_path(project: Path, raw: str) -> str:
    """`raw` as a normalized project-relative posix path ('.' for the project), refused when it leads out of the project
    (.., absolute elsewhere, a symlink out) or into .git."""
    problem = path_problem(raw)
    if problem:
        raise ToolFailure("invalid_path", f"Path {raw[:80]!r}: {problem}.", "Give a project-relative path, e.g. models/staging/stg_orders.sql.")
    root = project.resolve()
    candidate = Path(raw) if os.path.isabs(raw) else root / raw
    rel = os.path.normpath(os.path.relpath(os.path.normpath(candidate), root)) if os.path.isabs(raw) else os.path.normpath(raw)
    outside = ToolFailure("path_outside_project", f"Path {raw[:80]!r} is outside the project {root}.",
                          "Give a path inside the project, relative to its folder (dbt_project.yml's folder).", {"path": raw[:200]})
    if rel == ".." or rel.startswith("../") or os.path.isabs(rel):
        raise outside
    try:
        (root / rel).resolve().relative_to(root)
    except (ValueError, OSError, RuntimeError):
        raise outside from None
    if ".git" in Path(rel).parts:
        raise ToolFailure("path_outside_project", f"Path {raw[:80]!r} is inside .git, which these tools never touch.",
                          "Give a project file, e.g. models/staging/stg_orders.sql.")
    return Path(rel).as_posix()
