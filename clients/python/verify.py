#!/usr/bin/env python3
"""Call authgate's Verify (and gRPC health) from Python with grpcio.

    authgate token --role admin | python3 clients/python/verify.py
    python3 clients/python/verify.py --addr 127.0.0.1:50051 --role admin "$TOKEN"
    python3 clients/python/verify.py --health
    # authgate with [tls]: the CA that signed its certificate, and (mTLS)
    # this service's own certificate and key
    python3 clients/python/verify.py --addr authgate:50051 --ca ca.pem \
        --cert orders.pem --key orders-key.pem "$TOKEN"

Prints the identity as JSON and exits 0, or prints the denial's gRPC code and
authgate reason and exits 1. Stubs are generated from ../../proto at run time
(needs grpcio, grpcio-tools, grpcio-status; see tests/python/requirements.txt).
"""
import argparse
import json
import sys
import tempfile
from importlib import resources
from pathlib import Path

import grpc

PROTO_DIR = Path(__file__).resolve().parents[2] / "proto"
_stubs = None


def stubs():
    """Generates (once per process) and imports the authgate.v1 stubs."""
    global _stubs
    if _stubs is None:
        from grpc_tools import protoc

        out = tempfile.mkdtemp(prefix="authgate-stubs-")
        well_known = str(resources.files("grpc_tools") / "_proto")
        rc = protoc.main([
            "protoc", f"-I{PROTO_DIR}", f"-I{well_known}",
            f"--python_out={out}", f"--grpc_python_out={out}",
            "authgate/v1/auth.proto",
        ])
        if rc != 0:
            raise RuntimeError(f"protoc failed with {rc}")
        sys.path.insert(0, out)
        from authgate.v1 import auth_pb2, auth_pb2_grpc

        _stubs = (auth_pb2, auth_pb2_grpc)
    return _stubs


class Denied(Exception):
    """A denial: the gRPC code name and authgate's stable reason."""

    def __init__(self, code, reason, message):
        super().__init__(f"{code} {reason}: {message}")
        self.code, self.reason, self.message = code, reason, message


def error_reason(err: grpc.RpcError) -> str:
    """The google.rpc.ErrorInfo reason attached to an authgate error."""
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    status = rpc_status.from_call(err)
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return ""


class Tls:
    """TLS to authgate: the CA bundle that signed its certificate, and for
    mutual TLS this caller's certificate chain and key (PEM file paths)."""

    def __init__(self, ca, cert=None, key=None):
        self.ca, self.cert, self.key = ca, cert, key

    def credentials(self):
        read = lambda p: Path(p).read_bytes() if p else None
        return grpc.ssl_channel_credentials(read(self.ca), read(self.key), read(self.cert))


def channel(addr, tls=None):
    """A channel to authgate: TLS when `tls` is given, else plaintext (only
    for loopback or a service mesh: authgate refuses plaintext elsewhere)."""
    if tls is None:
        return grpc.insecure_channel(addr)
    return grpc.secure_channel(addr, tls.credentials())


def verify_response(addr, token="", headers=None, required_roles=(), issuer="",
                    require_signed_proxy=False, timeout=5.0, tls=None):
    """Returns the whole VerifyResponse (identity, and proxy when the
    headers carried a valid x-nf-sign), or raises Denied."""
    pb, pb_grpc = stubs()
    with channel(addr, tls) as conn:
        stub = pb_grpc.AuthServiceStub(conn)
        request = pb.VerifyRequest(token=token, headers=headers or {}, required_roles=list(required_roles),
                                   issuer=issuer, require_signed_proxy=require_signed_proxy)
        try:
            return stub.Verify(request, timeout=timeout)
        except grpc.RpcError as err:
            raise Denied(err.code().name, error_reason(err), err.details()) from None


def verify(addr, token="", headers=None, required_roles=(), issuer="", timeout=5.0, tls=None):
    """Returns the Identity message, or raises Denied."""
    return verify_response(addr, token, headers, required_roles, issuer, timeout=timeout, tls=tls).identity


def health(addr, service="", tls=None):
    """The grpc.health.v1 status name of `service` ("" = the whole server)."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with channel(addr, tls) as conn:
        resp = health_pb2_grpc.HealthStub(conn).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("token", nargs="?", help="the JWT (default: read from stdin)")
    p.add_argument("--addr", default="127.0.0.1:50051")
    p.add_argument("--role", action="append", default=[], help="required role (any-of)")
    p.add_argument("--issuer", default="")
    p.add_argument("--health", action="store_true", help="print grpc.health.v1 status and exit")
    p.add_argument("--ca", help="TLS: PEM CA bundle that signed authgate's certificate")
    p.add_argument("--cert", help="mutual TLS: this caller's PEM certificate chain")
    p.add_argument("--key", help="mutual TLS: this caller's PEM private key")
    args = p.parse_args()
    tls = Tls(args.ca, args.cert, args.key) if args.ca else None
    if args.health:
        print(health(args.addr, tls=tls))
        return 0
    token = args.token if args.token is not None else sys.stdin.read().strip()
    try:
        identity = verify(args.addr, token=token, required_roles=args.role, issuer=args.issuer, tls=tls)
    except Denied as d:
        print(f"denied: {d.code} {d.reason}: {d.message}", file=sys.stderr)
        return 1
    from google.protobuf.json_format import MessageToDict

    print(json.dumps(MessageToDict(identity, preserving_proto_field_name=True), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
