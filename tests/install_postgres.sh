#!/usr/bin/env bash
# PostgreSQL for the warehouse tests on PostgreSQL (tests/pg.py starts a throwaway cluster from it): Debian's
# `postgresql` package (server binaries under /usr/lib/postgresql/<version>/bin). Idempotent; the package's own
# cluster is not used (the tests run initdb in a temp dir), so it is not started.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "postgresql present: $(ls -d /usr/lib/postgresql/*/ | head -1)"
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends postgresql >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends postgresql >/dev/null; }
    echo "postgresql installed: $(ls -d /usr/lib/postgresql/*/ | head -1)"
else
    echo "postgresql missing and cannot be installed here (needs root and apt-get); the PostgreSQL tests will fail" >&2
fi
