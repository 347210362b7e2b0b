"""`completion/complete`: suggestions for prompt and resource-template arguments, from the project's last manifest.

One dispatch for the whole server. An argument is completed by its *kind*; each kind is one function here
(`COMPLETERS`), called as `completer(index, value)` with the project's `ProjectIndex` and the text typed so far.

- Prompt arguments: their kind comes from the prompt catalog (server/prompts: `Arg(kind=...)`), registered by
  `register_prompt_arguments` when build_app adds the prompts.
- Resource-template arguments (the extension point): call
  `register_template_argument("dbt://node/{name}", "name", "node")` next to where the template is added; the
  completion request's `ref.uri` is the template as listed. A new kind answered from the manifest is a function
  `(index, value) -> list[str]` added with `@completer("kind")`. One that needs other data (run ids, memory keys,
  task ids) is registered as a function `(value) -> list[str]` closing over what it reads:
  `register_template_argument("dbt://run/{run_id}", "run_id", lambda value: matching(store.ids(), value))`.
  Either must stay fast: no dbt, no model load, no network.

Facts come from `<project>/target/manifest.json` as the last dbt command wrote it, read again only when its mtime or
size changes; never from starting dbt. No manifest yet: names from the models/ folder's file names. Answers stay
cheap (a cached index and a prefix scan) so a client can ask on every key press."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp_types import (
    Completion,
    CompletionArgument,
    CompletionContext,
    PromptReference,
    ResourceTemplateReference,
)

from server.manifest import read_manifest

log = logging.getLogger("dbt_ae_mcp.completion")

MAX_VALUES = 100  # the spec's limit per answer
DEFAULT_LAYERS = ("staging", "intermediate", "marts")
SELECTOR_METHODS = ("tag:", "path:", "source:", "config.materialized:", "resource_type:")


@dataclass
class ProjectIndex:
    """What completion offers, from one manifest: names by resource type, tags, paths, sources and layers."""

    models: list[str] = field(default_factory=list)
    seeds: list[str] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # "source_name.table"
    tags: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)  # model, seed and snapshot files, project-relative
    folders: list[str] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)

    @property
    def nodes(self) -> list[str]:
        return sorted({*self.models, *self.seeds, *self.snapshots})


def index_from_manifest(manifest: dict[str, Any], project_name: str | None = None) -> ProjectIndex:
    by_type: dict[str, set[str]] = {"model": set(), "seed": set(), "snapshot": set()}
    tags: set[str] = set()
    paths: set[str] = set()
    for node in (manifest.get("nodes") or {}).values():
        kind = node.get("resource_type")
        if kind not in by_type or (project_name and node.get("package_name") != project_name):
            continue
        by_type[kind].add(node.get("name", ""))
        tags.update(node.get("tags") or ())
        if node.get("original_file_path"):
            paths.add(node["original_file_path"])
    sources = {f"{s.get('source_name')}.{s.get('name')}" for s in (manifest.get("sources") or {}).values()
               if not project_name or s.get("package_name") == project_name}
    for source in (manifest.get("sources") or {}).values():
        tags.update(source.get("tags") or ())
    return _index(by_type, sources, tags, paths)


def _index(by_type: dict[str, set[str]], sources: set[str], tags: set[str], paths: set[str]) -> ProjectIndex:
    paths = {p.replace("\\", "/") for p in paths}  # string work: pathlib costs ~15 us a path, too slow for big projects
    folders: set[str] = set()
    layers: set[str] = set()
    for p in paths:
        parts = p.split("/")
        folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
        if len(parts) > 2 and parts[0] == "models":
            layers.add(parts[1])
    return ProjectIndex(models=sorted(by_type["model"] - {""}), seeds=sorted(by_type["seed"] - {""}),
                        snapshots=sorted(by_type["snapshot"] - {""}), sources=sorted(sources), tags=sorted(tags),
                        paths=sorted(paths), folders=sorted(folders - {"", "."}),
                        layers=sorted(layers) or list(DEFAULT_LAYERS))


def index_from_files(project_dir: Path) -> ProjectIndex:
    """Before any dbt command wrote a manifest: model names from models/**/*.sql (no YAML parsing)."""
    models_dir = project_dir / "models"
    paths = {str(p.relative_to(project_dir)) for p in models_dir.rglob("*.sql")} if models_dir.is_dir() else set()
    names = {Path(p).stem for p in paths}
    return _index({"model": names, "seed": set(), "snapshot": set()}, set(), set(), paths)


class ManifestCache:
    """The project's index, rebuilt only when target/manifest.json changes (mtime and size)."""

    def __init__(self, project_dir: Path) -> None:
        self.project_dir = project_dir
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._index: ProjectIndex | None = None

    def get(self) -> ProjectIndex:
        path = self.project_dir / "target" / "manifest.json"
        try:
            stat = path.stat()
            stamp: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            stamp = None
        with self._lock:
            if self._index is not None and stamp == self._stamp and stamp is not None:
                return self._index
            index = self._read(path) if stamp is not None else None
            self._index, self._stamp = index or index_from_files(self.project_dir), stamp
            return self._index

    def _read(self, path: Path) -> ProjectIndex | None:
        try:
            manifest = read_manifest(self.project_dir)
            if manifest is None:
                raise ValueError("no readable manifest")
            project = (manifest.get("metadata") or {}).get("project_name")
            return index_from_manifest(manifest, project)
        except (OSError, ValueError, AttributeError):
            log.info("completion: %s unreadable; using file names", path, exc_info=True)
            return None


# ---- completers: one per argument kind -------------------------------------------------------------------------

