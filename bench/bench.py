#!/usr/bin/env python3
"""Verify throughput against a same-run control, over real gRPC.

Every Verify carries the same token (h2load sends one body), so with the
verified-identity cache on (the default) all but the first are cache hits;
--cache-entries 0 measures the full verification on every request.

--hosted verifies hosted Netlify Identity tokens (kind = "netlify_identity")
against a GoTrue stand-in served by this script (it answers /user with the
token's subject and counts calls; it checks no signature: correctness is the
tests' job, this measures the cached path), then requests 1,000 distinct
tokens many times each and reports upstream calls and the cache-hit ratio.

--tls adds a second authgate with [tls] (a self-signed ECDSA P-256 certificate
made with openssl) beside the plaintext one, and two rows: verify_tls (Verify
over TLS, new connections only at the start as h2load keeps its 8) and
health_tls (the health check over TLS); the ratios verify_tls/control (the
plaintext health check) and verify_tls/health_tls are printed.

--store token|store adds a second authgate with a user store ([store] on a
SQLite file in the temp directory, the issuer's roles_source = token or
store) beside the plain one, and a verify_store row: the same Verify with
the store's work on the request path (the just-in-time row check, and for
`store` the cached row read and the identity rebuilt with the app's roles);
verify_store/verify is printed (target >= 0.95). With --revocations N the
store server starts with N active subject revocations (of other users) in
its database, so every Verify also checks a 100,000-entry index.

--jwks es256|eddsa verifies tokens of a `jwks` issuer (static JWKS file, the
same aws-lc-rs key set as a fetched one) signed with ES256 or EdDSA by
PyJWT; with --cache-entries 0 every Verify pays the signature check.

--node-jose adds two Node.js gRPC servers (bench/node/server.mjs: grpc-js and
jose's jwtVerify, the code users write instead of authgate) serving the same
proto's Verify for the same token: node_jose (the secret as a Uint8Array on
every call, as jose's README shows) and node_jose_key (the key imported
once). They run in the same rounds; verify/node ratios are printed, and
after the rounds one c=1 run of each (latency without queueing).

Starts a release build of authgate, then drives, in alternating rounds with
h2load at a fixed concurrency:
  * control: grpc.health.v1.Health/Check (about the cost of a no-op RPC)
  * verify:  authgate.v1.AuthService/Verify with a valid GoTrue HS256 token
on the same server, and prints req/s, p50, p99, server CPU per request and
the ratio verify/control (median of per-round ratios). Absolute numbers on
shared 2-core machines move by 35-50 % between periods; the same-round ratio
is what to compare. Run it with scripts/bench.sh.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / "target" / "release" / "authgate"
TARGET_RATIO = 0.85


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def grpc_frame(message: bytes) -> bytes:
    return b"\x00" + len(message).to_bytes(4, "big") + message


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def gotrue_token(secret: bytes, sub: str, ttl: int = 7200) -> str:
    """A token shaped like a Netlify Identity access token."""
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "nf-ident"}).encode())
    claims = {"exp": int(time.time()) + ttl, "sub": sub, "email": "bench@example.com",
              "app_metadata": {"provider": "email", "roles": ["editor", "member"]}, "user_metadata": {}}
    payload = b64url(json.dumps(claims).encode())
    sig = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(sig)}"


class StandIn(BaseHTTPRequestHandler):
    """GET /user answering 200 with the bearer token's subject; counts calls."""
    calls = 0
    lock = threading.Lock()

    def do_GET(self):  # noqa: N802 (http.server's naming)
        with StandIn.lock:
            StandIn.calls += 1
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            payload = token.split(".")[1]
            sub = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]
        except (IndexError, ValueError, KeyError):
            self.send_response(401)
            self.end_headers()
            self.wfile.write(b'{"code":401,"msg":"Invalid token: token contains an invalid number of segments"}')
            return
        body = json.dumps({"id": sub, "aud": "", "role": "", "email": "bench@example.com",
                           "app_metadata": {"provider": "email", "roles": ["editor", "member"]},
                           "user_metadata": {}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


# Signs one token with the PEM key on stdin (PyJWT + cryptography from the
# test venv) and prints it with the public JWKS.
JWKS_SIGNER = r"""
import json, sys, time, jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key
alg = sys.argv[1]
key = load_pem_private_key(sys.stdin.read().encode(), None)
algo = jwt.get_algorithm_by_name(alg)
jwk = json.loads(algo.to_jwk(key.public_key()))
jwk.update(kid="bench", alg=alg, use="sig")
claims = {"iss": "https://bench.idp/", "aud": "bench", "sub": "auth0|bench", "exp": int(time.time()) + 7200,
          "iat": int(time.time()), "permissions": ["read"], "scope": "openid read"}
token = jwt.encode(claims, key, algorithm=alg, headers={"kid": "bench"})
print(json.dumps({"token": token, "jwks": {"keys": [jwk]}}))
"""


def verify_body(token: str) -> bytes:
    return grpc_frame(b"\x0a" + varint(len(token)) + token.encode())


def cpu_ticks(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def vm(pid, key):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])  # kB
    return 0


def h2load(addr, path, body, n, c, m, log, scheme="http"):
    if log.exists():
        log.unlink()  # h2load appends
    cmd = ["h2load", "-n", str(n), "-c", str(c), "-m", str(m), "-t", "1", "-d", str(body),
           "-H", "content-type: application/grpc", "-H", "te: trailers",
           f"--log-file={log}", f"{scheme}://{addr}{path}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600).stdout
    rps = float(re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out).group(1))
    req = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored", out)
    if not req or int(req.group(3)) != n:
        sys.exit(f"h2load did not complete every request:\n{out}")
    lat = sorted(int(line.split()[2]) for line in log.read_text().splitlines() if line.strip())
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] / 1000.0
    return rps, pct(0.50), pct(0.99)


