#!/usr/bin/env bash
# Install the official MCP Inspector CLI (npm: @modelcontextprotocol/inspector) into .npm-tools/
# (git-ignored, never global) for tests/test_inspector.py. Idempotent: does nothing when the
# pinned version is already there. Override the version with INSPECTOR_VERSION=x.y.z.
#
# The version is pinned on purpose: on node 20, an unpinned install silently resolves 0.15.0
# (the newest release without an engines field), while 0.16+ declare node >=22. 2.12.0's CLI mode
# is tested here on node 20 and works (npm only warns EBADENGINE, hidden by --loglevel=error).
# --ignore-scripts: the package's only install script (postinstall: install-clients.mjs) is a no-op
# when installed as a dependency; skipping scripts guarantees nothing else is fetched.
set -euo pipefail

VERSION="${INSPECTOR_VERSION:-2.12.0}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="$ROOT/.npm-tools"
PKG_JSON="$PREFIX/node_modules/@modelcontextprotocol/inspector/package.json"
BIN="$PREFIX/node_modules/.bin/mcp-inspector"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "install_inspector.sh: node and npm are required to install the MCP Inspector" >&2
    echo "  (e.g. apt-get install -y nodejs npm), then re-run: bash tests/install_inspector.sh" >&2
    exit 1
fi

installed=""
if [[ -f "$PKG_JSON" && -e "$BIN" ]]; then
    installed="$(node -p "require(process.argv[1]).version" "$PKG_JSON" 2>/dev/null || true)"
fi
if [[ "$installed" == "$VERSION" ]]; then
    echo "MCP Inspector $VERSION already installed in $PREFIX"
    exit 0
fi

echo "Installing @modelcontextprotocol/inspector@$VERSION into $PREFIX (node $(node --version), npm $(npm --version))"
mkdir -p "$PREFIX"
start=$(date +%s)
npm install --prefix "$PREFIX" --no-audit --no-fund --no-update-notifier --ignore-scripts \
    --loglevel=error "@modelcontextprotocol/inspector@$VERSION"
got="$(node -p "require(process.argv[1]).version" "$PKG_JSON")"
if [[ "$got" != "$VERSION" || ! -e "$BIN" ]]; then
    echo "install_inspector.sh: expected inspector $VERSION at $BIN, found '${got:-nothing}'" >&2
    exit 1
fi
echo "MCP Inspector $got installed in $(( $(date +%s) - start ))s: $BIN"
