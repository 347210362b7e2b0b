"""What the worker knows about dbt invocations without importing dbt: which commands reuse the warm manifest, the
flags that make read-type commands fast, and when the project changed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# Commands that can run on the warm manifest instead of parsing the project again.
MANIFEST_COMMANDS = {"run", "test", "build", "compile", "seed", "snapshot", "show", "list", "ls", "source", "docs", "retry"}
SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", "logs", "target", ".pytest_cache"}
WATCHED_NAMES = {".dbtignore"}  # no suffix, but it changes what dbt reads
WATCHED_SUFFIXES = {".sql", ".yml", ".yaml", ".csv", ".md", ".py", ".jinja", ".jinja2", ".json"}
PROGRESS_EVENTS = {"NodeStart", "NodeFinished"}
# Read-type commands skip rewriting manifest.json/run_results.json and warming the relation cache: on a warm
# worker those two steps are most of a compile's time (0.45 s -> 0.1 s on the demo project).
# `list` runs no query; without --no-write-json it pickles the whole graph to target/graph.gpickle on every call, which
# nothing reads: 3.0 s -> 1.9 s per call on a 1,000-model project (bench/bench_scale.py).
FAST_FLAGS = {"compile": ["--no-write-json", "--no-populate-cache"], "show": ["--no-write-json", "--no-populate-cache"],
              "list": ["--no-write-json"], "ls": ["--no-write-json"]}


def target_args(target: str | None, vars_json: str | None) -> list[str]:
    """The flags naming a request's target and vars, for any dbt command."""
    return [*(["--target", target] if target else []), *(["--vars", vars_json] if vars_json else [])]


def project_fingerprint(project_dir: Path, profiles_dir: Path, stats: dict[str, os.stat_result] | None = None) -> tuple:
    """Cheap change detector: (path, mtime, size) of every file dbt could read. Milliseconds on real projects.
    `stats`, if given, receives each file's stat by its path (a parse that follows takes them: parse_io.py)."""
    entries: list[tuple[str, int, int]] = []
    stack = [project_dir]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        if entry.name not in SKIP_DIRS:
                            stack.append(Path(entry.path))
                    elif os.path.splitext(entry.name)[1] in WATCHED_SUFFIXES or entry.name in WATCHED_NAMES:
                        try:
                            st = entry.stat()
                        except OSError:  # a dangling symlink (an editor's .#lock file), a file deleted just now
                            entries.append((entry.path, -1, -1))
                            continue
                        entries.append((entry.path, st.st_mtime_ns, st.st_size))
                        if stats is not None:
                            stats[entry.path] = st
        except OSError:
            continue
    profiles = profiles_dir / "profiles.yml"
    if profiles.exists():
        st = profiles.stat()
        entries.append((str(profiles), st.st_mtime_ns, st.st_size))
    entries.sort()
    return tuple(entries)


def drop_inline_nodes(manifest: Any) -> None:
    """An inline query that failed to parse stays in the manifest and breaks every later inline query; drop it."""
    for table in (manifest.nodes, manifest.disabled):
        for unique_id in [key for key in table if key.startswith("sql_operation.")]:
            table.pop(unique_id, None)
