#!/usr/bin/env bash
# The test command: prepares the Python client environment (idempotent),
# then runs every Rust test, including the ones that drive Python clients.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/python-env.sh
export AUTHGATE_TEST_PYTHON="$PWD/.venv/bin/python"
exec cargo test --locked "$@"
