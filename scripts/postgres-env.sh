#!/usr/bin/env bash
# Installs PostgreSQL (Debian's `postgresql`, 15 on bookworm) for the user
# store tests. Idempotent. The tests start private clusters with initdb and
# pg_ctl as the `postgres` user the package creates; the packaged cluster
# that may start on install is stopped.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && id postgres >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "PostgreSQL is missing: install postgresql (the tests also need root for runuser)" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
(command -v service >/dev/null && service postgresql stop >/dev/null 2>&1) || true
