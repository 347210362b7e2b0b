"""Hybrid ranking: small embedding models handle snake_case identifiers poorly, so exact names and words count too.

score = cosine similarity
      + IDENTIFIER_WEIGHT x share of the query's dbt-style names found as whole words in the memory or its key
      + WORD_WEIGHT x BM25 of the query's ordinary words over the candidate set, scaled so the best candidate has 1
Weights were chosen on tests/data/memory_retrieval.json (see bench/RESULTS.md for the measured effect).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

IDENTIFIER_WEIGHT = 0.35
WORD_WEIGHT = 0.1
# dbt names and selectors: stg_orders, raw.orders, fct-orders-config, tag:daily, state:modified+, --full-refresh
_TOKEN = re.compile(r"(?:--)?[A-Za-z_][A-Za-z0-9_.:\-]*[A-Za-z0-9]\+?")
_WORD = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset(
    "a an and are as at be but by can do does for from how i if in into is it its me my not of on or our so "
    "that the their then there these this to up use used using was we what when where which who why will "
    "with you your should would could get make all any".split()
)


def identifiers(query: str) -> list[str]:
    """Tokens that look like dbt names or selectors, lower-cased, in query order, without duplicates."""
    found: list[str] = []
    for token in _TOKEN.findall(query):
        flag = token.startswith("--")
        token = token.rstrip(".-:") if not token.endswith("+") else token
        if len(token) >= 4 and (flag or any(sep in token for sep in "_.-:")) and token.lower() not in found:
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


def words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS and len(w) > 1]


def word_scores(query: str, documents: dict[str, str], k1: float = 1.2, b: float = 0.75) -> dict[str, float]:
    """BM25 of the query's words over the candidates, normalised so the best candidate scores 1."""
    terms = set(words(query))
    if not terms or not documents:
        return {doc_id: 0.0 for doc_id in documents}
    bags = {doc_id: Counter(words(text)) for doc_id, text in documents.items()}
    lengths = {doc_id: sum(bag.values()) for doc_id, bag in bags.items()}
    average = sum(lengths.values()) / len(lengths) or 1.0
    count = len(bags)
    frequency = {t: sum(1 for bag in bags.values() if t in bag) for t in terms}
    raw: dict[str, float] = {}
    for doc_id, bag in bags.items():
        score = 0.0
        for term in terms:
            tf = bag.get(term, 0)
            if tf:
                idf = math.log(1 + (count - frequency[term] + 0.5) / (frequency[term] + 0.5))
                score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * lengths[doc_id] / average))
        raw[doc_id] = score
    best = max(raw.values())
    return {doc_id: (score / best if best > 0 else 0.0) for doc_id, score in raw.items()}


@dataclass(frozen=True)
class Scored:
    id: str
    score: float
    semantic: float
    keyword: float


def combine(semantic: dict[str, float], keyword: dict[str, float], lexical: dict[str, float] | None = None) -> list[Scored]:
    """Best first. `keyword` is the identifier share, `lexical` the normalised word score."""
    lexical = lexical or {}
    ids = set(semantic) | set(keyword)
    scored = [
        Scored(
            i,
            semantic.get(i, 0.0) + IDENTIFIER_WEIGHT * keyword.get(i, 0.0) + WORD_WEIGHT * lexical.get(i, 0.0),
            semantic.get(i, 0.0),
            keyword.get(i, 0.0),
        )
        for i in ids
    ]
    return sorted(scored, key=lambda s: (-s.score, s.id))
