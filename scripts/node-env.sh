#!/usr/bin/env bash
# Installs clients/node's dependencies from its lock file. Idempotent:
# skips when node_modules matches package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/../clients/node"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
  else
    echo "node and npm are required for the Node client tests" >&2
    exit 1
  fi
fi
want=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.lock.sha256
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
