#!/usr/bin/env bash
# Installs kubectl (Debian's kubernetes-client) for the Kustomize test of
# deploy/k8s, unless one is already on PATH. Idempotent. Any kubectl from
# 1.20 on renders the overlays (they use what kustomize v2 and v5 share).
set -euo pipefail
if command -v kubectl >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "kubectl is missing: install kubernetes-client" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null
