"""The onnxruntime encoder against sentence-transformers on torch, with the real bundled model."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import run_python
from memory.embeddings import Embedder, resolve_model

pytestmark = pytest.mark.e2e

TEXTS = ["stg_orders casts order_date", "Incremental fct_orders merges on order_id", "x", "long " * 400]

LOAD_FROM_CACHE = """
import json, sys
from pathlib import Path
from memory.embeddings import Embedder
embedder = Embedder("bundled", Path(sys.argv[1]))
vectors = embedder.encode(json.loads(sys.argv[2]))
print(json.dumps({"backend": embedder.backend, "torch": "torch" in sys.modules, "vectors": vectors}))
"""


@pytest.fixture(scope="module")
def torch_vectors() -> np.ndarray:
    """The reference: sentence-transformers on torch, computed once for the module."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(resolve_model("bundled")[0], device="cpu")
    return model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)


def test_export_then_cached_onnx_gives_torch_vectors_without_torch(tmp_path: Path, torch_vectors: np.ndarray) -> None:
    first = Embedder("bundled", tmp_path)
    first.wait(120)  # nothing cached yet: torch serves, and the loader thread exports next
    deadline = time.monotonic() + 120
    while first.backend != "onnx" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert first.backend == "onnx" and list(tmp_path.glob("onnx/*/model.onnx"))
    expected = torch_vectors
    assert np.abs(np.asarray(first.encode(TEXTS)) - expected).max() < 1e-4
    out = run_python(LOAD_FROM_CACHE, str(tmp_path), json.dumps(TEXTS))
    assert out.returncode == 0, out.stderr[-2000:]
    later = json.loads(out.stdout.strip().splitlines()[-1])
    assert later["backend"] == "onnx" and later["torch"] is False
    assert np.abs(np.asarray(later["vectors"]) - expected).max() < 1e-4


def test_corrupt_cached_export_falls_back_to_torch(tmp_path: Path, torch_vectors: np.ndarray) -> None:
    folder = Embedder("bundled", tmp_path)._onnx_folder(*resolve_model("bundled"))
    assert folder is not None
    folder.mkdir(parents=True)
    (folder / "encoder.json").write_text("{}")
    (folder / "model.onnx").write_bytes(b"not a model")
    embedder = Embedder("bundled", tmp_path)
    embedder.wait(120)
    assert embedder.backend == "torch"
    assert np.abs(np.asarray(embedder.encode(TEXTS)) - torch_vectors).max() < 1e-6
