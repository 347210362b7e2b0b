"""Hybrid ranking: small embedding models handle snake_case identifiers poorly, so exact identifier matches count too."""

from __future__ import annotations

import re
from dataclasses import dataclass

IDENTIFIER_WEIGHT = 0.35
_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*[A-Za-z0-9]")


def identifiers(query: str) -> list[str]:
    """Tokens that look like dbt names: stg_orders, order_id, fct-orders-config, raw.orders, dim_customers_v2."""
    found: list[str] = []
    for token in _TOKEN.findall(query):
        token = token.strip(".-")
        if len(token) >= 4 and any(sep in token for sep in "_.-") and token.lower() not in found:
            found.append(token.lower())
    return found


def identifier_score(idents: list[str], text: str, key: str) -> float:
    """Share of the query's identifiers that appear as whole words in the memory's text or key."""
    if not idents:
        return 0.0
    haystack = f"{text}\n{key}".lower()
    hits = 0
    for ident in idents:
        if re.search(rf"(?<![a-z0-9_]){re.escape(ident)}(?![a-z0-9_])", haystack):
            hits += 1
    return hits / len(idents)


@dataclass(frozen=True)
class Scored:
    id: str
    score: float
    semantic: float
    keyword: float


def combine(semantic: dict[str, float], keyword: dict[str, float]) -> list[Scored]:
    """Final score = cosine similarity + IDENTIFIER_WEIGHT x identifier match share, best first."""
    ids = set(semantic) | set(keyword)
    scored = [Scored(i, semantic.get(i, 0.0) + IDENTIFIER_WEIGHT * keyword.get(i, 0.0), semantic.get(i, 0.0), keyword.get(i, 0.0)) for i in ids]
    return sorted(scored, key=lambda s: (-s.score, s.id))
