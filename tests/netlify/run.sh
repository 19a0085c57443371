#!/usr/bin/env bash
# Runs inside a private network namespace (`unshare -rn`): authgate, a
# backend that asks authgate about each request, and the real `netlify dev`
# proxying /api/* to that backend with `signed = "API_SIGNATURE_TOKEN"`.
# Requests go through the proxy (and around it); the answers and the genuine
# x-nf-sign headers land in $OUT_DIR. Every process is started under
# `timeout` and killed by PID.
#
# Needs: AUTHGATE_BIN PYTHON OUT_DIR PROXY_SECRET USER_SECRET GOOD_TOKEN FORGED_TOKEN FORGED_SIGN SITE_ID
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
ip link set lo up

site="$OUT_DIR/site"
mkdir -p "$site/public"
echo "<p>site</p>" > "$site/public/index.html"
cat > "$site/netlify.toml" <<TOML
[build]
  publish = "public"
[dev]
  framework = "#static"
  port = 18888
[[redirects]]
  from = "/api/*"
  to = "http://127.0.0.1:18901/:splat"
  status = 200
  force = true
  signed = "API_SIGNATURE_TOKEN"
TOML
# netlify dev reads the signing secret from the site's .env, not the process env.
echo "API_SIGNATURE_TOKEN=$PROXY_SECRET" > "$site/.env"

cat > "$OUT_DIR/authgate.toml" <<TOML
[server]
grpc_addr = "127.0.0.1:50551"
http_addr = "127.0.0.1:50552"
[log]
level = "warn"
[[issuers]]
name = "netlify"
TOML

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

AUTHGATE_SIGNED_PROXY_SECRET="$PROXY_SECRET" AUTHGATE_ISSUER_NETLIFY_SECRET="$USER_SECRET" \
  timeout 170 "$AUTHGATE_BIN" --config "$OUT_DIR/authgate.toml" 2> "$OUT_DIR/authgate.log" &
pids+=($!)
timeout 170 "$PYTHON" "$here/upstream.py" 18901 127.0.0.1:50551 "$OUT_DIR/captured.txt" 2> "$OUT_DIR/upstream.log" &
pids+=($!)
# exec: the PID we keep is timeout's, which passes our TERM on to node.
(cd "$site" && exec env BROWSER=none NETLIFY_TELEMETRY_DISABLED=1 NETLIFY_SITE_ID="$SITE_ID" \
  timeout 170 node "$here/node_modules/netlify-cli/bin/run.js" dev --offline --no-open \
  --internal-disable-edge-functions > "$OUT_DIR/netlify.log" 2>&1) &
pids+=($!)

wait_for() { for _ in $(seq 1 300); do curl -s -o /dev/null "$1" && return 0; sleep 0.2; done; echo "timed out waiting for $1" >&2; return 1; }
wait_for http://127.0.0.1:18888/
wait_for http://127.0.0.1:18901/
wait_for http://127.0.0.1:50552/readyz

ask() { # name url [curl args...]
  local name=$1 url=$2; shift 2
  curl -s -o "$OUT_DIR/$name.json" -w '%{http_code}' "$url" "$@" > "$OUT_DIR/$name.status"
}
ask through_proxy_valid_user http://127.0.0.1:18888/api/orders -H "Authorization: Bearer $GOOD_TOKEN"
ask through_proxy_cookie http://127.0.0.1:18888/api/orders -H "Cookie: nf_jwt=$GOOD_TOKEN"
ask through_proxy_forged_user http://127.0.0.1:18888/api/orders -H "Authorization: Bearer $FORGED_TOKEN"
ask through_proxy_no_user http://127.0.0.1:18888/api/orders
ask around_proxy_valid_user http://127.0.0.1:18901/orders -H "Authorization: Bearer $GOOD_TOKEN"
ask around_proxy_forged_sign http://127.0.0.1:18901/orders -H "Authorization: Bearer $GOOD_TOKEN" -H "x-nf-sign: $FORGED_SIGN"
echo done > "$OUT_DIR/finished"
