#!/usr/bin/env bash
# Installs Caddy (Debian's caddy: forward_auth is built in) for the
# forward-auth test. Idempotent. The test runs its own Caddy with admin off
# and its own data directories; a packaged service that starts on install
# is stopped.
set -euo pipefail
if command -v caddy >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "caddy is missing: install Debian's caddy package" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends caddy >/dev/null
(command -v service >/dev/null && service caddy stop >/dev/null 2>&1) || true
