"""Start-up (issue 14): build_app and `initialize` import no toolset, no dbt and no other heavy library, and build no
tool schema; the toolsets register on the first read of the tools (tools/list, tools/call, the HTTP transport's schema
look-up), and what is then listed is exactly what registering every toolset at once lists. No timings here: the
figures are in bench/bench_startup.py and bench/RESULTS.md."""

from __future__ import annotations

import asyncio
import json
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from conftest import copy_shop, error, http_serving, registered_tools, run_python
from server.app import TOOLSET_MODULES, build_app
from server.registration import ToolServer
from server.settings import Settings

HEAVY = ("dbt", "chromadb", "sentence_transformers", "sqlfluff", "sqlglot", "duckdb")
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "read_only": {"read_only": True},
    "toolsets": {"toolsets": "memory,dbt"},
    "read_only_toolsets": {"read_only": True, "toolsets": "quality,authoring,lineage"},
}

# In a fresh interpreter: what build_app and an initialize handshake import, then tools/list per settings variant.
LAZY_SCRIPT = """
import asyncio, json, sys
from pathlib import Path
from mcp import Client
from server.app import build_app
from server.settings import Settings

heavy, variants, root = json.loads(sys.argv[1]), json.loads(sys.argv[2]), Path(sys.argv[3])
loaded = lambda: sorted(name for name in heavy if name in sys.modules)

async def main():
    out = {"listed": {}}
    for n, (label, settings) in enumerate(variants.items()):
        app, _ = build_app(Settings(project_dir=root / "project", data_dir=root / f"data-{n}", **settings))
        if n == 0:
            out["after_build_app"] = loaded()
        async with Client(app) as client:
            if n == 0:
                out["after_initialize"] = loaded()
            tools = (await client.list_tools()).tools
        out["listed"][label] = [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools]
    out["after_list"] = loaded()
    print(json.dumps(out))

asyncio.run(main())
"""


def eager_tools_list(settings: Settings) -> list[dict[str, Any]]:
    """tools/list of a server whose toolsets all register at once (as build_app did before start-up became lazy)."""
    _, ctx = build_app(settings)  # its settings and engine; the app itself is not used
    app = ToolServer("dbt-ae-mcp")
    for toolset in settings.toolsets:
        import_module(TOOLSET_MODULES[toolset]).register(app, ctx)

    async def listed() -> list[dict[str, Any]]:
        async with Client(app) as client:
            return [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in (await client.list_tools()).tools]

    return asyncio.run(listed())


def test_start_up_imports_no_heavy_library_and_lists_every_tool(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    ran = run_python(LAZY_SCRIPT, json.dumps(HEAVY), json.dumps(VARIANTS), str(tmp_path))
    assert ran.returncode == 0, ran.stderr[-3000:]
    out = json.loads(ran.stdout)
    assert out["after_build_app"] == [], f"build_app imported {out['after_build_app']}"
    assert out["after_initialize"] == [], f"initialize imported {out['after_initialize']}"
    assert out["after_list"], "tools/list imported no toolset library: the check above would not see one either"
    for label, settings in VARIANTS.items():
        eager = eager_tools_list(Settings(project_dir=tmp_path / "project", data_dir=tmp_path / f"eager-{label}", **settings))
        assert out["listed"][label] == eager, label  # same tools, same order, same schemas, byte for byte
    listed = {tool["name"] for tool in out["listed"]["default"]}
    assert listed <= registered_tools() and all(listed & registered_tools(toolset) for toolset in TOOLSET_MODULES)  # every toolset
    assert {tool["name"] for tool in out["listed"]["toolsets"]} == registered_tools("memory", "dbt")


def test_a_call_before_any_listing_registers_the_tools(tmp_path: Path) -> None:
    settings = Settings(project_dir=tmp_path, data_dir=tmp_path / "data", toolsets="lineage,quality")
    app, _ = build_app(settings)
    refused = asyncio.run(app.call_tool("analyse_file", {}))  # the first request of the session
    assert refused.is_error and refused.structured_content["code"] == "unknown_tool"
    assert refused.structured_content["details"]["did_you_mean"] == "analyze_file"
    http_first, _ = build_app(settings)  # the HTTP transport's Mcp-Param check reads a schema before any call
    schema = http_first._tool_input_schema("sql_lint")
    assert schema is not None and "sql" in schema["properties"]
    assert http_first._tool_input_schema("dbt_run") is None  # not a chosen toolset


def test_deferred_registrations_run_once_in_order_and_a_failure_stays_visible() -> None:
    app = ToolServer("t")
    ran: list[str] = []

    def tool(name: str) -> Any:
        def fn() -> str:
            return name
        fn.__name__ = name
        return fn

    def first() -> None:
        ran.append("first")
        app.add_tool(tool("a1"))
        app.add_tool(tool("a2"))

    def second() -> None:
        ran.append("second")
        app.add_tool(tool("b1"))

    app.defer(first)
    app.defer(second)
    assert ran == []
    assert [t.name for t in asyncio.run(app.list_tools())] == ["a1", "a2", "b1"]
    assert [t.name for t in asyncio.run(app.list_tools())] == ["a1", "a2", "b1"] and ran == ["first", "second"]

    broken = ToolServer("t")

    def fails() -> None:
        raise RuntimeError("toolset import failed")

    broken.defer(fails)
    for _ in range(2):  # not only the first listing: a server missing a toolset must not look complete
        with pytest.raises(RuntimeError, match="toolset import failed"):
            asyncio.run(broken.list_tools())


@pytest.mark.e2e
async def test_http_first_request_a_call_registers_the_tools(tmp_path: Path) -> None:
    project = copy_shop(tmp_path)
    with http_serving(project, tmp_path / "data", "--toolsets", "lineage", stderr_path=tmp_path / "server.stderr") as url:
        async with Client(streamable_http_client(url)) as client:
            failure = error(await client.call_tool("model_lineage", {"modle": "fct_orders"}))  # no tools/list before
            assert failure["code"] == "invalid_input" and failure["details"]["did_you_mean"] == {"modle": "model"}
            assert {tool.name for tool in (await client.list_tools()).tools} == registered_tools("lineage")


@pytest.mark.e2e
def test_when_the_client_goes_the_server_and_its_dbt_worker_end(tmp_path: Path) -> None:
    """stdin closes (the client has gone) while the dbt worker is still parsing: the server stops the worker (killed
    after a short grace, not waited for) and exits 0 without interpreter teardown; no worker is left behind. (How
    fast: bench/bench_startup.py; the MCP client kills a server that takes over 2 s.)"""
    import os
    import re
    import subprocess
    import sys

    from conftest import REPO, serve_args

    project = copy_shop(tmp_path)
    data = tmp_path / "data"
    log = tmp_path / "stderr.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, *serve_args(project, data)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=err, cwd=REPO)
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write((json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}) + "\n").encode())
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline())["id"] == 1
        for _ in range(100):  # the worker has started (it parses for seconds after this)
            if "dbt worker started, pid" in log.read_text():
                break
            import time

            time.sleep(0.05)
        worker = int(re.search(r"dbt worker started, pid (\d+)", log.read_text()).group(1))  # type: ignore[union-attr]
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0, log.read_text()[-2000:]
    try:
        os.kill(worker, 0)
        alive = not open(f"/proc/{worker}/stat").read().split()[2] == "Z"
    except (ProcessLookupError, FileNotFoundError):
        alive = False
    assert not alive, f"dbt worker {worker} outlived the server"
    assert proc.stdout.read() == b""  # nothing but JSON-RPC on stdout, even at exit
