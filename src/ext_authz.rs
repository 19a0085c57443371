//! Envoy ext_authz v3 `Authorization/Check`: a thin adapter over the same
//! core as Verify (and Exchange, when a route names an audience).
//!
//! Request view: `attributes.request.http.headers` **and** `header_map`
//! (Envoy fills only the latter with `encode_raw_headers: true`). Per-route
//! policy from `context_extensions`: `issuer`, `roles` (comma-separated,
//! any-of), `signed_proxy = "required"`, `exchange_audience`,
//! `remove_headers` (comma-separated; default `authorization`).
//!
//! Allow: status OK + `OkHttpResponse` setting `x-authgate-subject`,
//! `-email`, `-roles`, `-issuer` (overwriting client copies), removing the
//! listed headers, or with an Exchange audience replacing `authorization`
//! with the minted token; `dynamic_metadata` {subject, issuer, roles}.
//! Deny: a **successful** RPC carrying `DeniedHttpResponse` (401/403/503/400,
//! as forward-auth), never a gRPC error, so `failure_mode_allow` keeps its
//! meaning; a decision that overruns `server.decision_deadline` is a 503
//! denial (fail closed).

use crate::error::AuthError;
use crate::exchange::{ExchangeInput, Exchanger};
use crate::forward_auth::{EMAIL_HEADER, ISSUER_HEADER, ROLES_HEADER, SUBJECT_HEADER, denial_parts};
use crate::pipeline::{Authenticator, VerifyInput};
use envoy_types::ext_authz::v3::pb::{
    Authorization, CheckRequest, CheckResponse, HeaderAppendAction, HttpStatusCode,
};
use envoy_types::ext_authz::v3::{CheckResponseExt, DeniedHttpResponseBuilder, OkHttpResponseBuilder};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status};

/// The ext_authz service.
pub struct ExtAuthz {
    core: Arc<Authenticator>,
    exchanger: Option<Arc<Exchanger>>,
    deadline: Duration,
}

impl ExtAuthz {
    /// Wraps the shared core; `deadline` bounds every decision.
    pub fn new(core: Arc<Authenticator>, exchanger: Option<Arc<Exchanger>>, deadline: Duration) -> Self {
        Self { core, exchanger, deadline }
    }

    async fn decide(
        &self,
        headers: &HashMap<String, String>,
        ctx: &HashMap<String, String>,
    ) -> Result<(Arc<crate::identity::Identity>, Option<String>), AuthError> {
        let roles: Vec<String> = ctx
            .get("roles")
            .map(|r| r.split(',').map(str::trim).filter(|r| !r.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default();
        let issuer = ctx.get("issuer").map(String::as_str).unwrap_or("");
        let input = VerifyInput {
            token: "",
            headers,
            required_roles: &roles,
            issuer,
            require_signed_proxy: ctx.get("signed_proxy").is_some_and(|v| v == "required"),
        };
        let verified = self.core.verify(input).await?;
        let Some(audience) = ctx.get("exchange_audience") else {
            return Ok((verified.identity, None));
        };
        let exchanger = self.exchanger.as_ref().ok_or(AuthError::ExchangeDisabled)?;
        let minted = exchanger
            .exchange(ExchangeInput {
                subject_token: "",
                headers,
                subject_token_type: "",
                audience,
                scopes: &[],
                actor_token: "",
                requested_ttl: None,
                issuer,
            })
            .await?;
        Ok((verified.identity, Some(minted.token.clone())))
    }
}

/// The request's headers from `headers` and `header_map`, merged by
/// [`crate::credential::add_header`].
fn request_headers(req: &CheckRequest) -> Option<(HashMap<String, String>, HashMap<String, String>)> {
    let attributes = req.attributes.as_ref()?;
    let http = attributes.request.as_ref()?.http.as_ref()?;
    let mut out: HashMap<String, String> = HashMap::new();
    let mut add = |name: &str, value: String| crate::credential::add_header(&mut out, name, value);
    for (k, v) in &http.headers {
        add(k, v.clone());
    }
    if let Some(map) = &http.header_map {
        for h in &map.headers {
            let value = if h.raw_value.is_empty() {
                h.value.clone()
            } else {
                String::from_utf8_lossy(&h.raw_value).into_owned()
            };
            add(&h.key, value);
        }
    }
    Some((out, attributes.context_extensions.clone()))
}

fn denied(e: &AuthError) -> CheckResponse {
    let (status, headers, body) = denial_parts(e);
    let mut denied = DeniedHttpResponseBuilder::new();
    denied.set_http_status(HttpStatusCode::try_from(status as i32).unwrap_or(HttpStatusCode::Forbidden));
    for (name, value) in headers {
        denied.add_header(name, value, Some(HeaderAppendAction::OverwriteIfExistsOrAdd), false);
    }
    denied.set_body(body);
    let mut resp = CheckResponse::with_status(Status::new(e.grpc_code(), e.to_string()));
    resp.set_http_response(denied);
    resp
}

#[tonic::async_trait]
impl Authorization for ExtAuthz {
    async fn check(&self, request: Request<CheckRequest>) -> Result<Response<CheckResponse>, Status> {
        let req = request.into_inner();
        let Some((headers, ctx)) = request_headers(&req) else {
            return Ok(Response::new(denied(&AuthError::InvalidRequest(
                "CheckRequest without HTTP attributes",
            ))));
        };
        let decision = match tokio::time::timeout(self.deadline, self.decide(&headers, &ctx)).await {
            Ok(d) => d,
            // Fail closed: a slow decision is a denial, never an allow.
            Err(_) => Err(AuthError::UpstreamUnavailable("decision deadline exceeded")),
        };
        let (identity, minted) = match decision {
            Ok(d) => d,
            Err(e) => return Ok(Response::new(denied(&e))),
        };
        let mut ok = OkHttpResponseBuilder::new();
        let overwrite = Some(HeaderAppendAction::OverwriteIfExistsOrAdd);
        for (name, value) in [
            (SUBJECT_HEADER, identity.subject.clone()),
            (EMAIL_HEADER, identity.email.clone()),
            (ROLES_HEADER, identity.roles.join(",")),
            (ISSUER_HEADER, identity.issuer.to_string()),
        ] {
            ok.add_header(name, value, overwrite, true);
        }
        let remove = ctx.get("remove_headers").map(String::as_str).unwrap_or("authorization");
        for name in remove.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if minted.is_none() || !name.eq_ignore_ascii_case("authorization") {
                ok.remove_header(name.to_ascii_lowercase());
            }
        }
        if let Some(token) = minted {
            ok.add_header("authorization", format!("Bearer {token}"), overwrite, false);
        }
        let mut resp = CheckResponse::with_status(Status::ok(""));
        resp.set_http_response(ok);
        resp.set_dynamic_metadata(Some(metadata(&identity)));
        Ok(Response::new(resp))
    }
}

fn metadata(id: &crate::identity::Identity) -> envoy_types::pb::google::protobuf::Struct {
    use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
    let s = |v: String| Value { kind: Some(Kind::StringValue(v)) };
    Struct {
        fields: [
            ("subject".to_string(), s(id.subject.clone())),
            ("issuer".to_string(), s(id.issuer.to_string())),
            ("roles".to_string(), s(id.roles.join(","))),
        ]
        .into_iter()
        .collect(),
    }
}
