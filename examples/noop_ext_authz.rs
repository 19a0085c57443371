//! A no-op Envoy ext_authz server that allows every request: the floor of
//! any external authorizer, for `bench/envoy_bench.py`. Not part of authgate.
//! `cargo run --release --example noop_ext_authz -- 127.0.0.1:50061`

use envoy_types::ext_authz::v3::pb::{Authorization, AuthorizationServer, CheckRequest, CheckResponse};
use envoy_types::ext_authz::v3::{CheckResponseExt, OkHttpResponseBuilder};
use tonic::{Request, Response, Status};

struct AllowAll;

#[tonic::async_trait]
impl Authorization for AllowAll {
    async fn check(&self, _: Request<CheckRequest>) -> Result<Response<CheckResponse>, Status> {
        let mut resp = CheckResponse::with_status(Status::ok(""));
        resp.set_http_response(OkHttpResponseBuilder::new());
        Ok(Response::new(resp))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:50061".into()).parse()?;
    tonic::transport::Server::builder().add_service(AuthorizationServer::new(AllowAll)).serve(addr).await?;
    Ok(())
}
