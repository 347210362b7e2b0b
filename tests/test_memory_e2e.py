"""Memory through real server processes: two writers on one store, SIGKILL durability, a `chroma run` server."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from conftest import RawServer, all_pages, follow_cursor, with_cursor, error, free_port, listening, ok, serve_args, stdio_session

pytestmark = pytest.mark.e2e
MEMORY_ONLY = ("--toolsets", "memory")  # no dbt worker: these tests are about the memory store


async def test_two_server_processes_share_one_store(shop: Path, data_dir: Path) -> None:
    acknowledged: list[str] = []

    async def writer(name: str, count: int) -> None:
        async with stdio_session(shop, data_dir, *MEMORY_ONLY) as client:
            for i in range(count):
                key = f"{name}/shop/note-{i:03d}"
                ok(await client.call_tool("memory_store", {"text": f"{name} learned fact {i} about fct_orders", "metadata": {"key": key}}))
                acknowledged.append(key)
            batch = [{"text": f"{name} batch fact {i}", "metadata": {"key": f"{name}/shop/batch-{i:03d}"}} for i in range(20)]
            ok(await client.call_tool("memory_store", {"items": batch}))
            acknowledged.extend(item["metadata"]["key"] for item in batch)

    async with anyio.create_task_group() as group:
        group.start_soon(writer, "agent-a", 25)
        group.start_soon(writer, "agent-b", 25)

    async with stdio_session(shop, data_dir, *MEMORY_ONLY) as reader:
        pages = [ok(raw) for raw in await all_pages(reader, "memory_retrieve", {"key": "*/shop/*", "limit": 25})]
        keys = [m["key"] for page in pages for m in page["memories"]]
        page = pages[-1]
        assert page["count"] == 90 and keys == sorted(acknowledged)
        hits = ok(await reader.call_tool("vector_search", {"query": "agent-b learned fact 7 about fct_orders", "limit": 3}))
        assert hits["memories"][0]["key"] == "agent-b/shop/note-007"
        assert ok(await reader.call_tool("memory_stats", {}))["total"] == 90


def test_acknowledged_stores_survive_sigkill(shop: Path, data_dir: Path) -> None:
    server = RawServer(serve_args(shop, data_dir, *MEMORY_ONLY))
    acknowledged: list[str] = []
    try:
        server.initialize()
        for i in range(40):
            key = f"dbt-analytics-engineer/shop/durable-{i:03d}"
            result = server.call("memory_store", {"key": key, "value": f"durable fact number {i}"})
            assert result["isError"] is False
            acknowledged.append(key)
        # A batch is acknowledged once journaled; embedding 100 texts takes seconds, so most are still waiting when
        # the process dies: the next process must index them from the journal.
        batch = [{"text": f"batched durable fact {i}", "metadata": {"key": f"dbt-analytics-engineer/shop/durable-b{i:03d}"}} for i in range(100)]
        stored = server.call("memory_store", {"items": batch})
        assert stored["isError"] is False and stored["structuredContent"]["indexing"] > 0, stored["structuredContent"]
        acknowledged += [item["metadata"]["key"] for item in batch]
        # One more store in flight, then SIGKILL mid-stream.
        server.request("tools/call", {"name": "memory_store", "arguments": {"key": "dbt-analytics-engineer/shop/in-flight", "value": "x"}})
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=30)
    finally:
        server.close()
    restarted = RawServer(serve_args(shop, data_dir, *MEMORY_ONLY))
    try:
        restarted.initialize()
        def fetch(cursor: str | None) -> dict[str, Any]:
            result = restarted.call("memory_retrieve", with_cursor({"key": "dbt-analytics-engineer/shop/durable-*", "limit": 200}, cursor))
            assert result["isError"] is False
            return result["structuredContent"]

        # results are cut to the output budget: follow the cursor
        found = [m["key"] for page in follow_cursor(fetch) for m in page["memories"]]
        assert sorted(found) == sorted(acknowledged)
        assert restarted.call("memory_store", {"key": "dbt-analytics-engineer/shop/after", "value": "still writable"})["isError"] is False
    finally:
        restarted.close()


@pytest.fixture
def chroma_server(tmp_path: Path):
    port = free_port()
    chroma = Path(sys.executable).parent / "chroma"
    with listening([str(chroma), "run", "--path", str(tmp_path / "chroma-server"), "--host", "127.0.0.1", "--port", str(port)], port):
        yield f"http://127.0.0.1:{port}"


async def test_chroma_run_server(shop: Path, data_dir: Path, chroma_server: str) -> None:
    async with stdio_session(shop, data_dir, *MEMORY_ONLY, "--memory-url", chroma_server) as client:
        ok(await client.call_tool("memory_store", {"text": "stg_orders renames id to order_id", "metadata": {
            "key": "dbt-analytics-engineer/shop/stg-orders-notes", "category": "model-config", "layer": "mid_term"}}))
        stats = ok(await client.call_tool("memory_stats", {}))
        assert stats["location"] == chroma_server and stats["total"] == 1
        hits = ok(await client.call_tool("vector_search", {"query": "stg_orders", "filters": {"layer": "mid_term"}}))
        assert hits["memories"][0]["key"] == "dbt-analytics-engineer/shop/stg-orders-notes"
        assert error(await client.call_tool("memory_store", {"key": "not-a-key", "value": "x"}))["code"] == "invalid_key"
    async with stdio_session(shop, data_dir / "other", *MEMORY_ONLY, "--memory-url", chroma_server) as second:
        found = ok(await second.call_tool("memory_retrieve", {"key": "*/shop/stg-orders-notes"}))
        assert found["count"] == 1  # a second server process sees the same shared store


async def test_bad_memory_input_changes_nothing(shop: Path, data_dir: Path) -> None:
    async with stdio_session(shop, data_dir, *MEMORY_ONLY) as client:
        ok(await client.call_tool("memory_store", {"key": "dbt-analytics-engineer/shop/keep", "value": "keep me"}))
        before = ok(await client.call_tool("memory_list", {}))
        bad_calls = [
            {"key": "../etc/passwd", "value": "x"},
            {"key": "a/b", "value": "x"},
            {"text": "   ", "metadata": {"key": "dbt-analytics-engineer/shop/empty"}},
            {"text": "x", "metadata": {"key": "dbt-analytics-engineer/shop/x", "layer": "forever"}},
            {"text": "y" * 20000, "metadata": {"key": "dbt-analytics-engineer/shop/huge"}},
            {"items": [{"text": "fine", "metadata": {"key": "dbt-analytics-engineer/shop/fine"}},
                       {"text": "bad", "metadata": {"key": "bad"}}]},
            {"key": "dbt-analytics-engineer/shop/only-key"},
        ]
        codes = [error(await client.call_tool("memory_store", args))["code"] for args in bad_calls]
        assert codes == ["invalid_key", "invalid_key", "empty_text", "invalid_layer", "text_too_large", "invalid_key", "invalid_input"]
        assert error(await client.call_tool("vector_search", {"query": "x", "filters": {"layer": "nope"}}))["code"] == "invalid_layer"
        assert error(await client.call_tool("memory_retrieve", {"key": "a/b/c/d"}))["code"] == "invalid_key"
        assert ok(await client.call_tool("memory_list", {})) == before
        json_text = '{"materialized": "incremental", "unique_key": "order_id"}'
        ok(await client.call_tool("memory_store", {"key": "dbt-analytics-engineer/shop/json-config", "value": json_text}))
        assert ok(await client.call_tool("memory_retrieve", {"key": "dbt-analytics-engineer/shop/json-config"}))["memories"][0]["text"] == json_text
        stored = ok(await client.call_tool("memory_store", {"key": "dbt-analytics-engineer/shop/creds", "value": "profile uses password: hunter2"}))
        assert stored["redactions"] == 1
        kept = ok(await client.call_tool("memory_retrieve", {"key": "dbt-analytics-engineer/shop/creds"}))
        assert "hunter2" not in kept["memories"][0]["text"]
