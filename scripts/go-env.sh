#!/usr/bin/env bash
# Installs what the Go client test needs, from Debian's packages (Go 1.19,
# grpc-go, protoc and its Go plugins). No module downloads: the test builds
# the client module in a workspace that scripts/go-work.sh points at these
# packaged sources.
# Idempotent: does nothing when everything is present.
set -euo pipefail
pkgs=(golang-go protobuf-compiler golang-google-grpc-dev protoc-gen-go protoc-gen-go-grpc
      golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev golang-google-genproto-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages for the Go client test: ${missing[*]} (run as root or install them)" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
