"""dbt's file reads during an in-place re-parse (incremental.handing_over), made cheaper without changing what dbt sees.

dbt reads the whole project on every parse, partial or not: `find_matching` walks each resource folder once per file
type and extension (models/ five times: .sql, .py, .yml, .yaml, .csv for fixtures...), and `load_source_file` reads and
hashes every file. On a 1,000-model project that was 0.12 s of a 0.3 s re-parse after a one-line edit. Here:

- `find_matching` (dbt_common's, re-implemented with the same result, order included) walks each folder once per parse,
  and `matching` gives the last listing of a search again while none of its folders' mtimes changed;
- `load_file_contents` returns the text it read last time for a file whose inode, size and mtime are unchanged and
  that was not modified in the two seconds before that read (tools/authoring/files.py StatReader: a later write in
  the same clock tick could keep the stamp, git's "racily clean" rule), and `FileHash.from_contents` the checksum of
  that very text;
- `get_source_files` hands out the SourceFile it made last time for such a file (same stamp, same rule), not a new
  one: dbt's partial parser only compares it with the saved manifest's file and takes deep copies of the ones it
  parses again. A full parse keeps the objects it was given and fills them, so after one (or a failed parse)
  `forget_sources()` drops them all (incremental.py's ManifestLoader.load).

All are active only inside `reading()`, the span of one in-place re-parse; the walk cache is dropped at its end.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path, PurePath
from typing import Any

from tools.authoring.files import RACY_NS, StatReader

_active = False
_walks: dict[str, list[tuple[str, list[str], list[str]]]] = {}


_hashes: Any = None  # the MemoFileHash install() put in dbt's reader
_read_now: set[str] = set()  # the paths load_file_contents was asked for in this reading()
_stamps: dict[str, tuple[int, int, int]] = {}  # absolute path -> (inode, size, mtime_ns), as this reading()'s walk saw it
_taken: dict[str, os.stat_result] = {}  # stats the worker took just before this reading() (its project fingerprint)
# (project root, project, parse file type, searched path, relative path) -> (the file's stamp, its SourceFile)
_sources: dict[tuple[str, str, Any, str, str], tuple[tuple[int, int, int], Any]] = {}
_sources_now: set[tuple[str, str, Any, str, str]] = set()  # the keys get_source_files answered in this reading()
FolderStamp = tuple[int, int, int]  # (inode, mtime_ns, ctime_ns); (-1, -1, -1) for a folder that is missing
# (root, searched paths, pattern) -> (ignore spec, every folder walked or listed with its stamp, the matches'
# (searched path, relative path, absolute path)): a listing stands while no folder of it changed
_listings: dict[tuple[str, tuple[str, ...], str], tuple[Any, list[tuple[str, FolderStamp]], list[tuple[str, str, str]]]] = {}
_listings_now: set[tuple[str, tuple[str, ...], str]] = set()
_folder_stamps: dict[str, FolderStamp] = {}  # folder -> its stamp, as this reading() first saw it


@contextlib.contextmanager
def stats_taken(stats: dict[str, os.stat_result]) -> Iterator[None]:
    """While active, find_matching takes a file's stat from `stats` (the worker's fingerprint of the project, taken
    at the start of the request) instead of asking again: as if dbt had read the project a moment earlier."""
    _taken.update(stats)
    try:
        yield
    finally:
        _taken.clear()


@contextlib.contextmanager
def reading() -> Iterator[None]:
    global _active
    _active = True
    _read_now.clear()
    _sources_now.clear()
    _listings_now.clear()
    try:
        yield
    finally:
        _active = False
        _walks.clear()
        _stamps.clear()
        _folder_stamps.clear()
        for key in [k for k in _sources if k not in _sources_now]:
            del _sources[key]  # gone, renamed, ignored now, or not asked for by this parse
        for listing in [k for k in _listings if k not in _listings_now]:
            del _listings[listing]
        if _read_now:  # what this parse did not read is gone (deleted, renamed, ignored): so are its text and checksum
            _texts.keep_only(_read_now)
            for path in [p for p in _stripped if p not in _read_now]:
                del _stripped[path]
            live = {id(held[1]) for held in _stripped.values()}
            for key in [k for k in (_hashes.held if _hashes is not None else {}) if k not in live]:
                del _hashes.held[key]


def install() -> None:
    """Once per process (incremental.install; a second call changes nothing)."""
    global _hashes
    if _hashes is not None:
        return
    import dbt.parser.read_files as read_files
    import dbt.parser.search as search

    search.find_matching = _wrap(search.find_matching, find_matching)
    read_files.get_source_files = _wrap(read_files.get_source_files, get_source_files)
    read_files.load_file_contents = _wrap(read_files.load_file_contents, load_file_contents)
    _hashes = MemoFileHash(read_files.FileHash)
    read_files.FileHash = _hashes


def _wrap(original: Any, ours: Any) -> Any:
    def chosen(*args: Any, **kwargs: Any) -> Any:
        return ours(*args, **kwargs) if _active else original(*args, **kwargs)

    return chosen


def _walk(path: str) -> list[tuple[str, list[str], list[str]]]:
    if path not in _walks:
        _walks[path] = [(current, list(dirs), list(files)) for current, dirs, files in os.walk(path)]
    return _walks[path]


def find_matching(root_path: str, relative_paths_to_search: list[str], file_pattern: str, ignore_spec: Any = None) -> list[dict[str, Any]]:
    """dbt_common.clients.system.find_matching, over a walk shared by the parse's calls."""
    matching = []
    root_path = os.path.normpath(root_path)
    reobj = re.compile(fnmatch.translate(file_pattern), re.IGNORECASE)
    for relative_path_to_search in relative_paths_to_search:
        absolute_path_to_search = os.path.join(root_path, relative_path_to_search)
        clean = os.path.isabs(absolute_path_to_search) and os.path.normpath(absolute_path_to_search) == absolute_path_to_search
        prefix = len(absolute_path_to_search) + 1
        for current_path, _dirs, local_files in _walk(absolute_path_to_search):
            for local_file in local_files:
                if not reobj.match(local_file):
                    continue
                absolute_path = os.path.join(current_path, local_file)
                # os.path.relpath's answer: under a clean absolute folder the walk's paths are that folder + "/" + names
                relative_path = absolute_path[prefix:] if clean else os.path.relpath(absolute_path, absolute_path_to_search)
                relative_path_to_root = os.path.join(relative_path_to_search, relative_path)
                modification_time = _stat(absolute_path).st_mtime  # os.path.getmtime's stat, its stamp kept for get_source_files
                if not ignore_spec or not ignore_spec.match_file(relative_path_to_root):
                    matching.append({"searched_path": relative_path_to_search, "absolute_path": absolute_path,
                                     "relative_path": relative_path, "modification_time": modification_time})
    return matching


