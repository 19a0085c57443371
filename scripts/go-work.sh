#!/usr/bin/env bash
# Writes DIR/go.work: a Go workspace that builds the client module
# (clients/go) and its test program (tests/go) offline (GOPROXY=off) against
# Debian's packaged Go sources under /usr/share/gocode/src
# (scripts/go-env.sh installs them). The modules' own go.mod files stay as
# published; only this workspace replaces their dependencies:
#   - every module with a go.mod under /usr/share/gocode/src by its
#     packaged source;
#   - a module the build graph names but Debian does not ship (grpc's
#     go.mod lists xDS and test dependencies the client never imports) by an
#     empty placeholder module under DIR/placeholders, found by asking
#     `go list -m all` until it has nothing missing. A placeholder only
#     satisfies the graph: importing a package from one fails the build.
# Usage: scripts/go-work.sh DIR   then build with GOWORK=DIR/go.work GOPROXY=off.
set -euo pipefail
dir=$(mkdir -p "$1" && cd "$1" && pwd)
repo=$(cd "$(dirname "$0")/.." && pwd)
src=${AUTHGATE_GOCODE:-/usr/share/gocode/src}
replaces=()
while IFS= read -r gomod; do
  mod=$(awk '$1 == "module" { gsub(/"/, "", $2); print $2; exit }' "$gomod")
  [ -n "$mod" ] && replaces+=("$mod => $(dirname "$gomod")")
done < <(find "$src" -name go.mod -not -path '*/testdata/*' -not -path '*/_*' | sort)

write() {
  {
    printf 'go 1.19\n\nuse (\n\t%s\n\t%s\n)\n\nreplace (\n' "$repo/clients/go" "$repo/tests/go"
    printf '\t%s\n' "${replaces[@]}"
    printf ')\n'
  } > "$dir/go.work"
}

export GOWORK="$dir/go.work" GOPROXY=off GOFLAGS= GOCACHE="${GOCACHE:-$dir/gocache}" GOPATH="$dir/gopath"
for _ in $(seq 1 50); do
  write
  if out=$(cd "$repo/clients/go" && go list -m all 2>&1); then
    exit 0
  fi
  missing=$(printf '%s\n' "$out" | grep -oE '[^[:space:]]+@[^[:space:]:]+: module lookup disabled' | head -1 | sed 's/@.*//')
  if [ -z "$missing" ]; then
    printf '%s\n' "$out" >&2
    exit 1
  fi
  mkdir -p "$dir/placeholders/$missing"
  printf 'module %s\n' "$missing" > "$dir/placeholders/$missing/go.mod"
  replaces+=("$missing => $dir/placeholders/$missing")
done
echo "go-work.sh: the module graph still misses modules after 50 rounds" >&2
exit 1
