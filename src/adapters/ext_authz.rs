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

use crate::adapters::listen::ConnInfo;
use crate::core::error::AuthError;
use crate::core::headers::Headers;
use crate::core::identity::Identity;
use crate::gate::decision::Decision;
use crate::gate::edge::{IdentityHeaders, client_address, denial_parts, identity_headers, strip_cookies};
use crate::gate::live::Live;
use crate::obs::metrics::Adapter;
use crate::pb::CheckAnswer;
use envoy_types::ext_authz::v3::pb::{CheckRequest, CheckResponse, HeaderAppendAction, HttpStatusCode};
use envoy_types::ext_authz::v3::{CheckResponseExt, DeniedHttpResponseBuilder, OkHttpResponseBuilder};
use opentelemetry::context::FutureExt;
use std::collections::HashMap;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The ext_authz service.
pub struct ExtAuthz {
    live: Arc<Live>,
    allows: Allows,
}

impl ExtAuthz {
    /// Serves whatever generation is current when each check starts; its
    /// `decision_deadline` bounds every decision.
    pub fn new(live: Arc<Live>) -> Self {
        Self { live, allows: Allows::new() }
    }
}

/// Allows encoded once, for identities the identity cache holds
/// ([`Decision::identity_is_shared`]): keyed by the identity's address (an
/// entry holds its identity; a hit must be the same allocation), the
/// generation (header names) and the route's removals, which are all an
/// allow's bytes depend on when it carries no minted token and no rewritten
/// cookie. Bounded: ~1 KB an entry, idle ones dropped after a minute.
struct Allows(moka::sync::Cache<crate::core::cache::Key, Arc<(Arc<Identity>, bytes::Bytes)>>);

/// At most this many encoded allows (≈ 4 MB).
const MAX_ALLOWS: u64 = 4096;

impl Allows {
    fn new() -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(MAX_ALLOWS)
                .time_to_idle(std::time::Duration::from_secs(60))
                .build(),
        )
    }

    fn key(identity: &Arc<Identity>, generation: u64, removed: &[String]) -> crate::core::cache::Key {
        let address = crate::core::cache::address(identity);
        let (generation, count) = (generation.to_le_bytes(), (removed.len() as u64).to_le_bytes());
        let fixed: [&[u8]; 4] = [b"allow", &address, &generation, &count];
        crate::core::cache::keyed(fixed.into_iter().chain(removed.iter().map(String::as_bytes)))
    }

    fn get(&self, key: &crate::core::cache::Key, identity: &Arc<Identity>) -> Option<bytes::Bytes> {
        self.0.get(key).filter(|held| Arc::ptr_eq(&held.0, identity)).map(|held| held.1.clone())
    }

    fn insert(&self, key: crate::core::cache::Key, identity: Arc<Identity>, encoded: bytes::Bytes) {
        self.0.insert(key, Arc::new((identity, encoded)));
    }
}

/// What a CheckRequest says about the HTTP request.
struct RequestView<'r> {
    /// From `headers` and `header_map`, merged: the ones a decision reads.
    headers: Headers,
    context_extensions: &'r HashMap<String, String>,
    /// `attributes.source`: the downstream address as Envoy saw it.
    source: Option<String>,
}

