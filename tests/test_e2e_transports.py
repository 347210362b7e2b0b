"""Transports: every stdout byte is JSON-RPC during a full build; streamable HTTP serves several clients."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from conftest import RawServer, http_server, ok, serve_args

pytestmark = pytest.mark.e2e


def test_stdout_carries_only_jsonrpc_during_full_build(shop: Path, data_dir: Path) -> None:
    server = RawServer(serve_args(shop, data_dir))
    try:
        assert server.initialize()["result"]["serverInfo"]["name"] == "dbt-ae-mcp"
        assert server.call("dbt_seed", {})["isError"] is False
        build = server.call("dbt_build", {}, progressToken="build")
        assert build["structuredContent"]["success"] is True
        assert server.call("dbt_show", {"model": "dim_customers"})["isError"] is False
        assert server.call("memory_store", {"key": "a/shop/b", "value": "stdout stays clean"})["isError"] is False
    finally:
        server.close()
    lines = bytes(server.raw).splitlines()
    assert lines, "server wrote nothing"
    for line in lines:
        message = json.loads(line)
        assert message.get("jsonrpc") == "2.0", line[:200]
    progress = [m for m in server.messages if m.get("method") == "notifications/progress"]
    assert len(progress) > 20, "expected per-node progress notifications during the build"


async def test_streamable_http_serves_concurrent_clients(built_shop: Path, data_dir: Path) -> None:
    async with http_server(built_shop, data_dir) as url:
        async with Client(url) as first, Client(url) as second:
            names = {t.name for t in (await first.list_tools()).tools}
            assert {"dbt_build", "dbt_show", "dbt_list"} <= names
            assert ok(await first.call_tool("dbt_seed", {"select": "raw_orders"}))["success"]
            assert ok(await second.call_tool("dbt_build", {"select": "stg_orders"}))["success"]
            results: dict[str, Any] = {}

            async def show(client: Client, key: str) -> None:
                results[key] = ok(await client.call_tool(
                    "dbt_show", {"sql": "select count(*) as n from {{ ref('fct_orders') }}"}))

            async with anyio.create_task_group() as group:  # two clients at once: queued on one worker
                group.start_soon(show, first, "first")
                group.start_soon(show, second, "second")
            assert results["first"]["rows"] == results["second"]["rows"] == [[36]]
