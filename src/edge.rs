//! The policy of one edge request (Envoy ext_authz route or forward-auth
//! URL): `[edge]` defaults overridden key by key by what the proxy operator
//! wrote for the route (`context_extensions`, or the forward-auth query).
//! Transport-free; the adapters only collect the overrides. Also the HTTP
//! form of a denial and the logged client address, shared by both edge
//! adapters.

use crate::config::{EdgeConfig, IdentityHeaderNames};
use crate::error::AuthError;
use crate::identity::Identity;

/// What one edge request must satisfy, and what allow does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePolicy {
    /// Issuer name, or empty to route by the token.
    pub issuer: String,
    /// Any-of roles.
    pub roles: Vec<String>,
    /// A valid `x-nf-sign` must accompany the request.
    pub require_signed_proxy: bool,
    /// Mint a token for this audience and send it upstream.
    pub exchange_audience: Option<String>,
    /// Request headers the upstream must not see.
    pub remove_headers: Vec<String>,
}

impl RoutePolicy {
    /// Resolves a route's policy: `lookup(key)` returns the operator's value
    /// for `issuer`, `roles`, `signed_proxy`, `exchange_audience` or
    /// `remove_headers` (lists comma-separated); absent keys take the
    /// configured default. An empty `roles` or `exchange_audience` clears the
    /// default for that route.
    pub fn resolve<'a>(defaults: &EdgeConfig, lookup: impl Fn(&str) -> Option<&'a str>) -> Self {
        let list =
            |v: &str| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
        Self {
            issuer: lookup("issuer").map_or_else(|| defaults.issuer.clone(), str::to_owned),
            roles: lookup("roles").map_or_else(|| defaults.roles.clone(), list),
            require_signed_proxy: lookup("signed_proxy")
                .map_or(defaults.require_signed_proxy, |v| v == "required"),
            exchange_audience: match lookup("exchange_audience") {
                Some("") => None,
                Some(a) => Some(a.to_owned()),
                None => defaults.exchange_audience.clone(),
            },
            remove_headers: lookup("remove_headers").map_or_else(|| defaults.remove_headers.clone(), list),
        }
    }
}

/// The identity headers for an allowed request, in the configured names.
/// Every one is always set (empty when the identity lacks the value), so a
/// client's copy can never survive next to ours.
pub fn identity_headers<'n>(names: &'n IdentityHeaderNames, id: &Identity) -> [(&'n str, String); 4] {
    [
        (names.subject.as_str(), id.subject.clone()),
        (names.email.as_str(), id.email.clone()),
        (names.roles.as_str(), id.roles.join(",")),
        (names.issuer.as_str(), id.issuer.to_string()),
    ]
}

/// The denial's reason, on every HTTP denial.
pub const REASON_HEADER: &str = "x-authgate-reason";

/// Seconds a client should wait after a 503 without a better hint.
const DEFAULT_RETRY_AFTER_SECS: u64 = 5;

/// Longest client description logged (a forwarded-for list is the client's
/// own text).
const MAX_CLIENT_CHARS: usize = 200;

/// The client address for the decision log, bounded.
pub fn client_label(candidate: Option<&str>) -> String {
    candidate.map(|c| c.chars().take(MAX_CLIENT_CHARS).collect()).unwrap_or_default()
}

/// The HTTP form of a denial, shared by forward-auth and ext_authz: status,
/// headers, JSON body.
pub fn denial_parts(e: &AuthError) -> (u16, Vec<(&'static str, String)>, String) {
    let status = e.http_status();
    let error = match status {
        401 if matches!(e, AuthError::MissingCredential) => "unauthorized",
        401 => "invalid_token",
        403 => "insufficient_scope",
        400 => "invalid_request",
        503 => "temporarily_unavailable",
        _ => "server_error",
    };
    let body = serde_json::json!({"error": error, "reason": e.reason()}).to_string();
    let mut headers =
        vec![("content-type", "application/json".to_string()), (REASON_HEADER, e.reason().to_string())];
    if status == 401 {
        // RFC 6750 §3: no error code when the request simply lacked a credential.
        let challenge = if matches!(e, AuthError::MissingCredential) {
            "Bearer realm=\"authgate\"".to_string()
        } else {
            "Bearer realm=\"authgate\", error=\"invalid_token\"".to_string()
        };
        headers.push(("www-authenticate", challenge));
    }
    if status == 503 {
        let secs = match e {
            AuthError::UpstreamRateLimited { retry_after_secs: Some(s) } => *s,
            _ => DEFAULT_RETRY_AFTER_SECS,
        };
        headers.push(("retry-after", secs.to_string()));
    }
    (status, headers, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn route_values_override_defaults_key_by_key() {
        let defaults = EdgeConfig {
            issuer: "site".into(),
            roles: vec!["member".into()],
            require_signed_proxy: true,
            exchange_audience: Some("orders".into()),
            ..EdgeConfig::default()
        };
        type Case = (&'static str, &'static [(&'static str, &'static str)], RoutePolicy);
        let cases: [Case; 4] = [
            (
                "no route values: the defaults",
                &[],
                RoutePolicy {
                    issuer: "site".into(),
                    roles: vec!["member".into()],
                    require_signed_proxy: true,
                    exchange_audience: Some("orders".into()),
                    remove_headers: vec!["authorization".into()],
                },
            ),
            (
                "roles replaced, the rest default",
                &[("roles", "admin, editor")],
                RoutePolicy {
                    issuer: "site".into(),
                    roles: vec!["admin".into(), "editor".into()],
                    require_signed_proxy: true,
                    exchange_audience: Some("orders".into()),
                    remove_headers: vec!["authorization".into()],
                },
            ),
            (
                "empty values clear roles and exchange; optional proxy",
                &[("roles", ""), ("exchange_audience", ""), ("signed_proxy", "optional")],
                RoutePolicy {
                    issuer: "site".into(),
                    roles: vec![],
                    require_signed_proxy: false,
                    exchange_audience: None,
                    remove_headers: vec!["authorization".into()],
                },
            ),
            (
                "issuer and removed headers per route",
                &[("issuer", "other"), ("remove_headers", "cookie,authorization")],
                RoutePolicy {
                    issuer: "other".into(),
                    roles: vec!["member".into()],
                    require_signed_proxy: true,
                    exchange_audience: Some("orders".into()),
                    remove_headers: vec!["cookie".into(), "authorization".into()],
                },
            ),
        ];
        for (description, route, want) in cases {
            let route: HashMap<&str, &str> = route.iter().copied().collect();
            let got = RoutePolicy::resolve(&defaults, |k| route.get(k).copied());
            assert_eq!(got, want, "{description}");
        }
    }
}
