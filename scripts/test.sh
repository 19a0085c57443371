#!/usr/bin/env bash
# The test command: prepares the Python and Node client environments (idempotent),
# then runs every Rust test, including the ones that drive Python and Node clients.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/python-env.sh
scripts/node-env.sh
export AUTHGATE_TEST_PYTHON="$PWD/.venv/bin/python"
exec cargo test --locked "$@"
