#!/usr/bin/env bash
# Headless Chromium for the docs-site test (tests/test_dbt_docs_e2e.py): Debian's `chromium` package. Idempotent.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    echo "chromium present: $(chromium --version 2>/dev/null || true)"
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends chromium >/dev/null; }
    echo "chromium installed: $(chromium --version 2>/dev/null || true)"
else
    echo "chromium missing and cannot be installed here (needs root and apt-get); the docs browser test will fail" >&2
fi
