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


_RUN = re.compile(r"[a-z0-9_.:+\-]+")
_SEPARATORS = ".:-+"


def index_tokens(text: str) -> set[str]:
    """Every string the identifier check could match as a whole word in `text`, among those identifiers() yields.

    A superset is harmless (the score is computed afterwards); a missing token would hide a memory from its name.
    """
    tokens: set[str] = set()
    for run in _RUN.findall(text.lower()):
        if not any(sep in run for sep in "_.:-"):
            continue
        seps = [i for i, ch in enumerate(run) if ch in _SEPARATORS]
        starts = {0, *seps, *(i + 1 for i in seps)}
        ends = {len(run), *seps}
        for start in starts:
            for end in ends:
                token = run[start:end]
                if end - start >= 4 and (token.startswith("--") or any(sep in token for sep in "_.-:")):
                    tokens.add(token)
    return tokens


class IdentifierIndex:
    """dbt name -> memory ids, kept beside the store so that a query naming `stg_orders` needs no text scan."""

    def __init__(self) -> None:
        self._ids: dict[str, set[str]] = {}
        self._tokens: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._tokens)

    def put(self, memory_id: str, text: str) -> None:
        self.remove(memory_id)
        tokens = index_tokens(f"{text}\n{memory_id}")
        self._tokens[memory_id] = tokens
        for token in tokens:
            self._ids.setdefault(token, set()).add(memory_id)

    def remove(self, memory_id: str) -> None:
        for token in self._tokens.pop(memory_id, ()):
            ids = self._ids.get(token)
            if ids is not None:
                ids.discard(memory_id)
                if not ids:
                    del self._ids[token]

    def lookup(self, ident: str) -> set[str]:
        return self._ids.get(ident.lower().rstrip("+"), set())


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
