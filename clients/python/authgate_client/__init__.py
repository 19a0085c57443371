"""authgate client: Verify and Exchange over gRPC, typed denials, and
ASGI/WSGI middleware.

The stubs under ``_gen`` are generated from ``proto/authgate/v1/auth.proto``
when the package is built.
"""
from ._client import AsyncClient, Client, Denied, Reason, channel_credentials
from .middleware import AsgiMiddleware, WsgiMiddleware

__all__ = ["AsyncClient", "AsgiMiddleware", "Client", "Denied", "Reason", "WsgiMiddleware", "channel_credentials"]
