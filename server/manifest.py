"""target/manifest.json as dbt last wrote it, parsed once per change for the whole process.

Several read-side features want the raw manifest (resources, completion, the files and git toolsets); on a big
project it is megabytes of JSON, so they share one parse, keyed by the file's (mtime, size). Never starts dbt.
Callers must not mutate what they get.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

_lock = threading.Lock()
_cache: dict[Path, tuple[tuple[int, int], dict[str, Any]]] = {}


def read_manifest(project_dir: Path) -> dict[str, Any] | None:
    """The parsed manifest of `project_dir`, or None when there is none (or it cannot be read)."""
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
