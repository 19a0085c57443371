//! Netlify signed proxy redirects: the `x-nf-sign` header that Netlify adds
//! when a `[[redirects]]` rule has `signed = "ENV_NAME"` (netlify.md §3.1).
//!
//! It proves a request came through the site's Netlify proxy. It says
//! nothing about the user (Netlify forwards the user's JWT unverified), so
//! an attestation never stands in for a user.
//!
//! Checks: HS256 only (before any key), no `crit`, signature against the
//! current then the previous secret, `iss == "netlify"`, `exp` and `iat`
//! required with leeway, `exp − iat ≤ max_lifetime`, `nbf` if present, no
//! add-on claims (`id`, `function_hooks`: the other `x-nf-sign`, §3.2, signed
//! with another secret for another purpose), and the configured site IDs,
//! site URLs and deploy contexts.
//!
//! Replay: the header carries no `jti` and no body hash, so anyone who sees
//! one can replay it until `exp` (300 s). The opt-in replay mode accepts each
//! distinct value once within its lifetime, in a bounded cache (a flood of
//! distinct valid headers, which needs the secret, could evict entries); it
//! breaks client retries through the proxy.

use crate::config::SignedProxyConfig;
use crate::core::claims::Claims;
use crate::core::error::AuthError;
use crate::core::headers::Headers;
use crate::core::identity::ProxyAttestation;
use crate::core::jws::{CompactJws, signature_buffer};
use crate::keys::hmac::HmacKeySet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The header Netlify sets.
pub const HEADER: &str = "x-nf-sign";

/// Longest header accepted (a real one is about 200 bytes).
const MAX_HEADER_BYTES: usize = 4096;

/// Header values already accepted (by SHA-256), each until it expires.
/// One per process: it outlives config reloads, so a reload (or a secret
/// rotation) never reopens the replay window.
#[derive(Clone)]
pub struct ReplayCache(Arc<moka::sync::Cache<crate::core::cache::Key, Duration>>);

impl ReplayCache {
    /// A cache of at most `max_entries` values.
    pub fn new(max_entries: u64) -> Self {
        Self(Arc::new(
            moka::sync::Cache::builder().max_capacity(max_entries).expire_after(UntilExpiry).build(),
        ))
    }

    /// The capacity `config` asks for (100,000 without `[signed_proxy]`).
    pub fn for_config(config: &crate::config::Config) -> Self {
        Self::new(config.signed_proxy.as_ref().map_or(100_000, |p| p.replay_cache_max_entries))
    }
}

struct UntilExpiry;

impl moka::Expiry<crate::core::cache::Key, Duration> for UntilExpiry {
    fn expire_after_create(
        &self,
        _: &crate::core::cache::Key,
        ttl: &Duration,
        _: Instant,
    ) -> Option<Duration> {
        Some(*ttl)
    }
}

/// The configured signed-proxy check. Built once from config.
pub struct ProxyVerifier {
    keys: HmacKeySet,
    site_ids: Vec<String>,
    site_urls: Vec<String>,
    deploy_contexts: Vec<String>,
    leeway: i64,
    max_lifetime: i64,
    seen: Option<ReplayCache>,
}

impl ProxyVerifier {
    /// Builds the keys; in replay mode, accepted values are kept in `seen`.
    pub fn new(config: &SignedProxyConfig, seen: &ReplayCache) -> Self {
        let seen = config.replay_protection.then(|| seen.clone());
        Self {
            keys: HmacKeySet::new(&config.secret, config.previous_secret.as_ref()),
            site_ids: config.site_ids.clone(),
            site_urls: config.site_urls.clone(),
            deploy_contexts: config.deploy_contexts.clone(),
            // Config validation caps both at one hour.
            leeway: config.leeway.as_secs() as i64,
            max_lifetime: config.max_lifetime.as_secs() as i64,
            seen,
        }
    }

    /// Verifies one header value at `now` (seconds).
    pub fn verify(&self, header: &str, now: i64) -> Result<ProxyAttestation, AuthError> {
        use AuthError::ProxySignatureInvalid as Invalid;
        let jws = CompactJws::parse(header, MAX_HEADER_BYTES).map_err(|e| match e {
            AuthError::TokenTooLarge { .. } => Invalid("too large"),
            _ => Invalid("not a compact JWS"),
        })?;
        if jws.header.alg != "HS256" {
            return Err(Invalid("algorithm is not HS256"));
        }
        let mut buf = signature_buffer();
        let signature = jws.signature(&mut buf).map_err(|_| Invalid("not a compact JWS"))?;
        if self.keys.verify(jws.signing_input.as_bytes(), signature).is_none() {
            return Err(Invalid("signature does not verify"));
        }
        let claims =
            jws.payload_bytes().and_then(|p| Claims::from_slice(&p)).map_err(|_| Invalid("payload"))?;
        let text =
            |name: &'static str| claims.string(name).map_err(|_| Invalid("a claim has the wrong type"));
        let date =
            |name: &'static str| claims.numeric_date(name).map_err(|_| Invalid("a claim has the wrong type"));
        if text("iss")? != Some("netlify") {
            return Err(Invalid("iss is not netlify"));
        }
        if claims.has("id") || claims.has("function_hooks") {
            return Err(Invalid("add-on signature, not a signed proxy redirect"));
        }
        let exp = date("exp")?.ok_or(Invalid("no exp"))?;
        let iat = date("iat")?.ok_or(Invalid("no iat"))?;
        if now >= exp.saturating_add(self.leeway) {
            return Err(Invalid("expired"));
        }
        if iat > now.saturating_add(self.leeway) {
            return Err(Invalid("issued in the future"));
        }
        if exp.saturating_sub(iat) > self.max_lifetime {
            return Err(Invalid("lifetime longer than max_lifetime"));
        }
        if let Some(nbf) = date("nbf")?
            && nbf > now.saturating_add(self.leeway)
        {
            return Err(Invalid("not valid yet"));
        }
        let attestation = ProxyAttestation {
            site_id: text("netlify_id")?.unwrap_or_default().to_owned(),
            site_url: text("site_url")?.unwrap_or_default().to_owned(),
            deploy_context: text("deploy_context")?.unwrap_or_default().to_owned(),
            issued_at: iat,
            expires_at: exp,
        };
        let allowed = |list: &[String], value: &str| list.is_empty() || list.iter().any(|v| v == value);
        if !allowed(&self.site_ids, &attestation.site_id) {
            return Err(Invalid("site id not allowed"));
        }
        if !allowed(&self.site_urls, &attestation.site_url) {
            return Err(Invalid("site url not allowed"));
        }
        if !allowed(&self.deploy_contexts, &attestation.deploy_context) {
            return Err(Invalid("deploy context not allowed"));
        }
        if let Some(seen) = &self.seen {
            let ttl = Duration::from_secs(exp.saturating_add(self.leeway).saturating_sub(now).max(1) as u64);
            let entry = seen.0.entry(crate::core::cache::key(HEADER, 0, header)).or_insert(ttl);
            if !entry.is_fresh() {
                return Err(AuthError::ProxySignatureReplayed);
            }
        }
        Ok(attestation)
    }
}

/// The one `x-nf-sign` value in `headers` (names in any case), if any.
/// Two headers of that name are refused: which one would Netlify have set?
pub fn find_header(headers: &Headers) -> Result<Option<&str>, AuthError> {
    headers.one(HEADER).map_err(|()| AuthError::ProxySignatureInvalid("more than one x-nf-sign header"))
}
