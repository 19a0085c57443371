//! `[[issuers]]`: each issuer's kind and settings, read and checked.

use super::read::{Reader, Section, parse_bounded, parse_duration, parse_upstream_url, read_secret};
use super::store::read_issuer_store;
use super::{
    ClaimPath, DEFAULT_JWKS_ROLE_CLAIMS, DEFAULT_LEEWAY, DEFAULT_ROLE_CLAIMS, ENV_ISSUER_PREFIX,
    IssuerStoreConfig, JwsAlg, MAX_LEEWAY, Secret,
};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;
use toml::{Table, Value};

/// The kinds of issuer authgate can verify, with their own settings.
#[derive(Debug, Clone, PartialEq)]
pub enum IssuerKind {
    /// `kind = "hs256"` (default): HMAC-SHA256 with shared secrets (GoTrue /
    /// Netlify Identity with a known secret, or any service that signs with
    /// a shared secret).
    Hs256(Hs256Settings),
    /// `kind = "netlify_identity"`: hosted Netlify Identity, whose secret
    /// nobody has, checked by GoTrue itself (`GET <identity_url>/user`).
    NetlifyIdentity(NetlifyIdentitySettings),
    /// `kind = "jwks"`: asymmetric keys published as a JWKS (Auth0,
    /// Supabase, Okta, Keycloak, any OpenID provider) or given as files.
    Jwks(JwksSettings),
}

impl IssuerKind {
    /// The `kind` value as written in config.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Hs256(_) => "hs256",
            Self::NetlifyIdentity(_) => "netlify_identity",
            Self::Jwks(_) => "jwks",
        }
    }
}

/// Where a `jwks` issuer's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Neither `jwks_url` nor a file: OpenID discovery at
    /// `<iss>/.well-known/openid-configuration` → `jwks_uri`.
    Discovery(String),
    /// `jwks_url`.
    Url(String),
    /// `jwks_file`: the document, read at load.
    JwksDocument(String),
    /// `public_key_files`: (kid = file stem, SPKI PEM text), read at load.
    Pems(Vec<(String, String)>),
}

impl KeySource {
    /// True when keys are fetched over HTTP (and refreshed).
    pub fn is_remote(&self) -> bool {
        matches!(self, Self::Discovery(_) | Self::Url(_))
    }
}

/// Settings of a `jwks` issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksSettings {
    /// `jwks_url` | `jwks_file` | `public_key_files`; default discovery.
    pub source: KeySource,
    /// `ca_file`: PEM CAs trusted (besides the system's) for discovery and
    /// JWKS fetches, e.g. a Kubernetes cluster's CA for its API server's
    /// `/openid/v1/jwks`. Read at load. Default none.
    pub ca_pem: Option<Vec<u8>>,
    /// `bearer_token_file`: a token sent as `Authorization: Bearer` with
    /// each discovery and JWKS fetch, read from the file at every fetch
    /// (projected service-account tokens rotate). Default none.
    pub bearer_token_file: Option<PathBuf>,
    /// `algorithms`: default `["RS256", "ES256", "EdDSA"]` (`PS256` may be
    /// added); intersected with each key's own type and `alg`.
    pub algorithms: Vec<JwsAlg>,
    /// `required`: default true. Readiness waits for this issuer's keys.
    pub required: bool,
    /// `fetch_timeout`: default 5s, per discovery or JWKS request.
    pub fetch_timeout: Duration,
    /// `min_refresh_interval`: default 1m. `Cache-Control: max-age` is
    /// clamped to [min, max]; without it, `max_refresh_interval` applies.
    pub min_refresh_interval: Duration,
    /// `max_refresh_interval`: default 1h.
    pub max_refresh_interval: Duration,
    /// `refetch_cooldown`: default 30s. At most one fetch for unknown kids
    /// per window, counted from the last fetch of any kind.
    pub refetch_cooldown: Duration,
    /// `max_staleness`: default 24h. Keys older than this (refreshes kept
    /// failing) are not used: `keys_unavailable` and not ready.
    pub max_staleness: Duration,
    /// `max_response_bytes`: default 256 KiB.
    pub max_response_bytes: usize,
    /// `require_claims`: default none. Claim name → exact string value
    /// (e.g. Supabase `role = "authenticated"`).
    pub require_claims: Vec<(String, String)>,
    /// `allow_anonymous`: default true. False refuses `is_anonymous: true`.
    pub allow_anonymous: bool,
}

