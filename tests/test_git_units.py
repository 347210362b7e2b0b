"""The git toolset's pure parts (status grouping, hunk -> node mapping, diff parsing, name and path validation) and its
refusals that need a real repository but no server (no identity, no repository). Real git in temporary folders."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from conftest import FIXTURE, copy_fixture

from server.context import AppContext
from server.errors import ToolFailure
from server.registration import ProgressReporter
from server.settings import Settings
from tools.dbt.engine.engine import DbtEngine
from tools.git.hunks import parse_diff, unquote
from tools.git.inputs import CommitInput, PushInput
from tools.git.nodes import NodeIndex, macro_spans, yaml_spans
from tools.git.runner import Repo
from tools.git.service import GitTools, branch_label, parse_status
from tools.git.validate import project_path, ref_name_problem, remote_name_problem

SOURCES = (FIXTURE / "models/staging/_sources.yml").read_text()
STAGING = (FIXTURE / "models/staging/_staging.yml").read_text()


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def test_a_hunk_maps_to_the_yaml_entry_it_changes() -> None:
    index = NodeIndex.load(FIXTURE)  # no target/ in the fixture: names come from dbt_project.yml and the file
    assert not index.from_manifest and index.project_name == "shop"
    stg_orders = line_of(STAGING, "- name: stg_orders")
    assert index.nodes_in("models/staging/_staging.yml", STAGING, (stg_orders + 3, stg_orders + 3)) == ["model.shop.stg_orders"]
    # a hunk across two entries touches both; a pure deletion before the first entry touches none
    assert index.nodes_in("models/staging/_staging.yml", STAGING, (stg_orders - 1, stg_orders)) == [
        "model.shop.stg_products", "model.shop.stg_orders"]
    assert index.nodes_in("models/staging/_staging.yml", STAGING, (1, 1)) == []
    # a source's table is its own node; the source's header lines touch every table of it
    orders = line_of(SOURCES, "- name: orders")
    assert index.nodes_in("models/staging/_sources.yml", SOURCES, (orders + 2, orders + 2)) == ["source.shop.raw.orders"]
    header = line_of(SOURCES, "- name: raw")
    assert index.nodes_in("models/staging/_sources.yml", SOURCES, (header + 1, header + 1)) == [
        "source.shop.raw.customers", "source.shop.raw.products", "source.shop.raw.orders", "source.shop.raw.order_items"]
    # a column named like a table is not a table
    assert [s.name for s in yaml_spans(SOURCES) if s.kind == "source_table"] == ["customers", "products", "orders", "order_items"]


def test_files_map_to_nodes_by_folder_and_name_without_a_manifest() -> None:
    index = NodeIndex.load(FIXTURE)
    assert index.file_nodes("models/marts/fct_orders.sql", None) == ["model.shop.fct_orders"]
    assert index.file_nodes("seeds/raw_orders.csv", None) == ["seed.shop.raw_orders"]
    assert index.file_nodes("tests/assert_no_order_before_signup.sql", None) == ["test.shop.assert_no_order_before_signup"]
    assert index.file_nodes("dbt_project.yml", None) == [] and index.kind_of("dbt_project.yml") == "project"
    assert index.file_nodes("README.md", None) == [] and index.kind_of("README.md") == "other"
    macros = "{% macro a(x) %}\n{{ x }}\n{% endmacro %}\n\n{%- macro b() -%}\n1\n{%- endmacro %}\n"
    assert [(s.name, s.first, s.last) for s in macro_spans(macros)] == [("a", 1, 4), ("b", 5, 8)]
    assert index.nodes_in("macros/two.sql", macros, (6, 6)) == ["macro.shop.b"]


def test_the_manifest_names_the_nodes_when_it_is_there(tmp_path: Path) -> None:
    project = copy_fixture(FIXTURE, tmp_path)
    (project / "target").mkdir()
    manifest = {"nodes": {"model.shop.orders_v2": {"resource_type": "model", "name": "orders_v2", "package_name": "shop",
                                                  "original_file_path": "models/marts/fct_orders.sql",
                                                  "patch_path": "shop://models/marts/_marts.yml"},
                          "model.other.x": {"resource_type": "model", "name": "x", "package_name": "other",
                                            "original_file_path": "models/marts/fct_orders.sql"}},
                "sources": {"source.shop.raw.orders": {"resource_type": "source", "name": "orders", "source_name": "raw",
                                                       "package_name": "shop", "original_file_path": "models/staging/_sources.yml"}}}
    (project / "target/manifest.json").write_text(json.dumps(manifest))
    index = NodeIndex.load(project)
    assert index.from_manifest
    assert index.file_nodes("models/marts/fct_orders.sql", None) == ["model.shop.orders_v2"]  # not the file's stem, not a package's
    assert index.file_nodes("models/marts/dim_customers.sql", None) == ["model.shop.dim_customers"]  # not parsed yet: by name


def test_status_is_read_for_the_project_only() -> None:
    out = "## main...origin/main [ahead 2]\0 M shop/models/a.sql\0R  shop/models/new.sql\0shop/models/old.sql\0?? README.md\0" \
          "?? shop/seeds/s.csv\0 M shopping/x.sql\0"
    branch, files = parse_status(out, Repo(Path("/r"), "shop"))
    assert files == [(" M", "models/a.sql"), ("R ", "models/new.sql"), ("??", "seeds/s.csv")]
    assert branch_label(branch) == "main [ahead 2]"
    assert branch_label("No commits yet on main") == "main (no commits yet)" and branch_label("HEAD (no branch)") == ""
    assert parse_status(" M a.sql\0", Repo(Path("/r"), ""))[1] == [(" M", "a.sql")]


def test_diff_parsing_finds_files_and_hunks() -> None:
    diff = ("diff --git a/models/a.sql b/models/a.sql\nindex 1..2 100644\n--- a/models/a.sql\n+++ b/models/a.sql\n"
            "@@ -3,2 +3,3 @@ select\n x\n+y\n z\n@@ -10 +11,0 @@\n-gone\n"
            "diff --git a/new.yml b/new.yml\nnew file mode 100644\n--- /dev/null\n+++ b/new.yml\n@@ -0,0 +1 @@\n+a: 1\n"
            "diff --git a/old.sql b/old.sql\ndeleted file mode 100644\n--- a/old.sql\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n"
            "diff --git a/img.png b/img.png\nindex 1..2 100644\nBinary files a/img.png and b/img.png differ\n"
            'diff --git "a/t\\303\\251\\tx.sql" "b/t\\303\\251\\tx.sql"\n--- "a/t\\303\\251\\tx.sql"\n+++ "b/t\\303\\251\\tx.sql"\n@@ -1 +1 @@\n-a\n+b\n')
    files = parse_diff(diff)
    assert [(f.path, f.status, len(f.hunks)) for f in files] == [
        ("models/a.sql", "modified", 2), ("new.yml", "added", 1), ("old.sql", "deleted", 1), ("img.png", "binary", 0), ("té\tx.sql", "modified", 1)]
    assert [h.new_lines for h in files[0].hunks] == [(4, 4), (11, 11)]  # changed lines, not context
    assert unquote('"a\\"b"') == 'a"b' and unquote("plain") == "plain"


@pytest.mark.parametrize("name", ["main", "feature/x", "release-1.2", "a_b/c.d", "v1"])
def test_branch_names_git_accepts_pass(name: str, tmp_path: Path) -> None:
    assert ref_name_problem(name) is None
    assert git(tmp_path, "check-ref-format", "--branch", name).strip() == name


@pytest.mark.parametrize("name", ["-f", "--force", "+main", "main:other", "a..b", "a//b", "/a", "a/", ".hidden", "a.lock", "a.",
                                  "HEAD", "refs/heads/x", "a b", "a;b", "a@{1}", "a^", "a~1", "x\0y", "", "é"])
def test_branch_names_that_could_be_options_or_refspecs_are_refused(name: str) -> None:
    assert ref_name_problem(name) is not None
    with pytest.raises(ValueError):
        PushInput(branch=name)


@pytest.mark.parametrize("name", ["--upload-pack=touch /tmp/pwn", "-o", "ext::sh -c touch", "https://x/y.git", "../r", "a b", "", "o..x"])
def test_remote_names_are_names_not_options_or_urls(name: str) -> None:
    assert remote_name_problem(name) is not None
    with pytest.raises(ValueError):
        PushInput(remote=name)
    assert remote_name_problem("origin") is None and remote_name_problem("up-stream.2") is None


def test_paths_stay_inside_the_project(tmp_path: Path) -> None:
    project = tmp_path / "p"
    (project / "models").mkdir(parents=True)
    (tmp_path / "secret.sql").write_text("x")
    (project / "link.sql").symlink_to(tmp_path / "secret.sql")
    (project / "linkdir").symlink_to(tmp_path, target_is_directory=True)
    assert project_path(project, "models/./a.sql") == "models/a.sql"
    assert project_path(project, str(project / "models/a.sql")) == "models/a.sql"
    assert project_path(project, "models/../dbt_project.yml") == "dbt_project.yml" and project_path(project, ".") == "."
    for bad in ["../secret.sql", "/etc/passwd", "models/../../secret.sql", "link.sql", "linkdir/secret.sql", ".git/config", "a/.git/x"]:
        with pytest.raises(ToolFailure) as caught:
            project_path(project, bad)
        assert caught.value.code == "path_outside_project", bad
    for bad in ["-p", "--output=/tmp/x", "a\0b", "a\nb", "", "a" * 2000]:
        with pytest.raises(ToolFailure) as caught:
            project_path(project, bad)
        assert caught.value.code == "invalid_path", bad
        with pytest.raises(ValueError):
            CommitInput(message="m", paths=[bad])


def tools_for(project: Path, data_dir: Path) -> GitTools:
    settings = Settings(project_dir=project, data_dir=data_dir, toolsets="git")
    return GitTools(AppContext(settings=settings, engine=DbtEngine(project, project, None)))


def test_a_commit_without_a_git_identity_is_refused_with_how_to_set_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "p"
    project.mkdir()
    git(project, "init", "-q", "-b", "main")
    (project / "a.sql").write_text("select 1\n")
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "empty-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    tools = tools_for(project, tmp_path / "data")
    with pytest.raises(ToolFailure) as caught:
        asyncio.run(tools.commit(CommitInput(message="m", paths=["a.sql"]), ProgressReporter(None)))
    assert caught.value.code == "git_identity_missing" and "git config --global user.email" in caught.value.hint
    assert git(project, "status", "--porcelain") == "?? a.sql\n"  # nothing staged, nothing committed


def test_a_project_outside_any_repository_gets_the_next_step(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    assert subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=project, capture_output=True).returncode != 0
    with pytest.raises(ToolFailure) as caught:
        asyncio.run(tools_for(project, tmp_path / "data").status(None, ProgressReporter(None)))  # type: ignore[arg-type]
    assert caught.value.code == "not_a_git_repository" and "git init" in caught.value.hint


def test_git_writers_are_left_out_read_only_and_push_needs_allow_push(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from server.app import build_app

    def names(**kw: object) -> set[str]:
        app, _ = build_app(Settings(project_dir=tmp_path, data_dir=tmp_path / "data", toolsets="git", **kw))
        return {tool.name for tool in asyncio.run(app.list_tools())}

    assert names() == {"git_status", "git_diff", "git_log", "git_commit"}
    assert names(allow_push=True) == {"git_status", "git_diff", "git_log", "git_commit", "git_push"}
    assert names(allow_push=True, read_only=True) == {"git_status", "git_diff", "git_log"}
    monkeypatch.setenv("DBT_AE_ALLOW_PUSH", "true")
    assert "git_push" in names()


def test_a_commit_a_hook_refuses_leaves_the_index_as_it_was(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    git(project, "init", "-q", "-b", "main")
    git(project, "config", "user.name", "T")
    git(project, "config", "user.email", "t@example.com")
    (project / "a.sql").write_text("select 1\n")
    git(project, "add", "a.sql")
    git(project, "commit", "-q", "-m", "first")
    (project / "a.sql").write_text("select 2\n")
    (project / "b.sql").write_text("select 3\n")
    hook = project / ".git/hooks/pre-commit"
    hook.write_text("#!/bin/sh\necho 'lint failed' >&2\nexit 1\n")
    hook.chmod(0o755)
    with pytest.raises(ToolFailure) as caught:
        asyncio.run(tools_for(project, tmp_path / "data").commit(CommitInput(message="m", paths=["a.sql", "b.sql"]), ProgressReporter(None)))
    assert caught.value.code == "git_error" and "lint failed" in caught.value.message
    assert git(project, "log", "--format=%s") == "first\n"
    assert git(project, "status", "--porcelain") == " M a.sql\n?? b.sql\n"
