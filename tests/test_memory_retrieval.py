"""Retrieval quality of the memory store on a labelled set of dbt memories, through a real on-disk Chroma store.

tests/data/memory_retrieval.json holds realistic analytics-engineering memories over several projects and
queries of three kinds: paraphrases (different words than the memory), identifier queries (model and column
names, dbt selectors, config keys) and mixed ones. Each query lists the keys that answer it. We store every
memory in one batch, run every query with limit=5, and measure recall@5 (share of queries with a relevant key
in the top 5) and MRR (mean of 1/rank of the first relevant key, 0 when none is in the top 5).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from memory.keys import parse_key

DATA = Path(__file__).resolve().parent / "data" / "memory_retrieval.json"
LIMIT = 5
MIN_RECALL = 0.9
MIN_MRR = 0.8
KINDS = ("paraphrase", "identifier", "mixed")


def load_set() -> dict:
    return json.loads(DATA.read_text())


@dataclass
class Outcome:
    query: str
    kind: str
    relevant: list[str]
    got: list[tuple[str, float | None, float | None, float | None]]  # key, score, semantic, keyword

    @property
    def rank(self) -> int | None:
        for position, (key, *_scores) in enumerate(self.got, start=1):
            if key in self.relevant:
                return position
        return None

    @property
    def reciprocal_rank(self) -> float:
        return 0.0 if self.rank is None else 1.0 / self.rank


def summary(outcomes: list[Outcome]) -> tuple[float, float]:
    if not outcomes:
        return float("nan"), float("nan")
    recall = sum(o.rank is not None for o in outcomes) / len(outcomes)
    mrr = sum(o.reciprocal_rank for o in outcomes) / len(outcomes)
    return recall, mrr


def report(outcomes: list[Outcome], total_memories: int) -> str:
    lines = [f"memory retrieval: {total_memories} memories, {len(outcomes)} queries, limit={LIMIT}"]
    for kind in KINDS:
        part = [o for o in outcomes if o.kind == kind]
        recall, mrr = summary(part)
        lines.append(f"  {kind:<11} n={len(part):<3} recall@{LIMIT}={recall:.3f}  MRR={mrr:.3f}")
    recall, mrr = summary(outcomes)
    lines.append(f"  {'overall':<11} n={len(outcomes):<3} recall@{LIMIT}={recall:.3f}  MRR={mrr:.3f}")
    misses = [o for o in outcomes if o.rank != 1]
    lines.append(f"queries whose first result is not relevant ({len(misses)}):")
    for o in misses:
        where = "MISS" if o.rank is None else f"rank {o.rank}"
        lines.append(f"  [{o.kind}] {o.query!r}: {where}; wanted {', '.join(o.relevant)}")
        for position, (key, score, semantic, keyword) in enumerate(o.got, start=1):
            mark = "*" if key in o.relevant else " "
            lines.append(f"      {mark}{position}. {key}  score={score} sem={semantic} kw={keyword}")
    return "\n".join(lines)


def test_retrieval_set_is_well_formed() -> None:
    data = load_set()
    keys = [m["key"] for m in data["memories"]]
    assert len(keys) >= 70 and len(set(keys)) == len(keys)
    for memory in data["memories"]:
        parse_key(memory["key"])
        assert memory["text"].strip()
        assert {"category", "layer", "project", "namespace"} <= set(memory["metadata"])
        assert memory["metadata"]["layer"] in ("short_term", "mid_term", "long_term")
    queries = data["queries"]
    assert len(queries) >= 50
    assert {q["kind"] for q in queries} <= set(KINDS)
    for q in queries:
        assert q["relevant"] and set(q["relevant"]) <= set(keys), q
    texts = [q["query"] for q in queries]
    assert len(set(texts)) == len(texts)


@pytest.mark.e2e
def test_retrieval_quality(tmp_path: Path) -> None:
    import chromadb  # noqa: F401  (a missing memory extra fails the test; it is never skipped)
    import sentence_transformers  # noqa: F401
    from memory.store import MemoryStore, NewMemory

    data = load_set()
    store = MemoryStore(path=tmp_path / "memory", url=None, model="bundled")
    stored = store.store([NewMemory(parse_key(m["key"]), m["text"], dict(m["metadata"])) for m in data["memories"]])
    assert len(stored) == len(data["memories"])
    assert store.stats()["total"] == len(data["memories"])

    outcomes: list[Outcome] = []
    for q in data["queries"]:
        hits = store.search(q["query"], limit=LIMIT, filters={}, pattern=None, min_score=None)
        assert len(hits) <= LIMIT
        got = [(h.key, h.score, h.semantic_score, h.keyword_score) for h in hits]
        outcomes.append(Outcome(q["query"], q["kind"], q["relevant"], got))

    text = report(outcomes, len(data["memories"]))
    print("\n" + text)
    recall, mrr = summary(outcomes)
    assert recall >= MIN_RECALL and mrr >= MIN_MRR, (
        f"recall@{LIMIT}={recall:.3f} (need {MIN_RECALL}), MRR={mrr:.3f} (need {MIN_MRR})\n{text}"
    )
