//! `[edge]` and `[edge.routes.<name>]`: the policy of Envoy ext_authz routes
//! and forward-auth requests, and the identity header names, read and
//! checked in the same pass as the rest of the config.

use super::read::{Reader, Section};
use super::{ExchangeConfig, IssuerConfig};
use std::collections::BTreeSet;
use toml::{Table, Value};

/// Names of the identity headers the edge adapters (ext_authz,
/// forward-auth) set on allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityHeaderNames {
    /// `edge.subject_header`: default `x-authgate-subject`.
    pub subject: String,
    /// `edge.email_header`: default `x-authgate-email`.
    pub email: String,
    /// `edge.roles_header`: default `x-authgate-roles` (comma-separated).
    pub roles: String,
    /// `edge.issuer_header`: default `x-authgate-issuer`.
    pub issuer: String,
    /// `edge.claims_header`: default `x-authgate-claims`: the app's claims
    /// from the user store as base64url (no padding) of a JSON object;
    /// empty when there are none.
    pub claims: String,
}

impl Default for IdentityHeaderNames {
    fn default() -> Self {
        Self {
            subject: "x-authgate-subject".into(),
            email: "x-authgate-email".into(),
            roles: "x-authgate-roles".into(),
            issuer: "x-authgate-issuer".into(),
            claims: "x-authgate-claims".into(),
        }
    }
}

/// What one edge request must satisfy, and what allow does: the `[edge]`
/// defaults, or one `[edge.routes.<name>]` (each key absent there takes the
/// `[edge]` value). Resolved whole at load time; nothing a client sends can
/// change it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePolicy {
    /// `issuer`: default none (the token is routed as for Verify).
    pub issuer: Option<String>,
    /// `roles`: default none; any-of.
    pub roles: Vec<String>,
    /// `signed_proxy = "required" | "optional"`: default optional. Any other
    /// value is a config error (never a weaker policy).
    pub require_signed_proxy: bool,
    /// `exchange_audience`: default none. When set, allowed requests get a
    /// token minted for this audience: ext_authz puts it in the upstream
    /// request's `authorization`; forward-auth returns it as
    /// `authorization` for the proxy to forward.
    pub exchange_audience: Option<String>,
    /// `remove_headers` (ext_authz only): default `["authorization"]`.
    pub remove_headers: Vec<String>,
}

impl Default for RoutePolicy {
    fn default() -> Self {
        Self {
            issuer: None,
            roles: Vec::new(),
            require_signed_proxy: false,
            exchange_audience: None,
            remove_headers: vec!["authorization".into()],
        }
    }
}

/// `[edge]`: the policy of Envoy ext_authz routes and forward-auth requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeConfig {
    /// The `[edge]` keys: the policy of `/forward-auth` and of ext_authz
    /// routes that name no `route`.
    pub default: RoutePolicy,
    /// `[edge.routes.<name>]`: default none. Served at
    /// `/forward-auth/<name>` and selected in Envoy by the
    /// `context_extensions` key `route`.
    pub routes: std::collections::BTreeMap<String, RoutePolicy>,
    /// Identity header names.
    pub headers: IdentityHeaderNames,
    /// `strip_cookies` (ext_authz only): default `["nf_jwt", "nf_refresh"]`.
    /// On allow, the `cookie` header reaches the upstream without these
    /// cookies (the user's Netlify tokens stop at the edge); other cookies
    /// are kept. `[]` passes every cookie.
    pub strip_cookies: Vec<String>,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            default: RoutePolicy::default(),
            routes: std::collections::BTreeMap::new(),
            headers: IdentityHeaderNames::default(),
            strip_cookies: vec!["nf_jwt".into(), "nf_refresh".into()],
        }
    }
}

