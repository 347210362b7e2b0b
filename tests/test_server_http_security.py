"""Who may talk to the server over HTTP: bearer token, bind policy, Host/Origin checks, the docs site's Host check,
and path errors that never name a symlink's target. Every check runs against a real server process or socket."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from conftest import REPO, copy_shop, error, free_port, http_serving, serve_args
from tools.authoring.files import project_path
from server.errors import ToolFailure
from tools.dbt.docs_server import DocsServer

pytestmark = pytest.mark.e2e

TOKEN = "t0k-" + "x" * 28
OTHER_ORIGIN = "https://app.example.com"
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "security-test", "version": "0"}}}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


class Served:
    def __init__(self, url: str, project: Path) -> None:
        self.url, self.project = url, project
        self.port = int(url.rsplit(":", 1)[1].split("/")[0])

    def initialize(self, **headers: str) -> httpx.Response:
        """An MCP initialize POST as the streamable HTTP transport sends it, plus the given headers."""
        return httpx.post(self.url, json=INITIALIZE, headers={**ACCEPT, **headers}, timeout=20)


@contextmanager
def serving(tmp: Path, *extra: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    project = copy_shop(tmp)
    with http_serving(project, tmp / "data", "--toolsets", "lineage", *extra, env=env, stderr_path=tmp / "server.stderr") as url:
        yield Served(url, project)


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Token from a file (with a trailing newline, as editors write it) and one extra allowed Origin, by flags."""
    tmp = tmp_path_factory.mktemp("token_server")
    (tmp / "token").write_text(f"  {TOKEN}\n")
    with serving(tmp, "--http-token-file", str(tmp / "token"), "--http-allowed-origins", OTHER_ORIGIN) as served:
        yield served


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_requests_without_the_right_token_get_401(token_server: Served) -> None:
    missing = token_server.initialize()
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert token_server.initialize(**bearer("t0k-" + "y" * 28)).status_code == 401
    assert token_server.initialize(Authorization=TOKEN).status_code == 401  # not a Bearer credential
    assert token_server.initialize(**bearer(TOKEN + "x")).status_code == 401


def test_right_token_initializes_and_the_session_still_needs_it(token_server: Served) -> None:
    opened = token_server.initialize(**bearer())
    assert opened.status_code == 200, opened.text
    assert '"serverInfo"' in opened.text and "dbt-ae-mcp" in opened.text
    session = {"mcp-session-id": opened.headers["mcp-session-id"], "mcp-protocol-version": "2025-06-18"}
    listed = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
    anonymous = httpx.post(token_server.url, json=listed, headers={**ACCEPT, **session}, timeout=20)
    assert anonymous.status_code == 401


def test_origin_and_host_must_name_this_server(token_server: Served) -> None:
    port = token_server.port
    assert token_server.initialize(**bearer(), Origin=f"http://127.0.0.1:{port}").status_code == 200
    assert token_server.initialize(**bearer(), Origin=f"http://localhost:{port}").status_code == 200
    assert token_server.initialize(**bearer(), Origin=OTHER_ORIGIN).status_code == 200  # --http-allowed-origins
    assert token_server.initialize(**bearer(), Origin="http://evil.example").status_code == 403
    assert token_server.initialize(**bearer(), Origin=f"http://localhost:{free_port()}").status_code == 403  # another local app
    assert token_server.initialize(**bearer(), Origin=f"https://127.0.0.1:{port}").status_code == 403
    assert token_server.initialize(**bearer(), Host=f"evil.example:{port}").status_code == 421  # DNS rebinding
    assert token_server.initialize(**bearer(), Host=f"localhost:{port}").status_code == 200


async def test_sdk_client_with_token_works_and_without_fails(token_server: Served, tmp_path: Path) -> None:
    async with create_mcp_http_client(headers=bearer()) as http:
        async with Client(streamable_http_client(token_server.url, http_client=http)) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert "start_tracking" in names
            outside = tmp_path / "outside-secret-dir"
            outside.mkdir()
            (outside / "x.sql").write_text("select 1")
            (token_server.project / "models" / "link").symlink_to(outside)
            failure = error(await client.call_tool("start_tracking", {"filepath": "models/link/x.sql"}))
            assert failure["code"] == "path_outside_project"
            assert "models/link/x.sql" in failure["message"] and "outside-secret-dir" not in str(failure)
    statuses: list[int] = []

    async def record(response: Any) -> None:
        statuses.append(response.status_code)

    async with create_mcp_http_client() as anonymous:
        anonymous.event_hooks["response"] = [record]
        with pytest.raises(Exception, match="unhandled errors|error response"):
            async with Client(streamable_http_client(token_server.url, http_client=anonymous)) as client:
                await client.list_tools()
    assert statuses and set(statuses) == {401}, statuses


