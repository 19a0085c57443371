//! HTTP forward-auth (nginx `auth_request`, Traefik ForwardAuth, Caddy
//! `forward_auth`): a thin adapter over the same core as Verify.
//!
//! `GET|POST|… /forward-auth[/anything]` reads the credential from the
//! forwarded request's headers (`Authorization: Bearer`, cookie `nf_jwt`,
//! `x-nf-sign`), never from a query string. Policy is the `[edge]` defaults
//! overridden by the query of the forward-auth URL itself, which the proxy
//! operator writes in the proxy config (not the client): `issuer=NAME`,
//! `role=R` (repeatable, any-of; `role=` alone clears the default),
//! `signed_proxy=required|optional`.
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

use crate::edge::{RoutePolicy, client_label, denial_parts, identity_headers};
use crate::error::AuthError;
use crate::live::Live;
use crate::pipeline::VerifyInput;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry::context::FutureExt;
use std::collections::HashMap;
use std::sync::Arc;

/// Handles one forward-auth request.
pub async fn handle(
    State(live): State<Arc<Live>>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let roles: Option<String> = params.iter().any(|(k, _)| k == "role").then(|| {
        params.iter().filter(|(k, _)| k == "role").map(|(_, v)| v.as_str()).collect::<Vec<_>>().join(",")
    });
    let generation = live.get();
    let policy = RoutePolicy::resolve(&generation.edge, |key| match key {
        "roles" => roles.as_deref(),
        "issuer" | "signed_proxy" => params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()),
        _ => None,
    });
    let request_headers = flatten(&headers);
    let client = client_label(
        ["x-real-ip", "x-forwarded-for"].iter().find_map(|h| request_headers.get(*h)).map(String::as_str),
    );
    let input = VerifyInput {
        token: "",
        headers: &request_headers,
        required_roles: &policy.roles,
        issuer: &policy.issuer,
        require_signed_proxy: policy.require_signed_proxy,
        client: &client,
        adapter: crate::metrics::Adapter::ForwardAuth,
    };
    let cx = crate::otel::server_span("forward-auth", |k| request_headers.get(k).map(String::as_str));
    let result = generation.core.verify(input).with_context(cx.clone()).await;
    crate::otel::finish(
        &cx,
        result.as_ref().ok().map(|v| &*v.identity.issuer),
        result.as_ref().err().map(AuthError::reason),
    );
    match result {
        Ok(v) => {
            let mut resp = StatusCode::OK.into_response();
            let h = resp.headers_mut();
            for (name, value) in identity_headers(&generation.edge.headers, &v.identity) {
                // A value that is not a valid header (control characters in
                // a claim) is sent empty rather than passed on mangled; the
                // name was validated at load.
                let value = HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static(""));
                if let Ok(name) = axum::http::HeaderName::from_bytes(name.as_bytes()) {
                    h.insert(name, value);
                }
            }
            resp
        }
        Err(e) => denial(&e),
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

/// The received headers as the core's request view.
fn flatten(headers: &HeaderMap) -> HashMap<String, String> {
    let mut view = HashMap::new();
    for (name, value) in headers {
        if let Ok(value) = value.to_str() {
            crate::credential::add_header(&mut view, name.as_str(), value.to_string());
        }
    }
    view
}
