#!/usr/bin/env python3
"""Soak: a realistic request mix at ~80 % of measured capacity, a reload every
minute, and the checks that matter for a long-running verifier.

Loopback only and bounded (default 10 minutes). Starts authgate (release build,
or --binary) with four credential sources: a GoTrue HS256 issuer (`netlify`,
the default), hosted Netlify Identity (`hosted`, against the GoTrue stand-in of
bench.py, which answers /user with the token's subject), a JWKS issuer (`idp`,
ES256 tokens signed by PyJWT, a static JWKS file) and Exchange (EdDSA, audience
`orders`). First it measures capacity (Verify with a repeated token, h2load
unthrottled, 5 s), then drives, for --duration, at --load x that rate:

  h2load streams (one fixed body each, --rps paced):
    verify_repeat   55 %  Verify, one valid token (cache hits)        -> granted
    exchange        10 %  Exchange, same token and audience (mint cache) -> granted
    ext_authz       10 %  Envoy ext_authz v3 Check, Authorization header -> granted
    verify_jwks      5 %  Verify, ES256 token of the JWKS issuer        -> granted
    verify_hosted    5 %  Verify, hosted Identity token (cached)        -> granted
    verify_expired   5 %  Verify, expired                               -> token_expired
    verify_forged    5 %  Verify, wrong secret                          -> bad_signature
    verify_missing   5 %  Verify, no credential                         -> missing_credential
  Python threads (grpcio, raw bytes; http.client):
    distinct        Verify, a new HS256 token per request (cache misses, evictions)
    hosted_distinct Verify, a new hosted Identity token per request (upstream calls)
    forward_auth    /forward-auth, a new HS256 token per request (HTTP adapter)
  probe            Verify, repeated token, 100 req/s, latency logged (p50/p99 per minute)

while SIGHUP reloads the configuration every --reload-every seconds and RSS is
sampled every 2 s. Checks (exit 1 when one fails):
  * zero unexpected errors: no h2load request failed or errored, every Python
    request got the answer its class expects, every reload was applied;
  * counts by reason match the mix: the server's authgate_decisions_total per
    (adapter, reason) and per granted issuer equals what was sent (for h2load,
    between "done" and "started": a stream cut by the end of its duration may
    or may not have reached the server);
  * without --ci also: RSS within +-10 % of its post-warm-up median, and the
    probe's per-minute p99 within 2x of its median. Warm-up is the first fifth
    of the run, or longer when the new-token streams need longer to fill the
    caches (10,000 identities, 10,000 hosted answers by default) plus 30 s:
    until then RSS grows by design.
--ci runs the short form (CI: errors and counts only; timings and memory are
printed, not asserted, on a noisy shared machine).
"""
import argparse
import json
import math
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.client import HTTPConnection
from http.server import ThreadingHTTPServer
from pathlib import Path

import bench  # same directory: free_port, varint, grpc_frame, gotrue_token, StandIn, JWKS_SIGNER

ROOT = bench.ROOT

# Shares of the paced h2load rate; the Python streams add their own fixed rates.
MIX = {
    "verify_repeat": 0.55, "exchange": 0.10, "ext_authz": 0.10, "verify_jwks": 0.05,
    "verify_hosted": 0.05, "verify_expired": 0.05, "verify_forged": 0.05, "verify_missing": 0.05,
}
# (adapter, reason) each h2load stream's requests are counted under.
EXPECT = {
    "verify_repeat": ("verify", "none"), "exchange": ("exchange", "none"), "ext_authz": ("ext_authz", "none"),
    "verify_jwks": ("verify", "none"), "verify_hosted": ("verify", "none"),
    "verify_expired": ("verify", "token_expired"), "verify_forged": ("verify", "bad_signature"),
    "verify_missing": ("verify", "missing_credential"), "probe": ("verify", "none"),
}
GRANTED_ISSUER = {"verify_jwks": "idp", "verify_hosted": "hosted"}


