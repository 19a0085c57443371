//! The policy of one edge request (Envoy ext_authz route or forward-auth
//! URL) and what an allow sends on. Transport-free; the adapters only
//! collect the route's name or its `context_extensions`. Also the HTTP form
//! of a denial and the logged client address, shared by both edge adapters.
//!
//! Policy comes only from the operator: `[edge]` and `[edge.routes.<name>]`
//! in authgate's config, selected by the forward-auth path
//! (`/forward-auth/<name>`) or by Envoy's per-route `context_extensions`
//! (written in Envoy's config, never by a client). A value authgate does not
//! understand is an `invalid_request` denial, never a weaker policy.

pub use crate::config::RoutePolicy;
use crate::config::{EdgeConfig, IdentityHeaderNames};
use crate::core::error::AuthError;
use crate::core::headers::Headers;
use crate::core::identity::Identity;
use std::collections::HashMap;

/// Request headers authgate reads, in both edge adapters: a value that is
/// not visible ASCII is a 400, never skipped (a skipped second
/// `Authorization` would hide an ambiguity, a skipped `x-nf-sign` would look
/// absent). Other headers are none of authgate's business.
pub fn is_read_header(name: &str) -> bool {
    ["authorization", "cookie", "x-nf-sign", "x-forwarded-for", "x-real-ip", "forwarded"]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h))
}

/// The refusal of a read header whose value is not visible ASCII.
pub const UNREADABLE_HEADER: AuthError =
    AuthError::InvalidRequest("a credential or forwarding header is not visible ASCII");

/// The `context_extensions` keys ext_authz understands.
const EXTENSION_KEYS: [&str; 6] =
    ["route", "issuer", "roles", "signed_proxy", "exchange_audience", "remove_headers"];

impl EdgeConfig {
    /// The policy of `/forward-auth` (`None`) or `/forward-auth/<name>`.
    pub fn route(&self, name: Option<&str>) -> Result<&RoutePolicy, AuthError> {
        match name {
            None => Ok(&self.default),
            Some(name) => self.routes.get(name).ok_or(AuthError::InvalidRequest("unknown edge route")),
        }
    }

    /// The policy an Envoy route asks for: `route` names a configured route
    /// (else `[edge]`), and the other keys override it one by one (lists
    /// comma-separated; an empty `roles` or `exchange_audience` clears it).
    /// An unknown key or value is an error.
    pub fn route_from_extensions(&self, ext: &HashMap<String, String>) -> Result<RoutePolicy, AuthError> {
        if ext.keys().any(|k| !EXTENSION_KEYS.contains(&k.as_str())) {
            return Err(AuthError::InvalidRequest("unknown context_extensions key"));
        }
        let mut policy = self.route(ext.get("route").map(String::as_str))?.clone();
        let list = |v: &str| -> Vec<String> {
            v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
        };
        if let Some(v) = ext.get("issuer") {
            policy.issuer = (!v.is_empty()).then(|| v.clone());
        }
        if let Some(v) = ext.get("roles") {
            policy.roles = list(v);
        }
        if let Some(v) = ext.get("signed_proxy") {
            policy.require_signed_proxy = match v.as_str() {
                "required" => true,
                "optional" => false,
                _ => return Err(AuthError::InvalidRequest("signed_proxy must be `required` or `optional`")),
            };
        }
        if let Some(v) = ext.get("exchange_audience") {
            policy.exchange_audience = (!v.is_empty()).then(|| v.clone());
        }
        if let Some(v) = ext.get("remove_headers") {
            policy.remove_headers = list(v).into_iter().map(|h| h.to_ascii_lowercase()).collect();
        }
        Ok(policy)
    }
}

