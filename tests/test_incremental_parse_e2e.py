"""Issue 17: after an edit the worker re-parses against the manifest it holds (no msgpack round trip) and a forked
writer puts manifest.json and partial_parse.msgpack on disk while the server answers (tools/dbt/engine/incremental.py).

What must hold: the edit is seen at once (lineage, checks, compile), the artifacts follow whole (never half written,
no temporary file left), a parse that fails half way through the in-memory manifest leaves nothing stale, and the
graph the server builds from the worker's summary is the graph manifest.json gives."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from conftest import error, ok, stdio_session
from tools.lineage.graph import LineageGraph

pytestmark = pytest.mark.e2e

MART = "models/marts/dim_products.sql"
NEW_REF = "with customers as (\n    select * from {{ ref('stg_customers') }}\n),\n\nproducts as ("


def parents_of(lineage: dict, uid: str) -> set[str]:
    return {p for p, c in lineage["edges"] if c == uid}


def wait_for_artifacts(project: Path, timeout: float = 120) -> None:
    marker = project / "target" / "manifest.json.pending"
    deadline = time.monotonic() + timeout
    while marker.exists():
        assert time.monotonic() < deadline, "the forked writer never finished"
        time.sleep(0.1)


async def test_an_edit_is_seen_at_once_and_the_artifacts_follow(built_shop: Path, data_dir: Path) -> None:
    target = built_shop / "target"
    mart = built_shop / MART
    original = mart.read_text()
    async with stdio_session(built_shop, data_dir, "--toolsets", "dbt,lineage,quality") as client:
        before = ok(await client.call_tool("model_lineage", {"model": "dim_products", "upstream": 1, "downstream": 0, "format": "structured"}))
        assert parents_of(before, "model.shop.dim_products") == {"model.shop.stg_products", "model.shop.int_order_items_enriched"}
        ok(await client.call_tool("project_check", {"path": MART}))
        wait_for_artifacts(built_shop)
        msgpack_before = (target / "partial_parse.msgpack").stat().st_mtime_ns

        # -- a new ref: seen by the next call (the worker parsed in memory), before the artifacts are on disk
        mart.write_text(original.replace("with products as (", NEW_REF, 1))
        checked = ok(await client.call_tool("project_check", {"path": MART}))
        assert checked["total"] >= 0
        after = ok(await client.call_tool("model_lineage", {"model": "dim_products", "upstream": 1, "downstream": 0, "format": "structured"}))
        assert "model.shop.stg_customers" in parents_of(after, "model.shop.dim_products"), after["edges"]
        compiled = ok(await client.call_tool("dbt_compile", {"select": "dim_products"}))
        assert '"stg_customers"' in compiled["nodes"][0]["compiled_sql"], compiled

        # -- the artifacts follow, whole: manifest.json has the edge, the msgpack is new, no temporary file is left
        wait_for_artifacts(built_shop)
        manifest = json.loads((target / "manifest.json").read_text())
        assert "model.shop.stg_customers" in manifest["parent_map"]["model.shop.dim_products"]
        assert (target / "partial_parse.msgpack").stat().st_mtime_ns > msgpack_before
        assert not list(target.glob(".*.tmp")), list(target.glob(".*"))

        # -- a parse that fails after dbt began changing the in-memory manifest (the ref resolves last): a typed error,
        #    and the next parse starts again from disk with nothing of the failed one left
        mart.write_text(original.replace("ref('stg_products')", "ref('no_such_model')", 1))
        failed = error(await client.call_tool("project_check", {"path": MART}))
        assert "no_such_model" in failed["message"], failed
        mart.write_text(original)
        ok(await client.call_tool("project_check", {"path": MART}))
        restored = ok(await client.call_tool("model_lineage", {"model": "dim_products", "upstream": 1, "downstream": 0, "format": "structured"}))
        assert parents_of(restored, "model.shop.dim_products") == {"model.shop.stg_products", "model.shop.int_order_items_enriched"}
        built = ok(await client.call_tool("dbt_build", {"select": "dim_products"}))
        assert built["success"] is True, built
    # the build wrote manifest.json itself after waiting for the writer: the file on disk is the restored project's
    manifest = json.loads((target / "manifest.json").read_text())
    assert "model.shop.stg_customers" not in manifest["parent_map"]["model.shop.dim_products"]


def test_the_servers_graph_from_the_worker_is_the_graph_of_manifest_json(built_shop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """describe.lineage_manifest (what the worker sends) read by LineageGraph gives what manifest.json gives."""
    monkeypatch.chdir(built_shop)  # the profile's DuckDB path is relative: dbt in this process must not create one in the repo
    from dbt.cli.main import dbtRunner

    from tools.dbt.engine.describe import lineage_manifest

    result = dbtRunner().invoke(["--quiet", "parse", "--project-dir", str(built_shop), "--profiles-dir", str(built_shop)])
    assert result.success, result.exception
    from_worker = LineageGraph.from_manifest(lineage_manifest(result.result))
    from_file = LineageGraph.from_manifest(json.loads((built_shop / "target/manifest.json").read_text()))
    assert len(from_file.nodes) > 60
    assert from_worker.nodes == from_file.nodes
    assert from_worker.parents == from_file.parents and from_worker.children == from_file.children
    assert from_worker.by_name == from_file.by_name


def test_a_killed_writer_leaves_no_file_and_no_marker(tmp_path: Path) -> None:
    """ArtifactWriter over a real fork: a writer killed mid-way (a newer manifest came) takes its temporary files and
    the pending marker with it; one that fails says so, so the worker writes the artifacts itself."""
    from tools.dbt.engine.incremental import PENDING_NAME, ArtifactWriter

    class Slow:  # stands in for a manifest whose manifest.json takes long to write (12 MB on a 1,000-model project)
        class metadata:
            dbt_version = "0"

        def to_msgpack(self, _encoder: object) -> bytes:
            return b"msgpack"

        def writable_manifest(self) -> "Slow":
            return self

        def write(self, path: str) -> None:
            Path(path).write_text("{")
            (tmp_path / "started").write_text("1")
            time.sleep(60)

    writer = ArtifactWriter()
    writer.start(Slow(), tmp_path)
    deadline = time.monotonic() + 30
    while not (tmp_path / "started").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert (tmp_path / PENDING_NAME).exists() and not writer.poll() and list(tmp_path.glob(".manifest.json.*.tmp"))
    pid = writer.pid
    writer.stop()
    assert writer.poll() and not (tmp_path / PENDING_NAME).exists()
    assert not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)

    class Broken:
        class metadata:
            dbt_version = "0"

        def to_msgpack(self, _encoder: object) -> bytes:
            raise ValueError("cannot serialise")

    writer.start(Broken(), tmp_path)
    writer.wait(timeout=30)
    assert writer.failed and not (tmp_path / PENDING_NAME).exists()
    assert not (tmp_path / "manifest.json").exists() and not list(tmp_path.glob(".*.tmp"))


def test_the_flat_graph_after_an_in_place_parse_is_the_one_dbt_builds(built_shop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Jinja `graph` variable after in-place re-parses (entries of the objects dbt kept are reused) equals dbt's
    own Manifest.build_flat_graph of the same manifest, for edits of SQL, YAML (a description, a new test) and a macro;
    so does the worker's summary (describe.py reuses its entries the same way)."""
    from dbt.cli.main import dbtRunner

    from tools.dbt.engine import describe
    from tools.dbt.engine.incremental import FLAT_SECTIONS, handing_over, install

    monkeypatch.chdir(built_shop)
    install()
    args = ["--quiet", "parse", "--project-dir", str(built_shop), "--profiles-dir", str(built_shop)]
    first = dbtRunner().invoke(args)
    assert first.success, first.exception
    manifest = first.result
    staging = built_shop / "models/staging/_staging.yml"
    edits = [
        (built_shop / MART, lambda t: t.replace("with products as (", NEW_REF, 1)),
        (built_shop / "models/marts/_marts.yml", lambda t: t.replace("Primary key of the order.", "The order's key.", 1)),
        (staging, lambda t: t.replace("      - name: product_name\n        description: Product display name.\n",
                                      "      - name: product_name\n        description: Product display name.\n"
                                      "        data_tests:\n          - not_null\n", 1)),
        (built_shop / "macros/cents_to_dollars.sql", lambda t: t + "\n{# edited #}\n"),
    ]
    tests_before = sum(1 for uid in manifest.nodes if uid.startswith("test."))
    previous = json.loads(json.dumps(describe.describe(manifest)))  # what the server holds: read off the pipe
    for path, change in edits:
        text = path.read_text()
        assert change(text) != text, path
        path.write_text(change(text))
        with handing_over(manifest):
            again = dbtRunner().invoke([*args, "--no-write-json"])
        assert again.success, again.exception
        assert again.result is manifest, "dbt re-parsed from scratch instead of in place"
        expected = {section: {uid: obj.to_dict(omit_none=False) for uid, obj in getattr(manifest, section).items()}
                    for section in FLAT_SECTIONS}
        assert manifest.flat_graph == expected, path
        summary = describe.describe(manifest)
        describe._memo.clear()
        assert summary == describe.describe(manifest), path
        # the worker sends the changes to what the server holds (describe_delta): applied, they give the whole summary
        sent = json.dumps(describe.describe_delta(previous, summary))
        assert describe.apply_describe_delta(previous, json.loads(sent)) == json.loads(json.dumps(summary)), path
        assert len(sent) < len(json.dumps(summary)) / 2, (path, len(sent))
        previous = json.loads(json.dumps(summary))
    assert sum(1 for uid in manifest.nodes if uid.startswith("test.")) == tests_before + 1
    assert "model.shop.stg_customers" in manifest.nodes["model.shop.dim_products"].depends_on.nodes
