"""dbt's linked graph, kept in the worker while its manifest is unchanged.

Every dbt command that selects nodes starts with `Compiler.compile(manifest)` (dbt/compilation.py, called from
`ConfiguredTask.compile_manifest`, and from `BuildTask.compile_manifest` with `add_test_edges=True`): link every node
of the manifest into a networkx graph, look for a cycle, summarize the graph to target/graph_summary.json. On a
3,015-node project that is 80 % of a warm one-model `dbt compile` (the cycle search alone 45 %), and it gives the same
graph every time the manifest has not changed.

`install(current)` wraps `Compiler.compile` in this process. When the manifest dbt compiles is the worker's own
(`current()` returns it with the worker's `graph_generation`, bumped whenever the manifest is replaced, or re-parsed in
place with any edge changed: Worker.note_graph), the graph linked for that generation is used again; anything else (another manifest, a new generation) links
anew. What changes the graph within one generation is handled here:
- `build` adds test edges (a second graph per generation, derived from the first as dbt does: linked, then test edges);
- an inline query (`compile --inline`, `show --inline`) adds a `sql_operation.*` node to the manifest for one call:
  the cached graph is copied and the node linked into the copy (nothing can depend on it, so no cycle is possible;
  dbt's check is still run from it).
The cached graphs are frozen (networkx raises on any change), so a dbt change that mutated the graph it was given
would fail loudly instead of serving a wrong graph later.

graph_summary.json (diagnostics nothing here reads) is written only when dbt writes its JSON artifacts: the read-type
commands run with --no-write-json (invocation.FAST_FLAGS) and skip it, and the summary is the costliest step left.
"""

from __future__ import annotations

import json
import os
import weakref
from collections.abc import Callable
from typing import Any

INLINE_PREFIX = "sql_operation."

_original_compile: Callable[..., Any] | None = None
_cache: GraphCache | None = None


class GraphCache:
    """The linked graphs of one manifest generation: `base` (dbt's link_graph, cycle-checked, no inline node) and
    `with_tests` (base plus build's test edges), with their graph summaries, each made on first use."""

    def __init__(self, current: Callable[[], tuple[Any, int]]) -> None:
        self.current = current
        self.manifest: weakref.ref[Any] | None = None
        self.generation: int | None = None
        self.base: Any = None
        self.with_tests: dict[bool, Any] = {}  # USE_FAST_TEST_EDGES -> graph
        self.summaries: dict[tuple[str, bool], dict[int, dict[str, Any]]] = {}
        self.hits = 0
        self.misses = 0

    def _reset(self, manifest: Any, generation: int) -> None:
        self.manifest = weakref.ref(manifest)
        self.generation = generation
        self.base = None
        self.with_tests = {}
        self.summaries = {}

    def compile(self, compiler: Any, manifest: Any, write: bool = True, add_test_edges: bool = False) -> Any:
        """Compiler.compile with the linked graph taken from the cache where it is valid (same contract and effects,
        apart from graph_summary.json under --no-write-json)."""
        worker_manifest, generation = self.current()
        inline = [uid for uid in manifest.nodes if uid.startswith(INLINE_PREFIX)]
        if manifest is not worker_manifest or (inline and add_test_edges):
            self.misses += 1
            return _original_compile(compiler, manifest, write, add_test_edges)  # type: ignore[misc]
        if self.manifest is None or self.manifest() is not manifest or self.generation != generation:
            self._reset(manifest, generation)

        import networkx as nx
        from dbt.compilation import Linker, _generate_stats, print_compile_stats
        from dbt.flags import get_flags
        from dbt.graph import Graph

        compiler.initialize()
        flags = get_flags()
        write_json = bool(getattr(flags, "WRITE_JSON", True))
        if self.base is None:
            self.misses += 1
            linker = Linker()
            linker.link_graph(manifest)  # raises on a missing dependency or a cycle: nothing is cached
            graph = linker.graph
            base = graph.copy() if inline else graph
            base.remove_nodes_from(inline)
            self.base = nx.freeze(base)
        else:
            self.hits += 1
            graph = self.base
            if inline:
                graph = self.base.copy()  # unfrozen
                linker = Linker()
                linker.graph = graph
                for uid in inline:
                    linker.link_node(manifest.nodes[uid], manifest)
                try:
                    cycle = nx.find_cycle(graph, source=inline)
                except nx.NetworkXNoCycle:
                    cycle = None
                if cycle:
                    raise RuntimeError("Found a cycle: {}".format(" --> ".join(c[0] for c in cycle)))
        summaries: dict[str, Any] = {}
        if write_json:
            summaries["linked"] = self._summary("linked", graph, manifest, cacheable=not inline)

        if add_test_edges:  # only the build command; dbt builds the parent/child maps for it every time
            manifest.build_parent_and_child_maps()
            fast = bool(getattr(flags, "USE_FAST_TEST_EDGES", False))
            if fast not in self.with_tests:
                tested = Linker()
                tested.graph = self.base.copy()
                tested.add_test_edges(manifest)
                self.with_tests[fast] = nx.freeze(tested.graph)
            graph = self.with_tests[fast]
            if write_json:
                summaries["with_test_edges"] = self._summary(f"with_test_edges-{fast}", graph, manifest)

        if write_json:
            self._write_summary(compiler, summaries)
        if write:
            linker = Linker()
            linker.graph = graph
            compiler.write_graph_file(linker, manifest)  # graph.gpickle, only when dbt writes JSON artifacts
        if compiler.config.args.which != "list":
            print_compile_stats(_generate_stats(manifest))
        return Graph(graph)

    def _summary(self, name: str, graph: Any, manifest: Any, cacheable: bool = True) -> dict[int, dict[str, Any]]:
        from dbt.compilation import Linker

        key = (name, cacheable)
        if cacheable and key in self.summaries:
            return self.summaries[key]
        linker = Linker()
        linker.graph = graph
        summary = linker.get_graph_summary(manifest)
        if cacheable:
            self.summaries[key] = summary
        return summary

    @staticmethod
    def _write_summary(compiler: Any, summaries: dict[str, Any]) -> None:
        from dbt_common.events.functions import fire_event
        from dbt_common.events.types import Note
        from dbt_common.invocation import get_invocation_id

        out = {"_invocation_id": get_invocation_id(), **summaries}
        with open(os.path.join(compiler.config.project_target_path, "graph_summary.json"), "w") as stream:
            try:
                stream.write(json.dumps(out))
            except Exception as exc:  # non-essential, as in dbt
                fire_event(Note(msg=f"An error was encountered writing the graph summary information: {exc}"))


def install(current: Callable[[], tuple[Any, int]]) -> GraphCache:
    """Wrap dbt's Compiler.compile in this process; `current()` returns (the worker's manifest, its generation)."""
    global _original_compile, _cache
    from dbt.compilation import Compiler

    if _original_compile is None:
        _original_compile = Compiler.compile

        def compile(self: Any, manifest: Any, write: bool = True, add_test_edges: bool = False) -> Any:
            if _cache is None:
                return _original_compile(self, manifest, write, add_test_edges)  # type: ignore[misc]
            return _cache.compile(self, manifest, write, add_test_edges)

        Compiler.compile = compile  # type: ignore[method-assign]
    _cache = GraphCache(current)
    return _cache
