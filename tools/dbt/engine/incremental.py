"""Re-parsing an edited project against the worker's own manifest, and writing dbt's artifacts off the request path.

dbt's partial parse is incremental in parsing but not in I/O: each `dbt parse` reads the whole saved manifest back
(target/partial_parse.msgpack), parses the changed files, then writes the msgpack and target/manifest.json anew. On
a 1,000-model project that I/O was 60 % of an 8.8 s re-parse after a one-line edit (bench/RESULTS.md). The worker
already holds the last manifest, so:

- `handing_over(manifest)`: while it is active, dbt's ManifestLoader takes `manifest` as its saved manifest (after
  dbt's own checks that partial parsing may reuse it: same dbt version, vars, profile, project configs) instead of
  reading the msgpack, and does not write the msgpack. dbt's partial parser changes that object in place, so the
  caller must drop it when the parse fails.
- The Jinja `graph` variable (Manifest.build_flat_graph: every node's to_dict, 60 % of such a re-parse) is built again
  only for the objects the parse made anew; an object dbt kept (same object, same created_at: dbt's own test for "not
  parsed this time") keeps its entry.
- `ArtifactWriter`: a forked child writes manifest.json and the msgpack (each to a temporary file, then renamed) while
  the worker answers. `target/manifest.json.pending` exists until the child is done, so the server's readers of
  manifest.json can wait for the new one (server/manifest.py) instead of reading the one from before the edit.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from server.heap import collector_relaxed
from tools.dbt.engine import parse_io, parse_memo
from tools.dbt.engine.graph_cache import INLINE_PREFIX

PENDING_NAME = "manifest.json.pending"

_handover: Any = None  # the manifest the next ManifestLoader takes as its saved one
_installed = False
FLAT_SECTIONS = ("exposures", "functions", "groups", "metrics", "nodes", "sources", "semantic_models", "saved_queries")
_flat_memo: dict[str, Any] = {"manifest": None, "entries": {}}  # section -> uid -> (object, created_at, its flat dict)
last_target_path: str | None = None  # the root project's target path, as dbt resolved it in the last handover


def install() -> None:
    """Once per process, before the first parse (so that parse's flat graph is remembered)."""
    global _installed
    if _installed:
        return
    from dbt.parser.manifest import ManifestLoader

    read_saved = ManifestLoader.read_manifest_for_partial_parse
    write_saved = ManifestLoader.write_manifest_for_partial_parse

    def read_manifest_for_partial_parse(self: Any) -> Any:
        global last_target_path
        if _handover is None:
            return read_saved(self)
        last_target_path = self.root_project.project_target_path
        usable, _ = self.is_partial_parsable(_handover)
        return _handover if usable else read_saved(self)

    def write_manifest_for_partial_parse(self: Any) -> None:
        if _handover is None:
            write_saved(self)

    ManifestLoader.read_manifest_for_partial_parse = read_manifest_for_partial_parse
    ManifestLoader.write_manifest_for_partial_parse = write_manifest_for_partial_parse
    load = ManifestLoader.load

    def load_keeping_sources(self: Any) -> Any:
        """dbt's load; the SourceFiles parse_io handed out are dropped unless dbt parsed partially (into the saved
        manifest, deep-copying the files it parses again): a full parse keeps and fills the ones it was given."""
        try:
            manifest = load(self)
        except BaseException:
            parse_io.forget_sources()
            raise
        if self.saved_manifest is None or manifest is not self.saved_manifest:
            parse_io.forget_sources()
        return manifest

    ManifestLoader.load = load_keeping_sources
    from dbt.contracts.graph.manifest import Manifest

    build_flat = Manifest.build_flat_graph

    def build_flat_graph(self: Any) -> None:
        if _handover is None or self is not _handover or _flat_memo["manifest"] is not self:
            build_flat(self)
        else:
            self.flat_graph = flat_graph_reusing(self, _flat_memo["entries"])
        remember_flat_graph(self)

    Manifest.build_flat_graph = build_flat_graph
    parse_io.install()
    parse_memo.install()
    _installed = True


def flat_graph_reusing(manifest: Any, entries: dict[str, dict[str, tuple[Any, Any, Any]]]) -> dict[str, dict[str, Any]]:
    """Manifest.build_flat_graph's dict, with the entry of every object dbt did not parse again taken from `entries`."""
    out: dict[str, dict[str, Any]] = {}
    for section in FLAT_SECTIONS:
        known = entries.get(section, {})
        table: dict[str, Any] = {}
        for uid, obj in getattr(manifest, section, {}).items():
            held = known.get(uid)
            if held is not None and held[0] is obj and held[1] == getattr(obj, "created_at", None):
                table[uid] = held[2]
            else:
                table[uid] = obj.to_dict(omit_none=False)
        out[section] = table
    return out


def remember_flat_graph(manifest: Any) -> None:
    flat = getattr(manifest, "flat_graph", None) or {}
    _flat_memo["manifest"] = manifest
    _flat_memo["entries"] = {
        section: {uid: (obj, getattr(obj, "created_at", None), flat[section][uid])
                  for uid, obj in getattr(manifest, section, {}).items() if uid in flat.get(section, {})}
        for section in FLAT_SECTIONS
    }


MANIFEST_TRANSIENTS = ("_doc_lookup", "_source_lookup", "_ref_lookup", "_metric_lookup", "_saved_query_lookup",
                       "_semantic_model_by_measure_lookup", "_disabled_lookup", "_analysis_lookup", "_singular_test_lookup",
                       "_function_lookup", "_macros_by_name", "_macros_by_package")


def reset_transients(manifest: Any) -> None:
    """What a msgpack round trip drops, dropped in place: the manifest's lookups and parsing info, its source patches,
    and each file's contents and partial-parsing dicts. Kept, a schema file's `pp_dict` from the last parse made dbt
    apply a YAML patch twice (DuplicatePatchPathError after two edits)."""
    from dbt.contracts.graph.manifest import ParsingInfo

    for name in MANIFEST_TRANSIENTS:
        if hasattr(manifest, name):
            setattr(manifest, name, None)
    manifest._parsing_info = ParsingInfo()
    manifest.source_patches = {}
    for source_file in manifest.files.values():
        source_file.contents = None
        if hasattr(source_file, "pp_dict"):
            source_file.pp_dict = None
            source_file.pp_test_index = None


@contextlib.contextmanager
def handing_over(manifest: Any) -> Iterator[None]:
    global _handover
    install()
    reset_transients(manifest)
    _handover = manifest
    try:
        with parse_io.reading():
            yield
    finally:
        _handover = None


CONFIG_FILES = {"dbt_project.yml", "profiles.yml", "packages.yml", "dependencies.yml", "selectors.yml", "package-lock.yml", "catalogs.yml"}


def changed_paths(before: tuple, after: tuple) -> set[str]:
    """The files added, removed or changed between two project fingerprints (invocation.project_fingerprint)."""
    return {entry[0] for entry in set(before) ^ set(after)}


def configs_unchanged(changed: set[str]) -> bool:
    """Whether dbt's project and profile configuration (what a RuntimeConfig holds) stays as it was: only then may a
    re-parse reuse the last command's config instead of loading it again."""
    return not any(os.path.basename(path) in CONFIG_FILES for path in changed)


def parse_in_place(manifest: Any, config: Any, flags: Any) -> Any:
    """dbt's partial parse of `manifest` (handing_over) with the RuntimeConfig and adapter of the last command and
    the flags of the last `dbt parse`, without a dbt command around it: the CLI, profile, project and runtime config
    set-up, a new adapter (whose behaviour flags walk the stack) and the plugin scan were a third of a one-line edit's
    re-parse on a 1,000-model project. What dbt's `parse` does inside that set-up is this call (parse_manifest without
    register_adapter and writing). Raises dbt's error."""
    from dbt.flags import get_flags, set_flags
    from dbt.parser.manifest import ManifestLoader
    from dbt_common.invocation import reset_invocation_id

    previous = get_flags()
    set_flags(flags)
    reset_invocation_id()
    try:
        with handing_over(manifest), collector_relaxed():
            return ManifestLoader.get_full_manifest(config)
    finally:
        set_flags(previous)


EDGE_SECTIONS = ("nodes", "sources", "exposures", "functions", "metrics", "semantic_models", "saved_queries", "unit_tests")


def edges_digest(manifest: Any) -> str:
    """Every graph member and its parents, in a stable order: what dbt's Linker links (a re-parsed node moves to the
    end of its dict, so the order is sorted, not the manifest's)."""
    h = hashlib.blake2b(digest_size=16)
    for section in EDGE_SECTIONS:
        table = getattr(manifest, section, None) or {}
        for uid in sorted(table):
            if not uid.startswith(INLINE_PREFIX):  # an inline query's node, there for one call (graph_cache.py)
                h.update(f"{section}\0{uid}\0{chr(1).join(table[uid].depends_on_nodes)}\n".encode())
    return h.hexdigest()


ARTIFACTS = ("manifest.json", "partial_parse.msgpack")


def _temp_name(artifact: str, pid: int | str) -> str:
    return f".{artifact}.{pid}.tmp"


def _temp_files(target: Path, pid: int | str = "*") -> list[Path]:
    """What a writer (`pid`, or any) leaves beside the artifacts while it writes them."""
    return [tmp for artifact in ARTIFACTS for tmp in target.glob(_temp_name(artifact, pid))]


def write_artifacts(manifest: Any, target: Path, msgpack: bool = True) -> None:
    """The msgpack dbt's next cold start reads, then manifest.json; each whole or not at all (temporary file, rename)."""
    from dbt.parser.manifest import extended_mashumaro_encoder
    from dbt.version import __version__

    if manifest.metadata.dbt_version != __version__:
        manifest.metadata.dbt_version = __version__
    writes = [("manifest.json", lambda p: manifest.writable_manifest().write(str(p)))]
    if msgpack:
        writes.insert(0, ("partial_parse.msgpack", lambda p: p.write_bytes(manifest.to_msgpack(extended_mashumaro_encoder))))
    for name, write in writes:
        tmp = target / _temp_name(name, os.getpid())
        write(tmp)
        os.replace(tmp, target / name)


class ArtifactWriter:
    """At most one child at a time: a newer manifest kills the writer of an older one (its file would land last)."""

    def __init__(self, close_in_child: tuple[int, ...] = ()) -> None:
        self.close_in_child = close_in_child  # the worker's channel to the server: only the worker may hold it open
        self.pid: int | None = None
        self.target: Path | None = None
        self.failed = False  # the last writer died or failed: the worker writes the artifacts itself next time
        self.due: tuple[Any, Path, bool] | None = None  # a write deferred until the worker is idle (defer)
        self.due_at = 0.0  # when it became due

    def defer(self, manifest: Any, target: Path, msgpack: bool = True) -> None:
        """Mark the artifacts stale now (readers wait for the pending marker) and write them when the worker is idle
        (`start_due`), or before anything that needs them (`wait`). Forked during a burst of requests, the child cost
        the worker its copy-on-write page faults and a core: 0.50 -> 0.35 s for a one-line edit's project_check on a
        1,000-model project, edits back to back on two cores."""
        self.stop()
        target.mkdir(parents=True, exist_ok=True)
        (target / PENDING_NAME).write_text(str(os.getpid()), encoding="utf-8")
        if self.due is None:
            self.due_at = time.monotonic()
        self.due = (manifest, target, msgpack or (self.due is not None and self.due[2]))

    def start_due(self) -> None:
        if self.due is not None:
            manifest, target, msgpack = self.due
            self.start(manifest, target, msgpack)

    def due_for(self) -> float:
        """Seconds since the deferred write became due (0 when none is)."""
        return time.monotonic() - self.due_at if self.due is not None else 0.0

    def drop_due(self) -> None:
        """Forget the deferred write (its manifest is not to be written: a parse failed half way through it, or the
        worker is ending) and its marker: the artifacts on disk are older, but whole and consistent."""
        if self.due is not None:
            with contextlib.suppress(OSError):
                (self.due[1] / PENDING_NAME).unlink(missing_ok=True)
            self.due = None

    def start(self, manifest: Any, target: Path, msgpack: bool = True) -> None:
        """`msgpack`: also the saved manifest of dbt's next cold start (a third of the child's work; an older one is
        still correct: dbt re-parses the files whose checksums differ)."""
        self.stop()
        self.due = None
        target.mkdir(parents=True, exist_ok=True)
        (target / PENDING_NAME).write_text(str(os.getpid()), encoding="utf-8")
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError as exc:  # no memory for a child: the worker writes the artifacts itself before they are needed
            (target / PENDING_NAME).unlink(missing_ok=True)
            self.failed = True
            print(f"[dbt-ae-mcp worker] could not fork the artifacts' writer: {exc!r}", file=sys.stderr)
            return
        if pid == 0:  # the child: never returns, never runs the parent's exit handlers or touches its channel
            code = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the worker's cancel-and-exit (worker.py)
                os.nice(10)  # behind the worker and the server on a busy machine: their next answer waits for nothing here
                for fd in self.close_in_child:
                    os.close(fd)
                write_artifacts(manifest, target, msgpack)
                (target / PENDING_NAME).unlink(missing_ok=True)
                code = 0
            except BaseException as exc:  # the parent sees the exit code; the reason goes to the worker's stderr
                with contextlib.suppress(Exception):
                    os.write(2, f"[dbt-ae-mcp worker] writing artifacts failed: {exc!r}\n".encode())
            os._exit(code)
        self.pid, self.target = pid, target

    def poll(self) -> bool:
        """True when no writer is running (a finished one is reaped)."""
        if self.pid is None:
            return True
        done, status = os.waitpid(self.pid, os.WNOHANG)
        if done == 0:
            return False
        self._finished(status)
        return True

    def wait(self, timeout: float = 120.0) -> None:
        """Block until the writer is done, a deferred one started first (before a command that writes target/ itself:
        files must land in order)."""
        self.start_due()
        deadline = time.monotonic() + timeout
        while not self.poll():
            if time.monotonic() > deadline:
                self.stop()
                return
            time.sleep(0.02)

    def stop(self) -> None:
        if self.pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        _, status = os.waitpid(self.pid, 0)
        self._finished(status, killed=True)

    def _finished(self, status: int, killed: bool = False) -> None:
        pid, target = self.pid, self.target
        self.pid = self.target = None
        if target is None:
            return
        if not killed and os.waitstatus_to_exitcode(status) != 0:
            self.failed = True
        if killed or os.waitstatus_to_exitcode(status) != 0:
            for tmp in _temp_files(target, pid):
                tmp.unlink(missing_ok=True)
            (target / PENDING_NAME).unlink(missing_ok=True)


def clear_leftovers(target: Path) -> None:
    """At start: a writer killed with its worker leaves its temporary files and the pending marker behind."""
    for leftover in [*_temp_files(target), target / PENDING_NAME]:
        with contextlib.suppress(OSError):
            leftover.unlink()
