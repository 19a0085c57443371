#!/usr/bin/env bash
# Creates or updates .venv with tests/python/requirements.txt and the
# authgate-client package (clients/python). Idempotent: reinstalls only when
# the requirements, the package or the proto change.
set -euo pipefail
cd "$(dirname "$0")/.."
req=tests/python/requirements.txt
stamp=.venv/.requirements.sha256
# The client package is installed too, and again whenever it or the proto changes.
want=$(cat "$req" clients/python/pyproject.toml clients/python/setup.py clients/python/authgate_client/*.py \
  proto/authgate/v1/auth.proto | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
if ! python3 -m venv .venv 2>/dev/null; then
  # Debian's python3 ships venv separately.
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
    python3 -m venv .venv
  else
    echo "python3 -m venv failed: install python3-venv" >&2
    exit 1
  fi
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r "$req"
.venv/bin/python -m pip install -q --disable-pip-version-check --force-reinstall --no-deps ./clients/python
echo "$want" > "$stamp"
