//! `authgate.v1.AuthService` over tonic: translates protobuf to
//! [`VerifyInput`] and back. Nothing is decided here.

use crate::pb;
use crate::pipeline::{Authenticator, VerifyInput};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The gRPC service: a thin adapter over the [`Authenticator`].
#[derive(Clone)]
pub struct AuthGrpc {
    core: Arc<Authenticator>,
}

impl AuthGrpc {
    /// Wraps the shared core.
    pub fn new(core: Arc<Authenticator>) -> Self {
        Self { core }
    }
}

#[tonic::async_trait]
impl pb::auth_service_server::AuthService for AuthGrpc {
    async fn verify(
        &self,
        request: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::VerifyResponse>, Status> {
        let req = request.into_inner();
        let input = VerifyInput {
            token: &req.token,
            headers: &req.headers,
            required_roles: &req.required_roles,
            issuer: &req.issuer,
            require_signed_proxy: req.require_signed_proxy,
        };
        let verified = self.core.verify(input).await?;
        Ok(Response::new(pb::VerifyResponse {
            identity: Some(verified.identity.as_ref().into()),
            proxy: verified.proxy.map(Into::into),
        }))
    }
}
