"""ASGI (FastAPI, Starlette) and WSGI (Flask, Django) middleware: each
request's `Authorization` and `Cookie` headers go to Verify; a granted
request carries the identity on, a denied one is answered here."""
import json

import grpc

from ._client import Denied

# The request headers a credential can travel in (a bearer token, or the
# nf_jwt cookie Netlify sets).
FORWARDED = ("authorization", "cookie")


def _denial(d: Denied):
    status = {
        grpc.StatusCode.UNAUTHENTICATED: 401,
        grpc.StatusCode.PERMISSION_DENIED: 403,
        grpc.StatusCode.INVALID_ARGUMENT: 400,
        grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    }.get(d.code, 503)
    headers = [("content-type", "application/json")]
    if status == 401:
        headers.append(("www-authenticate", 'Bearer error="invalid_token"'))
    if status in (429, 503):
        headers.append(("retry-after", str(d.retry_after or 1)))
    body = json.dumps({"error": d.reason.value if d.reason else d.code.name.lower()}).encode()
    return status, headers, body


class AsgiMiddleware:
    """Wraps an ASGI app; `client` is an `AsyncClient`. The identity is at
    `scope["state"]["authgate_identity"]` (Starlette: `request.state.authgate_identity`)."""

    def __init__(self, app, client, required_roles=()):
        self.app, self.client, self.required_roles = app, client, list(required_roles)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {}
        for k, v in scope.get("headers", []):
            name = k.decode("latin-1").lower()
            if name in FORWARDED:
                headers[name] = v.decode("latin-1")
        try:
            identity = await self.client.verify(headers=headers, required_roles=self.required_roles)
        except Denied as d:
            status, hdrs, body = _denial(d)
            await send({"type": "http.response.start", "status": status,
                        "headers": [(k.encode(), v.encode()) for k, v in hdrs]})
            await send({"type": "http.response.body", "body": body})
            return
        scope.setdefault("state", {})["authgate_identity"] = identity
        await self.app(scope, receive, send)


class WsgiMiddleware:
    """Wraps a WSGI app; `client` is a `Client`. The identity is at
    `environ["authgate.identity"]`."""

    def __init__(self, app, client, required_roles=()):
        self.app, self.client, self.required_roles = app, client, list(required_roles)

    def __call__(self, environ, start_response):
        headers = {}
        for name, key in (("authorization", "HTTP_AUTHORIZATION"), ("cookie", "HTTP_COOKIE")):
            if key in environ:
                headers[name] = environ[key]
        try:
            identity = self.client.verify(headers=headers, required_roles=self.required_roles)
        except Denied as d:
            status, hdrs, body = _denial(d)
            reason = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 429: "Too Many Requests"}.get(status, "Service Unavailable")
            start_response(f"{status} {reason}", hdrs)
            return [body]
        environ["authgate.identity"] = identity
        return self.app(environ, start_response)
