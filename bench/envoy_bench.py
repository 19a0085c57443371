#!/usr/bin/env python3
"""authgate behind a real Envoy: the cost of deciding at the edge.

Same run, same load (h2load over h2c to Envoy, one connection set), four
front configurations, each forwarding to a direct_response listener of the
same Envoy process:
  (a) no auth filter
  (b) ext_authz -> a no-op Rust server that allows everything (the floor of
      any external authorizer: Envoy's own ext_authz client costs most)
  (c) ext_authz -> authgate verifying the GoTrue HS256 token
  (d) Envoy's native jwt_authn with the same secret as a local `oct` JWKS
Prints req/s, p50/p99, CPU µs per request of Envoy and of the authorizer,
and the ratios; the targets are (c) >= 0.95 x (b) and authgate's CPU per
Check <= 1.2 x the no-op authorizer's.
Run: cargo build --release --examples && python3 bench/envoy_bench.py
"""
import argparse
import base64
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import cpu_ticks, free_port, gotrue_token  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ENVOY = ROOT / ".venv" / "bin" / "envoy"


def envoy_config(front, back, authz_port, mode, secret):
    if mode == "none":
        filters = ""
    elif mode == "jwt":
        k = base64.urlsafe_b64encode(secret).rstrip(b"=").decode()
        jwks = '{"keys":[{"kty":"oct","kid":"nf-ident","alg":"HS256","k":"%s"}]}' % k
        filters = f"""
                  - name: envoy.filters.http.jwt_authn
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication
                      providers:
                        gotrue:
                          local_jwks: {{inline_string: '{jwks}'}}
                          forward: false
                      rules: [{{match: {{prefix: "/"}}, requires: {{provider_name: gotrue}}}}]"""
    else:
        filters = """
                  - name: envoy.filters.http.ext_authz
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
                      transport_api_version: V3
                      failure_mode_allow: false
                      grpc_service: {envoy_grpc: {cluster_name: authz}, timeout: 1s}"""
    return f"""
static_resources:
  listeners:
    - name: front
      address: {{socket_address: {{address: 127.0.0.1, port_value: {front}}}}}
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: front
                route_config: {{virtual_hosts: [{{name: all, domains: ["*"], routes: [{{match: {{prefix: "/"}}, route: {{cluster: back}}}}]}}]}}
                http_filters:{filters}
                  - name: envoy.filters.http.router
                    typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
    - name: back
      address: {{socket_address: {{address: 127.0.0.1, port_value: {back}}}}}
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: back
                route_config: {{virtual_hosts: [{{name: all, domains: ["*"], routes: [{{match: {{prefix: "/"}}, direct_response: {{status: 200, body: {{inline_string: "ok"}}}}}}]}}]}}
                http_filters:
                  - name: envoy.filters.http.router
                    typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
  clusters:
    - name: back
      type: STATIC
      load_assignment: {{cluster_name: back, endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {back}}}}}}}}}]}}]}}
    - name: authz
      type: STATIC
      typed_extension_protocol_options:
        envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
          "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
          # authgate's server.max_streams_per_connection (100): beyond it
          # Envoy opens a second connection instead of having streams refused.
          explicit_http_config: {{http2_protocol_options: {{max_concurrent_streams: 100}}}}
      load_assignment: {{cluster_name: authz, endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {authz_port}}}}}}}}}]}}]}}
"""


def wait_port(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"port {port} never opened")