pub(super) fn read_edge(
    r: &mut Reader<'_>,
    table: Option<&Table>,
    issuers: &[IssuerConfig],
    exchange: Option<&ExchangeConfig>,
    have_signed_proxy: bool,
) -> EdgeConfig {
    let mut s = Section::new("edge", table);
    let d = EdgeConfig::default();
    let known = RouteKnown { issuers, exchange, have_signed_proxy };
    let default = read_route(r, &mut s, &d.default, &known);
    let mut routes = std::collections::BTreeMap::new();
    if let Some(t) = s.table(r, "routes") {
        for (name, v) in t {
            let Value::Table(route) = v else {
                r.errors.push(format!("edge.routes.{name} must be a table"));
                continue;
            };
            if !is_route_name(name) {
                r.errors.push(format!(
                    "edge.routes.{name}: a route name is 1 to 64 of a-z, 0-9, `-` and `_` (it is a URL path segment)"
                ));
            }
            let mut rs = Section::new(&format!("edge.routes.{name}"), Some(route));
            routes.insert(name.clone(), read_route(r, &mut rs, &default, &known));
            rs.finish(r);
        }
    }
    let strip_cookies = s.strings(r, "strip_cookies").unwrap_or(d.strip_cookies);
    if let Some(c) = strip_cookies.iter().find(|c| c.is_empty() || c.contains([';', '=', ' ', ','])) {
        r.errors.push(format!("edge.strip_cookies: `{c}` is not a cookie name"));
    }
    let mut header = |key: &str, default: String| {
        let name = s.parsed(r, key, None, None, |v| Ok(v.to_ascii_lowercase())).unwrap_or(default);
        let valid = !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !matches!(name.as_str(), "authorization" | "cookie" | "host" | "x-nf-sign");
        if !valid {
            r.errors.push(format!("edge.{key} `{name}` is not a usable header name"));
        }
        name
    };
    let headers = IdentityHeaderNames {
        subject: header("subject_header", d.headers.subject),
        email: header("email_header", d.headers.email),
        roles: header("roles_header", d.headers.roles),
        issuer: header("issuer_header", d.headers.issuer),
        claims: header("claims_header", d.headers.claims),
    };
    let names = [&headers.subject, &headers.email, &headers.roles, &headers.issuer, &headers.claims];
    if names.iter().collect::<BTreeSet<_>>().len() != names.len() {
        r.errors.push("edge: the five identity header names must differ".into());
    }
    s.finish(r);
    EdgeConfig { default, routes, headers, strip_cookies }
}

/// True for a usable `[edge.routes.<name>]` name: one URL path segment.
pub fn is_route_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// What a route's values are checked against.
struct RouteKnown<'a> {
    issuers: &'a [IssuerConfig],
    exchange: Option<&'a ExchangeConfig>,
    have_signed_proxy: bool,
}

/// The policy keys of `[edge]` or one `[edge.routes.<name>]`; an absent key
/// takes `base`'s value.
fn read_route(
    r: &mut Reader<'_>,
    s: &mut Section<'_>,
    base: &RoutePolicy,
    known: &RouteKnown<'_>,
) -> RoutePolicy {
    // An empty name clears the issuer: the token is routed as for Verify.
    let issuer = match s.parsed(r, "issuer", None, None, |v| Ok(v.to_string())) {
        Some(name) if name.is_empty() => None,
        Some(name) => Some(name),
        None => base.issuer.clone(),
    };
    if let Some(issuer) = &issuer
        && !known.issuers.iter().any(|i| &i.name == issuer)
    {
        r.errors.push(format!("{} `{issuer}` is not a configured issuer", s.key("issuer")));
    }
    let roles = s.strings(r, "roles").unwrap_or_else(|| base.roles.clone());
    if let Some(role) = roles.iter().find(|role| role.is_empty()) {
        r.errors.push(format!("{}: `{role}` is not a role name", s.key("roles")));
    }
    let require_signed_proxy = s
        .parsed(r, "signed_proxy", None, None, |v| match v {
            "required" => Ok(true),
            "optional" => Ok(false),
            _ => Err("must be `required` or `optional`".to_string()),
        })
        .unwrap_or(base.require_signed_proxy);
    if require_signed_proxy && !known.have_signed_proxy {
        r.errors.push(format!(
            "{} = \"required\" but no [signed_proxy] secret is configured",
            s.key("signed_proxy")
        ));
    }
    let exchange_audience = match s.parsed(r, "exchange_audience", None, None, |v| Ok(v.to_string())) {
        Some(a) if a.is_empty() => None,
        Some(a) => Some(a),
        None => base.exchange_audience.clone(),
    };
    if let Some(a) = &exchange_audience
        && !known.exchange.is_some_and(|x| x.audiences.iter().any(|c| &c.name == a))
    {
        r.errors.push(format!(
            "{} `{a}` is not a configured [[exchange.audiences]] name",
            s.key("exchange_audience")
        ));
    }
    let remove_headers = s
        .strings(r, "remove_headers")
        .map(|v| v.into_iter().map(|h| h.to_ascii_lowercase()).collect())
        .unwrap_or_else(|| base.remove_headers.clone());
    RoutePolicy { issuer, roles, require_signed_proxy, exchange_audience, remove_headers }
}