Completer = Callable[[ProjectIndex, str], list[str]]
COMPLETERS: dict[str, Completer] = {}


def completer(kind: str) -> Callable[[Completer], Completer]:
    """Register the function that completes arguments of this kind."""

    def add(fn: Completer) -> Completer:
        COMPLETERS[kind] = fn
        return fn

    return add


def matching(candidates: Iterable[str], value: str) -> list[str]:
    """Candidates starting with value first (case-insensitive), then those containing it, each in order."""
    low = value.lower()
    listed = list(dict.fromkeys(candidates))
    starts = [c for c in listed if c.lower().startswith(low)]
    contains = [c for c in listed if low and low in c.lower() and not c.lower().startswith(low)]
    return starts + contains


@completer("model")
def complete_model(index: ProjectIndex, value: str) -> list[str]:
    return matching(index.models, value)


@completer("node")
def complete_node(index: ProjectIndex, value: str) -> list[str]:
    """Models, seeds and snapshots by name, and sources as 'source.table'."""
    return matching([*index.nodes, *index.sources], value)


@completer("layer")
def complete_layer(index: ProjectIndex, value: str) -> list[str]:
    return matching(index.layers, value)


@completer("path")
def complete_path(index: ProjectIndex, value: str) -> list[str]:
    return matching(index.paths, value)


@completer("selector")
def complete_selector(index: ProjectIndex, value: str) -> list[str]:
    """dbt node selection: names with graph operators (+name, name+), tag:, path:, source:, and method names."""
    core = value.lstrip("+").lstrip("0123456789")  # "+name", "2+name"
    lead = value[: len(value) - len(core)]
    if core.startswith("tag:"):
        return [lead + "tag:" + t for t in matching(index.tags, core[4:])]
    if core.startswith("path:"):
        return [lead + "path:" + p for p in matching([*index.folders, *index.paths], core[5:])]
    if core.startswith("source:"):
        names = sorted({s.split(".")[0] for s in index.sources}) + index.sources
        return [lead + "source:" + s for s in matching(names, core[7:])]
    if core.startswith("config.materialized:"):
        return [lead + "config.materialized:" + m for m in matching(("view", "table", "incremental", "ephemeral"), core[20:])]
    if core.startswith("resource_type:"):
        return [lead + "resource_type:" + m for m in matching(("model", "seed", "snapshot", "source", "test", "exposure"), core[14:])]
    methods = [m for m in SELECTOR_METHODS if m.startswith(core)] if not lead else []
    return [lead + n for n in matching(index.nodes, core)] + methods


# ---- dispatch ---------------------------------------------------------------------------------------------------

ValuesFor = Callable[[str], list[str]]  # typed value -> suggestions, for data the ProjectIndex does not hold
PROMPT_ARGUMENTS: dict[tuple[str, str], str] = {}  # (prompt name, argument) -> kind
TEMPLATE_ARGUMENTS: dict[tuple[str, str], str | ValuesFor] = {}  # (URI template, argument) -> kind or own function
KIND_VALUES: dict[str, ValuesFor] = {}  # kinds answered from data the ProjectIndex does not hold (agent names)


def register_kind(kind: str, values: ValuesFor) -> None:
    """Complete every argument of `kind` (prompt or template) with `values(typed) -> suggestions`, which must answer
    in milliseconds."""
    KIND_VALUES[kind] = values


def register_prompt_arguments(prompt: str, kinds: dict[str, str]) -> None:
    for argument, kind in kinds.items():
        PROMPT_ARGUMENTS[(prompt, argument)] = kind


def register_template_argument(uri_template: str, argument: str, kind: str | ValuesFor) -> None:
    """Complete `argument` of the resource template `uri_template` (as listed) with the completer of `kind`, or with
    `kind(value) -> list[str]` itself: a closure over what it needs (e.g. the run store of the app context, for
    `dbt://run/{run_id}`), which must answer in milliseconds (cache what is slow to read)."""
    TEMPLATE_ARGUMENTS[(uri_template, argument)] = kind


def complete(cache: ManifestCache, ref: PromptReference | ResourceTemplateReference, argument: CompletionArgument,
             context: CompletionContext | None = None) -> Completion:
    """The values for one argument; an argument of no known kind gets none (not an error)."""
    kind: str | ValuesFor | None
    if isinstance(ref, PromptReference):
        kind = PROMPT_ARGUMENTS.get((ref.name, argument.name))
    else:
        kind = TEMPLATE_ARGUMENTS.get((ref.uri, argument.name))
    if isinstance(kind, str) and kind in KIND_VALUES:
        kind = KIND_VALUES[kind]
    if callable(kind):
        values = list(kind(argument.value or ""))
    elif (fn := COMPLETERS.get(kind or "")) is not None:
        values = fn(cache.get(), argument.value or "")
    else:
        return Completion(values=[], total=0, has_more=False)
    return Completion(values=values[:MAX_VALUES], total=len(values), has_more=len(values) > MAX_VALUES)


def install_completion(app: MCPServer, project_dir: Path) -> ManifestCache:
    """Serve completion/complete on `app` for the project at project_dir."""
    cache = ManifestCache(Path(os.path.abspath(project_dir)))

    @app.completion()
    async def handle(ref: PromptReference | ResourceTemplateReference, argument: CompletionArgument,
                     context: CompletionContext | None) -> Completion:
        # in a worker thread: a changed manifest of a big project takes a moment to read, and must not stall the loop
        return await anyio.to_thread.run_sync(complete, cache, ref, argument, context)

    return cache
