"""What the lineage tools share: the project, and the lineage graph of the warm manifest, reloaded when it changes."""

from __future__ import annotations

import hashlib
import threading

from server.context import AppContext
from server.errors import ToolFailure
from tools.lineage.graph import LineageGraph


class LineageBase:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.root = ctx.engine.project_dir.resolve()
        self._graph: LineageGraph | None = None
        self._stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        self.baselines = ctx.settings.data_dir / "tracking" / f"{self.root.name}-{digest}.json"

    async def graph(self, fresh: bool = False) -> LineageGraph:
        """The manifest's graph; `fresh` first lets the worker parse files changed since (what column tools need: the
        file on disk, not the last parse)."""
        path = self.root / "target" / "manifest.json"
        if fresh or not path.is_file():  # the worker writes it with its parse; wait for that
            await self.ctx.engine.invoke(["describe"], timeout=self.ctx.settings.timeout_seconds)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ToolFailure("manifest_missing", "No target/manifest.json after parsing.", "Call dbt_parse and read its error.") from None
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            if self._graph is None or stamp != self._stamp:
                self._graph, self._stamp = LineageGraph.load(path), stamp
            return self._graph

    @staticmethod
    def _project_name(graph: LineageGraph) -> str | None:
        for node in graph.nodes.values():
            if node["resource_type"] == "model":
                return node.get("package")
        return None
