"""Run a sentence-transformers model on onnxruntime: same vectors, a fifth of the query latency, no torch at run time.

On this 2-core CPU torch spends ~24 ms encoding one short query; onnxruntime runs the same graph in ~5 ms. The model
is exported once from the loaded sentence-transformers model into a cache folder keyed by the weights' fingerprint,
checked against the torch vectors on probe sentences before it is used, and loaded from the cache on later starts
(which then never import torch). Anything we cannot reproduce exactly (other pooling modes, extra modules, a
tokenizer without tokenizer.json) stays on torch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("dbt_ae_mcp.memory")

FORMAT = 1  # bump when the export or the cached layout changes
BATCH = 32
PROBES = (
    "stg_orders reads raw.orders and casts order_date",
    "Incremental fct_orders merges on order_id with is_incremental() and {{ this }}.",
    "a",
    " ".join(["the customers snapshot keeps history with dbt_valid_from and dbt_valid_to"] * 40),  # past max_seq_length
)
TOLERANCE = 1e-4
_EXPORT_LOCK = threading.Lock()  # torch's exporter keeps global state: one export at a time per process


class ExportUnsupported(RuntimeError):
    """The model has a part this encoder does not reproduce; keep it on torch."""


def fingerprint(model_dir: Path, identity: str) -> str:
    """Identity + the weights' content hash: a changed model file never reuses a stale export."""
    digest = hashlib.sha256(f"{FORMAT}\n{identity}\n".encode())
    weights = sorted(p for p in model_dir.rglob("*") if p.suffix in {".safetensors", ".bin"} and p.is_file())
    if not weights:
        raise ExportUnsupported(f"no weights file under {model_dir}")
    for path in weights:
        digest.update(path.relative_to(model_dir).as_posix().encode())
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:24]


@dataclass
class OnnxEncoder:
    session: Any
    tokenizer: Any
    input_names: list[str]
    pooling: str
    lower_case: bool
    dimension: int

    @classmethod
    def load(cls, folder: Path, threads: int | None = None) -> "OnnxEncoder":
        import onnxruntime
        from tokenizers import Tokenizer

        spec = json.loads((folder / "encoder.json").read_text())
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or max(1, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=int(spec["max_seq_length"]))
        tokenizer.enable_padding(pad_id=int(spec["pad_id"]), pad_token=spec["pad_token"])
        return cls(session, tokenizer, list(spec["input_names"]), spec["pooling"], bool(spec["lower_case"]), int(spec["dimension"]))

    def encode(self, texts: list[str]) -> Any:
        """Unit-length float32 vectors, in input order. Batches are sorted by length so that padding stays short."""
        import numpy as np

        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), BATCH):
            chunk = order[start: start + BATCH]
            batch = [texts[i].lower() if self.lower_case else texts[i] for i in chunk]
            encodings = self.tokenizer.encode_batch(batch)
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64)}
            hidden = self.session.run(None, {name: feeds[name] for name in self.input_names})[0]
            if self.pooling == "cls":
                pooled = hidden[:, 0, :]
            else:
                weights = mask[:, :, None].astype(np.float32)
                pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[chunk] = pooled / np.clip(norms, 1e-12, None)
        return out


def _describe(model: Any) -> dict[str, Any]:
    """What the onnx path must reproduce of a loaded SentenceTransformer, or ExportUnsupported."""
    modules = list(model._modules.values())
    kinds = [type(m).__name__ for m in modules]
    if len(modules) < 2 or kinds[0] != "Transformer" or kinds[1] != "Pooling" or any(k != "Normalize" for k in kinds[2:]):
        raise ExportUnsupported(f"modules {kinds}; only Transformer, Pooling[, Normalize] are exported")
    transformer, pooling = modules[0], modules[1]
    config = pooling.get_config_dict() if hasattr(pooling, "get_config_dict") else dict(pooling.config)
    mode = config.get("pooling_mode")  # sentence-transformers >= 6; older versions set one flag per mode
    if mode is None:
        flags = {k for k, v in config.items() if k.startswith("pooling_mode") and v is True}
        mode = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}.get(next(iter(flags)), "") if len(flags) == 1 else ""
    if mode not in ("mean", "cls") or config.get("include_prompt", True) is not True:
        raise ExportUnsupported(f"pooling {mode or config}; only mean or cls pooling is exported")
    tokenizer = transformer.tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or tokenizer.pad_token is None:
        raise ExportUnsupported("the tokenizer has no fast (tokenizer.json) form or no pad token")
    return {
        "auto_model": transformer.auto_model,
        "backend": backend,
        "max_seq_length": int(model.max_seq_length),
        "pooling": mode,
        "lower_case": bool(getattr(transformer, "do_lower_case", False)),
        "input_names": [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names],
        "pad_token": tokenizer.pad_token,
        "pad_id": int(tokenizer.pad_token_id),
        "dimension": int(model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension") else model.get_sentence_embedding_dimension()),
    }


def export(model: Any, folder: Path) -> OnnxEncoder:
    """Export a loaded SentenceTransformer to `folder` (atomically), verify it on probes, and return the encoder."""
    described = _describe(model)
    folder.parent.mkdir(parents=True, exist_ok=True)
    for stale in folder.parent.glob(f".{folder.name}.*"):  # left by a process killed mid-export
        if time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    with _EXPORT_LOCK:
        try:
            return _export_into(model, described, work, folder)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _export_into(model: Any, described: dict[str, Any], work: Path, folder: Path) -> OnnxEncoder:
    import numpy as np
    import torch

    names = described["input_names"]

    class Hidden(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: Any) -> Any:
            return self.inner(**dict(zip(names, args))).last_hidden_state

    sample = torch.ones((1, 8), dtype=torch.int64)
    args = tuple(sample if n == "input_ids" else (torch.ones_like(sample) if n == "attention_mask" else torch.zeros_like(sample)) for n in names)
    axes = {0: "batch", 1: "sequence"}
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about constants that are constant for an encoder
        torch.onnx.export(
            Hidden(described["auto_model"]).eval(), args, str(work / "model.onnx"), input_names=names, output_names=["last_hidden_state"],
            dynamic_axes={**{n: axes for n in names}, "last_hidden_state": axes}, opset_version=17, dynamo=False,
        )
    (work / "tokenizer.json").write_text(described["backend"].to_str())
    spec = {k: described[k] for k in ("max_seq_length", "pooling", "lower_case", "input_names", "pad_token", "pad_id", "dimension")}
    (work / "encoder.json").write_text(json.dumps({**spec, "format": FORMAT}, indent=1))
    encoder = OnnxEncoder.load(work)
    expected = model.encode(list(PROBES), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    worst = float(np.abs(encoder.encode(list(PROBES)) - expected).max())
    if worst > TOLERANCE:
        raise ExportUnsupported(f"onnx vectors differ from torch by {worst:.2e} (> {TOLERANCE})")
    try:
        os.replace(work, folder)  # another process may have finished the same export first: keep theirs
    except OSError:
        if not (folder / "encoder.json").is_file():
            raise
    log.info("embedding model exported to onnx at %s (max diff vs torch %.1e)", folder, worst)
    return OnnxEncoder.load(folder)