/// Settings of an `hs256` issuer.
#[derive(Debug, Clone, PartialEq)]
pub struct Hs256Settings {
    /// `secret` / `secret_file` / `AUTHGATE_ISSUER_<NAME>_SECRET[_FILE]`:
    /// required, at least 16 bytes.
    pub secret: Secret,
    /// `previous_secret` / `previous_secret_file` / `..._PREVIOUS_SECRET[_FILE]`:
    /// optional, still accepted during a rotation. Default none.
    pub previous_secret: Option<Secret>,
    /// `allow_system_principal`: accept `sub` "0"/nil UUID (Netlify's
    /// operator token). Default false.
    pub allow_system_principal: bool,
}

/// Settings of a `netlify_identity` issuer (remote introspection).
#[derive(Debug, Clone, PartialEq)]
pub struct NetlifyIdentitySettings {
    /// `site_url` (the Identity base is `<site_url>/.netlify/identity`) or
    /// `identity_url` (the base itself: self-hosted GoTrue, tests). One is
    /// required. `https` unless the host is loopback.
    pub identity_url: String,
    /// `connect_timeout`: default 2s.
    pub connect_timeout: Duration,
    /// `timeout`: whole upstream call, default 5s.
    pub timeout: Duration,
    /// `max_concurrent_requests`: upstream calls in flight, default 32.
    pub max_concurrent_requests: usize,
    /// `max_concurrent_per_client`: uncached checks one client (end-user
    /// address, see `server.trusted_proxy_hops`) may have in flight,
    /// default 8 or `max_concurrent_requests` if lower; then `client_busy`.
    pub max_concurrent_per_client: usize,
    /// `queue_timeout`: wait for a free upstream slot, default 1s; then
    /// `upstream_busy`.
    pub queue_timeout: Duration,
    /// `cache_ttl`: longest life of a positive result, default 2m (a user
    /// deleted or a role removed at Netlify is seen after at most this).
    pub cache_ttl: Duration,
    /// `negative_cache_ttl`: life of a definitive rejection (401/404/400),
    /// default 10s; 0s disables. Outages are never cached.
    pub negative_cache_ttl: Duration,
    /// `cache_max_entries`: default 10000.
    pub cache_max_entries: u64,
    /// `cache_max_bytes`: approximate memory bound, default 16 MiB.
    pub cache_max_bytes: u64,
    /// `max_response_bytes`: larger `/user` answers are refused, default 64 KiB.
    pub max_response_bytes: usize,
}

/// One `[[issuers]]` entry. Equal entries verify alike: a reload keeps
/// the verifier (and its caches) of an issuer whose entry did not change.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuerConfig {
    /// `name`: required, unique, `[a-z0-9_-]+`. Reported as `Identity.issuer`.
    pub name: String,
    /// `kind` and its settings.
    pub kind: IssuerKind,
    /// `leeway`: clock skew allowed on `exp` and `nbf`. Default 30s, at most 300s.
    pub leeway: Duration,
    /// `audiences`: when non-empty, `aud` must contain one of them. Default
    /// empty (GoTrue often omits `aud`).
    pub audiences: Vec<String>,
    /// `iss`: when set, the `iss` claim must equal it, and tokens carrying it
    /// are routed here. Default unset (GoTrue writes no `iss`).
    pub expected_iss: Option<String>,
    /// `role_claims`: dotted claim paths holding role arrays (for
    /// `netlify_identity`, paths into the user GoTrue returns). Default
    /// `["app_metadata.roles", "app_metadata.authorization.roles"]`; never
    /// under `user_metadata`.
    pub role_claims: Vec<ClaimPath>,
    /// `default`: route tokens here when no issuer's `iss` matches. Default
    /// false; with a single issuer it is implied.
    pub default: bool,
    /// `require_signed_proxy`: this issuer's users must also come through
    /// the site's Netlify proxy (a valid `x-nf-sign`). Default false; needs
    /// `[signed_proxy]`.
    pub require_signed_proxy: bool,
    /// `roles_source`, `claims_from_store`, `webhook_*`: this issuer's use
    /// of `[store]` (default: none).
    pub store: IssuerStoreConfig,
}

