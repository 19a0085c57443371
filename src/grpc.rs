//! `authgate.v1.AuthService` over tonic: translates protobuf to the core's
//! inputs and back. Nothing is decided here.

use crate::edge::client_address;
use crate::error::AuthError;
use crate::exchange::{ExchangeInput, JWT_TOKEN_TYPE};
use crate::live::Live;
use crate::pb;
use crate::pipeline::VerifyInput;
use opentelemetry::context::FutureExt;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The gRPC service: a thin adapter over the current generation's
/// [`crate::pipeline::Authenticator`] and [`crate::exchange::Exchanger`]
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

fn timestamp(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

#[tonic::async_trait]
impl pb::auth_service_server::AuthService for AuthGrpc {
    async fn verify(
        &self,
        request: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::VerifyResponse>, Status> {
        let cx = crate::otel::server_span("authgate.v1.AuthService/Verify", |k| {
            request.metadata().get(k).and_then(|v| v.to_str().ok())
        });
        let peer = request.remote_addr().map(|a| a.ip().to_string());
        let req = request.into_inner();
        let generation = self.live.get();
        let client = client_address(&req.headers, generation.trusted_proxy_hops, peer.as_deref());
        let input = VerifyInput {
            token: present(&req.token),
            headers: &req.headers,
            required_roles: &req.required_roles,
            issuer: present(&req.issuer),
            require_signed_proxy: req.require_signed_proxy,
            client: client.as_deref(),
            adapter: crate::metrics::Adapter::Verify,
            identity_in_headers: false,
        };
        let result = generation.core.verify(input).with_context(cx.clone()).await;
        crate::otel::finish(
            &cx,
            result.as_ref().ok().map(|v| &*v.identity.issuer),
            result.as_ref().err().map(AuthError::reason),
        );
        let verified = result?;
        Ok(Response::new(pb::VerifyResponse {
            identity: Some(verified.identity.as_ref().into()),
            proxy: verified.proxy.map(Into::into),
        }))
    }

    async fn exchange(
        &self,
        request: Request<pb::ExchangeRequest>,
    ) -> Result<Response<pb::ExchangeResponse>, Status> {
        let generation = self.live.get();
        let exchanger = generation.exchanger.as_ref().ok_or(AuthError::ExchangeDisabled)?;
        let cx = crate::otel::server_span("authgate.v1.AuthService/Exchange", |k| {
            request.metadata().get(k).and_then(|v| v.to_str().ok())
        });
        let peer = request.remote_addr().map(|a| a.ip().to_string());
        let req = request.into_inner();
        let client = client_address(&req.headers, generation.trusted_proxy_hops, peer.as_deref());
        let requested_ttl = match req.requested_ttl {
            None => None,
            Some(d) if d.seconds > 0 && d.nanos >= 0 => {
                Some(std::time::Duration::from_secs(d.seconds as u64))
            }
            Some(_) => return Err(AuthError::InvalidRequest("requested_ttl must be positive").into()),
        };
        let input = ExchangeInput {
            subject_token: present(&req.subject_token),
            headers: &req.headers,
            subject_token_type: present(&req.subject_token_type),
            audience: &req.audience,
            scopes: &req.scopes,
            actor_token: present(&req.actor_token),
            requested_ttl,
            issuer: present(&req.issuer),
            client: client.as_deref(),
        };
        let started = std::time::Instant::now();
        let result = exchanger.exchange(input).with_context(cx.clone()).await;
        crate::otel::finish(
            &cx,
            result.as_ref().ok().map(|m| &*m.identity.issuer),
            result.as_ref().err().map(AuthError::reason),
        );
        let latency_us = started.elapsed().as_micros() as u64;
        match &result {
            Ok(m) => {
                tracing::info!(granted = true, audience = %req.audience, subject = %m.identity.subject, kid = %m.key_id, latency_us, "exchange")
            }
            Err(e) => {
                tracing::info!(granted = false, audience = %req.audience, reason = e.reason(), latency_us, "exchange")
            }
        }
        let minted = result?;
        let now = crate::claims::unix_now();
        Ok(Response::new(pb::ExchangeResponse {
            access_token: minted.token.clone(),
            issued_token_type: JWT_TOKEN_TYPE.into(),
            token_type: "Bearer".into(),
            expires_at: timestamp(minted.expires_at),
            expires_in: (minted.expires_at - now).max(0),
            scopes: minted.scopes.clone(),
            key_id: minted.key_id.clone(),
            identity: Some(minted.identity.as_ref().into()),
        }))
    }
}
