"""Shared helpers: copies of the shop project, and real MCP clients talking to a real server process."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp_types import CallToolResult

from server.cli_demo import server_environment

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "fixtures" / "shop"
BATCH2 = FIXTURE / "batches" / "batch2"


def copy_shop(dest: Path) -> Path:
    """A fresh, writable copy of the demo project (without build products)."""
    project = dest / "shop"
    shutil.copytree(FIXTURE, project, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb", "*.duckdb.wal"))
    return project


def apply_batch2(project: Path) -> None:
    for csv in BATCH2.glob("*.csv"):
        shutil.copy(csv, project / "seeds" / csv.name)


def serve_args(project: Path, data_dir: Path, *extra: str) -> list[str]:
    return ["-m", "server.cli", "serve", "--project-dir", str(project), "--data-dir", str(data_dir), *extra]


def pytest_configure(config: pytest.Config) -> None:
    """Every server and store of the run exports the embedding model into a cache of this run's own, so the
    first-start export path runs on every `make test` (never the user's ~/.cache/dbt-ae-mcp)."""
    os.environ["DBT_AE_MEMORY_MODEL_CACHE"] = tempfile.mkdtemp(prefix="dbt-ae-model-cache-")


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(os.environ.pop("DBT_AE_MEMORY_MODEL_CACHE", ""), ignore_errors=True)


@asynccontextmanager
async def stdio_session(project: Path, data_dir: Path, *extra: str, **client_kw: Any) -> AsyncIterator[Client]:
    params = StdioServerParameters(command=sys.executable, args=serve_args(project, data_dir, *extra), cwd=str(REPO),
                                   env=server_environment())
    async with Client(params, **client_kw) as client:
        yield client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait until a process we started listens on 127.0.0.1:port; fail early if it died."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"process did not listen on port {port} (exit code {proc.poll()})") from None
            time.sleep(0.1)


@asynccontextmanager
async def http_server(project: Path, data_dir: Path, *extra: str) -> AsyncIterator[str]:
    """Start `dbt-ae-mcp serve --http` as a real process; yields its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, *serve_args(project, data_dir, "--http", f"127.0.0.1:{port}", *extra)],
        cwd=str(REPO), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc, 30)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        stop_process(proc)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def ok(result: CallToolResult) -> dict[str, Any]:
    """The structured result of a call that must not be an MCP error."""
    text = result.content[0].text if result.content else ""
    assert not result.is_error, f"unexpected tool error: {text}"
    assert result.structured_content is not None
    return result.structured_content


def error(result: CallToolResult) -> dict[str, Any]:
    """The typed error of a call that must fail: code, message and hint."""
    assert result.is_error, f"expected a tool error, got: {result.content[0].text if result.content else ''}"
    payload = result.structured_content or {}
    assert payload.get("code") and payload.get("message") and payload.get("hint"), payload
    return payload


async def rows(client: Client, sql: str, limit: int = 1000) -> list[dict[str, Any]]:
    shown = ok(await client.call_tool("dbt_show", {"sql": sql, "limit": limit}))
    return [dict(zip(shown["columns"], row)) for row in shown["rows"]]


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return copy_shop(tmp_path)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


class RawServer:
    """A server process spoken to in raw JSON-RPC lines, so a test sees every byte of its stdout."""

    def __init__(self, args: list[str]) -> None:
        import json
        import threading

        self._json = json
        self.proc = subprocess.Popen(
            [sys.executable, *args], cwd=str(REPO), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        self.raw = bytearray()
        self.messages: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._next_id = 1
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.raw.extend(line)
                try:
                    self.messages.append(self._json.loads(line))
                except ValueError:  # kept in self.raw, where the test finds it
                    self.messages.append({"not_json": line.decode(errors="replace")})
                self._cond.notify_all()

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((self._json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def request(self, method: str, params: dict[str, Any]) -> int:
        request_id = self._next_id
        self._next_id += 1
        self.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        return request_id

    def wait_for(self, request_id: int, timeout: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for message in self.messages:
                    if message.get("id") == request_id and ("result" in message or "error" in message):
                        return message
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"no reply to request {request_id}"
                self._cond.wait(remaining)

    def initialize(self) -> dict[str, Any]:
        reply = self.wait_for(self.request("initialize", {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw-test", "version": "0"}}))
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return reply

    def call(self, name: str, arguments: dict[str, Any], timeout: float = 300, **meta: Any) -> dict[str, Any]:
        params: dict[str, Any] = {"name": name, "arguments": arguments}
        if meta:
            params["_meta"] = meta
        return self.wait_for(self.request("tools/call", params), timeout)["result"]

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=10)


# Filled by tests/test_property_hostile.py; printed at the end of the run, also with -q.
HOSTILE_STATS: dict[str, int] = {"calls": 0, "internal_errors": 0}


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    if HOSTILE_STATS["calls"]:
        terminalreporter.write_line(f"hostile property test: {HOSTILE_STATS['calls']} calls, "
                                    f"{HOSTILE_STATS['internal_errors']} internal errors")