def main():
    ap = argparse.ArgumentParser(description="authgate Verify vs control benchmark")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=300_000)
    ap.add_argument("-c", "--connections", type=int, default=8)
    ap.add_argument("-m", "--streams", type=int, default=16)
    ap.add_argument("--log-level", default="info",
                    help="authgate log level; info (the default) writes one decision line per request")
    ap.add_argument("--hosted", action="store_true",
                    help="hosted Netlify Identity issuer against a GoTrue stand-in, plus a 1,000-token cache run")
    ap.add_argument("--exchange", choices=["cached", "uncached"],
                    help="drive Exchange (EdDSA key, audience 'bench') instead of Verify")
    ap.add_argument("--jwks", choices=["es256", "eddsa"],
                    help="verify tokens of a jwks issuer signed with this algorithm")
    ap.add_argument("--tls", action="store_true",
                    help="also measure Verify and the health check over TLS on a second server")
    ap.add_argument("--store", choices=["token", "store"],
                    help="add a server with a SQLite user store and this roles_source")
    ap.add_argument("--revocations", type=int, default=0,
                    help="with --store: active revocation entries in the store before it starts")
    ap.add_argument("--slow-stderr", type=float, default=0.0, metavar="KBPS",
                    help="read the server's stderr at this many KB/s (a slow log shipper); 0 reads it as fast as it comes")
    ap.add_argument("--node-jose", action="store_true",
                    help="also measure a Node.js grpc-js + jose server doing the same Verify (bench/node)")
    ap.add_argument("--distinct-tokens", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=50, help="requests per distinct token (--hosted)")
    ap.add_argument("--cache-entries", type=int, default=None,
                    help="[cache] max_entries; 0 makes every Verify a full verification (default: the service default)")
    args = ap.parse_args()
    if not shutil.which("h2load"):
        sys.exit("h2load not found: apt-get install nghttp2-client (scripts/bench.sh does it)")
    if not BIN.exists():
        sys.exit(f"{BIN} missing: cargo build --release")

    work = Path(tempfile.mkdtemp(prefix="authgate-bench-"))
    grpc_addr = f"127.0.0.1:{free_port()}"
    http_addr = f"127.0.0.1:{free_port()}"
    cfg = work / "authgate.toml"
    standin = None
    jwks_token = None
    if args.hosted:
        standin = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
        standin.daemon_threads = True
        threading.Thread(target=standin.serve_forever, daemon=True).start()
        issuer = (f'kind = "netlify_identity"\nidentity_url = "http://127.0.0.1:{standin.server_address[1]}"\n'
                  f'cache_max_entries = {max(10_000, 2 * args.distinct_tokens)}\n')
    elif args.jwks:
        alg = {"es256": "ES256", "eddsa": "EdDSA"}[args.jwks]
        pem = subprocess.run([str(BIN), "keys", "generate", "--alg", alg],
                             capture_output=True, text=True, check=True).stdout
        signed = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c", JWKS_SIGNER, alg],
                                input=pem, capture_output=True, text=True, check=True).stdout
        signed = json.loads(signed)
        (work / "jwks.json").write_text(json.dumps(signed["jwks"]))
        jwks_token = signed["token"]
        issuer = (f'kind = "jwks"\niss = "https://bench.idp/"\naudiences = ["bench"]\n'
                  f'jwks_file = "{work / "jwks.json"}"\n')
    else:
        issuer = ""
    exchange = ""
    if args.exchange:
        key = work / "signing.pem"
        key.write_text(subprocess.run([str(BIN), "keys", "generate", "--alg", "EdDSA"],
                                      capture_output=True, text=True, check=True).stdout)
        exchange = (f'[exchange]\nissuer_url = "https://authgate.bench"\n'
                    f'mint_cache_max_entries = {0 if args.exchange == "uncached" else 10000}\n'
                    f'[[exchange.keys]]\nkid = "bench"\nprivate_key_file = "{key}"\n'
                    f'[[exchange.audiences]]\nname = "bench"\nscopes = ["read"]\ndefault_scopes = ["read"]\n')
    cfg.write_text(f"""
[server]
grpc_addr = "{grpc_addr}"
http_addr = "{http_addr}"
[log]
format = "json"
level = "{args.log_level}"
{"" if args.cache_entries is None else f"[cache]{chr(10)}max_entries = {args.cache_entries}{chr(10)}"}
{exchange}
[[issuers]]
name = "netlify"
{issuer}""")
    secret = secrets.token_urlsafe(32)
    env = dict(os.environ, AUTHGATE_ISSUER_NETLIFY_SECRET=secret)
    env.pop("RUST_LOG", None)
    token = jwks_token if args.jwks else gotrue_token(secret.encode(), str(uuid.uuid4()))
    verify_file = work / "verify.bin"
    verify_file.write_bytes(verify_body(token))
    if args.exchange:  # ExchangeRequest{subject_token = 1, audience = 4}
        verify_file.write_bytes(grpc_frame(b"\x0a" + varint(len(token)) + token.encode() + b"\x22\x05bench"))
    health_body = work / "health.bin"
    health_body.write_bytes(grpc_frame(b""))

    server_log = open(work / "server.log", "wb")
    server = subprocess.Popen([str(BIN), "--config", str(cfg)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE if args.slow_stderr else server_log)
    if args.slow_stderr:
        def drain_slowly():  # 1 KB at a time, paced to the given rate
            while chunk := server.stderr.read1(1024):
                server_log.write(chunk)
                time.sleep(len(chunk) / (args.slow_stderr * 1024))
        threading.Thread(target=drain_slowly, daemon=True).start()
    tls_server = None
    tls_addr = f"127.0.0.1:{free_port()}"
    if args.tls:
        cert, key = work / "tls.crt", work / "tls.key"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
        tls_cfg = work / "authgate-tls.toml"
        text = re.sub(r'http_addr = "[^"]*"', f'http_addr = "127.0.0.1:{free_port()}"', cfg.read_text())
        text = text.replace(grpc_addr, tls_addr).replace("[log]", f'[tls]\ncert_file = "{cert}"\nkey_file = "{key}"\n[log]', 1)
        tls_cfg.write_text(text)
        tls_server = subprocess.Popen([str(BIN), "--config", str(tls_cfg)], env=env,
                                      stdout=subprocess.DEVNULL, stderr=open(work / "server-tls.log", "wb"))
    store_server = None
    store_addr = f"127.0.0.1:{free_port()}"
    if args.store:
        store_cfg = work / "authgate-store.toml"
        text = re.sub(r'http_addr = "[^"]*"', f'http_addr = "127.0.0.1:{free_port()}"', cfg.read_text())
        text = text.replace(grpc_addr, store_addr).replace(
            "[log]", f'[store]\nurl = "sqlite://{work / "users.db"}"\n[log]', 1)
        text += f'roles_source = "{args.store}"\n'
        store_cfg.write_text(text)
        if args.revocations:
            subprocess.run([str(BIN), "--config", str(store_cfg), "store", "migrate"], env=env, check=True,
                           capture_output=True)
            import sqlite3
            db = sqlite3.connect(work / "users.db")
            db.executemany("INSERT INTO authgate_revocations (kind, subject, reason) VALUES ('subject', ?, 'bench')",
                           ((str(uuid.uuid4()),) for _ in range(args.revocations)))
            db.commit()
            db.close()
        store_server = subprocess.Popen([str(BIN), "--config", str(store_cfg)], env=env,
                                        stdout=subprocess.DEVNULL, stderr=open(work / "server-store.log", "wb"))
    node_servers = {}
    dropped = None
    if args.node_jose:
        for name, mode in [("node_jose", "documented"), ("node_jose_key", "imported")]:
            addr = f"127.0.0.1:{free_port()}"
            node_servers[name] = (addr, subprocess.Popen(
                ["node", str(ROOT / "bench" / "node" / "server.mjs"), addr, mode], env=env,
                stdout=subprocess.DEVNULL, stderr=open(work / f"{name}.log", "wb")))
    try:
        for addr in ([grpc_addr] + ([tls_addr] if args.tls else []) + ([store_addr] if args.store else [])
                     + [a for a, _ in node_servers.values()]):
            for _ in range(200):
                try:
                    socket.create_connection(addr.split(":"), timeout=0.1).close()
                    break
                except OSError:
                    time.sleep(0.05)
        # The token must really verify: h2load cannot see grpc-status.
        venv_py = ROOT / ".venv" / "bin" / "python"
        check = subprocess.run([str(venv_py), str(ROOT / "clients/python/verify.py"), "--addr", grpc_addr, token],
                               capture_output=True, text=True)
        if check.returncode != 0:
            sys.exit(f"the benchmark token does not verify: {check.stderr}")
        if args.tls:
            check = subprocess.run([str(venv_py), str(ROOT / "clients/python/verify.py"), "--addr", tls_addr,
                                    "--ca", str(work / "tls.crt"), token], capture_output=True, text=True)
            if check.returncode != 0:
                sys.exit(f"the benchmark token does not verify over TLS: {check.stderr}")
        if args.store:
            for _ in range(100):  # readiness waits for the store's migration and first feed read
                check = subprocess.run([str(venv_py), str(ROOT / "clients/python/verify.py"), "--addr", store_addr,
                                        token], capture_output=True, text=True)
                if check.returncode == 0:
                    break
                time.sleep(0.1)
            else:
                sys.exit(f"the benchmark token does not verify with the store: {check.stderr}")
        idle_rss = vm(server.pid, "VmRSS")
        hz = os.sysconf("SC_CLK_TCK")
        log = work / "h2.log"
        rpc = "/authgate.v1.AuthService/" + ("Exchange" if args.exchange else "Verify")
        # name: (address, scheme, path, body, server)
        configs = {
            "control": (grpc_addr, "http", "/grpc.health.v1.Health/Check", health_body, server),
            "verify": (grpc_addr, "http", rpc, verify_file, server),
        }
        if args.store:
            configs["verify_store"] = (store_addr, "http", rpc, verify_file, store_server)
        for name, (addr, proc) in node_servers.items():
            configs[name] = (addr, "http", "/authgate.v1.AuthService/Verify", verify_file, proc)
        if args.tls:
            configs["health_tls"] = (tls_addr, "https", "/grpc.health.v1.Health/Check", health_body, tls_server)
            configs["verify_tls"] = (tls_addr, "https", rpc, verify_file, tls_server)
        for name, (addr, scheme, path, body, _) in configs.items():  # warm-up
            h2load(addr, path, body, max(2000, args.requests // 10), args.connections, args.streams, log, scheme)
        results = {k: [] for k in configs}
        ratios = []
        node_ratios = {k: [] for k in node_servers}
        tls_ratios = []
        store_ratios = []
        for rnd in range(args.rounds):
            order = list(configs) if rnd % 2 == 0 else list(reversed(configs))
            row = {}
            for name in order:
                addr, scheme, path, body, proc = configs[name]
                t0 = cpu_ticks(proc.pid)
                rps, p50, p99 = h2load(addr, path, body, args.requests, args.connections, args.streams, log, scheme)
                cpu_us = (cpu_ticks(proc.pid) - t0) / hz * 1e6 / args.requests
                row[name] = (rps, p50, p99, cpu_us)
                results[name].append(row[name])
            ratios.append(row["verify"][0] / row["control"][0])
            extra = ""
            for k in node_servers:
                node_ratios[k].append(row["verify"][0] / row[k][0])
                extra += f"   {k} {row[k][0]:>8.0f}   verify/{k} {node_ratios[k][-1]:.2f}"
            if args.store:
                store_ratios.append(row["verify_store"][0] / row["verify"][0])
                extra += f"   verify_store {row['verify_store'][0]:>9.0f}   store/verify {store_ratios[-1]:.3f}"
            if args.tls:
                tls_ratios.append((row["verify_tls"][0] / row["control"][0], row["verify_tls"][0] / row["health_tls"][0]))
                extra += (f"   verify_tls {row['verify_tls'][0]:>9.0f}   health_tls {row['health_tls'][0]:>9.0f}"
                         f"   tls/control {tls_ratios[-1][0]:.3f}   tls/health_tls {tls_ratios[-1][1]:.3f}")
            print(f"round {rnd + 1}: control {row['control'][0]:>9.0f} req/s   verify {row['verify'][0]:>9.0f} req/s"
                  f"   ratio {ratios[-1]:.3f}{extra}", flush=True)
        single = {}
        if node_servers:  # latency without queueing: one connection, one stream
            for name in ["verify"] + list(node_servers):
                addr, scheme, path, body, _ = configs[name]
                single[name] = h2load(addr, path, body, 20_000, 1, 1, log, scheme)
        node_rss = {k: (vm(p.pid, "VmHWM"), vm(p.pid, "VmRSS")) for k, (_, p) in node_servers.items()}
        if args.slow_stderr:
            import urllib.request
            text = urllib.request.urlopen(f"http://{http_addr}/metrics", timeout=5).read().decode()
            m = re.search(r'^authgate_log_lines_dropped_total\{kind="granted"\} (\S+)$', text, re.M)
            dropped = int(float(m.group(1))) if m else 0
        peak_rss = vm(server.pid, "VmHWM")
        store_peak_rss = vm(store_server.pid, "VmHWM") if store_server else None
        distinct = None
        if args.hosted:
            before = StandIn.calls
            body = work / "distinct.bin"
            for _ in range(args.distinct_tokens):
                body.write_bytes(verify_body(gotrue_token(secret.encode(), str(uuid.uuid4()))))
                h2load(grpc_addr, "/authgate.v1.AuthService/Verify", body, args.repeat, 1, 10, log)
            requests = args.distinct_tokens * args.repeat
            distinct = (requests, StandIn.calls - before)
    finally:
        for proc in [server, tls_server, store_server] + [p for _, p in node_servers.values()]:
            if proc:
                proc.terminate()
                proc.wait(timeout=30)
        server_log.close()

    decisions = sum(1 for _ in open(work / "server.log", "rb"))
    print()
    print(f"h2load -c {args.connections} -m {args.streams} -t 1, {args.requests} requests per run, "
          f"{args.rounds} rounds, token {len(token)} bytes, log level {args.log_level} ({decisions} log lines), "
          f"cache max_entries {'default' if args.cache_entries is None else args.cache_entries}, "
          f"issuer {'netlify_identity (stand-in GoTrue)' if args.hosted else ('jwks ' + args.jwks) if args.jwks else 'hs256'}"
          f"{', Exchange ' + args.exchange + ' (the verify row)' if args.exchange else ''}")
    print(f"{'config':<10} {'req/s (median)':>15} {'range':>21} {'p50 ms':>8} {'p99 ms':>8} {'server CPU us/req':>18}")
    for name, rows in results.items():
        med = lambda i: statistics.median(r[i] for r in rows)
        lo, hi = min(r[0] for r in rows), max(r[0] for r in rows)
        print(f"{name:<10} {med(0):>15.0f} {lo:>10.0f}-{hi:<10.0f} {med(1):>8.2f} {med(2):>8.2f} {med(3):>18.1f}")
    if distinct:
        requests, upstream = distinct
        print(f"hosted Identity, {args.distinct_tokens} distinct tokens x {args.repeat} requests: "
              f"{requests} Verify calls, {upstream} upstream /user calls, cache-hit ratio {1 - upstream / requests:.4f}")
    for k, rs in node_ratios.items():
        print(f"verify/{k} throughput: median {statistics.median(rs):.2f}x (range {min(rs):.2f}-{max(rs):.2f}); "
              f"{k} peak RSS {node_rss[k][0] / 1024:.1f} MB")
    for name, (rps, p50, p99) in single.items():
        print(f"c=1 {name:<14} {rps:>9.0f} req/s   p50 {p50:.3f} ms   p99 {p99:.3f} ms")
    if dropped is not None:
        print(f"stderr read at {args.slow_stderr} KB/s: {decisions} lines read; "
              f"authgate_log_lines_dropped_total{{kind=granted}} {dropped}")
    ratio = statistics.median(ratios)
    print(f"RSS idle {idle_rss / 1024:.1f} MB, peak {peak_rss / 1024:.1f} MB")
    if store_peak_rss:
        print(f"store server peak RSS {store_peak_rss / 1024:.1f} MB ({args.revocations} revocations)")
    if store_ratios:
        print(f"verify_store/verify (roles_source = {args.store}, {args.revocations} revocations): median {statistics.median(store_ratios):.3f} "
              f"(range {min(store_ratios):.3f}-{max(store_ratios):.3f}); target >= 0.95: "
              f"{'met' if statistics.median(store_ratios) >= 0.95 else 'MISSED'}")
    if tls_ratios:
        a = [r[0] for r in tls_ratios]
        b = [r[1] for r in tls_ratios]
        print(f"verify_tls/control (plaintext health): median {statistics.median(a):.3f} "
              f"(range {min(a):.3f}-{max(a):.3f}); verify_tls/health_tls: median {statistics.median(b):.3f} "
              f"(range {min(b):.3f}-{max(b):.3f})")
    print(f"verify/control throughput ratio: median {ratio:.3f} (range {min(ratios):.3f}-{max(ratios):.3f}); "
          f"target >= {TARGET_RATIO}: {'met' if ratio >= TARGET_RATIO else 'MISSED'}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
