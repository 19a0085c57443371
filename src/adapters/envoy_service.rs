//! The gRPC service `envoy.service.auth.v3.Authorization`, written out as
//! tonic's generated server would be, so that `Check` can answer with a
//! [`CheckAnswer`] (an allow encoded once per cached identity):
//! envoy-types' generated server only sends a built `CheckResponse`.

use crate::adapters::ext_authz::ExtAuthz;
use crate::pb::CheckAnswer;
use envoy_types::ext_authz::v3::pb::CheckRequest;
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::codegen::{Body, BoxFuture, Service, StdError, http};

/// The service's full name (health, reflection).
pub const SERVICE_NAME: &str = "envoy.service.auth.v3.Authorization";

const CHECK_PATH: &str = "/envoy.service.auth.v3.Authorization/Check";

/// `Authorization/Check` over [`ExtAuthz`]; any other method is
/// `UNIMPLEMENTED`, as in generated code.
#[derive(Clone)]
pub struct AuthorizationService {
    inner: Arc<ExtAuthz>,
    max_decoding_message_size: usize,
}

impl AuthorizationService {
    /// Serves `inner`, refusing `CheckRequest`s over `max_decoding_message_size`.
    pub fn new(inner: ExtAuthz, max_decoding_message_size: usize) -> Self {
        Self { inner: Arc::new(inner), max_decoding_message_size }
    }
}

struct CheckMethod(Arc<ExtAuthz>);

impl tonic::server::UnaryService<CheckRequest> for CheckMethod {
    type Response = CheckAnswer;
    type Future = BoxFuture<tonic::Response<CheckAnswer>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<CheckRequest>) -> Self::Future {
        let inner = Arc::clone(&self.0);
        Box::pin(async move { inner.check(request).await })
    }
}

impl<B> Service<http::Request<B>> for AuthorizationService
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != CHECK_PATH {
            return Box::pin(async { Ok(unimplemented()) });
        }
        let (inner, limit) = (Arc::clone(&self.inner), self.max_decoding_message_size);
        Box::pin(async move {
            let codec = tonic_prost::ProstCodec::<CheckAnswer, CheckRequest>::default();
            let mut grpc = tonic::server::Grpc::new(codec).apply_max_message_size_config(Some(limit), None);
            Ok(grpc.unary(CheckMethod(inner), req).await)
        })
    }
}

impl tonic::server::NamedService for AuthorizationService {
    const NAME: &'static str = SERVICE_NAME;
}

fn unimplemented() -> http::Response<tonic::body::Body> {
    let mut response = http::Response::new(tonic::body::Body::default());
    let headers = response.headers_mut();
    headers.insert(tonic::Status::GRPC_STATUS, (tonic::Code::Unimplemented as i32).into());
    headers.insert(http::header::CONTENT_TYPE, tonic::metadata::GRPC_CONTENT_TYPE);
    response
}
