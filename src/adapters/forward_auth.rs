//! HTTP forward-auth (nginx `auth_request`, Traefik ForwardAuth, Caddy
//! `forward_auth`): a thin adapter over the same core as Verify.
//!
//! `GET|POST|… /forward-auth` (policy: `[edge]`) and `/forward-auth/<route>`
//! (policy: `[edge.routes.<route>]`) read the credential from the forwarded
//! request's headers (`Authorization: Bearer`, cookie `nf_jwt`, `x-nf-sign`).
//! Policy lives only in authgate's config: a query string, an unknown route
//! or a deeper path is a 400 `invalid_request`, so nothing a client adds to
//! its URL can reach authgate as policy, whatever the proxy forwards.
//!
//! Allow: 200 with the identity headers (default `x-authgate-subject`,
//! `x-authgate-email`, `x-authgate-roles` (comma-separated),
//! `x-authgate-issuer`; names from `[edge]`) for the proxy to copy to the
//! upstream. Deny: 401 with `WWW-Authenticate: Bearer
//! realm="authgate"` (plus `error="invalid_token"` unless the credential was
//! simply missing), 403 for a missing role, 503 with `Retry-After` when a
//! dependency is down, 400 for malformed requests; a JSON body
//! `{"error", "reason"}` and `x-authgate-reason`. nginx's `auth_request`
//! understands only 2xx, 401 and 403 and turns anything else into 500.

use crate::core::error::AuthError;
use crate::core::headers::Headers;
use crate::gate::decision::Decision;
use crate::gate::edge::{IdentityHeaders, client_address, denial_parts, identity_headers};
use crate::gate::live::Live;
use crate::obs::metrics::Adapter;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use opentelemetry::context::FutureExt;
use std::sync::Arc;

/// The path of the endpoint; `PATH/<route>` selects `[edge.routes.<route>]`.
pub const PATH: &str = "/forward-auth";

/// Handles one forward-auth request.
pub async fn handle(
    State(live): State<Arc<Live>>,
    conn: Option<axum::Extension<crate::adapters::listen::ConnInfo>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let generation = live.get();
    let policy = match route_name(&uri).and_then(|name| generation.edge.route(name)) {
        Ok(p) => p,
        Err(e) => return denial(&e),
    };
    let request_headers = match flatten(&headers) {
        Ok(h) => h,
        Err(e) => return denial(&e),
    };
    let peer = conn.as_ref().map(|c| c.0.peer_ip.clone());
    let client = client_address(&request_headers, generation.trusted_proxy_hops, peer.as_deref());
    let cx = crate::obs::traces::server_span("forward-auth", |k| request_headers.first(k));
    let caller = conn
        .and_then(|c| c.0.certificate)
        .or_else(|| generation.mesh_caller(|| request_headers.joined("x-forwarded-client-cert", ",")));
    let mut decision =
        Decision::start(Adapter::ForwardAuth, client.as_deref(), cx.clone()).with_caller(caller);
    let result = match generation.callers.admit(&mut decision) {
        Err(e) => Err(e),
        Ok(name) => {
            let (client, name) = (client.as_deref(), name.as_deref());
            let decide = generation
                .decide_edge(&request_headers, policy, client, name, &mut decision)
                .with_context(cx);
            match tokio::time::timeout(generation.decision_deadline, decide).await {
                Ok(r) => r,
                // Fail closed: a slow decision is a denial, never an allow.
                Err(_) => Err(AuthError::UpstreamUnavailable("decision deadline exceeded")),
            }
        }
    };
    decision.record(live.metrics(), result.as_ref().map(|(id, _)| &**id));
    let (identity, minted) = match result {
        Ok(v) => v,
        Err(e) => return denial(&e),
    };
    let IdentityHeaders { values, omitted_roles: omitted } =
        match identity_headers(&generation.edge.headers, &identity) {
            Ok(h) => h,
            Err(e) => return denial(&e),
        };
    if omitted > 0 {
        crate::gate::edge::report_omitted_roles(live.metrics(), omitted);
    }
    let mut resp = StatusCode::OK.into_response();
    let h = resp.headers_mut();
    for (name, value) in values {
        // Both were checked: the names at load, the values by identity_headers.
        if let (Ok(name), Ok(value)) =
            (axum::http::HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value))
        {
            h.insert(name, value);
        }
    }
    // A route that mints hands the proxy the internal token to forward
    // (Traefik `authResponseHeaders`, nginx `auth_request_set`).
    if let Some(value) = minted.and_then(|t| HeaderValue::from_str(&format!("Bearer {t}")).ok()) {
        h.insert(axum::http::header::AUTHORIZATION, value);
    }
    resp
}

/// `None` for the bare endpoint, the route name for `PATH/<name>`. A query
/// string is refused: a proxy that forwards its client's query (Caddy's
/// `forward_auth` with a path-only `uri`) would otherwise let the client
/// speak to authgate.
fn route_name(uri: &Uri) -> Result<Option<&str>, AuthError> {
    if uri.query().is_some_and(|q| !q.is_empty()) {
        return Err(AuthError::InvalidRequest("the forward-auth URL takes no query string"));
    }
    match uri.path().strip_prefix(PATH) {
        Some("") => Ok(None),
        Some(rest) => match rest.strip_prefix('/') {
            Some(name) if crate::config::is_route_name(name) => Ok(Some(name)),
            _ => Err(AuthError::InvalidRequest("unknown edge route")),
        },
        None => Err(AuthError::InvalidRequest("unknown edge route")),
    }
}

/// The HTTP response of a denial.
pub fn denial(e: &AuthError) -> Response {
    let (status, headers, body) = denial_parts(e);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (status, body).into_response();
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, value);
        }
    }
    resp
}

/// The received headers as the core's request view. A header authgate reads
/// that is not visible ASCII is an error; any other unreadable header is
/// none of authgate's business and is left out.
pub fn flatten(headers: &HeaderMap) -> Result<Headers, AuthError> {
    let mut view = Headers::new();
    for (name, value) in headers {
        match value.to_str() {
            Ok(value) => view.add_received(name.as_str(), value),
            Err(_) if crate::gate::edge::is_read_header(name.as_str()) => {
                return Err(crate::gate::edge::UNREADABLE_HEADER);
            }
            Err(_) => {}
        }
    }
    Ok(view)
}
