"""The git toolset through a real MCP client on a copy of the demo project inside a temporary git repository (never
/work's own): status grouped by dbt node, diff hunks with their nodes, commits of exactly the given paths, the log,
and a push to a local bare remote only when --allow-push is set, never forced."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, copy_shop, error, ok, stdio_session

pytestmark = pytest.mark.e2e

PWN = Path("/tmp/git_e2e_pwn")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def new_repo(top: Path) -> None:
    git(top, "init", "-q", "-b", "main")
    git(top, "config", "user.name", "Test Agent")
    git(top, "config", "user.email", "agent@example.com")
    git(top, "add", "-A")
    git(top, "commit", "-q", "-m", "initial")
    assert Path(git(top, "rev-parse", "--show-toplevel").strip()).resolve() == top.resolve()
    assert not top.resolve().is_relative_to(REPO)


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


async def test_status_diff_commit_log_push_with_the_project_in_a_subfolder(tmp_path: Path) -> None:
    top = tmp_path / "repo"
    top.mkdir()
    project = copy_shop(top)  # top/shop: the project is a subfolder of the repository
    (top / "NOTES.md").write_text("outside the project\n")
    new_repo(top)
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(top, "remote", "add", "origin", str(remote))
    PWN.unlink(missing_ok=True)
    data_dir = tmp_path / "data"
    async with stdio_session(project, data_dir, "--toolsets", "dbt,git", "--allow-push") as client:
        assert {"git_status", "git_diff", "git_log", "git_commit", "git_push"} <= {t.name for t in (await client.list_tools()).tools}
        assert ok(await client.call_tool("dbt_parse", {}))["success"]  # target/manifest.json: the nodes come from dbt
        clean = ok(await client.call_tool("git_status", {}))
        assert clean["branch"] == "main" and not clean.get("files")

        # one model file changed (and a file outside the project): listed exactly, under its model, from the manifest
        append(project / "models/staging/stg_orders.sql", "-- a comment an agent added\n")
        append(top / "NOTES.md", "changed too\n")
        status = ok(await client.call_tool("git_status", {}))
        assert status["files"] == [{"path": "models/staging/stg_orders.sql", "status": " M", "nodes": ["model.shop.stg_orders"]}]
        assert status["by_resource"] == {"model.shop.stg_orders": ["models/staging/stg_orders.sql"]} and status["from_manifest"]

        diff = ok(await client.call_tool("git_diff", {}))
        assert "+-- a comment an agent added" in diff["diff"] and "NOTES" not in diff["diff"]
        assert [(h["path"], h["nodes"]) for h in diff["hunks"]] == [("models/staging/stg_orders.sql", ["model.shop.stg_orders"])]

        # a properties change inside dim_customers' entry: the hunk names dim_customers, not the file's other models
        marts = project / "models/marts/_marts.yml"
        lines = marts.read_text().splitlines()
        at = next(n for n, line in enumerate(lines) if "- name: dim_customers" in line)
        lines.insert(at + 1, "    # reviewed")
        marts.write_text("\n".join(lines) + "\n")
        yml = ok(await client.call_tool("git_diff", {"paths": ["models/marts"]}))
        assert [(h["path"], h["nodes"]) for h in yml["hunks"]] == [("models/marts/_marts.yml", ["model.shop.dim_customers"])]
        grouped = ok(await client.call_tool("git_status", {}))["by_resource"]
        assert grouped == {"model.shop.stg_orders": ["models/staging/stg_orders.sql"], "model.shop.dim_customers": ["models/marts/_marts.yml"]}

        # commit exactly the model file: the other changes stay uncommitted, staged ones too (git itself says so)
        git(top, "add", "shop/models/marts/_marts.yml")
        staged = ok(await client.call_tool("git_diff", {"staged": True}))
        assert [(h["path"], h["nodes"]) for h in staged["hunks"]] == [("models/marts/_marts.yml", ["model.shop.dim_customers"])]
        before = git(top, "rev-parse", "HEAD").strip()
        commit = ok(await client.call_tool("git_commit", {"message": "Document stg_orders", "paths": ["models/staging/stg_orders.sql"]}))
        assert commit["files"] == ["M models/staging/stg_orders.sql"] and commit["uncommitted"] == 1 and commit["branch"] == "main"
        assert git(top, "rev-parse", "HEAD").strip() == commit["commit"] != before
        assert git(top, "show", "--name-only", "--format=", "HEAD").split() == ["shop/models/staging/stg_orders.sql"]
        assert git(top, "log", "-1", "--format=%an <%ae>|%s") == "Test Agent <agent@example.com>|Document stg_orders\n"
        assert sorted(git(top, "status", "--porcelain").splitlines()) == [" M NOTES.md", "M  shop/models/marts/_marts.yml"]

        # an empty commit and a path outside the project are refused; nothing changes
        empty = error(await client.call_tool("git_commit", {"message": "again", "paths": ["models/staging/stg_orders.sql"]}))
        assert empty["code"] == "nothing_to_commit"
        outside = error(await client.call_tool("git_commit", {"message": "sneak", "paths": ["../NOTES.md"]}))
        assert outside["code"] == "path_outside_project"
        assert git(top, "rev-parse", "HEAD").strip() == commit["commit"]
        assert sorted(git(top, "status", "--porcelain").splitlines()) == [" M NOTES.md", "M  shop/models/marts/_marts.yml"]

        log = ok(await client.call_tool("git_log", {"path": "models/staging/stg_orders.sql", "limit": 5}))
        assert [(c["hash"], c["subject"], c["files"]) for c in log["commits"]] == [
            (commit["commit"], "Document stg_orders", ["models/staging/stg_orders.sql"]), (before, "initial", ["models/staging/stg_orders.sql"])]

        # a remote that is an option is refused before git runs; then a real push reaches the bare remote
        hostile = error(await client.call_tool("git_push", {"remote": f"--upload-pack=touch {PWN}"}))
        assert hostile["code"] == "invalid_input" and not PWN.exists()
        assert error(await client.call_tool("git_push", {"branch": "--force"}))["code"] == "invalid_input"
        assert git(remote, "for-each-ref") == ""
        pushed = ok(await client.call_tool("git_push", {}))
        assert (pushed["remote"], pushed["branch"], pushed["ref"]) == ("origin", "main", "refs/heads/main")
        assert git(remote, "rev-parse", "refs/heads/main").strip() == commit["commit"]

        # the remote moves on: the next push is rejected, never forced, and the remote keeps its commit
        other = tmp_path / "other"
        git(tmp_path, "clone", "-q", str(remote), str(other))
        (other / "theirs.txt").write_text("x\n")
        git(other, "add", "theirs.txt")
        git(other, "-c", "user.name=Other", "-c", "user.email=o@example.com", "commit", "-q", "-m", "theirs")
        git(other, "push", "-q", "origin", "main")
        theirs = git(remote, "rev-parse", "refs/heads/main").strip()
        ok(await client.call_tool("git_commit", {"message": "Review dim_customers", "paths": ["models/marts/_marts.yml"]}))
        rejected = error(await client.call_tool("git_push", {"remote": "origin", "branch": "main"}))
        assert rejected["code"] == "push_rejected" and "never force" in rejected["hint"]
        assert git(remote, "rev-parse", "refs/heads/main").strip() == theirs


async def test_without_allow_push_there_is_no_push_and_names_come_from_folders(tmp_path: Path) -> None:
    project = copy_shop(tmp_path)  # the project is the repository's top folder; no manifest
    new_repo(project)
    git(project, "remote", "add", "origin", str(tmp_path / "nowhere.git"))
    append(project / "seeds/raw_products.csv", "")
    append(project / "models/marts/fct_orders.sql", "\n")
    (project / "models/marts/fct_new.sql").write_text("select 1 as id\n")
    async with stdio_session(project, tmp_path / "data", "--toolsets", "git") as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == {"git_status", "git_diff", "git_log", "git_commit"}
        assert error(await client.call_tool("git_push", {}))["code"] == "unknown_tool"
        status = ok(await client.call_tool("git_status", {}))
        assert not status.get("from_manifest")
        assert status["by_resource"] == {"model.shop.fct_orders": ["models/marts/fct_orders.sql"],
                                         "model.shop.fct_new": ["models/marts/fct_new.sql"]}
        assert {f["path"]: f["status"] for f in status["files"]} == {"models/marts/fct_orders.sql": " M", "models/marts/fct_new.sql": "??"}
        diff = ok(await client.call_tool("git_diff", {}))
        assert diff["untracked"] == ["models/marts/fct_new.sql"]
        assert [h["nodes"] for h in diff["hunks"]] == [["model.shop.fct_orders"]]
        assert not ok(await client.call_tool("git_diff", {"paths": ["*.sql"]})).get("hunks")  # a path, never a glob
        # the read-only tools leave the repository as it was: `git diff` would rewrite .git/index for a file whose
        # modification time moved (here dim_customers.sql, same content)
        dim = project / "models/marts/dim_customers.sql"
        os.utime(dim, (dim.stat().st_atime, dim.stat().st_mtime + 5))
        index = hashlib.sha256((project / ".git/index").read_bytes()).hexdigest()
        for tool, args in (("git_status", {}), ("git_diff", {}), ("git_diff", {"staged": True}), ("git_log", {})):
            ok(await client.call_tool(tool, args))
        assert hashlib.sha256((project / ".git/index").read_bytes()).hexdigest() == index
        # a new file and a folder: both committed, nothing else
        commit = ok(await client.call_tool("git_commit", {"message": "Add fct_new", "paths": ["models/marts/fct_new.sql"]}))
        assert commit["files"] == ["A models/marts/fct_new.sql"] and commit["uncommitted"] == 1
        assert git(project, "status", "--porcelain") == " M models/marts/fct_orders.sql\n"
        for hostile in (["--all"], [".git/config"], ["/etc/passwd"], ["models/../../x"]):
            assert error(await client.call_tool("git_commit", {"message": "x", "paths": hostile}))["code"] in (
                "invalid_input", "path_outside_project")
        assert git(project, "log", "--format=%s") == "Add fct_new\ninitial\n"
