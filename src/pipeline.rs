//! The request path, transport-free: credential → issuer → verifier →
//! identity → decision. Adapters (gRPC, ext_authz, forward-auth) build a
//! [`VerifyInput`] and translate the result; they decide nothing.

use crate::cache::{self, IdentityCache};
use crate::claims::unix_now;
use crate::config::Config;
use crate::credential;
use crate::error::AuthError;
use crate::identity::Identity;
use crate::jws::CompactJws;
use crate::metrics::Metrics;
use crate::verify::Issuers;
use crate::verify::nf_sign::{self, ProxyAttestation, ProxyVerifier, ReplayCache};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// One verification request, borrowed from whichever transport carried it.
#[derive(Debug, Clone, Copy)]
pub struct VerifyInput<'a> {
    /// An explicit token.
    pub token: Option<&'a str>,
    /// The incoming request's headers (names in any case).
    pub headers: &'a HashMap<String, String>,
    /// Any-of roles the identity must hold.
    pub required_roles: &'a [String],
    /// A configured issuer name; `None` routes by the rules.
    pub issuer: Option<&'a str>,
    /// The caller requires a valid signed-proxy header in `headers`.
    pub require_signed_proxy: bool,
    /// The end user's address ([`crate::edge::client_address`]), when
    /// known: the decision log's `client`, and the key of per-client limits.
    pub client: Option<&'a str>,
    /// The adapter the request came through (metrics label).
    pub adapter: crate::metrics::Adapter,
    /// The identity will travel in HTTP headers (edge adapters): an identity
    /// that cannot ([`crate::edge::check_header_safe`]) is denied here, so
    /// the decision line says so.
    pub identity_in_headers: bool,
}

/// A granted request: the user, and the proxy attestation when the request
/// carried a valid `x-nf-sign`.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The verified user.
    pub identity: Arc<Identity>,
    /// The verified signed-proxy header, if any.
    pub proxy: Option<ProxyAttestation>,
}

/// What the decision log line reports besides the outcome.
#[derive(Default)]
struct Trace<'a> {
    issuer: Option<&'a str>,
    cache_hit: bool,
    signed_proxy: bool,
}

/// The verification core. Built once from config; immutable and shared.
pub struct Authenticator {
    issuers: Issuers,
    cache: Option<IdentityCache>,
    proxy: Option<ProxyVerifier>,
    /// Issuers whose users must also come through the signed proxy.
    proxy_required_by: Vec<String>,
    max_token_bytes: usize,
    metrics: Arc<Metrics>,
}

impl Authenticator {
    /// Builds every issuer's verifier and keys, recording into its own
    /// metrics registry, with its own replay cache.
    pub fn from_config(config: &Config) -> Self {
        Self::new(config, Arc::new(Metrics::new()), &ReplayCache::for_config(config))
    }

    /// Builds every issuer's verifier and keys, recording into `metrics`;
    /// accepted `x-nf-sign` values go to `replay` (which outlives reloads).
    pub fn new(config: &Config, metrics: Arc<Metrics>, replay: &ReplayCache) -> Self {
        let cache = (config.cache.max_entries > 0)
            .then(|| IdentityCache::new(config.cache.max_entries, config.cache.max_ttl, metrics.clone()));
        Self {
            metrics: metrics.clone(),
            issuers: Issuers::from_config(config, &metrics),
            cache,
            proxy: config.signed_proxy.as_ref().map(|p| ProxyVerifier::new(p, replay)),
            proxy_required_by: config
                .issuers
                .iter()
                .filter(|i| i.require_signed_proxy)
                .map(|i| i.name.clone())
                .collect(),
            max_token_bytes: config.max_token_bytes,
        }
    }

    /// Identities in the verified-identity cache (0 when it is off).
    pub fn cached_identities(&self) -> u64 {
        self.cache.as_ref().map_or(0, IdentityCache::len)
    }

    /// `server.max_token_bytes`.
    pub fn max_token_bytes(&self) -> usize {
        self.max_token_bytes
    }

    /// The metrics this core records into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Sets the state gauges (cache sizes, key sets) before a scrape.
    pub fn report(&self) {
        self.metrics.cache_size("identity", self.cached_identities());
        self.issuers.report(&self.metrics);
    }

    /// The configured issuers.
    pub fn issuers(&self) -> &Issuers {
        &self.issuers
    }

