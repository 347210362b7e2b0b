"""What the lineage tools share: the project, and the lineage graph of the warm manifest, reloaded when it changes."""

from __future__ import annotations

import hashlib
import threading

from server.context import AppContext
from tools.lineage.column_service import ColumnService, column_service
from tools.lineage.graph import LineageGraph


class LineageBase:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.root = ctx.engine.project_dir.resolve()
        self._lock = threading.Lock()
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        self.baselines = ctx.settings.data_dir / "tracking" / f"{self.root.name}-{digest}.json"

    def column_service(self) -> ColumnService:
        return column_service(self.ctx)

    async def graph(self, fresh: bool = False) -> LineageGraph:
        return await self.column_service().graph(fresh)

    @staticmethod
    def _project_name(graph: LineageGraph) -> str | None:
        for node in graph.nodes.values():
            if node["resource_type"] == "model":
                return node.get("package")
        return None
