# Two commands for a new user: `make demo` and `make test`. Both create .venv and install on first use.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or run: make PYTHON=python3.12 ...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch first, pinned: an open range would pull a multi-GB CUDA build
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[memory,quality,test,postgres]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/dbt-ae-mcp demo

test: $(STAMP)
	bash tests/install_inspector.sh
	bash tests/install_chromium.sh
	bash tests/install_postgres.sh
	# two processes, a test file each at a time (module fixtures stay shared): 1,028 s -> 636 s on 2 cores
	$(PY) -m pytest -q -n 2 --dist loadfile

# Unit tests and fast checks only: no dbt builds, no server processes.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not e2e"

# Benchmarks against peer servers (installed into bench/.venvs by the setup scripts); see bench/RESULTS.md.
bench: $(STAMP)
	bash bench/setup_peers.sh
	$(PY) bench/bench_servers.py
	bash bench/setup_chroma_mcp.sh
	$(PY) bench/bench_memory.py
	$(PY) bench/bench_quality.py
	$(PY) bench/bench_lineage.py
	$(PY) bench/bench_scale.py

clean:
	rm -rf .demo .pytest_cache tests/artifacts
