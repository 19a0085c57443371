#!/usr/bin/env bash
# Installs the real Netlify CLI (netlify-cli@26.2.0, pinned in
# tests/netlify/package-lock.json; 27.x needs Node >= 22.13) and the tools
# the signed-proxy test runs it with (unshare from util-linux, ip from
# iproute2, curl). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../tests/netlify"
missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v unshare >/dev/null || missing+=(util-linux)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing packages for the signed-proxy test: ${missing[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
want=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.lock.sha256
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