    /// Decides one request and writes exactly one decision log line. The
    /// line never carries the token, a secret or an unverified claim; the
    /// subject appears only when access is granted.
    pub async fn verify(&self, input: VerifyInput<'_>) -> Result<Verified, AuthError> {
        let started = Instant::now();
        let mut trace = Trace::default();
        let result = self.decide(input, &mut trace).await;
        let took = started.elapsed();
        let latency_us = took.as_micros() as u64;
        let (issuer, cache_hit, signed_proxy, client) =
            (trace.issuer.unwrap_or(""), trace.cache_hit, trace.signed_proxy, input.client.unwrap_or(""));
        self.metrics.decision(input.adapter, issuer, result.as_ref().err().map(AuthError::reason), took);
        match &result {
            Ok(v) => {
                let subject = &v.identity.subject;
                tracing::info!(granted = true, issuer, %subject, cache_hit, signed_proxy, client, latency_us, "decision")
            }
            Err(e) => {
                tracing::info!(granted = false, reason = e.reason(), issuer, client, latency_us, "decision")
            }
        }
        result
    }

    async fn decide<'a>(
        &'a self,
        input: VerifyInput<'_>,
        trace: &mut Trace<'a>,
    ) -> Result<Verified, AuthError> {
        // A misspelt issuer name is the caller's bug whatever the token is.
        let preselected = self.issuers.preselect(input.issuer)?;
        // A present but invalid attestation is denied whether required or
        // not; a valid one is reported but never stands in for the user.
        let proxy = match (nf_sign::find_header(input.headers)?, &self.proxy) {
            (Some(header), Some(verifier)) => Some(verifier.verify(header, unix_now())?),
            (_, None) if input.require_signed_proxy => {
                return Err(AuthError::InvalidRequest(
                    "require_signed_proxy, but no [signed_proxy] is configured",
                ));
            }
            _ => None,
        };
        trace.signed_proxy = proxy.is_some();
        let credential = credential::extract(input.token, input.headers)?;
        let token = credential.token;
        // Before hashing for the cache: an oversize token costs only its length.
        if token.len() > self.max_token_bytes {
            return Err(AuthError::TokenTooLarge { limit: self.max_token_bytes });
        }
        let mut parsed = None;
        let verifier = match preselected {
            Some(v) => v,
            None => {
                let jws = CompactJws::parse(token, self.max_token_bytes)?;
                let v = self.issuers.route_by_token(&jws)?;
                parsed = Some(jws);
                v
            }
        };
        trace.issuer = Some(verifier.name());
        let proxy_required =
            input.require_signed_proxy || self.proxy_required_by.iter().any(|n| n == verifier.name());
        if proxy_required && proxy.is_none() {
            return Err(AuthError::ProxySignatureMissing);
        }
        let now = unix_now();
        let leeway = verifier.leeway_secs();
        // A hit means these exact bytes passed every check of this issuer
        // (size and shape included), so the token need not be parsed again.
        let shared_cache = self.cache.as_ref().filter(|_| !verifier.has_own_cache());
        let key = match shared_cache {
            Some(_) => Some(cache::key(verifier.name(), verifier.cache_epoch()?, token)),
            None => None,
        };
        if let (Some(cache), Some(key)) = (shared_cache, &key) {
            let hit = cache.get(key, now, leeway);
            self.metrics.cache_lookup("identity", hit.is_some());
            if let Some(hit) = hit {
                trace.cache_hit = true;
                return authorize(hit, &input, proxy);
            }
        }
        let jws = match parsed {
            Some(jws) => jws,
            None => CompactJws::parse(token, self.max_token_bytes)?,
        };
        let identity = verifier.verify(&jws, input.client).await?;
        if let (Some(cache), Some(key)) = (shared_cache, key) {
            cache.insert(key, identity.clone(), now, leeway);
        }
        authorize(identity, &input, proxy)
    }
}

/// The per-request policy on a verified identity: any-of required roles;
/// for the edge, an identity that headers can carry.
fn authorize(
    identity: Arc<Identity>,
    input: &VerifyInput<'_>,
    proxy: Option<ProxyAttestation>,
) -> Result<Verified, AuthError> {
    if input.identity_in_headers {
        crate::edge::check_header_safe(&identity)?;
    }
    if !identity.has_any_role(input.required_roles) {
        return Err(AuthError::InsufficientRole);
    }
    Ok(Verified { identity, proxy })
}
