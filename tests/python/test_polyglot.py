#!/usr/bin/env python3
"""Polyglot check: Python grpcio against a running authgate.

Run by tests/polyglot.rs with --addr and --secret (the issuer's HS256 secret).
Tokens are minted here with PyJWT, independently of authgate's own code.
Prints 'N passed, M failed' and exits non-zero on any failure.
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import jwt

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))
import verify as client  # noqa: E402  (the README's example, imported as is)

SUB = "8f0b8d3c-2f1e-4d8a-9c57-3d9f3f1b2a10"


def mint(secret, **overrides):
    claims = {
        "exp": int(time.time()) + 600,
        "sub": SUB,
        "email": "py@example.com",
        "app_metadata": {"provider": "github", "roles": ["editor"]},
        "user_metadata": {"full_name": "Py Thon"},
    }
    claims.update(overrides)
    return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": "nf-ident"})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--secret", required=True)
    args = ap.parse_args()
    addr, secret = args.addr, args.secret
    results = []

    def case(name, fn):
        try:
            fn()
            results.append((name, None))
        except Exception as e:  # report every case, not just the first
            results.append((name, repr(e)))

    def denied(expect_code, expect_reason, **kw):
        def run():
            try:
                client.verify(addr, **kw)
            except client.Denied as d:
                assert (d.code, d.reason) == (expect_code, expect_reason), (d.code, d.reason)
                return
            raise AssertionError("granted")
        return run

    def valid_identity():
        ident = client.verify(addr, token=mint(secret))
        assert ident.subject == SUB, ident.subject
        assert ident.email == "py@example.com"
        assert list(ident.roles) == ["editor"], ident.roles
        assert ident.provider == "github"
        assert ident.expires_at.seconds > time.time()
        assert ident.user_metadata["full_name"] == "Py Thon"

    def cookie_header():
        ident = client.verify(addr, headers={"Cookie": f"nf_jwt={mint(secret)}"}, required_roles=["editor"])
        assert ident.subject == SUB

    def bearer_header():
        ident = client.verify(addr, headers={"Authorization": f"Bearer {mint(secret)}"})
        assert ident.subject == SUB

    def cli_reads_stdin():
        out = subprocess.run([sys.executable, client.__file__, "--addr", addr],
                             input=mint(secret), capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["subject"] == SUB
        bad = subprocess.run([sys.executable, client.__file__, "--addr", addr, "not-a-token"],
                             capture_output=True, text=True, timeout=60)
        assert bad.returncode == 1 and "malformed_token" in bad.stderr, bad.stderr

    def health_serving():
        assert client.health(addr) == "SERVING"
        assert client.health(addr, "authgate.v1.AuthService") == "SERVING"

    def health_unknown_service():
        import grpc
        try:
            client.health(addr, "no.such.Service")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND
            return
        raise AssertionError("unknown service answered")

    def reflection_lists_service():
        import grpc
        from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
        with grpc.insecure_channel(addr) as ch:
            stub = reflection_pb2_grpc.ServerReflectionStub(ch)
            resp = next(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
            names = {s.name for s in resp.list_services_response.service}
            want = {"authgate.v1.AuthService", "authgate.v1.AdminService", "envoy.service.auth.v3.Authorization",
                    "grpc.health.v1.Health"}
            assert want <= names, names
            # Each is described: its file and every file it imports.
            from google.protobuf import descriptor_pb2
            for service in sorted(want):
                req = reflection_pb2.ServerReflectionRequest(file_containing_symbol=service)
                resp = next(stub.ServerReflectionInfo(iter([req])))
                files = [descriptor_pb2.FileDescriptorProto.FromString(b)
                         for b in resp.file_descriptor_response.file_descriptor_proto]
                described = {f"{f.package}.{s.name}" for f in files for s in f.service}
                assert service in described, (service, [f.name for f in files])

    case("valid token gives the identity", valid_identity)
    case("nf_jwt cookie with a required role", cookie_header)
    case("Authorization Bearer header", bearer_header)
    case("expired token", denied("UNAUTHENTICATED", "token_expired", token=mint(secret, exp=int(time.time()) - 600)))
    case("wrong secret", denied("UNAUTHENTICATED", "bad_signature", token=mint("another-secret-0123456789abcdef")))
    none_token = jwt.encode({"sub": SUB, "exp": int(time.time()) + 60}, None, algorithm="none")
    case("alg none", denied("UNAUTHENTICATED", "unsupported_algorithm", token=none_token))
    case("missing role", denied("PERMISSION_DENIED", "insufficient_role", token=mint(secret), required_roles=["admin"]))
    case("no credential", denied("UNAUTHENTICATED", "missing_credential"))
    case("unknown issuer", denied("INVALID_ARGUMENT", "unknown_issuer", token=mint(secret), issuer="nope"))
    case("system principal", denied("UNAUTHENTICATED", "system_principal", token=mint(secret, sub="0")))
    case("the example CLI, token on stdin", cli_reads_stdin)
    case("health SERVING", health_serving)
    case("health NOT_FOUND for unknown services", health_unknown_service)
    case("reflection lists and describes all four services", reflection_lists_service)

    failed = [(n, e) for n, e in results if e]
    for name, err in results:
        print(f"{'ok  ' if not err else 'FAIL'} {name}{'' if not err else ': ' + err}")
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
