//! `authgate.v1.AuthService` over tonic: translates protobuf to the core's
//! inputs and back. Nothing is decided here.

use crate::adapters::listen::ConnInfo;
use crate::core::error::AuthError;
use crate::core::headers::Headers;
use crate::gate::VerifyInput;
use crate::gate::decision::Decision;
use crate::gate::edge::client_address;
use crate::gate::exchange::{ExchangeInput, JWT_TOKEN_TYPE};
use crate::gate::live::{Generation, Live};
use crate::obs::metrics::Adapter;
use crate::pb;
use opentelemetry::context::FutureExt;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The gRPC service: a thin adapter over the current generation's
/// [`crate::gate::Gate`] and [`crate::gate::exchange::Exchanger`]
/// (absent when `[exchange]` is not configured).
#[derive(Clone)]
pub struct AuthGrpc {
    live: Arc<Live>,
}

impl AuthGrpc {
    /// Serves whatever generation is current when each call starts.
    pub fn new(live: Arc<Live>) -> Self {
        Self { live }
    }
}

/// A proto3 string field: the empty string is how protobuf says "absent".
fn present(field: &str) -> Option<&str> {
    (!field.is_empty()).then_some(field)
}

/// The calling service's own token, from gRPC metadata `authorization:
/// Bearer` (the user's credential travels in the message, so the two never
/// mix).
fn caller_token<T>(request: &Request<T>) -> Option<String> {
    let value = request.metadata().get("authorization")?.to_str().ok()?;
    value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).map(str::to_owned)
}

/// Every `x-forwarded-client-cert` value as one list (a repeated header is
/// one list, in order; the last element is the proxy next to authgate's).
pub(crate) fn forwarded_client_cert(metadata: &tonic::metadata::MetadataMap) -> Option<String> {
    let values: Vec<&str> =
        metadata.get_all("x-forwarded-client-cert").iter().filter_map(|v| v.to_str().ok()).collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// The identity's `Identity` message, encoded once per identity: a cached
/// identity (or a reused minted token's) is not converted and encoded again
/// on every answer.
fn encoded_identity(identity: &crate::core::identity::Identity) -> bytes::Bytes {
    identity.encoded.get_or_init(|| crate::adapters::pb::encode_identity(identity))
}

fn timestamp(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

/// What every RPC reads off a request before its message.
pub(crate) struct Call {
    pub(crate) generation: Arc<Generation>,
    pub(crate) cx: opentelemetry::Context,
    /// The TCP peer's address.
    pub(crate) peer: Option<Arc<str>>,
    /// The caller's own token, from metadata.
    pub(crate) token: Option<String>,
    /// The caller's certificate identity (or, in trusted mesh mode, the
    /// sidecar's word for it).
    pub(crate) caller: Option<Arc<str>>,
}

impl AuthGrpc {
    fn call<T>(&self, request: &Request<T>, span: &'static str) -> Call {
        Call::read(&self.live, request, span)
    }
}

impl Call {
    /// Reads the generation, span, peer and caller of `request`.
    pub(crate) fn read<T>(live: &Live, request: &Request<T>, span: &'static str) -> Call {
        let generation = live.get();
        let cx = crate::obs::traces::server_span(span, |k| {
            request.metadata().get(k).and_then(|v| v.to_str().ok())
        });
        let conn = request.extensions().get::<ConnInfo>().cloned();
        let caller = conn
            .as_ref()
            .and_then(|c| c.certificate.clone())
            .or_else(|| generation.mesh_caller(|| forwarded_client_cert(request.metadata())));
        Call { cx, peer: conn.map(|c| c.peer_ip), token: caller_token(request), caller, generation }
    }
}

#[tonic::async_trait]
impl pb::auth_service_server::AuthService for AuthGrpc {
    async fn verify(
        &self,
        request: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::VerifyResponse>, Status> {
        let Call { generation, cx, peer, token, caller } =
            self.call(&request, "authgate.v1.AuthService/Verify");
        let req = request.into_inner();
        let headers = Headers::from(&req.headers);
        let client = client_address(&headers, generation.trusted_proxy_hops, peer.as_deref());
        let mut decision =
            Decision::start(Adapter::Verify, client.as_deref(), cx.clone()).with_caller(caller);
        let input = VerifyInput {
            token: present(&req.token),
            headers: &headers,
            required_roles: &req.required_roles,
            issuer: present(&req.issuer),
            require_signed_proxy: req.require_signed_proxy,
            client: client.as_deref(),
            identity_in_headers: false,
        };
        let result = async {
            generation.admit_caller(&mut decision, token.as_deref()).await?;
            generation.gate.decide(input, &mut decision).await
        }
        .with_context(cx)
        .await;
        decision.record(self.live.metrics(), result.as_ref().map(|v| &*v.identity));
        let verified = result?;
        Ok(Response::new(pb::VerifyResponse {
            identity: None,
            proxy: verified.proxy.map(Into::into),
            encoded_identity: Some(encoded_identity(&verified.identity)),
        }))
    }

    async fn exchange(
        &self,
        request: Request<pb::ExchangeRequest>,
    ) -> Result<Response<pb::ExchangeResponse>, Status> {
        let Call { generation, cx, peer, token, caller } =
            self.call(&request, "authgate.v1.AuthService/Exchange");
        let req = request.into_inner();
        let headers = Headers::from(&req.headers);
        let client = client_address(&headers, generation.trusted_proxy_hops, peer.as_deref());
        let mut decision =
            Decision::start(Adapter::Exchange, client.as_deref(), cx.clone()).with_caller(caller);
        let result = async {
            let caller = generation.admit_caller(&mut decision, token.as_deref()).await?;
            let exchanger = generation.exchanger.as_ref().ok_or(AuthError::ExchangeDisabled)?;
            let requested_ttl = match req.requested_ttl {
                None => None,
                Some(d) if d.seconds > 0 && d.nanos >= 0 => {
                    Some(std::time::Duration::from_secs(d.seconds as u64))
                }
                Some(_) => return Err(AuthError::InvalidRequest("requested_ttl must be positive")),
            };
            let input = ExchangeInput {
                subject_token: present(&req.subject_token),
                headers: &headers,
                subject_token_type: present(&req.subject_token_type),
                audience: &req.audience,
                scopes: &req.scopes,
                actor_token: present(&req.actor_token),
                requested_ttl,
                issuer: present(&req.issuer),
                client: client.as_deref(),
                caller: caller.as_deref(),
            };
            exchanger.exchange(input, &mut decision).await
        }
        .with_context(cx)
        .await;
        decision.record(self.live.metrics(), result.as_ref().map(|m| &*m.identity));
        let minted = result?;
        let now = crate::core::claims::unix_now();
        Ok(Response::new(pb::ExchangeResponse {
            access_token: minted.token.clone(),
            issued_token_type: JWT_TOKEN_TYPE.into(),
            token_type: "Bearer".into(),
            expires_at: timestamp(minted.expires_at),
            expires_in: (minted.expires_at - now).max(0),
            scopes: minted.scopes.clone(),
            key_id: minted.key_id.clone(),
            identity: None,
            encoded_identity: Some(encoded_identity(&minted.identity)),
        }))
    }
}
