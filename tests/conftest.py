"""Shared helpers: copies of the shop project, and real MCP clients talking to a real server process."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp_types import CallToolResult

from server.cli_demo import server_environment

# tests/pg.py: the PostgreSQL cluster and the `warehouse` parametrisation (DuckDB and PostgreSQL), for every module.
pytest_plugins = ("pg",)

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "fixtures" / "shop"
BATCH2 = FIXTURE / "batches" / "batch2"
STYLEGUIDE = REPO / "fixtures" / "styleguide"


def copy_fixture(fixture: Path, dest: Path) -> Path:
    """A fresh, writable copy of a fixture project (without build products) at dest/<its name>."""
    project = dest / fixture.name
    shutil.copytree(fixture, project, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb", "*.duckdb.wal"))
    return project


def built_template(project: Path) -> Path:
    """`project` after dbt's CLI built it (seeds, models, snapshots, tests all pass)."""
    built = run_dbt_cli(project, "build")
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return project


def copy_shop(dest: Path) -> Path:
    """A fresh, writable copy of the demo project (without build products), with dbt's partial-parse state of the
    unchanged project: a server's first parse then takes ~1 s instead of ~3 s. dbt re-reads every file whose hash
    differs, and the first full parse stays covered by the demo test (the demo copies the project itself)."""
    project = copy_fixture(FIXTURE, dest)
    (project / "target").mkdir()
    shutil.copy(_partial_parse_state(), project / "target" / "partial_parse.msgpack")
    return project


def copy_styleguide(dest: Path) -> Path:
    """A fresh, writable copy of the style-guide idiom project (fixtures/styleguide)."""
    return copy_fixture(STYLEGUIDE, dest)


_PARSE_STATE: list[Path] = []


def _partial_parse_state() -> Path:
    """target/partial_parse.msgpack of the demo project as dbt's CLI parses it, made once per run."""
    if not _PARSE_STATE:
        project = copy_fixture(FIXTURE, Path(tempfile.mkdtemp(prefix="dbt-ae-parsed-")))
        parsed = run_dbt_cli(project, "parse")
        assert parsed.returncode == 0, parsed.stdout[-3000:] + parsed.stderr[-3000:]
        _PARSE_STATE.append(project / "target" / "partial_parse.msgpack")
    return _PARSE_STATE[0]


def run_dbt_cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """dbt's own CLI on a project (the way a user builds it), outside any server."""
    env = {k: v for k, v in os.environ.items() if k != "DBT_AE_DUCKDB_PATH"} | {"DO_NOT_TRACK": "1", "DBT_USE_COLORS": "false"}
    return subprocess.run([sys.executable, "-c", "from dbt.cli.main import cli; cli()", *args, "--project-dir", str(project),
                           "--profiles-dir", str(project)], capture_output=True, text=True, cwd=project, env=env, timeout=600)


def run_server_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`dbt-ae-mcp <args>` as a user runs it, from the repository."""
    return subprocess.run([sys.executable, "-m", "server.cli", *args], capture_output=True, text=True, cwd=REPO, timeout=timeout)


def run_python(script: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`python -c script args...` in a fresh interpreter from the repository (for what one process cannot show)."""
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, cwd=REPO, timeout=timeout)


def apply_batch2(project: Path) -> None:
    for csv in BATCH2.glob("*.csv"):
        shutil.copy(csv, project / "seeds" / csv.name)


def serve_args(project: Path, data_dir: Path, *extra: str) -> list[str]:
    return ["-m", "server.cli", "serve", "--project-dir", str(project), "--data-dir", str(data_dir), *extra]


def pytest_configure(config: pytest.Config) -> None:
    """Every server and store of the run exports the embedding model into a cache of this run's own, so the
    first-start export path runs on every `make test` (never the user's ~/.cache/dbt-ae-mcp)."""
    cache = tempfile.mkdtemp(prefix="dbt-ae-model-cache-")
    os.environ["DBT_AE_MEMORY_MODEL_CACHE"] = cache
    # Removed at exit, after (atexit runs last-registered first) in-process embedders finish a first-start export.
    atexit.register(shutil.rmtree, cache, ignore_errors=True)


