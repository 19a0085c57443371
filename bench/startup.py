#!/usr/bin/env python3
"""Start to SERVING: how long a release authgate takes from exec to
answering grpc.health.v1 SERVING, with no remote keys to fetch (an HS256
issuer), --runs times (default 20); prints the median and the range.

The clock starts just before the process is spawned and stops at the first
SERVING answer: the port is polled with plain TCP connects every half
millisecond, then asked over one new channel (grpcio's own reconnect
backoff would otherwise be what is measured). The figure includes the
spawn, the poll interval and one gRPC round trip.

    python3 bench/startup.py
"""
import argparse
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
import bench  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    work = Path(tempfile.mkdtemp(prefix="authgate-startup-"))
    env = dict(os.environ, AUTHGATE_ISSUER_NETLIFY_SECRET=secrets.token_urlsafe(32))
    times = []
    for _ in range(args.runs):
        grpc_addr, http_addr = f"127.0.0.1:{bench.free_port()}", f"127.0.0.1:{bench.free_port()}"
        cfg = work / "authgate.toml"
        cfg.write_text(f'[server]\ngrpc_addr = "{grpc_addr}"\nhttp_addr = "{http_addr}"\n'
                       f'[[issuers]]\nname = "netlify"\n')
        host, port = grpc_addr.split(":")
        started = time.perf_counter()
        server = subprocess.Popen([str(bench.BIN), "--config", str(cfg)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while True:
                try:
                    socket.create_connection((host, int(port)), timeout=0.1).close()
                    break
                except OSError:
                    if time.perf_counter() - started > 10:
                        sys.exit("no listener within 10 s")
                    time.sleep(0.0005)
            with grpc.insecure_channel(grpc_addr) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                while stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status != \
                        health_pb2.HealthCheckResponse.SERVING:
                    time.sleep(0.0005)
            times.append((time.perf_counter() - started) * 1000)
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"start to SERVING over {args.runs} runs: median {statistics.median(times):.1f} ms "
          f"(range {min(times):.1f}-{max(times):.1f} ms)")


if __name__ == "__main__":
    main()