impl IssuerConfig {
    /// The HS256 secret that signs tokens for this issuer (`authgate token`),
    /// if it has one.
    pub fn signing_secret(&self) -> Option<&Secret> {
        match &self.kind {
            IssuerKind::Hs256(h) => Some(&h.secret),
            IssuerKind::NetlifyIdentity(_) | IssuerKind::Jwks(_) => None,
        }
    }
}

/// Env var name part for an issuer: `netlify-prod` → `NETLIFY_PROD`.
pub fn issuer_env_name(issuer: &str) -> String {
    issuer.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect()
}

/// The `kind` key, before its settings are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Hs256,
    NetlifyIdentity,
    Jwks,
}

impl Kind {
    fn parse(v: &str) -> Result<Self, String> {
        match v {
            "hs256" => Ok(Self::Hs256),
            "netlify_identity" => Ok(Self::NetlifyIdentity),
            "jwks" => Ok(Self::Jwks),
            _ => Err("unknown kind (supported: hs256, netlify_identity, jwks)".to_string()),
        }
    }
}

/// One `[[issuers]]` (or `[[caller_issuers]]`: `list` names the array).
pub(super) fn read_issuer(
    r: &mut Reader<'_>,
    list: &str,
    index: usize,
    table: &Table,
) -> Option<IssuerConfig> {
    let mut s = Section::new(&format!("{list}[{index}]"), Some(table));
    let name = s.parsed(r, "name", None, None, |v| Ok(v.to_string()));
    let Some(name) = name else {
        r.errors.push(format!("{list}[{index}].name is required"));
        s.finish(r);
        return None;
    };
    s.label = format!("{list}[{index}] ({name})");
    if name.is_empty()
        || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        r.errors.push(format!("{}: name must match [a-z0-9_-]+", s.label));
    }
    let kind_name = s.parsed(r, "kind", None, None, Kind::parse).unwrap_or(Kind::Hs256);
    let expected_iss = s.parsed(r, "iss", None, None, |v| Ok(v.to_string()));
    if expected_iss.as_deref() == Some("") {
        r.errors.push(format!("{}.iss is empty: leave it out to accept tokens without `iss`", s.label));
    }
    let kind = match kind_name {
        Kind::NetlifyIdentity => read_identity_settings(r, &mut s).map(IssuerKind::NetlifyIdentity),
        Kind::Jwks => read_jwks_settings(r, &mut s, expected_iss.as_deref()).map(IssuerKind::Jwks),
        Kind::Hs256 => read_hs256_settings(r, &mut s, &name).map(IssuerKind::Hs256),
    };
    let leeway = s.parsed(r, "leeway", None, None, parse_duration).unwrap_or(DEFAULT_LEEWAY);
    if leeway > MAX_LEEWAY {
        r.errors.push(format!("{}.leeway must be at most 300s", s.label));
    }
    let audiences = s.strings(r, "audiences").unwrap_or_default();
    let default_roles: &[&str] =
        if kind_name == Kind::Jwks { &DEFAULT_JWKS_ROLE_CLAIMS } else { &DEFAULT_ROLE_CLAIMS };
    let role_claims = s
        .strings(r, "role_claims")
        .unwrap_or_else(|| default_roles.iter().map(|p| p.to_string()).collect())
        .iter()
        .filter_map(|p| ClaimPath::parse(p).map_err(|e| r.errors.push(format!("{}: {e}", s.label))).ok())
        .collect();
    let default = s.boolean(r, "default").unwrap_or(false);
    let require_signed_proxy = s.boolean(r, "require_signed_proxy").unwrap_or(false);
    let store = read_issuer_store(r, &mut s, &name);
    if matches!(kind, Some(IssuerKind::NetlifyIdentity(_))) && expected_iss.is_some() {
        r.errors
            .push(format!("{}.iss: netlify_identity tokens carry no `iss` (GoTrue writes none)", s.label));
    }
    if kind_name == Kind::Jwks {
        if expected_iss.is_none() {
            r.errors
                .push(format!("{}.iss is required for kind jwks (tokens must name their issuer)", s.label));
        }
        if audiences.is_empty() {
            r.errors.push(format!(
                "{}.audiences is required for kind jwks (a token for another API of the same provider must not pass)",
                s.label
            ));
        }
    }
    s.finish(r);
    Some(IssuerConfig {
        name,
        kind: kind?,
        leeway,
        audiences,
        expected_iss,
        role_claims,
        default,
        require_signed_proxy,
        store,
    })
}

