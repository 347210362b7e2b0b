"""Which project files the files tools see: everything inside the project but `.git/`, the build folders dbt writes
(`target/`, `logs/`, `dbt_packages/` at the project root) and what `.gitignore` ignores.

`.gitignore` is read by git itself (`git check-ignore --stdin`, no shell) when the project is inside a git work tree,
so nested files, `core.excludesFile` and `.git/info/exclude` count exactly as git says; otherwise by the small parser
below (`.gitignore` files of the project and its folders: `#`, `!`, `/`-anchoring, trailing `/`, `*`, `?`, `**`).
The walk goes one folder level at a time, so an ignored folder is never entered (one git call a level).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BUILD_DIRS = ("target", "logs", "dbt_packages")  # at the project root: dbt writes them, a listing never shows them
GIT_TIMEOUT_S = 20


def glob_regex(pattern: str) -> str:
    """A glob as a regex over a posix path: `*` and `?` stay in one folder, `**` crosses folders, [..] is a class."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1:end]
            out.append("[" + ("^" + body[1:] if body[:1] == "!" else body).replace("\\", "\\\\") + "]")
            i = end
        elif c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 1
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def glob_matcher(glob: str) -> Callable[[str], bool]:
    """`*.sql` matches a name in any folder (no `/` in the glob); `models/**/*.sql` matches from the project root."""
    glob = glob.strip().lstrip("/") if "/" in glob.strip().rstrip("/") else glob.strip()
    try:
        compiled = re.compile(glob_regex(glob) + r"\Z")
    except re.error:  # an unbalanced class: match it literally
        compiled = re.compile(re.escape(glob) + r"\Z")
    if "/" not in glob:
        return lambda rel: compiled.match(rel.rsplit("/", 1)[-1]) is not None
    return lambda rel: compiled.match(rel) is not None


@dataclass(frozen=True)
class Rule:
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool


def parse_gitignore(text: str) -> list[Rule]:
    """The rules of one .gitignore, in order (the last rule that matches a path decides)."""
    rules = []
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        if not line.strip() or line.startswith("#"):
            continue
        if not line.endswith("\\ "):
            line = line.rstrip(" ")
        negate = line.startswith("!")
        if negate or line.startswith(("\\!", "\\#")):
            line = line[1:]
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        if not line:
            continue
        anchored = "/" in line
        line = line.lstrip("/")
        body = glob_regex(line)
        if line.endswith("/**"):
            body = glob_regex(line[:-3]) + "/.*"
        rules.append(Rule(re.compile(("" if anchored else "(?:.*/)?") + body + r"\Z"), negate, dir_only))
    return rules


def ignored_by(rules: list[Rule], rel: str, is_dir: bool) -> bool | None:
    """True/False when a rule decides (the last that matches), None when none matches."""
    verdict = None
    for rule in rules:
        if (is_dir or not rule.dir_only) and rule.regex.match(rel):
            verdict = not rule.negate
    return verdict


class GitignoreParser:
    """The parser's verdicts: every .gitignore from the project root down to a path's folder, deeper ones last."""

    how = ".gitignore parser (not a git work tree)"

    def __init__(self, root: Path) -> None:
        self.root = root
        self._rules: dict[str, list[Rule]] = {}

    def _rules_of(self, folder: str) -> list[Rule]:
        if folder not in self._rules:
            path = self.root / folder / ".gitignore"
            try:
                text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() and not path.is_symlink() else ""
            except OSError:
                text = ""
            self._rules[folder] = parse_gitignore(text)
        return self._rules[folder]

    def ignored(self, entries: list[tuple[str, bool]]) -> set[str]:
        out = set()
        for rel, is_dir in entries:
            parts = rel.split("/")
            verdict = None
            for depth in range(len(parts)):
                folder = "/".join(parts[:depth])
                found = ignored_by(self._rules_of(folder), "/".join(parts[depth:]), is_dir)
                verdict = found if found is not None else verdict
            if verdict:
                out.add(rel)
        return out


class GitCheckIgnore:
    """git's own verdicts (`git check-ignore --stdin -z`), paths relative to the project (a repository's subfolder too)."""

    how = "git check-ignore"

    def __init__(self, root: Path, git: str) -> None:
        self.root = root
        self.git = git

    def ignored(self, entries: list[tuple[str, bool]]) -> set[str]:
        if not entries:
            return set()
        done = subprocess.run([self.git, "check-ignore", "--stdin", "-z"], input="\0".join(rel for rel, _ in entries) + "\0",
                              cwd=self.root, capture_output=True, text=True, timeout=GIT_TIMEOUT_S, env=_git_env())
        if done.returncode not in (0, 1):
            raise RuntimeError(done.stderr.strip()[:300] or f"git check-ignore exited {done.returncode}")
        return {p for p in done.stdout.split("\0") if p}


def _git_env() -> dict[str, str]:
    return {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}


def ignore_rules(root: Path) -> GitignoreParser | GitCheckIgnore:
    """git's when the project is in a git work tree and git runs, else the parser."""
    git = shutil.which("git")
    if git is not None:
        try:
            inside = subprocess.run([git, "rev-parse", "--is-inside-work-tree"], cwd=root, capture_output=True, text=True,
                                    timeout=GIT_TIMEOUT_S, env=_git_env())
            if inside.returncode == 0 and inside.stdout.strip() == "true":
                return GitCheckIgnore(root, git)
        except (OSError, subprocess.SubprocessError):
            pass
    return GitignoreParser(root)


def project_files(root: Path, rules: GitignoreParser | GitCheckIgnore, build_dirs: tuple[str, ...] = BUILD_DIRS) -> list[tuple[str, int]]:
    """(posix path, size) of every file the tools show, sorted. Symlinks are followed only to files inside the project;
    linked folders are not entered."""
    root = root.resolve()
    files: list[tuple[str, int]] = []
    level = [""]
    while level:
        entries: list[tuple[str, bool]] = []
        sizes: dict[str, int] = {}
        for folder in level:
            try:
                scanned = list(os.scandir(root / folder))
            except OSError:
                continue
            for entry in scanned:
                rel = f"{folder}/{entry.name}" if folder else entry.name
                if entry.name == ".git" or (not folder and entry.name in build_dirs):
                    continue
                try:
                    if entry.is_symlink():
                        target = Path(entry.path).resolve()
                        if not target.is_relative_to(root) or not target.is_file():
                            continue
                        sizes[rel] = target.stat().st_size
                        entries.append((rel, False))
                    elif entry.is_dir():
                        entries.append((rel, True))
                    elif entry.is_file():
                        sizes[rel] = entry.stat().st_size
                        entries.append((rel, False))
                except OSError:
                    continue
        ignored = rules.ignored(entries)
        level = []
        for rel, is_dir in entries:
            if rel in ignored:
                continue
            if is_dir:
                level.append(rel)
            else:
                files.append((rel, sizes[rel]))
    return sorted(files)
