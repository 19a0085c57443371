#!/usr/bin/env bash
# Installs nginx (Debian's nginx-light: auth_request is compiled in) for the
# forward-auth test. Idempotent. The test runs its own nginx with its own
# prefix; a packaged service that starts on install is stopped.
set -euo pipefail
if command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "nginx is missing: install nginx-light" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light >/dev/null
# Debian starts the service on install where it can; the test needs none.
(command -v service >/dev/null && service nginx stop >/dev/null 2>&1) || true