pub(super) fn read_hs256_settings(
    r: &mut Reader<'_>,
    s: &mut Section<'_>,
    name: &str,
) -> Option<Hs256Settings> {
    let env = format!("{ENV_ISSUER_PREFIX}{}", issuer_env_name(name));
    let secret = read_secret(r, s, "secret", &format!("{env}_SECRET"));
    let previous_secret = read_secret(r, s, "previous_secret", &format!("{env}_PREVIOUS_SECRET"));
    let allow_system_principal = s.boolean(r, "allow_system_principal").unwrap_or(false);
    let previous_secret = previous_secret.ok()?;
    let Some(secret) = secret.ok()? else {
        r.errors
            .push(format!("{}: a secret is required (secret, secret_file or {env}_SECRET[_FILE])", s.label));
        return None;
    };
    Some(Hs256Settings { secret, previous_secret, allow_system_principal })
}

/// `iss` is the discovery base when no key location is given.
pub(super) fn read_jwks_settings(
    r: &mut Reader<'_>,
    s: &mut Section<'_>,
    iss: Option<&str>,
) -> Option<JwksSettings> {
    let label = s.label.clone();
    let url = s.parsed(r, "jwks_url", None, None, |v| parse_upstream_url(v).map(|u| u.to_string()));
    let ca_file = s.parsed(r, "ca_file", None, None, |v| Ok(PathBuf::from(v)));
    let bearer_token_file = s.parsed(r, "bearer_token_file", None, None, |v| Ok(PathBuf::from(v)));
    let ca_pem = ca_file.and_then(|path| match r.read_file(&path) {
        Ok(pem) if r.offline || reqwest::Certificate::from_pem_bundle(&pem).is_ok_and(|c| !c.is_empty()) => {
            Some(pem)
        }
        Ok(_) => {
            r.errors.push(format!("{}.ca_file {}: no PEM certificate", s.label, path.display()));
            None
        }
        Err(e) => {
            r.errors.push(format!("{}.ca_file: {e}", s.label));
            None
        }
    });
    let file = s.parsed(r, "jwks_file", None, None, |v| Ok(PathBuf::from(v)));
    let pems = s.strings(r, "public_key_files");
    let algorithms: Vec<JwsAlg> = s
        .strings(r, "algorithms")
        .unwrap_or_else(|| vec!["RS256".into(), "ES256".into(), "EdDSA".into()])
        .iter()
        .filter_map(|a| {
            JwsAlg::parse(a)
                .ok_or_else(|| {
                    r.errors.push(format!(
                        "{label}.algorithms: `{a}` is not accepted (RS256, PS256, ES256, EdDSA; never HS*)"
                    ))
                })
                .ok()
        })
        .collect();
    if algorithms.is_empty() {
        r.errors.push(format!("{label}.algorithms must name at least one algorithm"));
    }
    let d = |r: &mut Reader<'_>, s: &mut Section<'_>, key: &str, default: u64| {
        s.parsed(r, key, None, None, parse_duration).unwrap_or(Duration::from_secs(default))
    };
    let fetch_timeout = d(r, s, "fetch_timeout", 5);
    let min_refresh_interval = d(r, s, "min_refresh_interval", 60);
    let max_refresh_interval = d(r, s, "max_refresh_interval", 3600);
    let refetch_cooldown = d(r, s, "refetch_cooldown", 30);
    let max_staleness = d(r, s, "max_staleness", 24 * 3600);
    if fetch_timeout.is_zero() {
        r.errors.push(format!("{label}.fetch_timeout must be above zero"));
    }
    if min_refresh_interval < Duration::from_secs(1) || min_refresh_interval > max_refresh_interval {
        r.errors.push(format!("{label}: need 1s <= min_refresh_interval <= max_refresh_interval"));
    }
    if max_staleness <= max_refresh_interval && max_staleness < min_refresh_interval * 2 {
        r.errors.push(format!("{label}.max_staleness must leave room for at least two refreshes"));
    }
    let max_response_bytes = s
        .parsed(r, "max_response_bytes", None, None, |v| parse_bounded(v, 1024, 16 << 20))
        .unwrap_or(256 << 10);
    let required = s.boolean(r, "required").unwrap_or(true);
    let allow_anonymous = s.boolean(r, "allow_anonymous").unwrap_or(true);
    let require_claims = match s.map(r, "require_claims") {
        None => Vec::new(),
        Some(Value::Table(t)) if t.values().all(Value::is_str) => {
            t.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect()
        }
        Some(_) => {
            r.errors.push(format!("{label}.require_claims must be a table of strings"));
            Vec::new()
        }
    };
    let source = match (url, file, pems) {
        (None, None, None) => {
            // A missing `iss` is reported by read_issuer.
            let base = iss.unwrap_or_default();
            if let (false, Err(e)) = (base.is_empty(), parse_upstream_url(base)) {
                r.errors.push(format!("{label}.iss (used for discovery): {e}"));
            }
            KeySource::Discovery(base.to_string())
        }
        (Some(u), None, None) => KeySource::Url(u),
        (None, Some(path), None) => match r.read_file(&path).and_then(text) {
            Ok(text) => KeySource::JwksDocument(text),
            Err(e) => {
                r.errors.push(format!("{label}.jwks_file: {e}"));
                return None;
            }
        },
        (None, None, Some(paths)) => {
            let mut pems = Vec::new();
            for p in paths.iter().map(PathBuf::from) {
                let kid = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
                match r.read_file(&p).and_then(text) {
                    Ok(text) => pems.push((kid, text)),
                    Err(e) => r.errors.push(format!("{label}.public_key_files: {e}")),
                }
            }
            KeySource::Pems(pems)
        }
        _ => {
            r.errors.push(format!(
                "{label}: set one of jwks_url, jwks_file, public_key_files (or none, for discovery)"
            ));
            return None;
        }
    };
    Some(JwksSettings {
        source,
        ca_pem,
        bearer_token_file,
        algorithms,
        required,
        fetch_timeout,
        min_refresh_interval,
        max_refresh_interval,
        refetch_cooldown,
        max_staleness,
        max_response_bytes,
        require_claims,
        allow_anonymous,
    })
}