# The longest test files (seconds of a CI run, 2026-12-01), in that order.
LONGEST_FIRST = ("test_dbt_errors_e2e.py", "test_faults_e2e.py", "test_authoring_e2e.py", "test_e2e_security.py",
                 "test_dbt_promises_e2e.py", "test_e2e_shop.py", "test_results_e2e.py", "test_load_http_e2e.py",
                 "test_property_hostile.py", "test_node_changes_e2e.py", "test_columns_e2e.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`make test` hands whole files (`-n 2 --dist loadfile`) to whichever process is free, in collection order: the
    longest files go first, so that the run does not end with one process alone on a long file (alphabetical order
    left test_results_e2e and the server tests for last). The sort is stable: the rest keep their order."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def pytest_unconfigure(config: pytest.Config) -> None:
    for state in _PARSE_STATE:
        shutil.rmtree(state.parents[2], ignore_errors=True)


@asynccontextmanager
async def stdio_session(project: Path, data_dir: Path, *extra: str, env: dict[str, str] | None = None,
                        **client_kw: Any) -> AsyncIterator[Client]:
    """A server over stdio; `env` adds variables to its environment (a warehouse's connection: tests/pg.py)."""
    params = StdioServerParameters(command=sys.executable, args=serve_args(project, data_dir, *extra), cwd=str(REPO),
                                   env={**server_environment(), **(env or {})})
    async with Client(params, **client_kw) as client:
        yield client


async def held_session(project: Path, data_dir: Path, *extra: str, env: dict[str, str] | None = None) -> AsyncIterator[Client]:
    """A stdio_session for a module- or session-scoped async fixture (`yield` from it with `async for`): one server
    process and dbt worker shared by the tests of a module that may share them. The session lives in a task of its
    own because anyio's cancel scopes must be left in the task that entered them, and pytest-asyncio sets a fixture
    up and tears it down in different tasks."""
    import asyncio

    opened: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
    done = asyncio.Event()

    async def hold() -> None:
        async with stdio_session(project, data_dir, *extra, env=env) as session:
            opened.set_result(session)
            await done.wait()

    task = asyncio.create_task(hold())
    await asyncio.wait([task, opened], return_when=asyncio.FIRST_COMPLETED)
    if not opened.done():
        task.result()  # the server never started: raise its error
    try:
        yield opened.result()
    finally:
        done.set()
        await task


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


@contextmanager
def listening(command: list[str], port: int, timeout: float = 60, env: dict[str, str] | None = None,
              stderr_path: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """A process started here that must listen on 127.0.0.1:port; stopped on exit. Its stderr goes to stderr_path when
    given, and a process that dies before it listens fails with that stderr's tail."""
    log = stderr_path.open("wb") if stderr_path else subprocess.DEVNULL
    proc = subprocess.Popen(command, cwd=str(REPO), stdout=subprocess.DEVNULL, stderr=log,
                            env=None if env is None else {**os.environ, **env})
    try:
        try:
            wait_for_port(port, proc, timeout)
        except RuntimeError as exc:
            tail = stderr_path.read_text(errors="replace")[-2000:] if stderr_path else ""
            raise RuntimeError(f"{exc}\n{tail}") from None
        yield proc
    finally:
        stop_process(proc)
        if stderr_path:
            log.close()  # type: ignore[union-attr]


@contextmanager
def http_serving(project: Path, data_dir: Path, *extra: str, env: dict[str, str] | None = None,
                 stderr_path: Path | None = None) -> Iterator[str]:
    """`dbt-ae-mcp serve --http` as a real process; yields its MCP URL."""
    port = free_port()
    with listening([sys.executable, *serve_args(project, data_dir, "--http", f"127.0.0.1:{port}", *extra)], port,
                   env=env, stderr_path=stderr_path):
        yield f"http://127.0.0.1:{port}/mcp"


@asynccontextmanager
async def http_server(project: Path, data_dir: Path, *extra: str) -> AsyncIterator[str]:
    with http_serving(project, data_dir, *extra) as url:
        yield url


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


def node_statuses(result: dict[str, Any]) -> dict[str, str]:
    """Every node of a dbt command result by name: those shown in full (`nodes`) and the collapsed `passed` ones."""
    statuses = {node.get("name") or node["unique_id"]: node["status"] for node in result.get("nodes", [])}
    for status, names in result.get("passed", {}).items():
        statuses.update(dict.fromkeys(names, status))
    return statuses


def error(result: CallToolResult) -> dict[str, Any]:
    """The typed error of a call that must fail: code, message and hint."""
    assert result.is_error, f"expected a tool error, got: {result.content[0].text if result.content else ''}"
    payload = result.structured_content or {}
    assert payload.get("code") and payload.get("message") and payload.get("hint"), payload
    return payload


async def rows(client: Client, sql: str, limit: int = 1000) -> list[dict[str, Any]]:
    shown = ok(await client.call_tool("dbt_show", {"sql": sql, "limit": limit}))
    return [dict(zip(shown["columns"], row)) for row in shown["rows"]]


def registered_tools(*toolsets: str) -> set[str]:
    """Tool names from the toolsets' registration tables (all toolsets when none is named): what a server must list.
    Tests of which tools write keep their own lists: taken from the table, they could not fail."""
    from importlib import import_module

    from server.app import TOOLSET_MODULES

    opt_in = {"git_push"}  # registered only with --allow-push
    return {spec.name for name in (toolsets or tuple(TOOLSET_MODULES)) for spec in import_module(TOOLSET_MODULES[name]).TOOLS} - opt_in


def with_cursor(args: dict[str, Any], cursor: str | None) -> dict[str, Any]:
    return {**args, **({"cursor": cursor} if cursor else {})}


async def all_pages(client: Client, tool: str, args: dict[str, Any], max_pages: int = 100) -> list[CallToolResult]:
    """Every page of a paginated tool, following next_cursor until there is none."""
    pages: list[CallToolResult] = []
    cursor = None
    for _ in range(max_pages):
        pages.append(await client.call_tool(tool, with_cursor(args, cursor)))
        cursor = ok(pages[-1]).get("next_cursor")
        if not cursor:
            return pages
    raise AssertionError(f"{tool} still hands out a cursor after {max_pages} pages")


def follow_cursor(fetch: Any, max_pages: int = 100) -> list[dict[str, Any]]:
    """Every page from fetch(cursor) -> structured page (for the synchronous clients: raw servers, portals)."""
    pages: list[dict[str, Any]] = []
    cursor = None
    for _ in range(max_pages):
        pages.append(fetch(cursor))
        cursor = pages[-1].get("next_cursor")
        if not cursor:
            return pages
    raise AssertionError(f"still a cursor after {max_pages} pages")


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return copy_shop(tmp_path)


@pytest.fixture(scope="session")
def built_shop_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo project built once per run by dbt's CLI (seeds, models, snapshot, tests pass): `built_shop` copies it."""
    return built_template(copy_shop(tmp_path_factory.mktemp("built-template")))


@pytest.fixture
def built_shop(built_shop_template: Path, tmp_path: Path) -> Path:
    """A writable copy of the built demo project (DuckDB file and target/ included), for a test whose subject is not
    the first build."""
    return copy_built(built_shop_template, tmp_path)


def copy_built(template: Path, dest: Path) -> Path:
    """A writable copy of a built project (by its folder name) under dest."""
    project = dest / template.name
    shutil.copytree(template, project, ignore=shutil.ignore_patterns("logs"))
    return project


@pytest.fixture(scope="session")
def built_styleguide_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The style-guide idiom project (fixtures/styleguide) built once per run by dbt's CLI."""
    return built_template(copy_styleguide(tmp_path_factory.mktemp("styleguide-template")))


@pytest.fixture
def styleguide(built_styleguide_template: Path, tmp_path: Path) -> Path:
    """A writable copy of the built style-guide project."""
    return copy_built(built_styleguide_template, tmp_path)


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


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    """Under pytest-xdist (make test: -n 2) a worker hands its counts to the controller, which prints the summary."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["hostile_stats"] = dict(HOSTILE_STATS)


try:
    import xdist  # noqa: F401  (its hooks exist only when it is installed)

    def pytest_testnodedown(node: Any, error: Any) -> None:
        for key, value in (getattr(node, "workeroutput", {}) or {}).get("hostile_stats", {}).items():
            HOSTILE_STATS[key] += value
except ImportError:
    pass


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    if HOSTILE_STATS["calls"]:
        terminalreporter.write_line(f"hostile property test: {HOSTILE_STATS['calls']} calls, "
                                    f"{HOSTILE_STATS['internal_errors']} internal errors")
