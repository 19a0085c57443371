#!/usr/bin/env bash
# The test command: prepares the Python, Node, Go and Netlify CLI environments (idempotent),
# then runs every Rust test, including the ones that drive Python, Node and Go clients.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/python-env.sh
scripts/node-env.sh
scripts/go-env.sh
scripts/netlify-env.sh
scripts/nginx-env.sh
export AUTHGATE_TEST_PYTHON="$PWD/.venv/bin/python"
exec cargo test --locked "$@"
