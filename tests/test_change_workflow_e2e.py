"""Issue 15's scenario, as an agent in Claude Desktop would run it without leaving the server: rename a column of a
staging model with file_edit, see analyze_changes call it breaking with its child, fix the child with model_update,
prove it with dbt_build, then git_status / git_commit exactly those files and git_push to a local bare remote (only
when allowed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import error, ok, stdio_session

pytestmark = pytest.mark.e2e

STG = "models/staging/stg_customers.sql"
DIM = "models/marts/dim_customers.sql"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


async def test_rename_a_column_fix_the_child_build_commit_push(built_shop: Path, tmp_path: Path) -> None:
    project = built_shop  # already built by the CLI: the agent's edits are what this test is about
    git(project, "init", "-q", "-b", "main")
    git(project, "config", "user.name", "Test Agent")
    git(project, "config", "user.email", "agent@example.com")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "initial")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(project, "remote", "add", "origin", str(remote))
    dim_sql = (project / DIM).read_text()

    async with stdio_session(project, tmp_path / "data", "--allow-push") as client:
        assert "git_status" in {t.name for t in (await client.list_tools()).tools}
        # the rename is valid SQL for stg_customers itself, so the edit lands (and takes a baseline on its own)
        edited = ok(await client.call_tool("file_edit", {"path": STG, "old_text": "    email,\n    city,\n",
                                                         "new_text": "    email,\n    city as town,\n"}))
        assert edited.get("files") or edited.get("path"), edited
        changes = ok(await client.call_tool("analyze_changes", {"filepath": STG}))["files"][0]
        assert changes["breaking"] and "city" in changes["columns_removed"], changes
        assert {r["name"] for r in changes["broken_reads"]} == {"dim_customers"}, changes["broken_reads"]

        # the renamed column reaches the warehouse (model_update checks the child's query against it), then the child
        # follows: new SQL for dim_customers, its YAML untouched
        assert ok(await client.call_tool("dbt_run", {"select": "stg_customers"}))["success"]
        marts_yml = (project / "models/marts/_marts.yml").read_bytes()
        ok(await client.call_tool("model_update", {"name": "dim_customers",
                                                   "sql": dim_sql.replace("customers.city,", "customers.town as city,")}))
        assert (project / "models/marts/_marts.yml").read_bytes() == marts_yml
        built = ok(await client.call_tool("dbt_build", {"select": "stg_customers+", "exclude": "customers_snapshot"}))
        assert built["success"], built

        status = ok(await client.call_tool("git_status", {}))
        assert sorted(f["path"] for f in status["files"]) == [DIM, STG], status
        commit = ok(await client.call_tool("git_commit", {"message": "Rename stg_customers.city to town", "paths": [STG, DIM]}))
        assert sorted(git(project, "show", "--name-only", "--format=", "HEAD").split()) == [DIM, STG]
        assert git(project, "status", "--porcelain") == ""
        pushed = ok(await client.call_tool("git_push", {"remote": "origin", "branch": "main"}))
        assert pushed["branch"] == "main" and git(remote, "rev-parse", "refs/heads/main").strip() == commit["commit"]

    async with stdio_session(project, tmp_path / "data2", "--toolsets", "git") as client:  # push not allowed
        assert error(await client.call_tool("git_push", {"remote": "origin", "branch": "main"}))["code"] == "unknown_tool"