fn request_view(req: &CheckRequest) -> Result<RequestView<'_>, AuthError> {
    let missing = AuthError::InvalidRequest("CheckRequest without HTTP attributes");
    let attributes = req.attributes.as_ref().ok_or(missing.clone())?;
    let http = attributes.request.as_ref().and_then(|r| r.http.as_ref()).ok_or(missing)?;
    let mut out = Headers::new();
    // The same rule as forward-auth's `HeaderValue::to_str`: visible ASCII
    // and tab. Only the headers a decision reads and the W3C trace context
    // are kept: Envoy sends every request header, and copying the others
    // cost more than the decision's own lookups.
    let mut add = |name: &str, value: &[u8]| {
        let kept = crate::gate::edge::is_read_header(name)
            || crate::obs::traces::CONTEXT_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h));
        if !kept {
            return Ok(());
        }
        let visible = crate::core::headers::all_visible(value, true);
        match std::str::from_utf8(value) {
            Ok(v) if visible || !crate::gate::edge::is_read_header(name) => {
                out.add_received(name, v);
                Ok(())
            }
            Err(_) if !crate::gate::edge::is_read_header(name) => Ok(()),
            _ => Err(crate::gate::edge::UNREADABLE_HEADER),
        }
    };
    for (k, v) in &http.headers {
        add(k, v.as_bytes())?;
    }
    if let Some(map) = &http.header_map {
        for h in &map.headers {
            let value = if h.raw_value.is_empty() { h.value.as_bytes() } else { &h.raw_value };
            add(&h.key, value)?;
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
    Ok(RequestView { headers: out, context_extensions: &attributes.context_extensions, source })
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

impl ExtAuthz {
    /// One `Authorization/Check` ([`crate::adapters::envoy_service`]).
    pub async fn check(&self, request: Request<CheckRequest>) -> Result<Response<CheckAnswer>, Status> {
        let caller = request.extensions().get::<ConnInfo>().and_then(|c| c.certificate.clone());
        let xfcc = crate::adapters::grpc::forwarded_client_cert(request.metadata());
        let req = request.into_inner();
        let generation = self.live.get();
        let (view, policy) = match request_view(&req).and_then(|view| {
            generation.edge.route_from_extensions(view.context_extensions).map(|p| (view, p))
        }) {
            Ok(v) => v,
            Err(e) => return Ok(Response::new(denied(&e).into())),
        };
        let cx = crate::obs::traces::server_span("envoy.service.auth.v3.Authorization/Check", |k| {
            view.headers.first(k)
        });
        // Envoy's source address is the end user (Envoy already applied its
        // own xff_num_trusted_hops); the headers only when it is absent.
        let client = match &view.source {
            Some(source) => Some(crate::gate::edge::client_label(Some(source))),
            None => client_address(&view.headers, generation.trusted_proxy_hops, None),
        };
        let mut decision = Decision::start(Adapter::ExtAuthz, client.as_deref(), cx.clone())
            .with_caller(caller.or_else(|| generation.mesh_caller(|| xfcc)));
        let result = match generation.callers.admit(&mut decision) {
            Err(e) => Err(e),
            Ok(name) => {
                let (client, name) = (client.as_deref(), name.as_deref());
                let decide = generation
                    .decide_edge(&view.headers, &policy, client, name, &mut decision)
                    .with_context(cx);
                match tokio::time::timeout(generation.decision_deadline, decide).await {
                    Ok(d) => d,
                    // Fail closed: a slow decision is a denial, never an allow.
                    Err(_) => Err(AuthError::UpstreamUnavailable("decision deadline exceeded")),
                }
            }
        };
        let shared = decision.identity_is_shared();
        decision.record(self.live.metrics(), result.as_ref().map(|(id, _)| &**id));
        let (identity, minted) = match result {
            Ok(d) => d,
            Err(e) => return Ok(Response::new(denied(&e).into())),
        };
        // With no minted token and no cookie to rewrite, an allow depends on
        // the identity, the header names and the route's removals only.
        let reusable = shared && minted.is_none() && view.headers.first("cookie").is_none();
        let key = reusable.then(|| Allows::key(&identity, generation.serial, &policy.remove_headers));
        if let Some(encoded) = key.as_ref().and_then(|k| self.allows.get(k, &identity)) {
            return Ok(Response::new(CheckAnswer::encoded(encoded)));
        }
        let IdentityHeaders { values, omitted_roles: omitted } =
            match identity_headers(&generation.edge.headers, &identity) {
                Ok(h) => h,
                Err(e) => return Ok(Response::new(denied(&e).into())),
            };
        if omitted > 0 {
            crate::gate::edge::report_omitted_roles(self.live.metrics(), omitted);
        }
        let mut ok = OkHttpResponseBuilder::new();
        let overwrite = Some(HeaderAppendAction::OverwriteIfExistsOrAdd);
        for (name, value) in values {
            ok.add_header(name, value, overwrite, true);
        }
        let mut removed_cookie = false;
        for name in &policy.remove_headers {
            if minted.is_none() || name != "authorization" {
                removed_cookie |= name == "cookie";
                ok.remove_header(name.clone());
            }
        }
        // The user's Netlify tokens stop at the edge; the app's own cookies
        // pass. ext_authz cannot remove one cookie, so the header is rewritten.
        if !removed_cookie
            && let Some(cookies) = view.headers.joined("cookie", "; ")
            && let Some(kept) = strip_cookies(&cookies, &generation.edge.strip_cookies)
        {
            if kept.is_empty() {
                ok.remove_header("cookie".to_string());
            } else {
                ok.add_header("cookie", kept, overwrite, false);
            }
        }
        if let Some(token) = minted {
            ok.add_header("authorization", format!("Bearer {token}"), overwrite, false);
        }
        let mut resp = CheckResponse::with_status(Status::ok(""));
        resp.set_http_response(ok);
        resp.set_dynamic_metadata(Some(metadata(&identity)));
        match key {
            // Only allows that left no role out: those are reported on every Check.
            Some(key) if omitted == 0 => {
                let encoded = bytes::Bytes::from(prost::Message::encode_to_vec(&resp));
                self.allows.insert(key, identity, encoded.clone());
                Ok(Response::new(CheckAnswer::encoded(encoded)))
            }
            _ => Ok(Response::new(resp.into())),
        }
    }
}

fn metadata(id: &crate::core::identity::Identity) -> envoy_types::pb::google::protobuf::Struct {
    use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
    let s = |v: String| Value { kind: Some(Kind::StringValue(v)) };
    let mut metadata = Struct {
        fields: [
            ("subject".to_string(), s(id.subject.to_string())),
            ("issuer".to_string(), s(id.issuer.to_string())),
            ("roles".to_string(), s(id.roles.join(","))),
            (
                "role_list".to_string(),
                Value {
                    kind: Some(Kind::ListValue(envoy_types::pb::google::protobuf::ListValue {
                        values: id.roles.iter().map(|r| s(r.clone())).collect(),
                    })),
                },
            ),
        ]
        .into_iter()
        .collect(),
    };
    if !id.claims.is_empty() {
        // Same JSON → Struct mapping as the AuthService identity.
        let claims = crate::adapters::pb::to_struct(&id.claims);
        let bytes = prost::Message::encode_to_vec(&claims);
        if let Ok(claims) = <Struct as prost::Message>::decode(bytes.as_slice()) {
            metadata.fields.insert("claims".to_string(), Value { kind: Some(Kind::StructValue(claims)) });
        }
    }
    metadata
}