def _stat(path: str) -> os.stat_result:
    """A file's stat (the fingerprint's, when the worker took one), its stamp kept for this reading()."""
    st = _taken.get(path) or os.stat(path)
    _stamps[path] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return st


def _folder_stamp(path: str) -> FolderStamp:
    """A folder's inode and times: an entry added, removed or renamed changes its mtime; a folder put in its place
    (a restore that sets the old mtime, a symlink pointed elsewhere) or made readable again changes the inode or
    the ctime, which no tool sets."""
    if path not in _folder_stamps:
        try:
            st = os.stat(path)
            _folder_stamps[path] = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
        except OSError:
            _folder_stamps[path] = (-1, -1, -1)
    return _folder_stamps[path]


def matching(root_path: str, relative_paths_to_search: list[str], file_pattern: str, ignore_spec: Any = None) -> list[dict[str, Any]]:
    """find_matching's answer, from the last listing of the same search while none of its folders changed (_folder_stamp;
    every folder the walk entered or listed, one it could not read included): no walk, and each file's stat from the
    project fingerprint. A listing is kept only if all its folders were more than two seconds old when it was made (a
    change in the same clock tick could keep a folder's mtime)."""
    key = (root_path, tuple(relative_paths_to_search), file_pattern)
    _listings_now.add(key)
    held = _listings.get(key)
    if held is not None and held[0] == ignore_spec and all(_folder_stamp(folder) == stamp for folder, stamp in held[1]):
        out = []
        for searched, relative, absolute in held[2]:
            out.append({"searched_path": searched, "absolute_path": absolute, "relative_path": relative,
                        "modification_time": _stat(absolute).st_mtime})
        return out
    found = find_matching(root_path, relative_paths_to_search, file_pattern, ignore_spec)
    root = os.path.normpath(root_path)
    folders: dict[str, None] = {}
    for relative_path_to_search in relative_paths_to_search:
        top = os.path.join(root, relative_path_to_search)
        folders[top] = None
        for current, dirs, _files in _walk(top):
            folders[current] = None
            folders.update((os.path.join(current, name), None) for name in dirs)
    stamps = [(folder, _folder_stamp(folder)) for folder in folders]
    now = time.time_ns()
    if all(stamp[0] == -1 or now - stamp[1] > RACY_NS for _, stamp in stamps):  # (entries change mtime and ctime together)
        _listings[key] = (ignore_spec, stamps, [(m["searched_path"], m["relative_path"], m["absolute_path"]) for m in found])
    else:
        _listings.pop(key, None)
    return found


