#!/usr/bin/env bash
# Benchmark: Verify vs grpc.health.v1 Check on one release server (see bench/bench.py).
# Arguments are passed to bench.py (e.g. --rounds 7 --requests 500000 --log-level warn).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v h2load >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client
fi
scripts/python-env.sh
scripts/node-env.sh
cargo build --release --locked
exec python3 bench/bench.py "$@"