def h2load(port, token, n, log):
    if log.exists():
        log.unlink()
    out = subprocess.run(["h2load", "-n", str(n), "-c", "8", "-m", "16", "-t", "1", "-H", f"authorization: Bearer {token}",
                          f"--log-file={log}", f"http://127.0.0.1:{port}/api"], capture_output=True, text=True, timeout=600).stdout
    import re
    rps = float(re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out).group(1))
    codes = re.search(r"status codes: (\d+) 2xx", out)
    if not codes or int(codes.group(1)) != n:
        sys.exit(f"not every request got a 2xx (port {port}):\n{out[-600:]}")
    lat = sorted(int(line.split()[2]) for line in log.read_text().splitlines() if line.strip())
    return rps, lat[len(lat) // 2] / 1000, lat[int(0.99 * len(lat))] / 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=60_000)
    ap.add_argument("--log-level", default="info",
                    help="authgate's [log] level (info writes the decision line of every Check)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="authgate-envoy-bench-"))
    # Text, because authgate reads it from an environment variable; the same
    # bytes are the HMAC key on every side (authgate, jwt_authn's oct key).
    hs_key = secrets.token_urlsafe(32).encode()
    token = gotrue_token(hs_key, "775a5344-0c6d-4dc6-9ac7-d2d646e071ec")
    grpc, noop = free_port(), free_port()
    cfg = work / "authgate.toml"
    cfg.write_text(f'[server]\ngrpc_addr = "127.0.0.1:{grpc}"\nhttp_addr = "127.0.0.1:{free_port()}"\n'
                   f'[log]\nformat = "json"\nlevel = "{args.log_level}"\n[[issuers]]\nname = "netlify"\n')
    env = dict(os.environ, AUTHGATE_ISSUER_NETLIFY_SECRET=hs_key.decode())
    authgate = subprocess.Popen([str(ROOT / "target/release/authgate"), "--config", str(cfg)], env=env,
                                stdout=subprocess.DEVNULL, stderr=open(work / "authgate.log", "wb"))
    noop_srv = subprocess.Popen([str(ROOT / "target/release/examples/noop_ext_authz"), f"127.0.0.1:{noop}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(grpc)
    wait_port(noop)
    modes = {"a_none": ("none", None), "b_noop": ("authz", noop_srv), "c_authgate": ("authz", authgate), "d_jwt_authn": ("jwt", None)}
    hz = os.sysconf("SC_CLK_TCK")
    log = work / "h2.log"
    results = {m: [] for m in modes}
    try:
        for rnd in range(args.rounds):
            order = list(modes)[rnd % 4:] + list(modes)[:rnd % 4]
            for name in order:
                kind, authz = modes[name]
                front, back = free_port(), free_port()
                port = grpc if name == "c_authgate" else noop
                conf = work / f"{name}.yaml"
                conf.write_text(envoy_config(front, back, port, kind, hs_key))
                envoy = subprocess.Popen([str(ENVOY), "-c", str(conf), "--concurrency", "1", "--disable-hot-restart",
                                          "-l", "error", "--base-id", str(front)],
                                         stdout=subprocess.DEVNULL, stderr=open(work / f"envoy-{name}.log", "wb"))
                try:
                    wait_port(front)
                    h2load(front, token, max(2000, args.requests // 10), log)  # warm-up
                    e0 = cpu_ticks(envoy.pid)
                    a0 = cpu_ticks(authz.pid) if authz else 0
                    rps, p50, p99 = h2load(front, token, args.requests, log)
                    e_us = (cpu_ticks(envoy.pid) - e0) / hz * 1e6 / args.requests
                    a_us = ((cpu_ticks(authz.pid) - a0) / hz * 1e6 / args.requests) if authz else 0.0
                finally:
                    envoy.terminate()
                    envoy.wait(timeout=30)
                results[name].append((rps, p50, p99, e_us, a_us))
            print(f"round {rnd + 1}: " + "  ".join(f"{m} {results[m][-1][0]:.0f}" for m in modes), flush=True)
    finally:
        authgate.terminate()
        noop_srv.terminate()
        authgate.wait(timeout=30)
        noop_srv.wait(timeout=30)
    print(f"\nh2load h2c -c 8 -m 16, {args.requests} requests per run, {args.rounds} rounds, Envoy --concurrency 1")
    print(f"{'config':<13}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'Envoy µs/req':>14}{'authz µs/req':>14}")
    for m, rows in results.items():
        med = lambda i: statistics.median(r[i] for r in rows)
        print(f"{m:<13}{med(0):>9.0f}{med(1):>8.2f}{med(2):>8.2f}{med(3):>14.1f}{med(4):>14.1f}")
    ratio = lambda x, y: statistics.median(a[0] / b[0] for a, b in zip(results[x], results[y]))
    cpu = lambda x, y: statistics.median(a[4] / b[4] for a, b in zip(results[x], results[y]))
    print(f"(c)/(b) = {ratio('c_authgate', 'b_noop'):.3f} (target >= 0.95); (c)/(a) = {ratio('c_authgate', 'a_none'):.3f}; "
          f"(b)/(a) = {ratio('b_noop', 'a_none'):.3f}; (d)/(a) = {ratio('d_jwt_authn', 'a_none'):.3f}")
    print(f"authgate CPU per Check / no-op's = {cpu('c_authgate', 'b_noop'):.2f} (target <= 1.2)")


if __name__ == "__main__":
    main()
