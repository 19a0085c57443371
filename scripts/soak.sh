#!/usr/bin/env bash
# Soak (bench/soak.py): a realistic request mix at 80 % of measured capacity
# with a reload every minute; checks errors, counts by reason, memory and p99.
#   scripts/soak.sh                 10 minutes on the release build
#   scripts/soak.sh --ci            60 s on the debug build, errors and counts only (CI)
# Other arguments go to bench/soak.py (--duration SECONDS, --load 0.8, --json FILE, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v h2load >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client
fi
scripts/python-env.sh
extra=()
if [[ " $* " == *" --ci "* ]]; then
  cargo build --locked --bin authgate
  extra=(--binary target/debug/authgate --duration 60 --reload-every 20)
else
  cargo build --release --locked --bin authgate
fi
exec .venv/bin/python bench/soak.py "${extra[@]}" "$@"
