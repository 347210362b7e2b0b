#!/usr/bin/env bash
# Create the virtualenvs of the two peer MCP servers that bench/bench_servers.py
# compares against. Idempotent: a venv whose server script already exists is skipped.
#
#   bench/.venvs/dbt-mcp       PyPI dbt-mcp (needs Python >= 3.12)
#   bench/.venvs/dbt-core-mcp  PyPI dbt-core-mcp (Python >= 3.10; we use 3.11, like our server)
#
# Both get dbt-core 1.11 + dbt-duckdb, the same dbt that our server runs.
# Override the interpreters with PY312=/path/to/python3.12 PY311=/path/to/python3.11.
# Set DBT_MCP_VERSION / DBT_CORE_MCP_VERSION (e.g. "==2.8.0") to pin the peers.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venvs="${BENCH_VENVS:-$here/.venvs}"  # override only to test this script
mkdir -p "$venvs"

source "$here/lib.sh"  # find_python

make_venv() { # make_venv NAME PYTHON CHECK_BIN PIP_ARGS...
    local name="$1" py="$2" check="$3"
    shift 3
    local dir="$venvs/$name"
    if [ -x "$dir/bin/$check" ] && [ -x "$dir/bin/dbt" ]; then
        echo "setup_peers: $name: present ($dir), skipping"
        return 0
    fi
    echo "setup_peers: $name: creating $dir with $py"
    rm -rf "$dir"
    "$py" -m venv "$dir"
    "$dir/bin/python" -m pip install --quiet --upgrade pip
    # dbt-mcp must not need torch; if a future release pulls one in, install torch==2.13.0 first.
    "$dir/bin/python" -m pip install --quiet "$@"
    "$dir/bin/python" -m pip list 2>/dev/null | grep -iE '^(dbt-mcp|dbt-core-mcp|dbt-core|dbt-duckdb|duckdb|mcp|fastmcp) ' || true
}

py312="$(find_python 12 "${PY312:-}")" || { echo "setup_peers: no Python 3.12 found (dbt-mcp needs >= 3.12); set PY312" >&2; exit 1; }
py311="$(find_python 11 "${PY311:-}")" || py311="$py312"

make_venv dbt-mcp "$py312" dbt-mcp \
    "dbt-mcp${DBT_MCP_VERSION:-}" "dbt-core>=1.11,<1.12" "dbt-duckdb>=1.11,<1.12"
make_venv dbt-core-mcp "$py311" dbt-core-mcp \
    "dbt-core-mcp${DBT_CORE_MCP_VERSION:-}" "dbt-core>=1.11,<1.12" "dbt-duckdb>=1.11,<1.12"
echo "setup_peers: done"
