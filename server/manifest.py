"""target/manifest.json as dbt last wrote it, parsed once per change for the whole process.

Several read-side features want the raw manifest (resources, completion, the files and git toolsets); on a big
project it is megabytes of JSON, so they share one parse, keyed by the file's (mtime, size). Never starts dbt.
Callers must not mutate what they get.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

PENDING_NAME = "manifest.json.pending"  # tools/dbt/engine/incremental.py: a forked writer is writing manifest.json
PENDING_MAX_S = 30.0

_lock = threading.Lock()


def wait_until_written(project_dir: Path, timeout: float = PENDING_MAX_S) -> None:
    """While the dbt worker's forked writer is still at work, manifest.json on disk is the one from before the last
    edit: wait for the new one. A marker older than `timeout` is a leftover of a killed writer and is ignored."""
    marker = Path(project_dir) / "target" / PENDING_NAME
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if time.time() - marker.stat().st_mtime > timeout:
                return
        except OSError:
            return
        time.sleep(0.05)
_cache: dict[Path, tuple[tuple[int, int], dict[str, Any]]] = {}


def read_manifest(project_dir: Path) -> dict[str, Any] | None:
    """The parsed manifest of `project_dir`, or None when there is none (or it cannot be read). Waits while the
    worker is still writing a newer one (at most a few seconds, right after an edit was parsed)."""
    wait_until_written(project_dir)
    path = Path(project_dir) / "target" / "manifest.json"
    try:
        st = path.stat()
    except OSError:
        return None
    stamp = (st.st_mtime_ns, st.st_size)
    with _lock:
        cached = _cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            data = path.read_bytes()
            try:
                import orjson

                manifest = orjson.loads(data)
            except ImportError:
                manifest = json.loads(data)
        except (OSError, ValueError):
            return None
        if not isinstance(manifest, dict):
            return None
        _cache[path] = (stamp, manifest)
        return manifest
