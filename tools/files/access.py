"""Which paths the files tools may read and write, and which files are dbt's (validated by dbt when written)."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

from server.errors import ToolFailure
from server.manifest import read_manifest
from tools.authoring.files import project_path
from tools.authoring.project import ProjectLayout
from tools.files.ignore import BUILD_DIRS

MAX_READ_BYTES = 2_000_000
MAX_WRITE_BYTES = 1_000_000
ROOT_DBT_FILES = {"dbt_project.yml", "packages.yml", "dependencies.yml", "selectors.yml", "profiles.yml"}
DBT_SUFFIXES = {".sql", ".yml", ".yaml", ".csv", ".py", ".md"}


def resolve(root: Path, path: str, write: bool = False) -> tuple[Path, str]:
    """(absolute path, project-relative posix path). Outside the project (.., absolute, a symlink out) and `.git/`
    are refused; writes also into the folders dbt rebuilds (target/, logs/, dbt_packages/)."""
    root = root.resolve()
    if path.startswith(("/", "\\", "~")) or re.match(r"[A-Za-z]:[\\/]", path):
        raise ToolFailure("path_outside_project", f"{path[:120]} is not a project-relative path.",
                          "Give the path relative to the project, e.g. models/staging/stg_orders.sql.")
    resolved = project_path(root, path)
    rel = resolved.relative_to(root).as_posix()
    parts = PurePosixPath(rel).parts
    if any(part.lower() == ".git" for part in parts):
        raise ToolFailure("path_not_allowed", f"{path[:120]} is inside .git/.", "git's own files are not the project's; use git for them.")
    if write and parts and parts[0] in BUILD_DIRS:
        raise ToolFailure("path_not_allowed", f"{path[:120]} is in {parts[0]}/, which dbt rebuilds.", "Edit the project's sources instead (models/, seeds/, macros/ ...).")
    if not rel or rel == ".":
        raise ToolFailure("invalid_path", f"{path[:120]!r} is the project folder, not a file.", "Give a file's path, e.g. models/staging/stg_orders.sql.")
    return resolved, rel


def read_bytes(path: Path, rel: str, limit: int = MAX_READ_BYTES) -> bytes:
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise ToolFailure("invalid_path", f"{rel} is a folder, not a file.", "project_files lists the files.")
        if size > limit:
            raise ToolFailure("file_too_large", f"{rel} is {size:,} bytes (at most {limit:,}).", "file_search finds lines in it; large data does not belong in the project.")
        return path.read_bytes()
    except FileNotFoundError:
        raise ToolFailure("file_not_found", f"No file {rel}.", "project_files lists the files.") from None
    except OSError as exc:
        raise ToolFailure("invalid_path", f"{rel} cannot be read: {exc.strerror or type(exc).__name__}.", "Give a readable file.") from None


def decode(data: bytes, rel: str) -> str:
    """Text exactly as stored (line ends kept); a binary file is a typed error."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = "\x00"
    if "\x00" in text:
        raise ToolFailure("binary_file", f"{rel} is not a UTF-8 text file.", "The files tools read and write text (SQL, YAML, CSV, Markdown).")
    return text


def dbt_file(rel: str, layout: ProjectLayout) -> str | None:
    """Which kind of dbt file `rel` is (model, seed, snapshot, macro, test, project), or None for any other file."""
    if rel in ROOT_DBT_FILES:
        return "project"
    path = PurePosixPath(rel)
    if path.suffix.lower() not in DBT_SUFFIXES:
        return None
    for kind, folders in (("model", layout.model_paths), ("seed", layout.seed_paths), ("snapshot", layout.snapshot_paths),
                          ("macro", layout.macro_paths), ("test", layout.test_paths)):
        if any(path.is_relative_to(PurePosixPath(folder.strip("/"))) for folder in folders if folder.strip("/")):
            return kind
    return None


class ManifestFiles:
    """path -> the dbt resources it defines, from target/manifest.json (written by every parse; server/manifest.py
    shares one parse per change). Never parses the project: a read tool does not wait behind dbt."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _load(self) -> dict[str, Any] | None:
        return read_manifest(self.root)

    def resources(self) -> dict[str, list[str]] | None:
        """posix path -> ['model:stg_orders', ...] of the root project, None without a manifest."""
        manifest = self._load()
        if manifest is None:
            return None
        project = (manifest.get("metadata") or {}).get("project_name")
        out: dict[str, list[str]] = {}
        for section in ("nodes", "sources", "macros", "exposures", "metrics", "semantic_models", "unit_tests", "seeds"):
            for raw in (manifest.get(section) or {}).values():
                if raw.get("package_name") != project:
                    continue
                kind = raw.get("resource_type")
                name = f"{raw.get('source_name')}.{raw.get('name')}" if kind == "source" else raw.get("name")
                if kind == "test" and (raw.get("original_file_path") or "").endswith((".yml", ".yaml")):
                    continue  # generic tests: one a column, listed with their model instead
                for path in {raw.get("original_file_path"), (raw.get("patch_path") or "").split("://", 1)[-1] or None}:
                    if path:
                        out.setdefault(path, []).append(f"{kind}:{name}")
        return out

    def macro_dependants(self, rel: str) -> list[str]:
        """Names of the root project's models and snapshots that use a macro defined in `rel`."""
        manifest = self._load() or {}
        project = (manifest.get("metadata") or {}).get("project_name")
        macros = {uid for uid, m in (manifest.get("macros") or {}).items() if m.get("original_file_path") == rel}
        return sorted({n["name"] for n in (manifest.get("nodes") or {}).values()
                       if n.get("package_name") == project and n.get("resource_type") in ("model", "snapshot")
                       and macros & set((n.get("depends_on") or {}).get("macros") or [])})
