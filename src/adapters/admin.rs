//! `authgate.v1.AdminService` over tonic: revocations for the callers
//! `[access] admin` names (nobody when it names none). Translates only: the
//! entry is built by [`crate::gate::revocation`], stored by the user store.

use crate::adapters::grpc::Call;
use crate::core::error::AuthError;
use crate::gate::decision::Decision;
use crate::gate::live::Live;
use crate::gate::revocation::{RevokeSpec, entry};
use crate::obs::metrics::Adapter;
use crate::pb;
use crate::store::revocations::Revocation;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// Most entries one `ListRevocations` returns.
const MAX_LIST: usize = 1000;

/// The admin service over the current generation and the process's store.
#[derive(Clone)]
pub struct AdminGrpc {
    live: Arc<Live>,
}

impl AdminGrpc {
    /// Serves whatever generation is current when each call starts.
    pub fn new(live: Arc<Live>) -> Self {
        Self { live }
    }

    /// The admitted caller's name, or the refusal.
    async fn admit<T>(&self, request: &Request<T>, rpc: &'static str) -> Result<String, Status> {
        let Call { generation, cx, token, caller, .. } = Call::read(&self.live, request, rpc);
        let mut decision = Decision::start(Adapter::Admin, None, cx).with_caller(caller);
        let admitted = generation.admit_caller(&mut decision, token.as_deref()).await;
        match admitted {
            Ok(Some(name)) => Ok(name.to_string()),
            // `[access] admin` is a list of named callers, so an admitted
            // caller has a name; anything else is refused.
            Ok(None) => Err(AuthError::CallerNotAllowed.into()),
            Err(e) => {
                tracing::warn!(
                    rpc,
                    reason = e.reason(),
                    caller = decision.caller.as_deref(),
                    "admin call refused"
                );
                Err(e.into())
            }
        }
    }

    fn store(&self) -> Result<&Arc<crate::store::UserStore>, Status> {
        self.live.store().ok_or_else(|| Status::failed_precondition("no [store] is configured"))
    }
}

fn ts(secs: Option<i64>) -> Option<prost_types::Timestamp> {
    secs.map(|seconds| prost_types::Timestamp { seconds, nanos: 0 })
}

fn to_pb(r: Revocation) -> pb::Revocation {
    let e = r.entry;
    pb::Revocation {
        id: r.id,
        kind: e.kind.as_str().to_string(),
        issuer: e.issuer.unwrap_or_default(),
        subject: e.subject.unwrap_or_default(),
        jti: e.jti.unwrap_or_default(),
        token_hash: e.token_hash.unwrap_or_default(),
        issued_before: ts(e.issued_before),
        expires_at: ts(e.expires_at),
        reason: e.reason,
        created_by: e.created_by,
        created_at: ts(Some(r.created_at)),
    }
}

fn unavailable(e: crate::store::StoreError) -> Status {
    tracing::warn!(error = %e, "admin: store error");
    Status::unavailable("the user store cannot be written now; retry later")
}

#[tonic::async_trait]
impl pb::admin_service_server::AdminService for AdminGrpc {
    async fn revoke(
        &self,
        request: Request<pb::RevokeRequest>,
    ) -> Result<Response<pb::RevokeResponse>, Status> {
        let caller = self.admit(&request, "authgate.v1.AdminService/Revoke").await?;
        let store = self.store()?;
        let req = request.into_inner();
        let some = |v: String| (!v.is_empty()).then_some(v);
        let spec = RevokeSpec {
            subject: some(req.subject),
            jti: some(req.jti),
            token: some(req.token),
            issuer_wide: req.issuer_wide,
            issuer: some(req.issuer),
            before: req.issued_before.map(|t| t.seconds),
            forever: req.forever,
            reason: req.reason,
            created_by: caller.clone(),
        };
        let config = self.live.config();
        let new = entry(&config, spec, crate::core::claims::unix_now()).map_err(Status::invalid_argument)?;
        let created = store.backend().revoke(&new).await.map_err(unavailable)?;
        tracing::info!(id = created.id, kind = created.entry.kind.as_str(), caller, "revocation added");
        Ok(Response::new(pb::RevokeResponse { revocation: Some(to_pb(created)) }))
    }

    async fn list_revocations(
        &self,
        request: Request<pb::ListRevocationsRequest>,
    ) -> Result<Response<pb::ListRevocationsResponse>, Status> {
        self.admit(&request, "authgate.v1.AdminService/ListRevocations").await?;
        let store = self.store()?;
        let limit = match request.into_inner().limit {
            n if n <= 0 => MAX_LIST,
            n => (n as usize).min(MAX_LIST),
        };
        let all = store.backend().revocations().await.map_err(unavailable)?;
        Ok(Response::new(pb::ListRevocationsResponse {
            revocations: all.into_iter().take(limit).map(to_pb).collect(),
        }))
    }
}
