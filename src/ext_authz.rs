//! Envoy ext_authz v3 `Authorization/Check`: a thin adapter over the same
//! core as Verify (and Exchange, when a route names an audience).
//!
//! Request view: `attributes.request.http.headers` **and** `header_map`
//! (Envoy fills only the latter with `encode_raw_headers: true`); the client
//! address from `attributes.source` (else the request's `x-forwarded-for`),
//! never from the gRPC call itself, which is Envoy. Per-route policy from
//! `context_extensions` over the `[edge]` defaults ([`RoutePolicy`]).
//!
//! Allow: status OK + `OkHttpResponse` setting the identity headers
//! (default `x-authgate-subject`, `-email`, `-roles`, `-issuer`;
//! overwriting client copies), removing the
//! listed headers, or with an Exchange audience replacing `authorization`
//! with the minted token; `dynamic_metadata` {subject, issuer, roles}.
//! Deny: a **successful** RPC carrying `DeniedHttpResponse` (401/403/503/400,
//! as forward-auth), never a gRPC error, so `failure_mode_allow` keeps its
//! meaning; a decision that overruns `server.decision_deadline` is a 503
//! denial (fail closed).

use crate::edge::{RoutePolicy, client_label, denial_parts, identity_headers};
use crate::error::AuthError;
use crate::exchange::ExchangeInput;
use crate::live::{Generation, Live};
use crate::pipeline::VerifyInput;
use envoy_types::ext_authz::v3::pb::{
    Authorization, CheckRequest, CheckResponse, HeaderAppendAction, HttpStatusCode,
};
use envoy_types::ext_authz::v3::{CheckResponseExt, DeniedHttpResponseBuilder, OkHttpResponseBuilder};
use opentelemetry::context::FutureExt;
use std::collections::HashMap;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The ext_authz service.
pub struct ExtAuthz {
    live: Arc<Live>,
}

impl ExtAuthz {
    /// Serves whatever generation is current when each check starts; its
    /// `decision_deadline` bounds every decision.
    pub fn new(live: Arc<Live>) -> Self {
        Self { live }
    }
}

impl Generation {
    /// One edge decision on this generation: verify, then Exchange when the
    /// route names an audience.
    async fn decide_edge(
        &self,
        headers: &HashMap<String, String>,
        policy: &RoutePolicy,
        client: &str,
    ) -> Result<(Arc<crate::identity::Identity>, Option<String>), AuthError> {
        let issuer = policy.issuer.as_str();
        let input = VerifyInput {
            token: "",
            headers,
            required_roles: &policy.roles,
            issuer,
            require_signed_proxy: policy.require_signed_proxy,
            client,
            adapter: crate::metrics::Adapter::ExtAuthz,
        };
        let verified = self.core.verify(input).await?;
        let Some(audience) = &policy.exchange_audience else {
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

/// What a CheckRequest says about the HTTP request.
struct RequestView<'r> {
    /// `headers` and `header_map`, merged by [`crate::credential::add_header`].
    headers: HashMap<String, String>,
    context_extensions: &'r HashMap<String, String>,
    client: String,
}

fn request_view(req: &CheckRequest) -> Option<RequestView<'_>> {
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
    let source = attributes
        .source
        .as_ref()
        .and_then(|p| p.address.as_ref())
        .and_then(|a| match &a.address {
            Some(envoy_types::pb::envoy::config::core::v3::address::Address::SocketAddress(s)) => {
                Some(s.address.clone())
            }
            _ => None,
        })
        .filter(|a| !a.is_empty());
    let client = client_label(source.as_deref().or(out.get("x-forwarded-for").map(String::as_str)));
    Some(RequestView { headers: out, context_extensions: &attributes.context_extensions, client })
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
        let Some(view) = request_view(&req) else {
            return Ok(Response::new(denied(&AuthError::InvalidRequest(
                "CheckRequest without HTTP attributes",
            ))));
        };
        let generation = self.live.get();
        let policy =
            RoutePolicy::resolve(&generation.edge, |k| view.context_extensions.get(k).map(String::as_str));
        let cx = crate::otel::server_span("envoy.service.auth.v3.Authorization/Check", |k| {
            view.headers.get(k).map(String::as_str)
        });
        let decide = generation.decide_edge(&view.headers, &policy, &view.client).with_context(cx.clone());
        let decision = match tokio::time::timeout(generation.decision_deadline, decide).await {
            Ok(d) => d,
            // Fail closed: a slow decision is a denial, never an allow.
            Err(_) => Err(AuthError::UpstreamUnavailable("decision deadline exceeded")),
        };
        crate::otel::finish(
            &cx,
            decision.as_ref().ok().map(|(id, _)| &*id.issuer),
            decision.as_ref().err().map(AuthError::reason),
        );
        let (identity, minted) = match decision {
            Ok(d) => d,
            Err(e) => return Ok(Response::new(denied(&e))),
        };
        let mut ok = OkHttpResponseBuilder::new();
        let overwrite = Some(HeaderAppendAction::OverwriteIfExistsOrAdd);
        for (name, value) in identity_headers(&generation.edge.headers, &identity) {
            ok.add_header(name, value, overwrite, true);
        }
        for name in &policy.remove_headers {
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
