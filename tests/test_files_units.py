"""The files toolset's pure parts on real folders (no server): ignore rules (the parser and git's), globs, search with
its time limit, exact-edit counting, and which paths may be read or written."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from server.errors import ToolFailure
from tools.files.access import dbt_file, decode, resolve
from tools.files.edit import replace_exact
from tools.files.ignore import GitCheckIgnore, GitignoreParser, glob_matcher, ignore_rules, project_files
from tools.files.search import matcher, search
from tools.authoring.project import ProjectLayout



def make_tree(root: Path, outside: Path) -> Path:
    files = {
        ".gitignore": "# build\n*.log\n!keep.log\nbuild/\n/root_only.txt\ndocs/**/*.tmp\n\\!keep.log\n",
        "models/.gitignore": "scratch.sql\n",
        "models/a.sql": "select 1\n", "models/sub/b.sql": "select 2\n", "models/scratch.sql": "x\n", "models/sub/scratch.sql": "x\n",
        "models/root_only.txt": "kept: the rule is anchored to the root\n", "root_only.txt": "ignored\n",
        "app.log": "ignored\n", "keep.log": "kept by a negation\n", "!keep.log": "an escaped !\n",
        "build/out.sql": "ignored folder\n", "docs/a.md": "doc\n", "docs/deep/x.tmp": "ignored\n", "docs/deep/x.txt": "kept\n",
        "target/manifest.json": "{}", "logs/dbt.log": "", "dbt_packages/p/x.sql": "", ".git/config": "[core]\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (outside / "secret.sql").write_text("secret\n")
    (root / "models" / "link_out.sql").symlink_to(outside / "secret.sql")
    (root / "models" / "link_in.sql").symlink_to(root / "models" / "a.sql")
    (root / "linked_dir").symlink_to(outside, target_is_directory=True)
    return root


WANTED = sorted([".gitignore", "keep.log", "docs/a.md", "docs/deep/x.txt", "models/.gitignore", "models/a.sql",
                 "models/link_in.sql", "models/root_only.txt", "models/sub/b.sql"])


def test_gitignore_parser_and_build_folders(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "p", tmp_path)
    rules = ignore_rules(root)
    assert isinstance(rules, GitignoreParser)
    assert [rel for rel, _ in project_files(root, rules)] == WANTED
    assert dict(project_files(root, rules))["models/a.sql"] == len("select 1\n")


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_check_ignore_agrees_in_a_repository_subfolder(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("p/docs/a.md\n")  # the repository's own rules count for the project in its subfolder
    (tmp_path / "outside").mkdir()
    root = make_tree(tmp_path / "p", tmp_path / "outside")
    rules = ignore_rules(root)
    assert isinstance(rules, GitCheckIgnore) and rules.how == "git check-ignore"
    assert [rel for rel, _ in project_files(root, rules)] == [w for w in WANTED if w != "docs/a.md"]


def test_globs() -> None:
    assert glob_matcher("*.sql")("models/sub/b.sql") and not glob_matcher("*.sql")("models/a.yml")
    assert glob_matcher("models/**/*.sql")("models/sub/b.sql") and glob_matcher("models/**/*.sql")("models/a.sql")
    assert not glob_matcher("models/*.sql")("models/sub/b.sql") and not glob_matcher("seeds/*.csv")("models/a.csv")
    assert glob_matcher("[")("[") and glob_matcher("stg_?.sql")("models/stg_a.sql")


def test_search_literal_regex_binary_and_caps(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_text("select order_id\nfrom orders\n-- order_id again\n")
    (tmp_path / "b.bin").write_bytes(b"order_id\x00\xff")
    files = [("a.sql", 40), ("b.bin", 10)]
    found = search(tmp_path, files, matcher("order_id", False))
    assert found.matches == ["a.sql:1:select order_id", "a.sql:3:-- order_id again"] and found.skipped == ["b.bin"]
    assert search(tmp_path, files, matcher(r"^from\s+\w+$", True)).matches == ["a.sql:2:from orders"]
    assert search(tmp_path, files, matcher("order_id", False), cap=1).capped
    assert search(tmp_path, files, matcher("(", False)).matches == []  # literal: no regex meaning
    with pytest.raises(ToolFailure) as bad:
        matcher("(", True)
    assert bad.value.code == "invalid_regex"
    (tmp_path / "evil.txt").write_text("a" * 40 + "b\n")
    started = time.monotonic()
    with pytest.raises(ToolFailure) as slow:
        search(tmp_path, [("evil.txt", 42)], matcher(r"(a|aa)+$", True), seconds=1.0)
    assert slow.value.code == "search_timeout" and time.monotonic() - started < 10


def test_exact_edit_counts() -> None:
    text = "select a,\n  b\nfrom t\nwhere a = b\n"
    assert replace_exact(text, "from t", "from u", 1, "x.sql") == text.replace("from t", "from u")
    with pytest.raises(ToolFailure) as twice:
        replace_exact(text, "a", "z", 1, "x.sql")
    assert twice.value.code == "text_count_mismatch" and "occurs 2 time(s)" in twice.value.message and twice.value.details["found"] == 2
    assert "line 1, 4" in twice.value.message
    assert replace_exact(text, "a", "z", 2, "x.sql").count("z") == 2
    with pytest.raises(ToolFailure) as missing:
        replace_exact(text, "from v", "x", 1, "x.sql")
    assert missing.value.code == "text_not_found" and "occurs 0 time(s)" in missing.value.message
    assert replace_exact("a\r\nb\r\n", "b", "c", 1, "x") == "a\r\nc\r\n"  # line ends kept as stored


def test_paths_that_are_refused(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "p", tmp_path)
    assert resolve(root, "models/a.sql")[1] == "models/a.sql"
    assert resolve(root, "models/link_in.sql")[1] == "models/a.sql"
    for path, code in (("../x", "path_outside_project"), ("/etc/passwd", "path_outside_project"), (str(root / "models/a.sql"), "path_outside_project"),
                       ("models/link_out.sql", "path_outside_project"), ("linked_dir/secret.sql", "path_outside_project"),
                       (".git/config", "path_not_allowed"), ("models/../.git/config", "path_not_allowed"), (".", "invalid_path"),
                       ("a\x00b", "invalid_path")):
        with pytest.raises(ToolFailure) as refused:
            resolve(root, path)
        assert refused.value.code == code, path
    for path in ("target/manifest.json", "logs/x", "dbt_packages/p/x.sql"):
        assert resolve(root, path)[1] == path  # readable
        with pytest.raises(ToolFailure) as refused:
            resolve(root, path, write=True)
        assert refused.value.code == "path_not_allowed"
    with pytest.raises(ToolFailure) as binary:
        decode(b"\x89PNG\r\n\x1a\n\x00", "x.png")
    assert binary.value.code == "binary_file"


def test_which_files_are_dbt_files(tmp_path: Path) -> None:
    (tmp_path / "dbt_project.yml").write_text("name: p\nmodel-paths: [transform]\nmacro-paths: [macros]\n")
    layout = ProjectLayout.read(tmp_path)
    assert dbt_file("transform/stg/x.sql", layout) == "model" and dbt_file("transform/_x.yml", layout) == "model"
    assert dbt_file("seeds/x.csv", layout) == "seed" and dbt_file("macros/m.sql", layout) == "macro"
    assert dbt_file("dbt_project.yml", layout) == "project" and dbt_file("packages.yml", layout) == "project"
    assert dbt_file("models/x.sql", layout) is None and dbt_file("README.md", layout) is None and dbt_file("transform/x.txt", layout) is None
