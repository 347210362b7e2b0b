"""Safe paths and all-or-nothing file changes inside a dbt project.

Every authoring tool plans a list of FileChange, shows it as diffs (dry_run), or applies it: each file is written to
a temporary sibling (`.<name>.dbt-ae-<pid>-<random>.tmp`, which dbt never reads; one a killed writer left is swept at the
next start and before the next write to its folder) and renamed into place, and the originals are kept as bytes so that a failed validation puts
every touched file back exactly as it was (and removes files and folders the change created).
"""

from __future__ import annotations

import difflib
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from server.errors import ToolFailure


@dataclass(frozen=True)
class FileChange:
    path: Path  # absolute, inside the project
    content: str | None  # None deletes the file


@dataclass
class FileDiff:
    path: str  # relative to the project
    action: str  # created | modified | deleted | unchanged
    diff: str


MAX_PATH_CHARS = 1024  # far beyond any project path; longer ones cost the resolver quadratic time
MAX_PART_BYTES = 255  # the file systems' limit for one name: longer ones raise ENAMETOOLONG on every stat


def check_path_text(text: str) -> None:
    """A path the file system can look up at all: not empty, no NUL, no name over 255 bytes, not absurdly long."""
    if not text or "\x00" in text:
        raise ToolFailure("invalid_path", f"{text[:120]!r} is not a usable path.", "Give a path relative to the project, e.g. models/staging/x.sql.")
    if len(text) > MAX_PATH_CHARS or any(len(part.encode("utf-8", "surrogatepass")) > MAX_PART_BYTES for part in Path(text).parts):
        raise ToolFailure("invalid_path", f"{text[:120]!r}… is too long for a path ({len(text)} characters; at most {MAX_PATH_CHARS}, "
                          f"and {MAX_PART_BYTES} bytes a name).", "Give a path relative to the project, e.g. models/staging/x.sql.")


def project_path(root: Path, relative: str | Path) -> Path:
    """Resolve a path an agent gave (or we derived from a name) and refuse anything outside the project."""
    text = str(relative)
    check_path_text(text)
    candidate = (root / relative) if not Path(relative).is_absolute() else Path(relative)
    resolved_root = root.resolve()
    resolved = candidate.resolve()  # follows symlinks that exist: a link leading out is caught here
    if not resolved.is_relative_to(resolved_root):
        raise ToolFailure("path_outside_project", f"{text} leads outside the project.",  # never where a symlink points
                          "Use a path inside the project; '..' and symlinks that lead out are refused.")
    return resolved