def field(number, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return bench.varint(number << 3 | 2) + bench.varint(len(payload)) + payload


def verify_request(token: str = "", issuer: str = "") -> bytes:
    return (field(1, token.encode()) if token else b"") + (field(4, issuer.encode()) if issuer else b"")


def check_request(token: str) -> bytes:
    """envoy.service.auth.v3.CheckRequest{attributes{request{http{method, path, headers}}}}."""
    entry = field(1, b"authorization") + field(2, f"Bearer {token}".encode())
    http = field(2, b"GET") + field(3, entry) + field(4, b"/orders")
    return field(1, field(4, field(2, http)))


def metrics(http_addr):
    conn = HTTPConnection(http_addr, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    out = []
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:]+)(?:\{(.*)\})? ([^ ]+)$", line)
        if m:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
            out.append((m.group(1), labels, float(m.group(3))))
    return out


def total(samples, name, **labels):
    return sum(v for n, l, v in samples if n == name and all(l.get(k) == w for k, w in labels.items()))


class Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}

    def add(self, key):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1


def paced(rate, stop, fn):
    """Calls fn about `rate` times a second until stop is set."""
    interval = 1.0 / rate
    nxt = time.monotonic()
    while not stop.is_set():
        fn()
        nxt += interval
        delay = nxt - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -1.0:
            nxt = time.monotonic()  # fell behind by a second: do not burst to catch up


