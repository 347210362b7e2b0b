"""orjson where it is installed (it comes with the memory extra's chromadb), else the standard library: the same
values either way. Used where megabytes of JSON cross per call on a big project: the dbt worker's manifest summary
(tens of thousands of small dicts), the server reading it, and project_check's per-model cache keys."""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - depends on the installed extras
    orjson = None  # type: ignore[assignment]


def loads(data: str | bytes) -> Any:
    """json.loads; orjson refuses what the standard library writes for NaN/Infinity, so those fall back to it."""
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


def dumps_plain(value: Any) -> str:
    """JSON text of str/int/float/bool/None/list/dict values only (what the manifest summary holds)."""
    if orjson is not None:
        try:
            return orjson.dumps(value).decode()
        except TypeError:
            pass
    return json.dumps(value, default=str)


def digest_text(value: Any) -> bytes:
    """A deterministic serialisation for cache keys (sorted keys; anything else as str()), not for reading back."""
    if orjson is not None:
        try:
            return orjson.dumps(value, default=str, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
                                | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME)
        except TypeError:
            pass
    return json.dumps(value, sort_keys=True, default=str).encode()