def test_env_vars_set_token_and_origins(tmp_path: Path) -> None:
    with serving(tmp_path, env={"DBT_AE_HTTP_TOKEN": TOKEN, "DBT_AE_HTTP_ALLOWED_ORIGINS": f"{OTHER_ORIGIN}, http://tool.local:9"}) as served:
        assert served.initialize().status_code == 401
        assert served.initialize(**bearer(), Origin="http://tool.local:9").status_code == 200
        assert served.initialize(**bearer(), Origin="http://tool.local:10").status_code == 403


def run_cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DBT_AE_HTTP")}
    return subprocess.run([sys.executable, *serve_args(tmp_path, tmp_path / "data", "--toolsets", "memory", *args)],
                          cwd=str(REPO), capture_output=True, text=True, timeout=60, env={**clean, **(env or {})})


def test_public_bind_without_token_refuses_to_start(tmp_path: Path) -> None:
    port = free_port()
    refused = run_cli(tmp_path, "--http", f"0.0.0.0:{port}")
    assert refused.returncode == 2, refused.stderr
    assert f"refusing to serve HTTP on 0.0.0.0:{port} without a token" in refused.stderr
    assert refused.stdout == ""
    weak = run_cli(tmp_path, "--http", f"0.0.0.0:{port}", "--http-token", "short")
    assert weak.returncode == 2 and "at least 16" in weak.stderr and "short" not in weak.stderr  # the token is not echoed
    missing = run_cli(tmp_path, "--http", f"0.0.0.0:{port}", env={"DBT_AE_HTTP_TOKEN_FILE": str(tmp_path / "nope")})
    assert missing.returncode == 2 and "cannot read the HTTP token file" in missing.stderr


def test_bind_policy_and_allowed_hosts_units() -> None:
    from server.http_security import exposure_problem, is_loopback, own_hosts
    from server.settings import Settings

    assert [is_loopback(h) for h in ("127.0.0.1", "127.3.4.5", "::1", "LOCALHOST", "0.0.0.0", "::", "10.0.0.1")] == [
        True, True, True, True, False, False, False]
    assert exposure_problem(Settings(http="127.0.0.2:8000")) is None
    assert exposure_problem(Settings(http="[::]:8000")) is not None
    assert exposure_problem(Settings(http="0.0.0.0:8000", http_token=TOKEN)) is None
    assert own_hosts("127.0.0.1", 8000) == ["127.0.0.1:8000", "[::1]:8000", "localhost:8000"]
    assert own_hosts("10.1.2.3", 8000) == ["10.1.2.3:8000"]
    assert "0.0.0.0:8000" not in own_hosts("0.0.0.0", 8000) and "localhost:8000" in own_hosts("0.0.0.0", 8000)


@pytest.fixture
def docs(tmp_path: Path) -> Iterator[str]:
    site = tmp_path / "target"
    site.mkdir()
    (site / "index.html").write_text("<html>docs</html>")
    (site / "manifest.json").write_text('{"nodes": {"model.shop.fct_orders": {}}}')
    (site / "run_results.json").write_text("{}")
    server = DocsServer()
    try:
        yield server.start(site, 0)
    finally:
        server.stop()


def fetch(url: str, **headers: str) -> httpx.Response:
    return httpx.get(url, headers=headers, timeout=10)


def test_docs_server_refuses_a_foreign_host(docs: str) -> None:
    port = int(docs.rstrip("/").rsplit(":", 1)[1])
    assert docs == f"http://127.0.0.1:{port}/"
    rebound = fetch(docs + "manifest.json", Host=f"evil.example:{port}")
    assert rebound.status_code == 421 and "fct_orders" not in rebound.text
    assert fetch(docs + "manifest.json", Host="127.0.0.1").status_code == 421  # no port: not our socket's name
    assert fetch(docs + "manifest.json", Host=f"127.0.0.1:{port + 1}").status_code == 421
    assert "fct_orders" in fetch(docs + "manifest.json").text
    assert fetch(docs + "manifest.json", Host=f"localhost:{port}").status_code == 200
    assert fetch(docs).status_code == 200 and "docs" in fetch(docs).text


def test_docs_server_serves_only_the_site_files(docs: str) -> None:
    assert fetch(docs + "run_results.json").status_code == 404
    assert fetch(docs + "index.html?cb=1").status_code == 200
    assert fetch(docs + "models/").status_code == 404  # no directory listing


def test_path_error_names_the_agents_path_not_the_link_target(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    secret = tmp_path / "secret-place"
    secret.mkdir()
    (root / "models").symlink_to(secret)
    with pytest.raises(ToolFailure) as failure:
        project_path(root, "models/x.sql")
    assert failure.value.code == "path_outside_project"
    assert "models/x.sql" in failure.value.message and "secret-place" not in failure.value.message + failure.value.hint