/// The identity headers of an allowed request, in the configured names,
/// with values safe to send ([`header_value`]); roles that cannot be one
/// item of a comma-separated list are left out (and counted by the caller
/// from `omitted`). Every header is always set, so a client's copy can never
/// survive next to ours; an identity value with a control character refuses
/// the request instead.
pub fn identity_headers<'n>(
    names: &'n IdentityHeaderNames,
    id: &Identity,
) -> Result<IdentityHeaders<'n>, AuthError> {
    check_header_safe(id)?;
    let field = |what: &'static str, v: &str| header_value(v).ok_or(AuthError::UnsafeIdentityValue(what));
    let mut roles = Vec::with_capacity(id.roles.len());
    let mut omitted = 0;
    for role in &id.roles {
        match header_value(role) {
            Some(v) if !role.contains(',') => roles.push(v),
            _ => omitted += 1,
        }
    }
    let headers = vec![
        (names.subject.as_str(), field("subject", &id.subject)?),
        (names.email.as_str(), field("email", &id.email)?),
        (names.roles.as_str(), roles.join(",")),
        (names.issuer.as_str(), field("issuer", &id.issuer)?),
        (names.claims.as_str(), claims_value(&id.claims)),
    ];
    Ok(IdentityHeaders { values: headers, omitted_roles: omitted })
}

/// The app's claims for a header: base64url of the JSON object (header-safe
/// whatever the claims hold), empty when there are none.
fn claims_value(claims: &serde_json::Map<String, serde_json::Value>) -> String {
    use base64::Engine;
    if claims.is_empty() {
        return String::new();
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::Value::Object(claims.clone()).to_string())
}

/// The identity headers of one allow.
#[derive(Debug)]
pub struct IdentityHeaders<'n> {
    /// (name, value) pairs, values header-safe.
    pub values: Vec<(&'n str, String)>,
    /// Roles left out of the roles header.
    pub omitted_roles: usize,
}

/// The identity can travel in headers: a subject, and no control character
/// in the subject, e-mail or issuer. The core checks this for edge requests
/// so that the decision line records the refusal.
pub fn check_header_safe(id: &Identity) -> Result<(), AuthError> {
    if id.subject.is_empty() {
        return Err(AuthError::UnsafeIdentityValue("empty subject"));
    }
    // Visible ASCII holds no control character; only other text is
    // decoded to look for one (C1 controls are characters, not bytes).
    let control =
        |v: &str| !crate::core::headers::all_visible(v.as_bytes(), false) && v.chars().any(char::is_control);
    for (what, v) in [("subject", &*id.subject), ("email", &*id.email), ("issuer", &*id.issuer)] {
        if control(v) {
            return Err(AuthError::UnsafeIdentityValue(what));
        }
    }
    Ok(())
}

/// Logs and counts roles left out of the roles header (never their value:
/// it may hold the very characters that made it unfit).
pub fn report_omitted_roles(metrics: &crate::obs::metrics::Metrics, omitted: usize) {
    tracing::warn!(omitted, "roles with a comma or a control character left out of the roles header");
    for _ in 0..omitted {
        metrics.protection(crate::obs::metrics::Protection::RoleOmittedFromHeader);
    }
}

/// A value as an HTTP header value: `None` when it holds a control
/// character (CR, LF, NUL, DEL, C1 controls...), which no header may carry;
/// otherwise printable ASCII as is and every other byte (UTF-8 of non-ASCII
/// text) and `%` percent-encoded (RFC 3986), so `ü` travels as `%C3%BC`.
pub fn header_value(value: &str) -> Option<String> {
    // The usual case, checked in one pass: nothing to refuse or encode.
    if crate::core::headers::all_visible(value.as_bytes(), false) && !value.contains('%') {
        return Some(value.to_owned());
    }
    if value.chars().any(char::is_control) {
        return None;
    }
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    Some(out)
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// The `cookie` header without the cookies named in `strip`; `None` when
/// nothing was removed (the header can stay as it is). Cookies are
/// `name=value` pairs separated by `;`.
pub fn strip_cookies(header: &str, strip: &[String]) -> Option<String> {
    let mut removed = false;
    let kept: Vec<&str> = header
        .split(';')
        .map(str::trim)
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(n, _)| n).trim();
            let drop = strip.iter().any(|s| s == name);
            removed |= drop;
            !drop && !pair.is_empty()
        })
        .collect();
    removed.then(|| kept.join("; "))
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
    let Some(c) = candidate else { return String::new() };
    // No more bytes than the limit in characters: nothing to cut (and no
    // per-character walk, which a request paid on every call).
    if c.len() <= MAX_CLIENT_CHARS {
        return c.to_owned();
    }
    c.chars().take(MAX_CLIENT_CHARS).collect()
}

