"""The memory store on a real on-disk Chroma store with the real bundled model."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from conftest import run_python
from memory.keys import parse_key, parse_pattern
from memory.store import MemoryStore, NewMemory
from server.errors import ToolFailure

pytestmark = pytest.mark.e2e

MEMORIES = {
    "dbt-analytics-engineer/shop/fct-orders-config": "fct_orders is incremental, merge on order_id, filtered on updated_at",
    "dbt-analytics-engineer/shop/testing-patterns": "Composite keys: test unique_combination_of_columns on order_id and line_number",
    "dbt-analytics-engineer/finance/testing-patterns": "Payments: accepted_range on amount >= 0, not_null on payment_id",
    "dbt-analytics-engineer/finance/stg-payments-fix": "stg_payments failed on null currency; coalesce to 'USD' in staging",
    "data-pipeline-engineer/shop/airflow-schedule": "The shop DAG runs dbt build hourly after the raw load lands",
}


def new(key: str, text: str, **meta: str) -> NewMemory:
    return NewMemory(key=parse_key(key), text=text, metadata=meta)


@pytest.fixture
def store(tmp_path: Path) -> MemoryStore:
    memory = MemoryStore(path=tmp_path / "memory", url=None)
    memory.store([new(k, v, category="testing-pattern" if "testing" in k else "model-config", project=k.split("/")[1])
                  for k, v in MEMORIES.items()])
    return memory


def test_upsert_by_key_and_distinct_keys(store: MemoryStore) -> None:
    key = "dbt-analytics-engineer/shop/fct-orders-config"
    assert store.retrieve(parse_pattern(key))[0].metadata["category"] == "model-config"
    store.store([new(key, "fct_orders now uses delete+insert on order_id")])
    found = store.retrieve(parse_pattern(key))
    assert [m.text for m in found] == ["fct_orders now uses delete+insert on order_id"]
    assert "category" not in found[0].metadata  # replaced whole, not merged with the old metadata
    store.store([new("dbt-analytics-engineer/shop/copy-a", "same text"), new("dbt-analytics-engineer/shop/copy-b", "same text")])
    assert {m.key for m in store.retrieve(parse_pattern("dbt-analytics-engineer/shop/copy-*"))} == {
        "dbt-analytics-engineer/shop/copy-a", "dbt-analytics-engineer/shop/copy-b"}
    assert store.stats()["total"] == len(MEMORIES) + 2


def test_pattern_retrieval_and_filters(store: MemoryStore) -> None:
    testing = store.retrieve(parse_pattern("dbt-analytics-engineer/*/testing-patterns"))
    assert [m.key for m in testing] == ["dbt-analytics-engineer/finance/testing-patterns", "dbt-analytics-engineer/shop/testing-patterns"]
    assert len(store.retrieve(parse_pattern("*/shop/*"))) == 3
    hits = store.search("test ranges of amounts", 5, {"category": "testing-pattern"}, None, None)
    assert hits and all(h.metadata["category"] == "testing-pattern" for h in hits)
    only_finance = store.search("fix for a failing model", 5, {"project": "finance"}, None, None)
    assert {h.key.split("/")[1] for h in only_finance} == {"finance"}
    by_pattern = store.search("schedule", 5, {}, parse_pattern("data-pipeline-engineer/*/*"), None)
    assert [h.key for h in by_pattern] == ["data-pipeline-engineer/shop/airflow-schedule"]
    ranked = store.search("testing pattern for amounts", 5, {}, None, None)
    scores = [h.score for h in ranked]
    assert len(scores) >= 2 and scores[0] > scores[1]
    cut = (scores[0] + scores[1]) / 2  # between two real scores: only the hits above it stay
    assert [h.key for h in store.search("testing pattern for amounts", 5, {}, None, cut)] == [h.key for h in ranked if h.score >= cut]
    assert len(store.search("testing pattern for amounts", 5, {}, None, cut)) < len(ranked)


def test_identifier_query_finds_exact_name(store: MemoryStore) -> None:
    hits = store.search("stg_payments", 3, {}, None, None)
    assert hits[0].key == "dbt-analytics-engineer/finance/stg-payments-fix" and hits[0].keyword_score == 1.0


def test_expiry_never_returned_and_purged(store: MemoryStore) -> None:
    two_days_ago = time.time() - 2 * 24 * 3600
    store.store([new("dbt-analytics-engineer/shop/old-note", "a short-term note about fct_orders", layer="short_term")], now=two_days_ago)
    store.store([new("dbt-analytics-engineer/shop/fresh-note", "a short-term note about fct_orders", layer="short_term")])
    assert [m.key for m in store.retrieve(parse_pattern("dbt-analytics-engineer/shop/*-note"))] == ["dbt-analytics-engineer/shop/fresh-note"]
    assert "dbt-analytics-engineer/shop/old-note" not in {h.key for h in store.search("short-term note fct_orders", 10, {}, None, None)}
    assert store.delete(parse_pattern("dbt-analytics-engineer/shop/old-note"), dry_run=True) == []  # purged on the later store
    fresh = store.retrieve(parse_pattern("dbt-analytics-engineer/shop/fresh-note"))[0].metadata
    assert fresh["expires_at"] - fresh["created_at"] == 24 * 3600


def test_delete_dry_run_then_delete(store: MemoryStore) -> None:
    pattern = parse_pattern("dbt-analytics-engineer/*/testing-patterns")
    assert len(store.delete(pattern, dry_run=True)) == 2
    assert len(store.retrieve(pattern)) == 2
    assert len(store.delete(pattern, dry_run=False)) == 2
    assert store.retrieve(pattern) == []


def test_model_mismatch_is_a_clear_error(store: MemoryStore, tmp_path: Path) -> None:
    other = MemoryStore(path=tmp_path / "memory", url=None, model="/models/some-other-model")
    with pytest.raises(ToolFailure) as failure:
        other.retrieve(parse_pattern("*/*/*"))
    assert failure.value.code == "memory_model_mismatch" and "DBT_AE_MEMORY_MODEL" in failure.value.hint


SEARCH_SCRIPT = """
import json, sys
from pathlib import Path
from memory.store import MemoryStore
store = MemoryStore(path=Path(sys.argv[1]), url=None)
hits = store.search(sys.argv[2], 5, {}, None, None)
print(json.dumps([[h.key, h.score] for h in hits]))
"""


def test_reopen_in_new_process_same_results(store: MemoryStore, tmp_path: Path) -> None:
    query = "how is the orders fact table loaded incrementally"
    here = [[h.key, h.score] for h in store.search(query, 5, {}, None, None)]
    out = run_python(SEARCH_SCRIPT, str(tmp_path / "memory"), query)
    assert out.returncode == 0, out.stderr[-2000:]
    there = json.loads(out.stdout.strip().splitlines()[-1])
    assert [k for k, _ in there] == [k for k, _ in here]
    assert [s for _, s in there] == pytest.approx([s for _, s in here], abs=1e-4)


def test_unloadable_model_store_is_a_typed_error_and_writes_nothing(tmp_path: Path) -> None:
    broken = MemoryStore(path=tmp_path / "memory", url=None, model=str(tmp_path / "no-such-model"))
    broken.embedder.start()
    broken.embedder._loaded.wait(60)
    with pytest.raises(ToolFailure) as failure:
        broken.store([new("dbt-analytics-engineer/shop/x", "anything")])
    assert failure.value.code == "memory_unavailable" and "DBT_AE_MEMORY_MODEL" in failure.value.hint
    assert broken.pending() == 0


KILLED_AFTER_ACK = """
import fcntl, os, signal, sys
from pathlib import Path
from memory.keys import parse_key
from memory.store import MemoryStore, NewMemory
path = Path(sys.argv[1])
path.mkdir(parents=True, exist_ok=True)
# Hold the store's indexer lock, as another process indexing would: every acknowledged row stays in the journal.
indexer_lock = open(path / ".dbt-ae-memory.indexer.lock", "a+")
fcntl.flock(indexer_lock, fcntl.LOCK_EX)
store = MemoryStore(path=path, url=None)
store.store([NewMemory(parse_key(f"dbt-analytics-engineer/shop/note-{n}"), f"journaled note {n} about int_order_items") for n in range(40)])
print(store.pending(), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_journaled_stores_of_a_killed_process_are_indexed_by_the_next(tmp_path: Path) -> None:
    """A store is acknowledged once journaled; a process killed before embedding loses nothing."""
    path = tmp_path / "memory"
    out = run_python(KILLED_AFTER_ACK, str(path))
    assert out.returncode == -9
    left = int(out.stdout.strip().splitlines()[-1])
    assert left == 40  # killed before anything was indexed: every row waits in the journal
    after = MemoryStore(path=path, url=None)
    found = after.retrieve(parse_pattern("dbt-analytics-engineer/shop/note-*"))
    assert len(found) == 40 and after.pending() == 0
    assert after.search("int_order_items", 3, {}, None, None)[0].keyword_score == 1.0


OTHER_PROCESS_WRITES = """
import sys
from pathlib import Path
from memory.keys import parse_key, parse_pattern
from memory.store import MemoryStore, NewMemory
store = MemoryStore(path=Path(sys.argv[1]), url=None)
if sys.argv[2] == "change":
    store.store([NewMemory(parse_key("dbt-analytics-engineer/shop/fct-orders-config"), "fct_orders moved to microbatch on ordered_at")])
    store.delete(parse_pattern("dbt-analytics-engineer/finance/stg-payments-fix"), dry_run=False)
else:
    store.store([NewMemory(parse_key("dbt-analytics-engineer/shop/snapshot-note"), "snap_customers uses the check strategy on email")])
"""


def test_search_sees_another_process_writes_replaces_and_deletes(store: MemoryStore, tmp_path: Path) -> None:
    """The in-memory mirror that serves searches catches up with what another process changed."""
    assert store.search("stg_payments", 3, {}, None, None)[0].key == "dbt-analytics-engineer/finance/stg-payments-fix"
    for change in ("change", "add"):
        wrote = run_python(OTHER_PROCESS_WRITES, str(tmp_path / "memory"), change)
        assert wrote.returncode == 0, wrote.stderr[-2000:]
        if change == "change":  # no new ids: only the catch-up can tell the mirror
            replaced = store.search("fct_orders", 5, {}, None, None)
            assert [h.text for h in replaced if h.key.endswith("fct-orders-config")] == ["fct_orders moved to microbatch on ordered_at"]
            assert "dbt-analytics-engineer/finance/stg-payments-fix" not in {h.key for h in store.search("stg_payments", 10, {}, None, None)}
    hits = store.search("snap_customers check strategy", 3, {}, None, None)
    assert hits[0].key == "dbt-analytics-engineer/shop/snapshot-note" and hits[0].keyword_score == 1.0


def test_threads_opening_a_new_journal_together_never_see_locked(tmp_path: Path) -> None:
    """A store call and the background indexer open the journal at once: switching a new file to WAL answered
    "database is locked" without waiting to one of them (seen once in CI as memory_unavailable); 10 of 300 such
    races failed before the fix."""
    import threading

    from memory.journal import Journal

    failures: list[str] = []
    for trial in range(80):
        journal = Journal(tmp_path / f"j{trial}" / "journal.sqlite3")

        def write(journal: Journal = journal) -> None:
            try:
                journal.append([("dbt-analytics-engineer/shop/x", "doc", {})])
            except Exception as exc:
                failures.append(f"append: {exc}")

        def read(journal: Journal = journal) -> None:
            try:
                journal.take(1)
            except Exception as exc:
                failures.append(f"take: {exc}")

        threads = [threading.Thread(target=step) for step in (write, read, write, read)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert journal.count() == 1
    assert failures == []
