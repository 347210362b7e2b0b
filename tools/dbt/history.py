"""The server's own record of the dbt runs it made, for project_metrics (build durations, pass rates over time).

One JSON line per executed command (run, build, test, seed, snapshot, source freshness, retry) in
`<data_dir>/history/<project>-<hash>.jsonl`: when, what, how long, and each node's status and time. dbt's own
run_results.json only holds the last invocation; this keeps the series. Appends are single writes of one line.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

RECORDED = {"run", "build", "test", "seed", "snapshot", "source freshness", "retry"}
KEEP_LINES = 5000


class RunHistory:
    def __init__(self, data_dir: Path, project_dir: Path) -> None:
        digest = hashlib.sha256(str(project_dir.resolve()).encode()).hexdigest()[:12]
        self.path = data_dir / "history" / f"{project_dir.name}-{digest}.jsonl"

    def record(self, command: str, success: bool, elapsed_s: float, nodes: list[dict[str, Any]]) -> None:
        if command not in RECORDED:
            return
        entry = {"at": round(time.time(), 3), "command": command, "success": success, "elapsed_s": round(elapsed_s, 4),
                 "nodes": [{"id": n["unique_id"], "type": n["resource_type"], "status": n["status"], "s": round(n.get("execution_time_s") or 0.0, 4)}
                           for n in nodes]}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry) + "\n")
        except OSError:
            pass  # metrics are a convenience: never fail a dbt call over them

    def load(self) -> list[dict[str, Any]]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()[-KEEP_LINES:]
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a crash
        return out
