#!/usr/bin/env bash
# Installs the Node dependencies of clients/node (the README example) and
# tests/node (test helpers), tests/buf (buf, for the API checks), tests/oidc (the OpenID provider the JWKS
# tests run) and bench/node (the Node.js + jose server the benchmark compares) from their lock files. Idempotent: skips a
# folder whose node_modules matches its package-lock.json.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
  else
    echo "node and npm are required for the Node client tests" >&2
    exit 1
  fi
fi
for dir in "$root/clients/node" "$root/tests/node" "$root/tests/oidc" "$root/tests/buf" "$root/bench/node"; do
  cd "$dir"
  want=$(sha256sum package-lock.json | cut -d' ' -f1)
  stamp=node_modules/.lock.sha256
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    continue
  fi
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
done
