"""Transports: every stdout byte is JSON-RPC during a full build; streamable HTTP serves several clients."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from conftest import REPO, http_server, ok, serve_args

pytestmark = pytest.mark.e2e


def test_stdout_carries_only_jsonrpc_during_full_build(shop: Path, data_dir: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, *serve_args(shop, data_dir)], cwd=str(REPO),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    raw = bytearray()
    messages: list[dict[str, Any]] = []
    lock = threading.Condition()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with lock:
                raw.extend(line)
                messages.append(json.loads(line))  # a non-JSON line fails the parse in the main check below
                lock.notify_all()

    def send(message: dict[str, Any]) -> None:
        assert proc.stdin is not None
        proc.stdin.write((json.dumps(message) + "\n").encode())
        proc.stdin.flush()

    def wait_for(request_id: int, timeout: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with lock:
            while True:
                for message in messages:
                    if message.get("id") == request_id and ("result" in message or "error" in message):
                        return message
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"no reply to request {request_id}"
                lock.wait(remaining)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw-test", "version": "0"}}})
        assert wait_for(1)["result"]["serverInfo"]["name"] == "dbt-ae-mcp"
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "dbt_seed", "arguments": {}}})
        assert wait_for(2)["result"]["isError"] is False
        send({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
              "params": {"name": "dbt_build", "arguments": {}, "_meta": {"progressToken": "build"}}})
        build = wait_for(3)
        assert build["result"]["structuredContent"]["success"] is True
        send({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "dbt_show", "arguments": {"model": "dim_customers"}}})
        assert wait_for(4)["result"]["isError"] is False
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)
        thread.join(timeout=10)
    lines = bytes(raw).splitlines()
    assert lines, "server wrote nothing"
    for line in lines:
        message = json.loads(line)
        assert message.get("jsonrpc") == "2.0", line[:200]
    progress = [m for m in messages if m.get("method") == "notifications/progress"]
    assert len(progress) > 20, "expected per-node progress notifications during the build"


async def test_streamable_http_serves_concurrent_clients(shop: Path, data_dir: Path) -> None:
    async with http_server(shop, data_dir) as url:
        async with Client(url) as first, Client(url) as second:
            names = {t.name for t in (await first.list_tools()).tools}
            assert {"dbt_build", "dbt_show", "dbt_list"} <= names
            assert ok(await first.call_tool("dbt_seed", {}))["success"]
            assert ok(await second.call_tool("dbt_build", {}))["success"]
            results: dict[str, Any] = {}

            async def show(client: Client, key: str) -> None:
                results[key] = ok(await client.call_tool(
                    "dbt_show", {"sql": "select count(*) as n from {{ ref('fct_orders') }}"}))

            async with anyio.create_task_group() as group:  # two clients at once: queued on one worker
                group.start_soon(show, first, "first")
                group.start_soon(show, second, "second")
            assert results["first"]["rows"] == results["second"]["rows"] == [[36]]