def read_text(path: Path | str) -> str | None:
    """A project file's text, None when it does not exist; a binary or unreadable file is a typed error."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise ToolFailure("binary_file", f"{path.name} is not a UTF-8 text file.", "Give a SQL, YAML or CSV file of the project.") from None
    except IsADirectoryError:
        raise ToolFailure("invalid_path", f"{path.name} is a folder, not a file.", "Give a file's path.") from None
    except OSError as exc:
        raise ToolFailure("invalid_path", f"{path.name} cannot be read: {exc.strerror or type(exc).__name__}.", "Give a readable file's path.") from None


RACY_NS = 2_000_000_000  # a file modified this recently is read again each time (file systems stamp mtimes by clock tick)


class StatReader:
    """A file reader (read_text unless given another) that reads a file again only when its inode, size or mtime
    changed, and otherwise returns the very str it returned before: a caller may then compare texts by identity
    (project_check's per-model memo; dbt's checksums in tools/dbt/engine/parse_io.py). For what reads every file of a
    big project on every call, most of them unchanged. None for a file that does not exist."""

    def __init__(self, read: Callable[[Path | str], str | None] = read_text) -> None:
        self._read = read
        self._held: dict[str, tuple[tuple[int, int, int], str | None]] = {}

    def __call__(self, path: Path | str) -> str | None:
        key = os.fspath(path)
        try:
            st = os.stat(key)
        except FileNotFoundError:
            self._held.pop(key, None)
            return None
        except OSError:
            return self._read(path)  # the reader's own error
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        held = self._held.get(key)
        if held is not None and held[0] == stamp:
            return held[1]
        text = self._read(path)
        if time.time_ns() - st.st_mtime_ns > RACY_NS:
            self._held[key] = (stamp, text)
        else:  # written just now: a second write in the same clock tick, of the same size, would keep this stamp (git's
            self._held.pop(key, None)  # "racily clean" files): read it again next time
        return text

    def keep_only(self, paths: set[str]) -> None:
        """Forget every file but these (those a whole pass just read: the others are gone)."""
        for key in [k for k in self._held if k not in paths]:
            del self._held[key]


def plan_diffs(root: Path, changes: list[FileChange]) -> list[FileDiff]:
    out = []
    for change in changes:
        before = read_text(change.path)
        rel = change.path.relative_to(root.resolve()).as_posix()
        if change.content is None:
            action = "deleted" if before is not None else "unchanged"
        elif before is None:
            action = "created"
        else:
            action = "modified" if before != change.content else "unchanged"
        diff = "".join(difflib.unified_diff(
            (before or "").splitlines(keepends=True), (change.content or "").splitlines(keepends=True),
            fromfile=f"a/{rel}" if before is not None else "/dev/null", tofile=f"b/{rel}" if change.content is not None else "/dev/null",
        ))
        out.append(FileDiff(rel, action, diff))
    return out


@dataclass
class Applied:
    """What apply() changed, enough to put it all back."""

    originals: dict[Path, bytes | None] = field(default_factory=dict)
    created_dirs: list[Path] = field(default_factory=list)

    def rollback(self) -> None:
        for path, original in self.originals.items():
            if original is None:
                path.unlink(missing_ok=True)
            else:
                _atomic_write(path, original)
        for folder in reversed(self.created_dirs):
            try:
                folder.rmdir()
            except OSError:
                pass


TEMP_MARK = ".dbt-ae-"  # in every temporary sibling's name, with the writer's pid: `.<name>.dbt-ae-<pid>-<random>.tmp`
_TEMP_NAME = re.compile(r"^\..+\.dbt-ae-(\d+)-[^.]+\.tmp$")
_NOT_SWEPT = {".git", "target", "dbt_packages", "logs", "node_modules", ".venv", "venv", "__pycache__"}


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def sweep_temp_files(folders: list[Path], recursive: bool = False) -> list[Path]:
    """Remove the temporary siblings a killed writer left (its pid no longer runs): a SIGKILL between the temp file's
    creation and its rename cannot clean up after itself. Returns what was removed."""
    removed: list[Path] = []
    for folder in folders:
        walk = os.walk(folder) if recursive else [(str(folder), [], _names(folder))]
        for current, subdirs, names in walk:
            subdirs[:] = [d for d in subdirs if d not in _NOT_SWEPT]
            for name in names:
                found = _TEMP_NAME.match(name)
                if found and not _alive(int(found[1])):
                    try:
                        Path(current, name).unlink()
                        removed.append(Path(current, name))
                    except OSError:
                        pass
    return removed


def _names(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


def _atomic_write(path: Path, data: bytes) -> None:
    mode = path.stat().st_mode & 0o777 if path.exists() else None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{TEMP_MARK}{os.getpid()}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def planned_bytes(changes: list[FileChange]) -> dict[Path, bytes | None]:
    """What apply() will write, per path (None: deleted): the record journal.py keeps before the write."""
    return {c.path: c.content.encode("utf-8") if c.content is not None else None for c in changes}


def apply(changes: list[FileChange]) -> Applied:
    """Write every change; on any error put back what was already written and re-raise."""
    applied = Applied()
    sweep_temp_files(sorted({c.path.parent for c in changes}))
    try:
        for change in changes:
            if change.path in applied.originals:
                raise ValueError(f"{change.path} planned twice")
            applied.originals[change.path] = change.path.read_bytes() if change.path.exists() else None
            missing = []
            parent = change.path.parent
            while not parent.exists():
                missing.append(parent)
                parent = parent.parent
            for folder in reversed(missing):
                folder.mkdir()
                applied.created_dirs.append(folder)
            if change.content is None:
                change.path.unlink(missing_ok=True)
            else:
                _atomic_write(change.path, change.content.encode("utf-8"))
    except BaseException:
        applied.rollback()
        raise
    return applied
