#!/usr/bin/env bash
# The test command: prepares what the tests drive (Python with grpcio and Envoy, Node,
# Go, the Netlify CLI, nginx, Caddy, PostgreSQL, kubectl; idempotent), then runs every Rust test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/python-env.sh
scripts/node-env.sh
scripts/go-env.sh
scripts/netlify-env.sh
scripts/nginx-env.sh
scripts/caddy-env.sh
scripts/postgres-env.sh
scripts/kubectl-env.sh
export AUTHGATE_TEST_PYTHON="$PWD/.venv/bin/python"
exec cargo test --locked "$@"
