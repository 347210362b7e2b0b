"""The files toolset through a real MCP client on a built copy of the demo project: list, read with line numbers,
search, and edits that dbt validates (a column rename that analyze_changes then reports; a breaking edit put back
byte for byte), dry runs, and every refusal leaving each file of the project and outside it as it was."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from conftest import all_pages, error, ok, stdio_session

pytestmark = pytest.mark.e2e

STG = "models/staging/stg_customers.sql"
SKIP = {"target", "logs"}


def tree(root: Path) -> dict[str, str]:
    """sha256 of every file under root but build products and the database (a symlink by where it points)."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in SKIP or ".duckdb" in path.name or (path.is_dir() and not path.is_symlink()):
            continue
        out[rel.as_posix()] = f"link:{path.readlink()}" if path.is_symlink() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


async def test_files_toolset_end_to_end(built_shop: Path, data_dir: Path, tmp_path: Path) -> None:
    project = built_shop
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.sql").write_text("select 'secret' as s\n")
    (project / "link_out.sql").symlink_to(outside / "secret.sql")
    (project / ".git").mkdir()
    (project / ".git" / "config").write_text("[core]\n")
    (project / "seeds" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    stg = project / STG
    original = stg.read_bytes()
    with open(project / "profiles.yml", "a") as profiles:  # an unused target holding a secret
        profiles.write("    team:\n      type: duckdb\n      path: team.duckdb\n      password: hunter2\n")
    async with stdio_session(project, data_dir) as client:
        # -- list: paths, sizes, resources from the manifest; build folders, .git and the .gitignore'd database left out
        pages = await all_pages(client, "project_files", {})
        listed = {f["path"]: f for page in pages for f in ok(page)["files"]}
        assert len(listed) == ok(pages[0])["total"] and ok(pages[0])["ignore_rules"].startswith(".gitignore parser")
        assert listed[STG]["size"] == len(original) and listed[STG]["resources"] == ["model:stg_customers"]
        assert "source:raw.customers" in listed["models/staging/_sources.yml"]["resources"]
        assert "macro:cents_to_dollars" in listed["macros/cents_to_dollars.sql"]["resources"]
        assert not [p for p in listed if p.split("/")[0] in ("target", "logs", ".git") or p.endswith(".duckdb") or p == "link_out.sql"]
        sql_only = ok(await client.call_tool("project_files", {"glob": "models/staging/*.sql"}))["files"]
        assert sorted(f["path"] for f in sql_only) == sorted(p for p in listed if p.startswith("models/staging/") and p.endswith(".sql"))

        # -- read with line numbers, a range, and what comes next
        lines = original.decode().splitlines()
        read = ok(await client.call_tool("file_read", {"path": STG, "start_line": 9, "end_line": 11}))
        assert read["text"] == "\n".join(f"{n}\t{lines[n - 1]}" for n in (9, 10, 11)) and read["total_lines"] == len(lines)
        whole = ok(await client.call_tool("file_read", {"path": STG}))
        assert whole["text"].splitlines()[0] == f"1\t{lines[0]}" and "next_start_line" not in whole

        # -- search: file:line:text, literal and regex
        found = ok(await client.call_tool("file_search", {"pattern": "city", "glob": "*.sql"}))["matches"]
        city_lines = [n for n, line in enumerate(lines, 1) if "city" in line]
        assert {f"{STG}:{n}:{lines[n - 1]}" for n in city_lines} <= set(found)
        assert any(m.startswith("models/marts/dim_customers.sql:36:") for m in found)
        regex = ok(await client.call_tool("file_search", {"pattern": r"^\s+city,$", "regex": True, "glob": STG}))["matches"]
        assert regex == [f"{STG}:{n}:{lines[n - 1]}" for n in city_lines]
        assert error(await client.call_tool("file_search", {"pattern": "(", "regex": True}))["code"] == "invalid_regex"

        # -- credentials in profiles.yml are shown as *** (as dbt_debug shows them), in reads and searches
        profile = ok(await client.call_tool("file_read", {"path": "profiles.yml"}))["text"]
        assert "password: ***" in profile and "hunter2" not in profile
        secret = ok(await client.call_tool("file_search", {"pattern": "password"}))["matches"]
        assert secret and not [m for m in secret if "hunter2" in m]

        before = tree(project), tree(outside)
        # -- refusals: nothing written anywhere
        for tool, args in (("file_edit", {"old_text": "city", "new_text": "town"}), ("file_write", {"content": "select 1 as x\n"}),
                           ("file_read", {})):
            for path, code in (("../x.sql", "path_outside_project"), ("/etc/passwd", "path_outside_project"),
                               (str(project / STG), "path_outside_project"), ("link_out.sql", "path_outside_project"),
                               (".git/config", "path_not_allowed"), ("seeds/logo.png", "binary_file")):
                if tool == "file_write" and code == "binary_file":
                    continue  # a whole new text for a binary file: refused below, when its old text is read for the diff
                assert error(await client.call_tool(tool, {"path": path, **args}))["code"] == code, (tool, path)
        assert error(await client.call_tool("file_write", {"path": "seeds/logo.png", "content": "x\n"}))["code"] == "binary_file"
        twice = error(await client.call_tool("file_edit", {"path": STG, "old_text": "    city,\n", "new_text": "    town,\n"}))
        assert twice["code"] == "text_count_mismatch" and "occurs 2 time(s)" in twice["message"]
        assert error(await client.call_tool("file_edit", {"path": STG, "old_text": "no such text", "new_text": "x"}))["code"] == "text_not_found"
        huge = error(await client.call_tool("file_write", {"path": "models/staging/big.sql", "content": "x" * 5_000_000}))
        assert huge["code"] == "content_too_large"
        unlexable = error(await client.call_tool("file_write", {"path": STG, "content": original.decode().replace(
            "{{ source('raw', 'customers') }}", "{{ source('raw', 'customers' }}")}))
        assert unlexable["code"] == "jinja_not_allowed"  # refused before anything is written
        broken_parse = error(await client.call_tool("file_write", {"path": STG, "content": original.decode().replace(
            "{{ source('raw', 'customers') }}", "{{ source('raw', 'no_such_table') }}")}))
        assert broken_parse["code"].startswith("dbt_") and "put back" in broken_parse["message"], broken_parse
        # a file_edit that breaks the SQL: dbt compiles it, the database refuses it, the file is put back byte for byte
        broken = error(await client.call_tool("file_edit", {"path": STG, "old_text": "        city,\n", "new_text": "        cityy,\n"}))
        assert broken["code"] == "column_not_found" and "cityy" in broken["message"] and "put back" in broken["message"], broken
        assert error(await client.call_tool("file_write", {"path": "target/x.sql", "content": "x"}))["code"] == "path_not_allowed"
        # dry runs: the diff, nothing written
        dry = ok(await client.call_tool("file_edit", {"path": STG, "old_text": "    city,\n    country_code,\n",
                                                     "new_text": "    city as town,\n    country_code,\n", "dry_run": True}))
        assert dry["dry_run"] is True and "-    city,\n+    city as town,\n" in dry["files"][0]["diff"]
        new = ok(await client.call_tool("file_write", {"path": "models/staging/new.sql", "content": "select 1 as x\n", "dry_run": True}))
        assert new["files"][0]["action"] == "created" and "+select 1 as x" in new["files"][0]["diff"]
        assert (tree(project), tree(outside)) == before
        assert stg.read_bytes() == original

        # -- the rename: validated by dbt, a baseline taken, analyze_changes reports it breaking dim_customers
        renamed = ok(await client.call_tool("file_edit", {"path": STG, "old_text": "    city,\n    country_code,\n",
                                                         "new_text": "    city as town,\n    country_code,\n"}))
        assert renamed["validated"] == "parse+compile" and "model.shop.stg_customers" in renamed["nodes"], renamed
        assert any("baseline of models/staging/stg_customers.sql taken" in n for n in renamed["notes"])
        assert stg.read_bytes() == original.replace(b"    city,\n    country_code,\n", b"    city as town,\n    country_code,\n")
        changes = ok(await client.call_tool("analyze_changes", {"filepath": STG}))["files"][0]
        assert changes["columns_removed"] == ["city"] and changes["columns_added"] == ["town"], changes
        assert changes["breaking"] is True and "model.shop.dim_customers" in changes["broken_downstream"], changes
        again = ok(await client.call_tool("file_edit", {"path": STG, "old_text": "city as town", "new_text": "city as town_name"}))
        assert any("baseline of models/staging/stg_customers.sql kept" in n for n in again["notes"])
        # a file dbt does not read: written atomically, not validated
        readme = ok(await client.call_tool("file_write", {"path": "notes/todo.md", "content": "rename city\n"}))
        assert readme["validated"] == "none (not a dbt file)" and (project / "notes/todo.md").read_text() == "rename city\n"
    assert tree(outside) == before[1]
