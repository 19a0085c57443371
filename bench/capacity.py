#!/usr/bin/env python3
"""Memory at scale: N distinct valid GoTrue tokens, each verified once.

Starts a release authgate with [cache] max_entries = --max-entries (default
100,000), sends --tokens distinct valid HS256 tokens (default 100,000) over
gRPC from the test venv's grpcio (200 in flight), and prints RSS before and
after, peak RSS, the identity cache's entries and evictions (from /metrics),
and the RSS growth per cached entry. With more tokens than max_entries the
cache evicts and RSS must stay where max_entries put it: that is the bound
the cache promises.

    python3 bench/capacity.py --tokens 100000
    python3 bench/capacity.py --tokens 1000000   # 900,000 evictions
"""
import argparse
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (token shape, ports, /proc readers)

ROOT = bench.ROOT


def metric(http, name, labels):
    text = urllib.request.urlopen(f"http://{http}/metrics", timeout=5).read().decode()
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    m = re.search(rf"^{name}\{{{re.escape(want)}\}} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=100_000)
    ap.add_argument("--max-entries", type=int, default=100_000)
    ap.add_argument("--in-flight", type=int, default=200)
    args = ap.parse_args()
    import grpc
    from authgate_client._gen.authgate.v1 import auth_pb2, auth_pb2_grpc

    work = Path(tempfile.mkdtemp(prefix="authgate-capacity-"))
    grpc_addr, http_addr = f"127.0.0.1:{bench.free_port()}", f"127.0.0.1:{bench.free_port()}"
    cfg = work / "authgate.toml"
    cfg.write_text(f'[server]\ngrpc_addr = "{grpc_addr}"\nhttp_addr = "{http_addr}"\n'
                   f'[log]\nformat = "json"\n[cache]\nmax_entries = {args.max_entries}\nmax_ttl = "1h"\n'
                   f'[[issuers]]\nname = "netlify"\n')
    secret = secrets.token_urlsafe(32)
    env = dict(os.environ, AUTHGATE_ISSUER_NETLIFY_SECRET=secret)
    server = subprocess.Popen([str(bench.BIN), "--config", str(cfg)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        channel = grpc.insecure_channel(grpc_addr)
        grpc.channel_ready_future(channel).result(timeout=20)
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        stub.Verify(auth_pb2.VerifyRequest(token=bench.gotrue_token(secret.encode(), "warm-up")))
        time.sleep(0.5)
        before = bench.vm(server.pid, "VmRSS")
        started = time.time()
        pending = []
        failed = 0
        for i in range(args.tokens):
            token = bench.gotrue_token(secret.encode(), str(uuid.uuid4()))
            pending.append(stub.Verify.future(auth_pb2.VerifyRequest(token=token)))
            if len(pending) >= args.in_flight:
                for f in pending:
                    try:
                        f.result(timeout=30)
                    except grpc.RpcError:
                        failed += 1
                pending = []
        for f in pending:
            try:
                f.result(timeout=30)
            except grpc.RpcError:
                failed += 1
        took = time.time() - started
        time.sleep(1.0)  # moka applies pending inserts and evictions
        after = bench.vm(server.pid, "VmRSS")
        peak = bench.vm(server.pid, "VmHWM")
        entries = metric(http_addr, "authgate_cache_entries", {"cache": "identity"})
        evicted = metric(http_addr, "authgate_cache_evictions_total", {"cache": "identity"})
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"{args.tokens} distinct tokens in {took:.1f}s ({args.tokens / took:.0f}/s), {failed} failed; "
          f"[cache] max_entries = {args.max_entries}")
    print(f"RSS before {before / 1024:.1f} MB, after {after / 1024:.1f} MB, peak {peak / 1024:.1f} MB")
    print(f"identity cache: {entries:.0f} entries, {evicted:.0f} evicted; "
          f"growth per cached entry {(after - before) * 1024 / max(entries, 1):.0f} bytes")
    if failed:
        sys.exit("some Verify calls failed")


if __name__ == "__main__":
    main()