def get_source_files(project: Any, paths: list[str], extension: str, parse_file_type: Any, saved_files: Any, ignore_spec: Any) -> list[Any]:
    """dbt.parser.read_files.get_source_files (filesystem_search, then a new SourceFile per file), giving the
    SourceFile made last time for a file whose stamp is unchanged and was more than two seconds old when it was made."""
    from dbt.contracts.files import FilePath, ParseFileType
    from dbt.parser import read_files

    root, name = project.project_root, project.project_name
    out = []
    for found in matching(root, paths, "[!.#~]*" + extension, ignore_spec):
        searched, relative = found["searched_path"], found["relative_path"]
        if parse_file_type == ParseFileType.SingularTest and PurePath(relative).parts[0] in ("generic", "fixtures"):
            continue
        key = (root, name, parse_file_type, searched, relative)
        stamp = _stamps.get(found["absolute_path"])
        held = _sources.get(key)
        if held is not None and stamp is not None and held[0] == stamp:  # (the modification time is the stamp's mtime)
            source_file = held[1]
        else:
            path = FilePath(searched_path=searched, relative_path=relative, modification_time=found["modification_time"], project_root=root)
            if parse_file_type == ParseFileType.Seed:
                source_file = read_files.load_seed_source_file(path, name)
            else:
                source_file = read_files.load_source_file(path, parse_file_type, name, saved_files)
            if source_file and stamp is not None and time.time_ns() - stamp[2] > RACY_NS:
                _sources[key] = (stamp, source_file)
            else:
                _sources.pop(key, None)
        _sources_now.add(key)
        if source_file:
            out.append(source_file)
    return out


def forget_sources() -> None:
    """After a full parse inside reading(), which keeps and fills the SourceFiles it was given, or a failed one: none
    is handed out again. (A parse outside reading() was given new ones by dbt's own reader.)"""
    if _active:
        _sources.clear()


def _read_utf8(path: Path | str) -> str:
    with open(path, "rb") as handle:
        return handle.read().decode("utf-8")


_texts = StatReader(_read_utf8)  # each file's text, kept while unchanged
_stripped: dict[str, tuple[str, str]] = {}  # path -> (its text, that text stripped: the same str while the text is)


def load_file_contents(path: str, strip: bool = True) -> str:
    """dbt_common.clients.system.load_file_contents, from memory when the file is unchanged (the same str as last
    time, so that `MemoFileHash` knows it)."""
    _read_now.add(path)
    text = _texts(path)
    if text is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
    if not strip:
        return text
    held = _stripped.get(path)
    if held is None or held[0] is not text:
        held = _stripped[path] = (text, text.strip())
    return held[1]


class MemoFileHash:
    """dbt's FileHash as the file reader uses it (`FileHash.from_contents`, a sha256 of every file on every parse),
    kept per contents object while `reading()`: an unchanged file's text is the same str (load_file_contents)."""

    def __init__(self, file_hash: Any) -> None:
        self.file_hash = file_hash
        self.held: dict[int, tuple[str, Any]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.file_hash, name)

    def from_contents(self, contents: str) -> Any:
        if not _active:
            return self.file_hash.from_contents(contents)
        held = self.held.get(id(contents))
        if held is not None and held[0] is contents:
            return held[1]
        value = self.file_hash.from_contents(contents)
        self.held[id(contents)] = (contents, value)  # pruned to the texts load_file_contents keeps, after each parse
        return value
