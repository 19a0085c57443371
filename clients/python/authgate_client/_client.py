"""Sync and asyncio clients and the typed denial."""
import enum
from typing import Iterable, Mapping, Optional

import grpc
from grpc_status import rpc_status

from ._gen.authgate.v1 import auth_pb2, auth_pb2_grpc

# Every reason the server returns, from the proto's `enum Reason` (the one
# source the server's error table is checked against). Values are the
# strings of google.rpc.ErrorInfo.reason.
Reason = enum.Enum(
    "Reason",
    {name[len("REASON_"):]: name[len("REASON_"):].lower() for name in auth_pb2.Reason.keys() if name != "REASON_UNSPECIFIED"},
    type=str,
)


class Denied(Exception):
    """A denial: `code` (grpc.StatusCode), `reason` (Reason, or None when the
    status carried no authgate ErrorInfo, e.g. a transport error), `message`,
    and `retry_after` (seconds, when the server suggests one)."""

    def __init__(self, code, reason, message, retry_after=None):
        super().__init__(f"{code.name} {reason.value if reason else '-'}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.retry_after = retry_after

    @classmethod
    def from_rpc_error(cls, err: grpc.RpcError) -> "Denied":
        from google.rpc import error_details_pb2

        reason, retry_after = None, None
        status = rpc_status.from_call(err) if hasattr(err, "trailing_metadata") else None
        for detail in (status.details if status else []):
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                if info.domain == "authgate":
                    try:
                        reason = Reason(info.reason)
                    except ValueError:
                        reason = None
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                detail.Unpack(retry)
                retry_after = retry.retry_delay.seconds
        return cls(err.code(), reason, err.details() or "", retry_after)


def channel_credentials(ca: Optional[str] = None, cert: Optional[str] = None, key: Optional[str] = None):
    """TLS credentials from PEM files: the CA that signed authgate's
    certificate, and (mutual TLS) this service's certificate and key."""
    read = lambda p: open(p, "rb").read() if p else None  # noqa: E731
    return grpc.ssl_channel_credentials(root_certificates=read(ca), private_key=read(key), certificate_chain=read(cert))


def _verify_request(token, headers, required_roles, issuer):
    return auth_pb2.VerifyRequest(token=token or "", headers=dict(headers or {}),
                                  required_roles=list(required_roles), issuer=issuer or "")


def _metadata(caller_token):
    return (("authorization", f"Bearer {caller_token}"),) if caller_token else None


class Client:
    """A blocking client. `addr` is host:port; with `ca` (and `cert`/`key`)
    the channel uses TLS; `caller_token` is this service's own token
    (`[[caller_issuers]]`), sent as gRPC metadata."""

    def __init__(self, addr: str, ca=None, cert=None, key=None, caller_token: Optional[str] = None, timeout: float = 5.0):
        if ca or cert:
            self._channel = grpc.secure_channel(addr, channel_credentials(ca, cert, key))
        else:
            self._channel = grpc.insecure_channel(addr)
        self._stub = auth_pb2_grpc.AuthServiceStub(self._channel)
        self._metadata = _metadata(caller_token)
        self._timeout = timeout

    def verify(self, token: Optional[str] = None, headers: Optional[Mapping[str, str]] = None,
               required_roles: Iterable[str] = (), issuer: Optional[str] = None):
        """The verified identity (an `authgate.v1.Identity`), or `Denied`."""
        try:
            resp = self._stub.Verify(_verify_request(token, headers, required_roles, issuer),
                                     timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise Denied.from_rpc_error(e) from None
        return resp.identity

    def exchange(self, token: str, audience: str, scopes: Iterable[str] = ()):
        """A token for `audience` (`authgate.v1.ExchangeResponse`), or `Denied`."""
        req = auth_pb2.ExchangeRequest(subject_token=token, audience=audience, scopes=list(scopes))
        try:
            return self._stub.Exchange(req, timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise Denied.from_rpc_error(e) from None

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class AsyncClient:
    """The asyncio twin of `Client`."""

    def __init__(self, addr: str, ca=None, cert=None, key=None, caller_token: Optional[str] = None, timeout: float = 5.0):
        if ca or cert:
            self._channel = grpc.aio.secure_channel(addr, channel_credentials(ca, cert, key))
        else:
            self._channel = grpc.aio.insecure_channel(addr)
        self._stub = auth_pb2_grpc.AuthServiceStub(self._channel)
        self._metadata = _metadata(caller_token)
        self._timeout = timeout

    async def verify(self, token=None, headers=None, required_roles=(), issuer=None):
        try:
            resp = await self._stub.Verify(_verify_request(token, headers, required_roles, issuer),
                                           timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise Denied.from_rpc_error(e) from None
        return resp.identity

    async def exchange(self, token: str, audience: str, scopes=()):
        req = auth_pb2.ExchangeRequest(subject_token=token, audience=audience, scopes=list(scopes))
        try:
            return await self._stub.Exchange(req, timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise Denied.from_rpc_error(e) from None

    async def close(self):
        await self._channel.close()
