"""The memory toolset against a hostile or careless agent: secrets masked in text and metadata, credential-like keys,
control and bidi characters and oversized metadata refused, and a refused call leaves the store as it was."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import error, ok, stdio_session
from memory.keys import KeyError_, parse_key, parse_pattern
from memory.redact import MASK, forbidden_character, redact_secrets, secret_kind
from memory.inputs import MemoryItem, MemoryMetadata
from memory.service import METADATA_MAX_CHARS, SentMemory, clean_memory
from server.errors import ToolFailure

AWS_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
GITHUB = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlMTIz"


# -- redaction ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,secret", [
    ("the prod db password is hunter2", "hunter2"),
    ("password is hunter2", "hunter2"),
    ("password: hunter2", "hunter2"),
    ("pwd = hunter2", "hunter2"),
    ("passwd=hunter2", "hunter2"),
    ("The password for snowflake was Tr0ub4dor&3.", "Tr0ub4dor"),
    ("DB_PASSWORD=s3cr3t!", "s3cr3t!"),
    ("client_secret: 9f8e7d6c5b4a", "9f8e7d6c5b4a"),
    ("export API_KEY=abcd1234efgh", "abcd1234efgh"),
    ("apikey = abcd1234efgh", "abcd1234efgh"),
    ('{"access_key": "abcd1234efgh"}', "abcd1234efgh"),
    ("private_key: 'MIIEvQIBADANBg'", "MIIEvQIBADANBg"),
    ("snowflake private_key_passphrase: topsecret", "topsecret"),
    ("secret = opensesame", "opensesame"),
    ("token=tok_live_123", "tok_live_123"),
    ("x-api-key: abcd1234efgh", "abcd1234efgh"),
    ("the api key for snowflake: abcd1234", "abcd1234"),
    (f"aws key {AWS_ID} in profile", AWS_ID),
    ("session ASIAY34FZKBOKMUTVV7A expires", "ASIAY34FZKBOKMUTVV7A"),
    (f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET),
    (f"our aws secret is {AWS_SECRET} for now", AWS_SECRET),
    (f"AWS credentials: {AWS_ID} / {AWS_SECRET}", AWS_SECRET),
    (f"token {GITHUB}", GITHUB),
    ("gho_16C7e42F292c6912E7710c838347Ae178B4a in ci", "gho_16C7e42F292c6912E7710c838347Ae178B4a"),
    ("ghs_16C7e42F292c6912E7710c838347Ae178B4a", "ghs_16C7e42F292c6912E7710c838347Ae178B4a"),
    ("ghu_16C7e42F292c6912E7710c838347Ae178B4a", "ghu_16C7e42F292c6912E7710c838347Ae178B4a"),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "github_pat_11ABCDEFG0123456789_abcdefghijklmnop"),
    ("slack xoxb-123456789012-abcdefghijkl posts alerts", "xoxb-123456789012-abcdefghijkl"),
    ("xoxp-1234-5678-abcdefghij", "xoxp-1234-5678-abcdefghij"),
    (f"jwt {JWT} from the API", JWT),
    (f"Authorization: Bearer {JWT}", "eyJhbGciOiJIUzI1NiJ9"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "MIIEow"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk (cut off)", "b3BlbnNzaC1rZXk"),
    ("postgres://analyst:pa55word@db.internal:5432/prod", "pa55word"),
    ("snowflake://me:p@ss@acct.snowflakecomputing.com", "p@ss"),
    ("sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz"),
])
def test_secrets_are_masked(text: str, secret: str) -> None:
    redacted, count = redact_secrets(text)
    assert secret not in redacted and MASK in redacted and count >= 1, redacted
    assert redact_secrets(redacted) == (redacted, 0)  # masking is stable: a masked value is not counted again


@pytest.mark.parametrize("text", [
    "the passwords table has one row per user",
    "the token_count column sums tokens per message; max_tokens: 512",
    "the key is order_id",
    "unique_key: order_id",
    "password_hash and password_salt columns are hashed upstream",
    "the password is stored in vault and rotated weekly",
    "the secret is to use incremental models",
    "the token is a surrogate key",
    'password: "{{ env_var(\'DBT_ENV_SECRET_PASSWORD\') }}"',
    "password: ${SNOWFLAKE_PASSWORD}",
    "password: null",
    "Basic incremental models use merge",
    "prefer bearer authentication for the API source",
    "author: Jane Doe",
    "git sha 3f2a9c1d3f2a9c1d3f2a9c1d3f2a9c1d3f2a9c1d of the aws deploy",
    "run id 123e4567-e89b-12d3-a456-426614174000",
    "password:\n  type: string",
    "fct_orders is incremental with unique_key order_id; tests: not_null(customer_id)",
    "https://docs.getdbt.com/reference/resource-configs/snowflake-configs",
])
def test_dbt_prose_is_not_redacted(text: str) -> None:
    assert redact_secrets(text) == (text, 0)


def test_redaction_counts_each_secret_once() -> None:
    text = f"user: analyst\npassword: hunter2\naws_access_key_id: {AWS_ID}\ntoken {GITHUB}"
    redacted, count = redact_secrets(text)
    assert count == 3 and redacted.count(MASK) == 3 and "user: analyst" in redacted


@pytest.mark.parametrize("hostile", [
    "a." * 8000, "a://b:" * 2700, "eyJaaaaa." * 1800, "password-" * 1800, "aws " * 4000, "password is " * 1300,
    "-----BEGIN PRIVATE KEY-----" * 600, "secret " + "a/" * 8000, "token for " * 1600, "x" * 16000,
])
def test_redaction_stays_fast_on_hostile_text(hostile: str) -> None:
    started = time.perf_counter()
    redact_secrets(hostile)
    assert time.perf_counter() - started < 0.5


# -- keys ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("segment,kind", [
    (AWS_ID, "AWS access key id"), ("ASIAY34FZKBOKMUTVV7A", "AWS access key id"), (GITHUB, "GitHub token"),
    ("xoxb-123456789012-abcdefghijkl", "Slack token"), (JWT, "JWT"), ("aB3dE5fG7hJ9kL1mN2pQ", "random-looking string"),
    ("3f2a9c1d3f2a9c1d3f2a9c1d3f2a9c1d", "random-looking string"), ("notes-Zx8Qw2Lk9Vb4Nm7Rt1Yp", "random-looking string"),
])
def test_credential_like_segments(segment: str, kind: str) -> None:
    assert secret_kind(segment) == kind


@pytest.mark.parametrize("segment", [
    "dbt-analytics-engineer", "fct-orders-config", "stg_payments_failed_on_null_currency", "FctOrdersConfigV2ForShopProject",
    "ga4_events_2023_12_31_backfill", "123e4567-e89b-12d3-a456-426614174000", "customer360DailySnapshotV2",
    "run-20240501-153000-results", "note-007", "snapshot_customers_scd2_config", "Q3Revenue2024ByCountryV2",
])
def test_dbt_names_are_not_credentials(segment: str) -> None:
    assert secret_kind(segment) is None


def test_credential_in_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(KeyError_) as refused:
        parse_key(f"dbt-analytics-engineer/{AWS_ID}/notes")
    assert "AWS access key id" in str(refused.value) and AWS_ID not in str(refused.value)
    assert refused.value.hint and "never the credential" in refused.value.hint
    parse_pattern(f"dbt-analytics-engineer/{AWS_ID}/notes")  # a read pattern stores nothing


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\n", "\t", "\r", "\x7f", "\x9b", "\u202e", "\u2066", "\u200f", "\u061c"])
def test_characters_in_keys_are_refused_by_code_point(char: str) -> None:
    for parse in (parse_key, parse_pattern):
        with pytest.raises(KeyError_) as refused:
            parse(f"dbt-analytics-engineer/shop/no{char}tes")
        assert f"U+{ord(char):04X}" in str(refused.value) and refused.value.hint and "Remove" in refused.value.hint


# -- characters ---------------------------------------------------------------------------------------------------
BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f", "\u061c"]


@pytest.mark.parametrize("char", [chr(c) for c in range(0x20)] + ["\x7f", "\x85", "\x9b"] + BIDI)
def test_labels_refuse_every_control_and_bidi_character(char: str) -> None:
    assert forbidden_character(f"ab{char}c", multiline=False) == (2, forbidden_character(char, multiline=False)[1])  # type: ignore[index]


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\r", "\x07", "\x08", "\x7f", "\x9b"] + BIDI)
def test_texts_refuse_control_and_bidi_characters(char: str) -> None:
    found = forbidden_character(f"line one\n\tline{char} two", multiline=True)
    assert found is not None and found[0] == 14 and found[1].startswith(f"U+{ord(char):04X}")


def test_ordinary_unicode_is_allowed() -> None:
    for text in ["café déjà vu", "日本語のメモ", "emoji 📈 ok", "line one\n\tindented"]:
        assert forbidden_character(text, multiline=True) is None
    assert forbidden_character("café 日本 📈", multiline=False) is None


# -- one memory, checked whole --------------------------------------------------------------------------------
def _sent(text: str = "fct_orders merges on order_id", **metadata: Any) -> SentMemory:
    metadata.setdefault("key", "dbt-analytics-engineer/shop/fct-orders-config")
    return SentMemory(MemoryItem(text=text, metadata=MemoryMetadata(**metadata)))


def _refused(sent: SentMemory) -> ToolFailure:
    with pytest.raises(ToolFailure) as refused:
        clean_memory(sent, 16000)
    assert refused.value.hint
    return refused.value


def test_metadata_secrets_are_masked_and_counted() -> None:
    clean = clean_memory(_sent("the prod db password is hunter2", intent="debug; password: hunter3",
                               namespace=f"ci {GITHUB}", category="failure-fix", project="shop", agent="dbt-analytics-engineer"), 16000)
    assert clean.text == f"the prod db password is {MASK}" and clean.redactions == 3
    assert clean.metadata == {"intent": f"debug; password: {MASK}", "namespace": f"ci {MASK}", "category": "failure-fix",
                              "project": "shop", "agent": "dbt-analytics-engineer"}


@pytest.mark.parametrize("field", ["namespace", "intent", "category", "project", "agent", "layer"])
@pytest.mark.parametrize("char", ["\x00", "\x1b", "\u202e", "\n"])
def test_control_characters_in_metadata_are_refused(field: str, char: str) -> None:
    failure = _refused(_sent(**{field: f"ok{char}"}))
    assert failure.code == "invalid_input" and f"metadata.{field}" in failure.message and f"U+{ord(char):04X}" in failure.message
    assert failure.details["field"] == f"metadata.{field}" and "Remove" in failure.hint


@pytest.mark.parametrize("field", ["namespace", "intent", "category", "project", "agent"])
def test_metadata_is_capped(field: str) -> None:
    assert clean_memory(_sent(**{field: "n" * METADATA_MAX_CHARS}), 16000).metadata[field] == "n" * METADATA_MAX_CHARS
    failure = _refused(_sent(**{field: "n" * (METADATA_MAX_CHARS + 1)}))
    assert failure.code == "invalid_input" and f"metadata.{field}" in failure.message and "256" in failure.message


def test_text_and_key_failures_name_the_field() -> None:
    for char in ["\x00", "\x1b", "\u202e", "\r"]:
        failure = _refused(_sent(f"hello{char}world"))
        assert failure.code == "invalid_input" and failure.details["field"] == "text" and f"U+{ord(char):04X}" in failure.message
    assert clean_memory(_sent("windows\r\nline endings\tand tabs"), 16000).text == "windows\nline endings\tand tabs"
    key = _refused(_sent(key=f"dbt-analytics-engineer/{AWS_ID}/notes"))
    assert key.code == "invalid_key" and key.message.startswith("metadata.key:") and AWS_ID not in key.message
    batch = _refused(SentMemory(MemoryItem(text="x", metadata=MemoryMetadata(key="a/b/c", namespace="\x1b[31m")),
                                "items[1].text", "items[1].metadata."))
    assert "items[1].metadata.namespace" in batch.message


# -- through a real MCP client ----------------------------------------------------------------------------------
def _journal_seq(data_dir: Path) -> int:
    """How many rows the write-ahead journal has ever taken: a refused call must not move it."""
    db = sqlite3.connect(f"file:{data_dir / 'memory' / '.dbt-ae-memory.journal.sqlite3'}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT seq FROM counter").fetchone()[0])
    finally:
        db.close()


@pytest.mark.e2e
async def test_hostile_memory_calls_through_mcp(shop: Path, data_dir: Path) -> None:
    key = "dbt-analytics-engineer/shop/prod-db"
    async with stdio_session(shop, data_dir, "--toolsets", "memory") as client:
        stored = ok(await client.call_tool("memory_store", {"text": "the prod db password is hunter2", "metadata": {
            "key": key, "intent": "debugging; the password is hunter3", "namespace": f"analytics token={GITHUB}"}}))
        assert stored["redactions"] == 3
        assert ok(await client.call_tool("memory_store", {"key": key + "-copy", "value": "pwd = hunter2"}))["redactions"] == 1
        memory = ok(await client.call_tool("memory_retrieve", {"key": key}))["memories"][0]
        assert "hunter2" not in memory["text"] and MASK in memory["text"]
        assert "hunter3" not in memory["metadata"]["intent"] and GITHUB not in memory["metadata"]["namespace"]
        summary = (await client.call_tool("memory_store", {"key": key, "value": "the prod db password is hunter2"})).content[0].text
        assert summary.startswith("stored 1 memory") and "1 secret(s) redacted" in summary

        before = ok(await client.call_tool("memory_retrieve", {"key": "*/*/*", "limit": 200}))
        seq = _journal_seq(data_dir)
        meta = {"key": "dbt-analytics-engineer/shop/hostile"}
        refused: list[tuple[dict[str, Any], str, str]] = [
            ({"key": f"dbt-analytics-engineer/{AWS_ID}/notes", "value": "x"}, "invalid_key", "AWS access key id"),
            ({"text": "x", "metadata": {"key": f"dbt-analytics-engineer/{GITHUB}/notes"}}, "invalid_key", "GitHub token"),
            ({"text": "x", "metadata": {**meta, "namespace": "n" * 1_000_000}}, "invalid_input", "metadata.namespace"),
            ({"items": [{"text": "fine", "metadata": {"key": "dbt-analytics-engineer/shop/fine"}},
                        {"text": "x", "metadata": {**meta, "intent": "i" * 257}}]}, "invalid_input", "items[1].metadata.intent"),
        ]
        for char in ["\x00", "\x1b", "\u202e"]:
            point = f"U+{ord(char):04X}"
            refused += [
                ({"key": f"dbt-analytics-engineer/shop/no{char}tes", "value": "x"}, "invalid_key", point),
                ({"text": "x", "metadata": {"key": f"dbt-analytics-engineer/sh{char}op/notes"}}, "invalid_key", point),
                ({"text": f"ab{char}c", "metadata": meta}, "invalid_input", point),
                ({"key": meta["key"], "value": f"ab{char}c"}, "invalid_input", "value"),
            ] + [({"text": "x", "metadata": {**meta, field: f"v{char}"}}, "invalid_input", f"metadata.{field} contains the character {point}")
                 for field in ("namespace", "intent", "category", "project", "agent")]
        for args, code, named in refused:
            failure = error(await client.call_tool("memory_store", args))
            assert failure["code"] == code and named in failure["message"], (args.keys(), failure)
            assert AWS_ID not in failure["message"] and GITHUB not in failure["message"]
            assert _journal_seq(data_dir) == seq  # nothing was journaled for the refused call
            assert ok(await client.call_tool("memory_retrieve", {"key": "*/*/*", "limit": 200})) == before
        assert [m["key"] for m in before["memories"]] == [key, key + "-copy"]
