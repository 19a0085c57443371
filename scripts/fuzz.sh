#!/usr/bin/env bash
# Fuzzes authgate's parsers with cargo-fuzz (libFuzzer) on the nightly
# toolchain, which is used for fuzzing only.
#
#   scripts/fuzz.sh            every target for 10 minutes each (a long run)
#   scripts/fuzz.sh 15         every target for 15 seconds (what CI runs)
#   scripts/fuzz.sh 600 jws    one target
#
# Seed corpora are committed under fuzz/corpus/<target>; what a run adds
# goes to fuzz/target/corpus/<target> (not committed). A crash stops the run
# with the input under fuzz/artifacts/<target>/: turn it into a regression
# test before fixing it. Idempotent installs: the nightly toolchain and
# cargo-fuzz from crates.io.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(jws credential forward_auth_headers check_request keyset nf_sign config webhook)
fi

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

# No sanitizer: the targets are safe Rust (panics, overflows in debug
# assertions, hangs and leaks of memory are what libFuzzer catches here),
# and an uninstrumented build of this dependency tree is minutes faster.
cargo +nightly fuzz build -O --sanitizer none

for t in "${targets[@]}"; do
  work="fuzz/target/corpus/$t"
  mkdir -p "$work"
  echo "fuzz: $t for ${seconds}s"
  log="fuzz/target/$t.log"
  if ! cargo +nightly fuzz run -O --sanitizer none "$t" "$work" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -max_len=131072 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz: $t failed; the input is under fuzz/artifacts/$t/"
    exit 1
  fi
  grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$log" | tr '\n' ' '
  echo
done
echo "fuzz: all targets ran ${seconds}s without a failure"
