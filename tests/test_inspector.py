"""Our server seen through the official MCP Inspector CLI (npm @modelcontextprotocol/inspector) over stdio.

A client we did not write: it negotiates its own protocol version, converts --tool-arg strings by the
tool's input schema, and prints the raw JSON result. Install it first with `bash tests/install_inspector.sh`
(`make test` does). A missing inspector fails these tests on purpose: CI installs it, so a skip would hide
a broken install step.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, copy_shop

pytestmark = pytest.mark.e2e

INSPECTOR_DIR = REPO / ".npm-tools" / "node_modules"
INSPECTOR_BIN = INSPECTOR_DIR / ".bin" / "mcp-inspector"
INSPECTOR_PKG = INSPECTOR_DIR / "@modelcontextprotocol" / "inspector" / "package.json"
# The console script of the venv that runs pytest: the same install as the code under test.
SERVER_BIN = Path(sys.executable).parent / "dbt-ae-mcp"
TIMEOUT = 300  # one inspector run starts the server and its warm dbt worker: ~5-15 s here

EXPECTED_TOOLS = {"dbt_run", "dbt_build", "dbt_compile", "dbt_show", "dbt_list"}


def inspector_cmd() -> list[str]:
    """The command that starts the Inspector in CLI mode (never the web UI, which would open a browser).
    Called in the test body, not a fixture, so a missing install reports as a FAILED test."""
    node = shutil.which("node")
    if not node:
        pytest.fail("node is not on PATH: install node and npm, then run `bash tests/install_inspector.sh`")
    if not INSPECTOR_BIN.exists() or not INSPECTOR_PKG.is_file():
        pytest.fail(
            f"MCP Inspector CLI not installed (no {INSPECTOR_BIN.relative_to(REPO)}): "
            "run `bash tests/install_inspector.sh` first (make test and CI do)"
        )
    assert SERVER_BIN.exists(), f"no dbt-ae-mcp console script next to {sys.executable}"
    return [node, str(INSPECTOR_BIN), "--cli"]


@pytest.fixture(scope="module")
def server_cmd(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """`dbt-ae-mcp serve` on a fresh copy of the shop project, with its own state directory."""
    base = tmp_path_factory.mktemp("inspector")
    project = copy_shop(base)
    data_dir = base / "data"
    data_dir.mkdir()
    return [str(SERVER_BIN), "serve", "--project-dir", str(project), "--data-dir", str(data_dir)]


def run_inspector(server_cmd: list[str], *method_args: str) -> dict[str, Any]:
    """One Inspector CLI run; its stdout must be one JSON document. `--` keeps the server's own flags
    (--project-dir, --log-level, ...) away from the Inspector's option parser."""
    inspector = inspector_cmd()
    env = {**os.environ, "MCP_AUTO_OPEN_ENABLED": "false", "NO_UPDATE_NOTIFIER": "1"}
    # Own process group: on a time-out the server and its dbt worker go down with the Inspector.
    proc = subprocess.Popen(
        [*inspector, *method_args, "--", *server_cmd], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"inspector did not finish in {TIMEOUT}s\nstdout:\n{stdout[-4000:]}\nstderr:\n{stderr[-4000:]}")
    where = f"inspector {inspector_version()} exit {proc.returncode}\nstdout:\n{stdout[-4000:]}\nstderr:\n{stderr[-4000:]}"
    assert proc.returncode == 0, where
    try:
        return json.loads(stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"inspector stdout is not JSON ({exc})\n{where}") from None


def inspector_version() -> str:
    try:
        return json.loads(INSPECTOR_PKG.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return "?"


def test_inspector_lists_tools(server_cmd: list[str]) -> None:
    listed = run_inspector(server_cmd, "--method", "tools/list")
    tools = {tool["name"]: tool for tool in listed["tools"]}
    assert EXPECTED_TOOLS <= set(tools), sorted(tools)
    assert "select" in tools["dbt_list"]["inputSchema"]["properties"]
    assert tools["dbt_show"]["annotations"]["readOnlyHint"] is True


def test_inspector_calls_dbt_list(server_cmd: list[str]) -> None:
    # A plain string argument. Inspector 2.x JSON-parses each --tool-arg value (falling back to the raw
    # string) and coerces it by the input schema, so resource_types=["model"] would arrive as a list too;
    # "fct_orders" is not JSON and stays a string, which is what `select` takes.
    result = run_inspector(
        server_cmd, "--method", "tools/call", "--tool-name", "dbt_list", "--tool-arg", "select=fct_orders",
    )
    text = "\n".join(part.get("text", "") for part in result.get("content", []))
    assert not result.get("isError"), text
    assert "model.shop.fct_orders" in text
    structured = result["structuredContent"]
    by_id = {item["unique_id"]: item for item in structured["items"]}
    assert by_id["model.shop.fct_orders"]["resource_type"] == "model"
    assert structured["total"] == len(structured["items"])
    assert [uid for uid, item in by_id.items() if item["resource_type"] == "model"] == ["model.shop.fct_orders"]


def test_inspector_lists_resources(server_cmd: list[str]) -> None:
    listed = run_inspector(server_cmd, "--method", "resources/list")
    resources = {resource["uri"]: resource for resource in listed["resources"]}
    assert {"dbt://project", "dbt://run/latest"} <= set(resources), sorted(resources)
    assert resources["dbt://project"]["title"] and resources["dbt://project"]["mimeType"] == "application/json"
    templates = run_inspector(server_cmd, "--method", "resources/templates/list")
    assert {"dbt://node/{name}", "dbt://run/{run_id}", "memory://{+key}"} <= {t["uriTemplate"] for t in templates["resourceTemplates"]}


def test_inspector_lists_prompts(server_cmd: list[str]) -> None:
    listed = run_inspector(server_cmd, "--method", "prompts/list")
    prompts = {prompt["name"]: prompt for prompt in listed["prompts"]}
    assert {"incremental_fact_table", "scd2_snapshot", "data_quality_suite", "recover_incremental_duplicates",
            "recover_relationship_failures", "recover_source_freshness", "review_change"} <= set(prompts), sorted(prompts)
    review = prompts["review_change"]
    assert review["title"]
    assert {arg["name"]: arg.get("required", False) for arg in review["arguments"]} == {
        "model": True, "filepath": True, "select": False, "message": False}
