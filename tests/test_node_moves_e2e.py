"""node_rename and node_delete through a real MCP client on a built copy of the demo project (issue 15, item 3).

One session: refusals that change nothing (a name that is taken, an invalid name, an unknown node, a delete of a
model with children, a rename dbt then rejects and that is put back byte for byte), a dry run, a leaf deleted with
its YAML entry, a staging model used by three children renamed (every ref() form rewritten, its YAML entry renamed
with its comment kept, the build of new_name+ passing), and a delete with cascade_check false listing what it broke."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from conftest import error, node_statuses, ok, stdio_session

pytestmark = pytest.mark.e2e

SKIP = {"target", "logs"}
INDIRECT = "select order_id from {{ ref(upstream) }}\n"  # dbt knows it depends on stg_orders; its text has no ref('stg_orders')


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file() and p.relative_to(root).parts[0] not in SKIP and ".duckdb" not in p.name}


def staging_with_three_children(project: Path) -> tuple[str, list[str]]:
    """A staging model and the files of its children (dbt's child_map) that ref it, at least three."""
    manifest = json.loads((project / "target" / "manifest.json").read_text())
    found = []
    for uid, children in sorted(manifest["child_map"].items()):
        if uid.startswith("model.shop.stg_"):
            name = uid.split(".")[-1]
            files = sorted({manifest["nodes"][c]["original_file_path"] for c in children if c in manifest["nodes"]})
            found.append((name, [f for f in files if f"ref('{name}')" in (project / f).read_text()]))
    name, files = max(found, key=lambda item: len(item[1]))
    assert len(files) >= 3 and len([f for f in files if f.startswith("models/") and f.endswith(".sql")]) >= 2, found
    return name, files


async def test_node_rename_and_delete(built_shop: Path, data_dir: Path) -> None:
    project = built_shop
    old, child_files = staging_with_three_children(project)
    new = f"{old}_renamed"
    staging_yml = project / "models/staging/_staging.yml"
    marts_yml = project / "models/marts/_marts.yml"
    marts_original = marts_yml.read_bytes()
    # every ref() form: double quotes with spaces, the project's package name, a version-less keyword-free call
    sql_children = [f for f in child_files if f.endswith(".sql")]
    first, second = project / sql_children[0], project / sql_children[1]
    first.write_text(first.read_text().replace(f"ref('{old}')", f'ref(  "{old}" )'))
    second.write_text(second.read_text().replace(f"ref('{old}')", f"ref('shop', '{old}')"))
    staging_yml.write_text(staging_yml.read_text().replace(f"  - name: {old}\n", f"  - name: {old}  # the cleaned {old}\n"))
    # a model whose ref is built from a variable: dbt records the dependency, no text names it (a rename must fail)
    (project / "models/marts/orders_indirect.sql").write_text("{% set upstream = '" + old + "' %}\n" + INDIRECT)
    marts_yml.write_text(marts_original.decode() + "  - name: orders_indirect\n    columns:\n      - name: order_id\n"
                         "        data_tests:\n          - not_null\n")

    async with stdio_session(project, data_dir) as client:
        before = tree(project)
        # -- refusals: typed, nothing written
        taken = error(await client.call_tool("node_rename", {"name": old, "new_name": "fct_orders"}))
        assert taken["code"] == "name_conflict" and "model.shop.fct_orders" in taken["message"]
        assert error(await client.call_tool("node_rename", {"name": old, "new_name": "../x"}))["code"] == "invalid_name"
        assert error(await client.call_tool("node_rename", {"name": "stg_nope", "new_name": "x"}))["code"] == "node_not_found"
        assert error(await client.call_tool("node_delete", {"name": "raw.orders"}))["code"] == "node_not_found"
        used = error(await client.call_tool("node_delete", {"name": old}))
        assert used["code"] == "has_dependants"
        for uid in ("model.shop.orders_indirect", *(f"model.shop.{Path(f).stem}" for f in sql_children if f.startswith("models/"))):
            assert uid in used["message"], used
        rejected = error(await client.call_tool("node_rename", {"name": old, "new_name": new}))  # orders_indirect's ref(upstream)
        assert "put back" in rejected["message"] and old in rejected["message"], rejected
        assert tree(project) == before
        # -- dry run: the diffs, nothing written
        dry = ok(await client.call_tool("node_rename", {"name": old, "new_name": new, "dry_run": True}))
        actions = {f["path"]: f["action"] for f in dry["files"]}
        assert actions[f"models/staging/{old}.sql"] == "deleted" and actions[f"models/staging/{new}.sql"] == "created"
        assert tree(project) == before

        # -- delete a leaf: its file and its YAML entry (with its test) go; the rest of the YAML byte for byte
        leaf = ok(await client.call_tool("node_delete", {"name": "orders_indirect"}))
        assert leaf["validated"] == "parse" and not (project / "models/marts/orders_indirect.sql").exists()
        assert marts_yml.read_bytes() == marts_original
        assert any("baseline of models/marts/_marts.yml" in n for n in leaf["notes"]), leaf["notes"]

        # -- rename the staging model used by three children
        texts = {f: (project / f).read_text() for f in child_files}
        done = ok(await client.call_tool("node_rename", {"name": old, "new_name": new}))
        assert done["validated"] == "parse+compile" and f"model.shop.{new}" in done["nodes"]
        assert not (project / f"models/staging/{old}.sql").exists() and (project / f"models/staging/{new}.sql").exists()
        for f in child_files:
            after = (project / f).read_text()
            assert after != texts[f] and f"'{old}'" not in after and f'"{old}"' not in after, f
        assert f'ref(  "{new}" )' in first.read_text() and f"ref('shop', '{new}')" in second.read_text()
        assert f"  - name: {new}  # the cleaned {old}\n" in staging_yml.read_text()
        assert any("stays in the warehouse until you drop it" in n for n in done["notes"])
        assert any(f"baseline of models/staging/{new}.sql taken" in n for n in done["notes"]), done["notes"]
        build = ok(await client.call_tool("dbt_build", {"select": f"{new}+"}))
        assert build["success"] and node_statuses(build)[new] == "success", build

        # -- cascade_check false: deleted though used; the dependants are listed as broken
        history = ok(await client.call_tool("node_delete", {"name": "int_customer_order_history", "cascade_check": False}))
        assert "model.shop.dim_customers" in history["broken"]
        assert not (project / "models/intermediate/int_customer_order_history.sql").exists()
        assert history["validated"].startswith("parse failed") and any("does not parse" in n for n in history["notes"])