pub(super) fn read_identity_settings(
    r: &mut Reader<'_>,
    s: &mut Section<'_>,
) -> Option<NetlifyIdentitySettings> {
    let site = s.parsed(r, "site_url", None, None, |v| parse_upstream_url(v).map(|u| (u, true)));
    let base = s.parsed(r, "identity_url", None, None, |v| parse_upstream_url(v).map(|u| (u, false)));
    let seconds = |r: &mut Reader<'_>, s: &mut Section<'_>, key: &str, default: u64| {
        s.parsed(r, key, None, None, parse_duration).unwrap_or(Duration::from_secs(default))
    };
    let connect_timeout = seconds(r, s, "connect_timeout", 2);
    let timeout = seconds(r, s, "timeout", 5);
    let queue_timeout = seconds(r, s, "queue_timeout", 1);
    let cache_ttl = seconds(r, s, "cache_ttl", 120);
    let negative_cache_ttl = seconds(r, s, "negative_cache_ttl", 10);
    let max_concurrent_requests =
        s.parsed(r, "max_concurrent_requests", None, None, |v| parse_bounded(v, 1, 10_000)).unwrap_or(32);
    let per_client = s.parsed(r, "max_concurrent_per_client", None, None, |v| parse_bounded(v, 1, 10_000));
    if per_client.is_some_and(|n| n > max_concurrent_requests) {
        r.errors.push(format!("{}: max_concurrent_per_client is above max_concurrent_requests", s.label));
    }
    let max_concurrent_per_client = per_client.unwrap_or(8).min(max_concurrent_requests);
    let cache_max_entries = s
        .parsed(r, "cache_max_entries", None, None, |v| parse_bounded(v, 0, 10_000_000).map(|n| n as u64))
        .unwrap_or(10_000);
    let cache_max_bytes = s
        .parsed(r, "cache_max_bytes", None, None, |v| parse_bounded(v, 0, 1 << 34).map(|n| n as u64))
        .unwrap_or(16 << 20);
    let max_response_bytes = s
        .parsed(r, "max_response_bytes", None, None, |v| parse_bounded(v, 1024, 16 << 20))
        .unwrap_or(64 << 10);
    if timeout.is_zero() || connect_timeout.is_zero() {
        r.errors.push(format!("{}: timeouts must be above zero", s.label));
    }
    let identity_url = match (site, base) {
        (Some(_), Some(_)) => {
            r.errors.push(format!("{}: set site_url or identity_url, not both", s.label));
            return None;
        }
        (None, None) => {
            // A URL that was given but refused has its own error already.
            let given = s.table.is_some_and(|t| t.contains_key("site_url") || t.contains_key("identity_url"));
            if !given {
                r.errors.push(format!("{}: netlify_identity needs site_url (or identity_url)", s.label));
            }
            return None;
        }
        (Some((url, _)), None) => format!("{}/.netlify/identity", url.trim_end_matches('/')),
        (None, Some((url, _))) => url.trim_end_matches('/').to_string(),
    };
    Some(NetlifyIdentitySettings {
        identity_url,
        connect_timeout,
        timeout,
        max_concurrent_requests,
        max_concurrent_per_client,
        queue_timeout,
        cache_ttl,
        negative_cache_ttl,
        cache_max_entries,
        cache_max_bytes,
        max_response_bytes,
    })
}

pub(super) fn check_issuers(r: &mut Reader<'_>, issuers: &[IssuerConfig]) {
    let mut names = BTreeSet::new();
    let mut isses = BTreeSet::new();
    for i in issuers {
        if !names.insert(i.name.as_str()) {
            r.errors.push(format!("issuer name `{}` is used twice", i.name));
        }
        if let Some(iss) = &i.expected_iss
            && !isses.insert(iss.as_str())
        {
            r.errors.push(format!("two issuers expect the same iss `{iss}`: routing would be ambiguous"));
        }
    }
    if issuers.iter().filter(|i| i.default).count() > 1 {
        r.errors.push("more than one issuer has default = true".into());
    }
}

fn text(bytes: Vec<u8>) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|_| "is not UTF-8 text".to_string())
}