def main():
    ap = argparse.ArgumentParser(description="authgate soak: realistic mix, reloads, memory and latency checks")
    ap.add_argument("--duration", type=float, default=600, help="seconds of mixed load (default 600)")
    ap.add_argument("--load", type=float, default=0.8, help="fraction of measured capacity (default 0.8)")
    ap.add_argument("--reload-every", type=float, default=60, help="seconds between SIGHUP reloads")
    ap.add_argument("--distinct-rate", type=float, default=300, help="new HS256 tokens per second (Verify)")
    ap.add_argument("--hosted-rate", type=float, default=100, help="new hosted Identity tokens per second")
    ap.add_argument("--forward-auth-rate", type=float, default=200, help="/forward-auth requests per second")
    ap.add_argument("--binary", type=Path, default=bench.BIN)
    ap.add_argument("--ci", action="store_true", help="assert only errors and counts")
    ap.add_argument("--json", type=Path, help="write the report here as JSON")
    args = ap.parse_args()
    import grpc  # the test venv's grpcio (scripts/python-env.sh)
    if not shutil.which("h2load"):
        sys.exit("h2load not found: apt-get install nghttp2-client (scripts/soak.sh does it)")
    if not args.binary.exists():
        sys.exit(f"{args.binary} missing: cargo build --release")

    work = Path(tempfile.mkdtemp(prefix="authgate-soak-"))
    grpc_addr, http_addr = f"127.0.0.1:{bench.free_port()}", f"127.0.0.1:{bench.free_port()}"
    standin = ThreadingHTTPServer(("127.0.0.1", 0), bench.StandIn)
    standin.daemon_threads = True
    threading.Thread(target=standin.serve_forever, daemon=True).start()
    key = work / "signing.pem"
    key.write_text(subprocess.run([str(args.binary), "keys", "generate", "--alg", "EdDSA"],
                                  capture_output=True, text=True, check=True).stdout)
    pem = subprocess.run([str(args.binary), "keys", "generate", "--alg", "ES256"],
                         capture_output=True, text=True, check=True).stdout
    signed = json.loads(subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c", bench.JWKS_SIGNER, "ES256"],
                                       input=pem, capture_output=True, text=True, check=True).stdout)
    (work / "jwks.json").write_text(json.dumps(signed["jwks"]))
    cfg = work / "authgate.toml"
    cfg.write_text(f"""
[server]
grpc_addr = "{grpc_addr}"
http_addr = "{http_addr}"
[log]
format = "json"
[exchange]
issuer_url = "https://authgate.soak"
[[exchange.keys]]
kid = "soak"
private_key_file = "{key}"
[[exchange.audiences]]
name = "orders"
scopes = ["read"]
default_scopes = ["read"]
[[issuers]]
name = "netlify"
default = true
[[issuers]]
name = "hosted"
kind = "netlify_identity"
identity_url = "http://127.0.0.1:{standin.server_address[1]}"
[[issuers]]
name = "idp"
kind = "jwks"
iss = "https://bench.idp/"
audiences = ["bench"]
jwks_file = "{work / "jwks.json"}"
""")
    secret = secrets.token_urlsafe(32)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTHGATE_", "OTEL_")) and k != "RUST_LOG"}
    env["AUTHGATE_ISSUER_NETLIFY_SECRET"] = secret
    server_log = open(work / "server.log", "wb")
    server = subprocess.Popen([str(args.binary), "--config", str(cfg)], env=env,
                              stdout=subprocess.DEVNULL, stderr=server_log)
    report = {"work": str(work)}
    failures = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if total(metrics(http_addr), "authgate_ready") == 1:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit(f"authgate did not become ready; log in {work / 'server.log'}")
            time.sleep(0.1)

        token = bench.gotrue_token(secret.encode(), str(uuid.uuid4()))
        bodies = {
            "verify_repeat": verify_request(token),
            "exchange": field(1, token.encode()) + field(4, b"orders"),
            "ext_authz": check_request(token),
            "verify_jwks": verify_request(signed["token"]),
            "verify_hosted": verify_request(bench.gotrue_token(b"not-checked", str(uuid.uuid4())), "hosted"),
            "verify_expired": verify_request(bench.gotrue_token(secret.encode(), str(uuid.uuid4()), ttl=-600)),
            "verify_forged": verify_request(bench.gotrue_token(b"another-secret-0123456789", str(uuid.uuid4()))),
            "verify_missing": verify_request(),
        }
        paths = {name: "/envoy.service.auth.v3.Authorization/Check" if name == "ext_authz"
                 else "/authgate.v1.AuthService/Exchange" if name == "exchange"
                 else "/authgate.v1.AuthService/Verify" for name in list(bodies) + ["probe"]}
        bodies["probe"] = bodies["verify_repeat"]
        for name, body in bodies.items():
            (work / f"{name}.bin").write_bytes(bench.grpc_frame(body))

        def h2load(name, *, rate=None, clients=1, streams=8, duration=None, n=None, log=None):
            cmd = ["h2load", "-c", str(clients), "-m", str(streams), "-t", "1", "-d", str(work / f"{name}.bin"),
                   "-H", "content-type: application/grpc", "-H", "te: trailers"]
            cmd += ["-D", str(int(duration))] if duration else ["-n", str(n)]
            if rate:
                cmd += [f"--rps={max(1, math.ceil(rate / clients))}"]
            if log:
                cmd += [f"--log-file={log}"]
            return subprocess.Popen(cmd + [f"http://{grpc_addr}{paths[name]}"], stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)

        def requests(out):
            m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                          r"(\d+) errored", out)
            if not m:
                return None
            return dict(zip(["total", "started", "done", "succeeded", "failed", "errored"], map(int, m.groups())))

        # Capacity: the repeated-token Verify, unthrottled, as bench.py drives it.
        cap_run = h2load("verify_repeat", clients=8, streams=16, duration=5)
        cap_out = cap_run.communicate()[0]
        capacity = float(re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", cap_out).group(1))
        cap_req = requests(cap_out)
        # h2load stops with requests in flight (started, not done): the
        # server still answers and counts them, so the baseline waits until
        # its decision count stops moving (a slow debug build took a while).
        settled, last = time.monotonic() + 10, None
        while time.monotonic() < settled:
            before = metrics(http_addr)
            now = total(before, "authgate_decisions_total")
            if now == last:
                break
            last = now
            time.sleep(0.3)
        paced_rate = args.load * capacity
        report.update(capacity_rps=round(capacity), target_rps=round(paced_rate), duration_s=args.duration)
        print(f"capacity {capacity:.0f} req/s; soaking at {args.load:.0%} = {paced_rate:.0f} req/s paced "
              f"+ {args.distinct_rate + args.hosted_rate + args.forward_auth_rate:.0f} req/s of new tokens "
              f"for {args.duration:.0f} s, reload every {args.reload_every:.0f} s", flush=True)

        # The mixed load.
        start = time.monotonic()
        procs = {}
        for name, share in MIX.items():
            rate = share * paced_rate
            clients = max(1, min(8, math.ceil(rate / 4000)))
            procs[name] = h2load(name, rate=rate, clients=clients, duration=args.duration)
        probe_log = work / "probe.log"
        procs["probe"] = h2load("probe", rate=100, clients=1, streams=1, duration=args.duration, log=probe_log)

        stop = threading.Event()
        outcomes = Counter()
        channel = grpc.insecure_channel(grpc_addr)
        verify = channel.unary_unary("/authgate.v1.AuthService/Verify")

        def distinct(issuer, key_secret, kind):
            def call():
                t = bench.gotrue_token(key_secret, str(uuid.uuid4()))
                try:
                    verify(verify_request(t, issuer), timeout=10)
                    outcomes.add((kind, "ok"))
                except grpc.RpcError as e:
                    outcomes.add((kind, e.code().name))
            return call

        fa = threading.local()

        def forward_auth():
            t = bench.gotrue_token(secret.encode(), str(uuid.uuid4()))
            try:
                if not hasattr(fa, "conn"):
                    fa.conn = HTTPConnection(http_addr, timeout=10)
                fa.conn.request("GET", "/forward-auth", headers={"Authorization": f"Bearer {t}"})
                resp = fa.conn.getresponse()
                resp.read()
                outcomes.add(("forward_auth", str(resp.status)))
            except OSError as e:
                outcomes.add(("forward_auth", type(e).__name__))
                fa.__dict__.pop("conn", None)

        threads = [
            threading.Thread(target=paced, args=(args.distinct_rate, stop,
                                                 distinct("", secret.encode(), "distinct")), daemon=True),
            threading.Thread(target=paced, args=(args.hosted_rate, stop,
                                                 distinct("hosted", b"not-checked", "hosted_distinct")), daemon=True),
            threading.Thread(target=paced, args=(args.forward_auth_rate, stop, forward_auth), daemon=True),
        ]
        for t in threads:
            t.start()

        rss, reloads = [], 0
        next_reload = start + args.reload_every
        while time.monotonic() - start < args.duration:
            time.sleep(2)
            rss.append((time.monotonic() - start, bench.vm(server.pid, "VmRSS") / 1024))
            if time.monotonic() >= next_reload and time.monotonic() - start < args.duration - 1:
                server.send_signal(signal.SIGHUP)
                reloads += 1
                next_reload += args.reload_every
            if server.poll() is not None:
                failures.append(f"authgate exited ({server.returncode}) during the soak")
                break
        stop.set()
        for t in threads:
            t.join(timeout=15)
        outputs = {name: p.communicate(timeout=120)[0] for name, p in procs.items()}
        time.sleep(0.5)  # let the last decisions be counted
        after = metrics(http_addr)
        channel.close()

        # Zero unexpected errors.
        sent = {}
        for name, out in outputs.items():
            r = requests(out)
            if r is None:
                failures.append(f"{name}: h2load printed no request counts:\n{out}")
                continue
            sent[name] = r
            if r["failed"] or r["errored"]:
                failures.append(f"{name}: {r['failed']} failed, {r['errored']} errored requests")
        expected_py = {"distinct": "ok", "hosted_distinct": "ok", "forward_auth": "200"}
        py = {kind: 0 for kind in expected_py}
        for (kind, outcome), count in sorted(outcomes.counts.items()):
            if outcome == expected_py[kind]:
                py[kind] += count
            else:
                failures.append(f"{kind}: {count} requests answered {outcome}")
        applied = total(after, "authgate_config_reloads_total", kind="applied") - total(
            before, "authgate_config_reloads_total", kind="applied")
        rejected = total(after, "authgate_config_reloads_total", kind="rejected") - total(
            before, "authgate_config_reloads_total", kind="rejected")
        if applied != reloads or rejected:
            failures.append(f"reloads: {reloads} sent, {applied:.0f} applied, {rejected:.0f} rejected")

        # Counts by reason match the mix.
        def delta(**labels):
            return total(after, "authgate_decisions_total", **labels) - total(
                before, "authgate_decisions_total", **labels)
        low, high = {}, {}
        for name, r in sent.items():
            k = EXPECT[name]
            low[k] = low.get(k, 0) + r["done"]
            high[k] = high.get(k, 0) + r["started"]
        for kind, k in [("distinct", ("verify", "none")), ("hosted_distinct", ("verify", "none")),
                        ("forward_auth", ("forward_auth", "none"))]:
            low[k] = low.get(k, 0) + py[kind]
            high[k] = high.get(k, 0) + py[kind]
        seen = {(l.get("adapter"), l.get("reason")) for n, l, _ in after if n == "authgate_decisions_total"}
        counts = {}
        for k in sorted(seen | set(low)):
            got = delta(adapter=k[0], reason=k[1])
            counts[f"{k[0]}/{k[1]}"] = {"server": int(got), "sent_done": low.get(k, 0), "sent_started": high.get(k, 0)}
            if got and k not in low:
                failures.append(f"unexpected decisions {k[0]}/{k[1]}: {got:.0f}")
            elif k in low and not low[k] <= got <= high[k]:
                failures.append(f"{k[0]}/{k[1]}: server counted {got:.0f}, sent {low[k]}..{high[k]}")
        for name, issuer in GRANTED_ISSUER.items():
            want = sent.get(name, {"done": 0, "started": 0})
            extra = py["hosted_distinct"] if issuer == "hosted" else 0
            got = delta(adapter="verify", reason="none", issuer=issuer)
            if not want["done"] + extra <= got <= want["started"] + extra:
                failures.append(f"granted for issuer {issuer}: server {got:.0f}, sent "
                                f"{want['done'] + extra}..{want['started'] + extra}")
        upstream = bench.StandIn.calls
        report.update(reloads=reloads, counts=counts, upstream_calls=upstream,
                      capacity_run=cap_req, sent={k: v["done"] for k, v in sent.items()}, python=py)
        achieved = (sum(r["done"] for r in sent.values()) + sum(py.values())) / args.duration
        report["achieved_rps"] = round(achieved)

        # Memory and latency: reported always, asserted without --ci.
        fill = max(10_000 / (args.distinct_rate + args.forward_auth_rate), 10_000 / args.hosted_rate)
        warmup = max(args.duration / 5, fill + 30)
        report["rss_mb_per_minute"] = [round(max(m for t, m in rss if int(t // 60) == minute), 1)
                                       for minute in sorted({int(t // 60) for t, _ in rss})]
        report["warmup_s"] = round(warmup)
        warm = [m for t, m in rss if t >= warmup]
        if warm:
            med = statistics.median(warm)
            report["rss_mb"] = {"median_after_warmup": round(med, 1), "min": round(min(warm), 1),
                                "max": round(max(warm), 1), "first": round(rss[0][1], 1)}
            spread = max(abs(min(warm) - med), abs(max(warm) - med)) / med
            report["rss_mb"]["max_deviation"] = round(spread, 3)
            if spread > 0.10 and not args.ci:
                failures.append(f"RSS moved {spread:.1%} from its post-warm-up median {med:.1f} MB")
        lines = [line.split() for line in probe_log.read_text().splitlines() if line.strip()] \
            if probe_log.exists() else []
        if lines:
            t0 = min(int(x[0]) for x in lines)
            minutes = {}
            for x in lines:
                minutes.setdefault((int(x[0]) - t0) // 60_000_000, []).append(int(x[2]) / 1000)
            p99 = []
            for minute in sorted(minutes):
                lat = sorted(minutes[minute])
                if len(lat) >= 100:
                    p99.append((round(lat[len(lat) // 2], 3), round(lat[int(0.99 * len(lat))], 3)))
            report["probe_p50_p99_ms_per_minute"] = p99
            if p99:
                med99 = statistics.median(x[1] for x in p99)
                worst = max(x[1] for x in p99)
                report["probe_p99_ms"] = {"median": med99, "worst": worst}
                if worst > 2 * med99 and not args.ci:
                    failures.append(f"probe p99 {worst} ms in one minute, median {med99} ms (> 2x)")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        standin.shutdown()

    report["failures"] = failures
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    if failures:
        print(f"SOAK FAILED ({len(failures)}); server log in {work / 'server.log'}", file=sys.stderr)
        sys.exit(1)
    shutil.rmtree(work, ignore_errors=True)
    print("soak passed")


if __name__ == "__main__":
    main()
