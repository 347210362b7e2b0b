"""Fast tests of the memory toolset's pure parts: keys and patterns, redaction, hybrid ranking."""

from __future__ import annotations

import pytest

from memory.keys import KeyError_, parse_key, parse_pattern
from memory.ranking import IDENTIFIER_WEIGHT, combine, identifier_score, identifiers, word_scores
from memory.redact import MASK, redact_secrets


def test_keys() -> None:
    key = parse_key("dbt-analytics-engineer/shop/fct-orders-config")
    assert (key.agent, key.project, key.data_type) == ("dbt-analytics-engineer", "shop", "fct-orders-config")
    assert key.metadata() == {"key_agent": "dbt-analytics-engineer", "key_project": "shop", "key_type": "fct-orders-config"}
    for bad in ["", "a/b", "a/b/c/d", "a//c", "../x/y", "a/b c/d", "a/*/c", "-a/b/c"]:
        with pytest.raises(KeyError_):
            parse_key(bad)


def test_patterns() -> None:
    pattern = parse_pattern("dbt-analytics-engineer/*/testing-patterns")
    assert not pattern.is_exact
    assert pattern.where() == {"key_agent": "dbt-analytics-engineer", "key_type": "testing-patterns"}
    assert pattern.matches("dbt-analytics-engineer/shop/testing-patterns")
    assert not pattern.matches("dbt-analytics-engineer/shop/testing-patterns-v2")
    assert not pattern.matches("other/shop/testing-patterns")
    glob = parse_pattern("dbt-analytics-engineer/shop/fct-*")
    assert glob.where() == {"key_agent": "dbt-analytics-engineer", "key_project": "shop"}
    assert glob.matches("dbt-analytics-engineer/shop/fct-orders-config") and not glob.matches("dbt-analytics-engineer/shop/dim-x")
    assert parse_pattern("a/b/c").is_exact
    with pytest.raises(KeyError_):
        parse_pattern("a/b")


@pytest.mark.parametrize("text,secret", [
    ("password: hunter2", "hunter2"),
    ("DB_PASSWORD=s3cr3t!", "s3cr3t!"),
    ('{"api_key": "abcd1234efgh"}', "abcd1234efgh"),
    ("postgres://analyst:pa55word@db.internal:5432/prod", "pa55word"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlMTIz", "eyJhbGciOiJIUzI1NiJ9"),
    ("aws key AKIAIOSFODNN7EXAMPLE in profile", "AKIAIOSFODNN7EXAMPLE"),
    ("token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "MIIEow"),
    ("snowflake private_key_passphrase: topsecret", "topsecret"),
])
def test_redaction(text: str, secret: str) -> None:
    redacted, count = redact_secrets(text)
    assert secret not in redacted and MASK in redacted and count >= 1


def test_redaction_keeps_ordinary_text() -> None:
    text = "fct_orders is incremental with unique_key order_id; tests: not_null(customer_id)"
    assert redact_secrets(text) == (text, 0)


def test_identifiers_and_ranking() -> None:
    assert identifiers("why does stg_orders fail on order_id?") == ["stg_orders", "order_id"]
    assert identifiers("incremental model with merge strategy") == []
    assert identifiers("raw.orders and fct-orders-config") == ["raw.orders", "fct-orders-config"]
    assert identifiers("state:modified+ --defer tag:daily") == ["state:modified+", "--defer", "tag:daily"]
    assert identifier_score(["stg_orders"], "select from stg_orders_v2", "a/b/c") == 0.0
    assert identifier_score(["stg_orders", "order_id"], "stg_orders has order_id", "a/b/c") == 1.0
    ranked = combine({"a": 0.50, "b": 0.45}, {"b": 1.0})
    assert [s.id for s in ranked] == ["b", "a"] and ranked[0].score == pytest.approx(0.45 + IDENTIFIER_WEIGHT)


def test_word_scores() -> None:
    scores = word_scores("late arriving orders", {"a": "orders that arrive late get merged", "b": "customers snapshot", "c": "late orders arriving"})
    assert scores["b"] == 0.0 and max(scores.values()) == 1.0 and scores["c"] >= scores["a"] > 0
    assert word_scores("the and of", {"a": "x"}) == {"a": 0.0}


def test_memory_results_fit_keep_pagination_honest() -> None:
    from memory.results import DeleteResult, KeyListResult, MemoriesResult, MemoryOut

    page = MemoriesResult(memories=[MemoryOut(key=f"a/b/k{i}", text="x" * 1200) for i in range(200)], count=500, offset=100, next_cursor="300")
    fitted = page.fit(30_000)
    assert len(fitted.model_dump_json()) <= 30_000 and fitted.truncated
    assert fitted.next_cursor == str(100 + len(fitted.memories))  # nothing is skipped by the next page
    keys = KeyListResult(items=[MemoryOut(key=f"a/b/k{i}", metadata={"m": "y" * 500}) for i in range(500)], total=900, offset=0, next_cursor="500")
    small = keys.fit(20_000)
    assert len(small.model_dump_json()) <= 20_000 and small.next_cursor == str(len(small.items))
    deleted = DeleteResult(keys=[f"a/b/k{i}" for i in range(5000)], count=5000, dry_run=True).fit(10_000)
    assert len(deleted.model_dump_json()) <= 10_000 and deleted.count == 5000


def test_identifier_index_finds_every_name_the_score_counts() -> None:
    """The index replaces a text scan: it may over-match (the score decides) but must never miss a counted name."""
    import random

    from memory.ranking import IdentifierIndex

    rng = random.Random(7)
    parts = ["stg_orders", "order_id", "raw.orders", "fct-orders-config", "state:modified+", "--full-refresh", "tag:daily",
             "the", "Orders", "dim_customers.customer_id", "a.b.c_d", "STG_ORDERS"]
    separators = [" ", ".", ":", "-", "+", "(", ",", "_", "\n", "`"]
    checked = 0
    for _ in range(2000):
        doc = "".join(rng.choice(parts) + rng.choice(separators) for _ in range(8))
        index = IdentifierIndex()
        index.put("k/p/t", doc)
        for ident in identifiers(" ".join(rng.choice(parts) for _ in range(3))):
            if identifier_score([ident.rstrip("+")], doc, "k/p/t") > 0:
                checked += 1
                assert "k/p/t" in index.lookup(ident), (doc, ident)
    assert checked > 1000
    index = IdentifierIndex()
    index.put("a/b/c", "uses stg_orders")
    index.put("a/b/d", "uses stg_orders too")
    assert index.lookup("STG_ORDERS") == {"a/b/c", "a/b/d"}
    index.put("a/b/c", "now uses stg_payments")  # a re-store replaces the old names
    index.remove("a/b/d")
    assert index.lookup("stg_orders") == set() and index.lookup("stg_payments") == {"a/b/c"} and len(index) == 1
