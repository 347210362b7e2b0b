"""The full result of each dbt call, kept on disk so a result cut by the output budget can be read back whole
(the MCP resource `dbt://run/{id}`, server/resources/).

One JSON file per call in `<data_dir>/runs/<project>-<hash>/<id>.json`, written atomically (temp file + rename); the
last KEEP files are kept. An id is `<epoch ms, 13 digits>-<4 hex>`: ids sort by time, and nothing else is a valid id,
so a crafted id (`../x`, an absolute path) can never name a file outside the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

KEEP = 20
RUN_ID = re.compile(r"^[0-9]{13}-[0-9a-f]{4}$")


class RunStore:
    def __init__(self, data_dir: Path, project_dir: Path, keep: int = KEEP) -> None:
        digest = hashlib.sha256(str(project_dir.resolve()).encode()).hexdigest()[:12]
        self.folder = data_dir / "runs" / f"{project_dir.name}-{digest}"
        self.keep = keep

    @staticmethod
    def valid(run_id: str) -> bool:
        return bool(RUN_ID.match(run_id))

    def save(self, result: dict[str, Any]) -> str | None:
        """Store one call's full result; its id, or None when the data dir cannot be written (never fails a dbt call)."""
        run_id = f"{int(time.time() * 1000):013d}-{secrets.token_hex(2)}"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / f".{run_id}.{os.getpid()}.tmp"
            tmp.write_text(json.dumps({"run_id": run_id, "at": round(time.time(), 3), **result}, default=str), encoding="utf-8")
            os.replace(tmp, self.folder / f"{run_id}.json")
            for old in self.ids()[:-self.keep]:
                (self.folder / f"{old}.json").unlink(missing_ok=True)
        except OSError:
            return None
        return run_id

    def ids(self) -> list[str]:
        """Stored run ids, oldest first."""
        try:
            names = [p.name[:-5] for p in self.folder.iterdir() if p.name.endswith(".json")]
        except FileNotFoundError:
            return []
        return sorted(n for n in names if self.valid(n))

    def latest(self) -> str | None:
        ids = self.ids()
        return ids[-1] if ids else None

    def load(self, run_id: str) -> str | None:
        """The stored JSON text of a run, or None (an invalid or unknown id, or one pruned since)."""
        if not self.valid(run_id):
            return None
        try:
            return (self.folder / f"{run_id}.json").read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError):
            return None
