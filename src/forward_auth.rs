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

use crate::edge::{IdentityHeaders, client_address, denial_parts, identity_headers};
use crate::error::AuthError;
use crate::live::Live;
use crate::pipeline::VerifyInput;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use opentelemetry::context::FutureExt;
use std::collections::HashMap;
use std::sync::Arc;

/// The path of the endpoint; `PATH/<route>` selects `[edge.routes.<route>]`.
pub const PATH: &str = "/forward-auth";

/// Handles one forward-auth request.
pub async fn handle(
    State(live): State<Arc<Live>>,
    peer: Option<axum::Extension<crate::listen::Peer>>,
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
    let peer = peer.map(|p| p.0.0.ip().to_string());
    let client = client_address(&request_headers, generation.trusted_proxy_hops, peer.as_deref());
    let input = VerifyInput {
        token: None,
        headers: &request_headers,
        required_roles: &policy.roles,
        issuer: policy.issuer.as_deref(),
        require_signed_proxy: policy.require_signed_proxy,
        client: client.as_deref(),
        adapter: crate::metrics::Adapter::ForwardAuth,
        identity_in_headers: true,
    };
    let cx = crate::otel::server_span("forward-auth", |k| request_headers.get(k).map(String::as_str));
    let decide = generation.core.verify(input).with_context(cx.clone());
    let result = match tokio::time::timeout(generation.decision_deadline, decide).await {
        Ok(r) => r,
        // Fail closed: a slow decision is a denial, never an allow.
        Err(_) => Err(AuthError::UpstreamUnavailable("decision deadline exceeded")),
    };
    crate::otel::finish(
        &cx,
        result.as_ref().ok().map(|v| &*v.identity.issuer),
        result.as_ref().err().map(AuthError::reason),
    );
    let identity = match result {
        Ok(v) => v.identity,
        Err(e) => return denial(&e),
    };
    let IdentityHeaders { values, omitted_roles: omitted } =
        match identity_headers(&generation.edge.headers, &identity) {
            Ok(h) => h,
            Err(e) => return denial(&e),
        };
    if omitted > 0 {
        crate::edge::report_omitted_roles(live.metrics(), omitted);
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
pub fn flatten(headers: &HeaderMap) -> Result<HashMap<String, String>, AuthError> {
    let mut view = HashMap::new();
    for (name, value) in headers {
        match value.to_str() {
            Ok(value) => crate::credential::add_header(&mut view, name.as_str(), value.to_string()),
            Err(_) if crate::edge::is_read_header(name.as_str()) => {
                return Err(crate::edge::UNREADABLE_HEADER);
            }
            Err(_) => {}
        }
    }
    Ok(view)
}
