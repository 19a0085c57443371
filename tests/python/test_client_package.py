#!/usr/bin/env python3
"""The installed authgate-client package (pip install ./clients/python)
against a running authgate: sync and asyncio clients, typed denials with
the generated Reason enum, and the ASGI and WSGI middleware answering as
documented. Prints "N passed, M failed" and exits non-zero on a failure."""
import argparse
import asyncio
import sys
import time
import traceback

import jwt

SUB = "775a5344-0c6d-4dc6-9ac7-d2d646e071ec"


def mint(secret, **claims):
    base = {"sub": SUB, "exp": int(time.time()) + 600, "email": "py@example.com",
            "app_metadata": {"provider": "email", "roles": ["member"]}}
    base.update(claims)
    return jwt.encode(base, secret, algorithm="HS256", headers={"kid": "nf-ident"})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--secret", required=True)
    args = ap.parse_args()

    import authgate_client
    from authgate_client import AsgiMiddleware, AsyncClient, Client, Denied, Reason, WsgiMiddleware
    import grpc

    assert "_gen" in authgate_client._client.auth_pb2.__name__, "stubs come from the built package"
    good = mint(args.secret)
    forged = mint("another-secret-0123456789abcdef")
    results = []

    def case(name, fn):
        try:
            fn()
            results.append((name, None))
        except Exception:  # noqa: BLE001 (a test harness reports everything)
            results.append((name, traceback.format_exc()))

    client = Client(args.addr)

    def denied(token, code, reason, **kw):
        try:
            client.verify(token, **kw)
        except Denied as d:
            assert (d.code, d.reason) == (code, reason), (d.code, d.reason)
            return
        raise AssertionError("granted")

    def grants():
        identity = client.verify(good)
        assert (identity.subject, list(identity.roles)) == (SUB, ["member"]), identity

    def reasons():
        assert Reason("token_revoked") is Reason.TOKEN_REVOKED
        assert len(list(Reason)) >= 38 and all(r.value == r.name.lower() for r in Reason)

    case("verify grants the identity", grants)
    case("a forged token is Denied(bad_signature)",
         lambda: denied(forged, grpc.StatusCode.UNAUTHENTICATED, Reason.BAD_SIGNATURE))
    case("a missing role is Denied(insufficient_role)",
         lambda: denied(good, grpc.StatusCode.PERMISSION_DENIED, Reason.INSUFFICIENT_ROLE, required_roles=["admin"]))
    case("Reason holds the server's reasons", reasons)

    async def async_cases():
        c = AsyncClient(args.addr)
        try:
            identity = await c.verify(headers={"authorization": f"Bearer {good}"})
            assert identity.email == "py@example.com"
            try:
                await c.verify(forged)
                raise AssertionError("granted")
            except Denied as d:
                assert d.reason is Reason.BAD_SIGNATURE
        finally:
            await c.close()

    case("the asyncio client", lambda: asyncio.run(async_cases()))

    async def asgi_app(scope, receive, send):
        subject = scope["state"]["authgate_identity"].subject
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": subject.encode()})

    async def asgi_call(headers):
        c = AsyncClient(args.addr)
        app = AsgiMiddleware(asgi_app, c)
        sent = []

        async def receive():
            return {"type": "http.request", "body": b""}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "headers": [(k.encode(), v.encode()) for k, v in headers]}
        await app(scope, receive, send)
        await c.close()
        start = sent[0]
        return start["status"], dict((k.decode(), v.decode()) for k, v in start["headers"]), sent[1]["body"]

    def asgi():
        status, _, body = asyncio.run(asgi_call([("authorization", f"Bearer {good}")]))
        assert (status, body) == (200, SUB.encode()), (status, body)
        status, headers, body = asyncio.run(asgi_call([("cookie", f"nf_jwt={forged}")]))
        assert status == 401 and "www-authenticate" in headers and b"bad_signature" in body, (status, headers, body)
        status, _, body = asyncio.run(asgi_call([]))
        assert status == 401 and b"missing_credential" in body, (status, body)

    case("ASGI middleware", asgi)

    def wsgi():
        def app(environ, start_response):
            start_response("200 OK", [])
            return [environ["authgate.identity"].subject.encode()]

        mw = WsgiMiddleware(app, client, required_roles=["member"])
        got = {}

        def start_response(status, headers):
            got["status"], got["headers"] = status, dict(headers)

        body = b"".join(mw({"HTTP_AUTHORIZATION": f"Bearer {good}"}, start_response))
        assert got["status"].startswith("200") and body == SUB.encode(), (got, body)
        body = b"".join(WsgiMiddleware(app, client, required_roles=["admin"])(
            {"HTTP_AUTHORIZATION": f"Bearer {good}"}, start_response))
        assert got["status"].startswith("403") and b"insufficient_role" in body, (got, body)

    case("WSGI middleware", wsgi)

    failed = [(n, e) for n, e in results if e]
    for name, err in results:
        print(("FAIL " if err else "ok   ") + name + (f": {err}" if err else ""))
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