/// The end user's address: the entry `hops` places from the right of
/// `X-Forwarded-For` (every trusted proxy appends the address it received
/// the request from, so entries further left are the client's own text and
/// never read), else `fallback` (Envoy's `attributes.source`, or the TCP
/// peer). Bounded for logs; it keys the per-client limits. `None` when
/// nothing tells.
pub fn client_address(headers: &Headers, hops: usize, fallback: Option<&str>) -> Option<String> {
    let joined = if hops > 0 { headers.joined("x-forwarded-for", ",") } else { None };
    let forwarded = joined
        .as_deref()
        .map(|list| list.split(',').map(str::trim).filter(|a| !a.is_empty()).collect::<Vec<_>>())
        .filter(|entries| !entries.is_empty())
        .map(|entries| entries[entries.len().saturating_sub(hops)]);
    forwarded.or(fallback).map(|c| client_label(Some(c)))
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
        429 => "too_many_requests",
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
    if status == 503 || status == 429 {
        let secs = match e {
            AuthError::UpstreamRateLimited { retry_after_secs: Some(s) } => *s,
            AuthError::ClientBusy => 1,
            _ => DEFAULT_RETRY_AFTER_SECS,
        };
        headers.push(("retry-after", secs.to_string()));
    }
    (status, headers, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge() -> EdgeConfig {
        let mut edge = EdgeConfig {
            default: RoutePolicy {
                issuer: Some("site".into()),
                roles: vec!["member".into()],
                require_signed_proxy: true,
                exchange_audience: Some("orders".into()),
                ..RoutePolicy::default()
            },
            ..EdgeConfig::default()
        };
        edge.routes
            .insert("admin".into(), RoutePolicy { roles: vec!["admin".into()], ..edge.default.clone() });
        edge
    }

    #[test]
    fn context_extensions_select_and_override() {
        let edge = edge();
        type Case =
            (&'static str, &'static [(&'static str, &'static str)], Result<RoutePolicy, &'static str>);
        let d = edge.default.clone();
        let cases: [Case; 9] = [
            ("no values: the defaults", &[], Ok(d.clone())),
            (
                "a named route",
                &[("route", "admin")],
                Ok(RoutePolicy { roles: vec!["admin".into()], ..d.clone() }),
            ),
            (
                "roles replaced, the rest default",
                &[("roles", "admin, editor")],
                Ok(RoutePolicy { roles: vec!["admin".into(), "editor".into()], ..d.clone() }),
            ),
            (
                "empty values clear roles and exchange; optional proxy",
                &[("roles", ""), ("exchange_audience", ""), ("signed_proxy", "optional")],
                Ok(RoutePolicy {
                    roles: vec![],
                    exchange_audience: None,
                    require_signed_proxy: false,
                    ..d.clone()
                }),
            ),
            (
                "issuer and removed headers",
                &[("issuer", "other"), ("remove_headers", "Cookie,authorization")],
                Ok(RoutePolicy {
                    issuer: Some("other".into()),
                    remove_headers: vec!["cookie".into(), "authorization".into()],
                    ..d.clone()
                }),
            ),
            ("signed_proxy in another case", &[("signed_proxy", "Required")], Err("invalid_request")),
            ("signed_proxy true", &[("signed_proxy", "true")], Err("invalid_request")),
            ("unknown key", &[("role", "admin")], Err("invalid_request")),
            ("unknown route", &[("route", "nope")], Err("invalid_request")),
        ];
        for (description, ext, want) in cases {
            let ext: HashMap<String, String> =
                ext.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let got = edge.route_from_extensions(&ext).map_err(|e| e.reason());
            assert_eq!(got, want, "{description}");
        }
    }

    #[test]
    fn client_addresses_are_read_from_the_right() {
        type Case<'a> = (&'a str, Option<&'a str>, usize, Option<&'a str>, Option<&'a str>);
        let cases: [Case; 8] = [
            ("one proxy appended the client", Some("203.0.113.9"), 1, Some("10.0.0.2"), Some("203.0.113.9")),
            (
                "a client-written prefix is skipped",
                Some("1.1.1.1, 2.2.2.2, 203.0.113.9"),
                1,
                None,
                Some("203.0.113.9"),
            ),
            ("two trusted proxies", Some("1.1.1.1, 203.0.113.9, 10.0.0.7"), 2, None, Some("203.0.113.9")),
            // Each proxy may add its own header line instead of appending:
            // the lines are one list, in order.
            ("two header lines", Some("1.1.1.1, 203.0.113.9 | 10.0.0.7"), 2, None, Some("203.0.113.9")),
            ("fewer entries than hops: the leftmost", Some("203.0.113.9"), 3, None, Some("203.0.113.9")),
            ("hops 0 ignores the header", Some("1.1.1.1"), 0, Some("10.0.0.2"), Some("10.0.0.2")),
            ("no header: the fallback", None, 1, Some("10.0.0.2"), Some("10.0.0.2")),
            ("nothing known", None, 1, None, None),
        ];
        for (description, xff, hops, fallback, want) in cases {
            let mut headers = Headers::new();
            for value in xff.iter().flat_map(|v| v.split(" | ")) {
                headers.add("X-Forwarded-For", value);
            }
            assert_eq!(client_address(&headers, hops, fallback).as_deref(), want, "{description}");
        }
    }

    #[test]
    fn header_values() {
        let cases: [(&str, &str, Option<&str>); 8] = [
            ("plain ASCII", "m@example.com", Some("m@example.com")),
            ("unicode e-mail is percent-encoded", "jürgen@example.com", Some("j%C3%BCrgen@example.com")),
            ("a percent sign is encoded too", "50%", Some("50%25")),
            ("CR LF refused", "a\r\nx-admin: 1", None),
            ("NUL refused", "a\0", None),
            ("DEL refused", "a\u{7f}", None),
            ("C1 control refused", "a\u{85}", None),
            ("bidi override is encoded, not refused", "a\u{202e}", Some("a%E2%80%AE")),
        ];
        for (description, value, want) in cases {
            assert_eq!(header_value(value).as_deref(), want, "{description}");
        }
    }

    #[test]
    fn cookies_are_stripped_by_name() {
        let strip = ["nf_jwt".to_string(), "nf_refresh".to_string()];
        let cases: [(&str, &str, Option<&str>); 4] = [
            ("nothing to strip", "a=1; b=2", None),
            ("both tokens out, others kept", "a=1; nf_jwt=x.y.z; b=2; nf_refresh=r", Some("a=1; b=2")),
            ("only tokens", "nf_jwt=x", Some("")),
            ("a similar name stays", "nf_jwt2=x; nf_jwt=y", Some("nf_jwt2=x")),
        ];
        for (description, header, want) in cases {
            assert_eq!(strip_cookies(header, &strip).as_deref(), want, "{description}");
        }
    }

    #[test]
    fn client_labels_are_bounded_in_characters() {
        let cases = [
            ("absent", None, String::new()),
            ("an address", Some("203.0.113.7"), "203.0.113.7".to_string()),
            ("exactly the limit", Some(&*"a".repeat(200)), "a".repeat(200)),
            ("one over, ASCII", Some(&*"a".repeat(201)), "a".repeat(200)),
            ("multi-byte: 150 characters, 300 bytes", Some(&*"é".repeat(150)), "é".repeat(150)),
            ("multi-byte over the limit", Some(&*"é".repeat(250)), "é".repeat(200)),
        ];
        for (what, candidate, want) in cases {
            assert_eq!(client_label(candidate), want, "{what}");
        }
    }

    #[test]
    fn roles_that_do_not_fit_the_header_are_left_out() {
        let id = Identity {
            subject: "u1".into(),
            roles: vec!["member".into(), "member,admin".into(), "ops\n".into(), "édition".into()].into(),
            issuer: "site".into(),
            ..Identity::default()
        };
        let names = IdentityHeaderNames::default();
        let headers = identity_headers(&names, &id).unwrap();
        assert_eq!(headers.values[2].1, "member,%C3%A9dition");
        assert_eq!(headers.omitted_roles, 2);
        let bad = Identity { subject: "u1\r\nx".into(), ..id.clone() };
        assert_eq!(identity_headers(&names, &bad).unwrap_err().reason(), "unsafe_identity_value");
        let empty = Identity { subject: "".into(), ..id };
        assert!(identity_headers(&names, &empty).is_err());
    }
}
