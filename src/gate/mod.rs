//! The request path, transport-free: credential → issuer → verifier →
//! identity → decision. Adapters (gRPC, ext_authz, forward-auth) build a
//! [`VerifyInput`] and translate the result; they decide nothing.

pub mod callers;
pub mod decision;
pub mod edge;
pub mod exchange;
pub mod live;
pub mod revocation;
pub mod users;
pub mod webhook;

use crate::config::{Config, ConfigErrors};
use crate::core::cache::{self, IdentityCache};
use crate::core::claims::unix_now;
use crate::core::credential;
use crate::core::error::AuthError;
use crate::core::headers::Headers;
use crate::core::identity::Identity;
use crate::core::identity::ProxyAttestation;
use crate::core::jws::CompactJws;
use crate::keys::Material;
use crate::keys::public::KeySet;
use crate::obs::metrics::Metrics;
use crate::verify::Issuers;
use crate::verify::nf_sign::{self, ProxyVerifier, ReplayCache};
use decision::Decision;
use std::sync::Arc;

/// One verification request, borrowed from whichever transport carried it.
#[derive(Debug, Clone, Copy)]
pub struct VerifyInput<'a> {
    /// An explicit token.
    pub token: Option<&'a str>,
    /// The incoming request's headers (names in any case).
    pub headers: &'a Headers,
    /// Any-of roles the identity must hold.
    pub required_roles: &'a [String],
    /// A configured issuer name; `None` routes by the rules.
    pub issuer: Option<&'a str>,
    /// The caller requires a valid signed-proxy header in `headers`.
    pub require_signed_proxy: bool,
    /// The end user's address ([`crate::gate::edge::client_address`]), when
    /// known: the decision log's `client`, and the key of per-client limits.
    pub client: Option<&'a str>,
    /// The identity will travel in HTTP headers (edge adapters): an identity
    /// that cannot (`gate::edge::check_header_safe`) is denied here, so
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

/// The verification core. Built once from config; immutable and shared.
pub struct Gate {
    issuers: Issuers,
    cache: Option<IdentityCache>,
    proxy: Option<ProxyVerifier>,
    /// Issuers whose users must also come through the signed proxy.
    proxy_required_by: Vec<String>,
    max_token_bytes: usize,
    metrics: Arc<Metrics>,
    users: users::StoreUse,
}

impl Gate {
    /// Builds every issuer's verifier and parses its keys, recording into
    /// its own metrics registry, with its own replay cache (`authgate
    /// verify`, tests).
    pub fn from_config(config: &Config) -> Result<Self, ConfigErrors> {
        let material = Material::build(config)?;
        Ok(Self::new(
            config,
            &material.static_sets,
            Arc::new(Metrics::new()),
            &ReplayCache::for_config(config),
            None,
            None,
        ))
    }

    /// [`Gate::from_config`] with the user store when `[store]` is
    /// configured (`authgate verify`): its roles, claims and revocations
    /// apply, after waiting (up to the store timeout ×5) for it to be
    /// current; if it is not, decisions that need it fail as the service's
    /// would.
    pub async fn from_config_with_store(config: &Config) -> Result<Self, ConfigErrors> {
        let material = Material::build(config)?;
        let metrics = Arc::new(Metrics::new());
        let store = match &config.store {
            None => None,
            Some(s) => {
                let store = crate::store::UserStore::open(s, metrics.clone())
                    .map_err(|e| ConfigErrors(vec![format!("store: {e}")]))?;
                // The tasks end with the command's runtime.
                drop(store.start());
                let deadline = tokio::time::Instant::now() + s.timeout * 5;
                while !store.ready() && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Some(store)
            }
        };
        Ok(Self::new(config, &material.static_sets, metrics, &ReplayCache::for_config(config), store, None))
    }

    /// Builds every issuer's verifier with the key sets parsed from
    /// `config` ([`Material::build`]), recording into `metrics`; accepted
    /// `x-nf-sign` values go to `replay` (which outlives reloads); roles
    /// and claims come from `store` for the issuers that read it.
    pub fn new(
        config: &Config,
        static_sets: &[Option<Arc<KeySet>>],
        metrics: Arc<Metrics>,
        replay: &ReplayCache,
        store: Option<Arc<crate::store::UserStore>>,
        previous: Option<(&Gate, &Config)>,
    ) -> Self {
        // A reload keeps the verified identities while `[cache]` is
        // unchanged: their keys name the verifier instance that verified
        // them, so only issuers whose entry is unchanged (and whose verifier
        // is kept) go on hitting them; the rest age out or are evicted.
        let kept = previous
            .filter(|(_, was)| was.cache.max_entries == config.cache.max_entries)
            .filter(|(_, was)| was.cache.max_ttl == config.cache.max_ttl)
            .and_then(|(running, _)| running.cache.clone());
        let cache = kept.or_else(|| {
            (config.cache.max_entries > 0)
                .then(|| IdentityCache::new(config.cache.max_entries, config.cache.max_ttl, metrics.clone()))
        });
        let issuers = Issuers::from_config(
            config,
            static_sets,
            &metrics,
            store.clone(),
            previous.map(|(g, c)| (&g.issuers, c)),
        );
        Self {
            metrics: metrics.clone(),
            issuers,
            cache,
            proxy: config.signed_proxy.as_ref().map(|p| ProxyVerifier::new(p, replay)),
            proxy_required_by: config
                .issuers
                .iter()
                .filter(|i| i.require_signed_proxy)
                .map(|i| i.name.clone())
                .collect(),
            max_token_bytes: config.max_token_bytes,
            users: users::StoreUse::new(config, store),
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
        self.metrics.cache_size(crate::obs::metrics::CacheName::Identity, self.cached_identities());
        self.issuers.report(&self.metrics);
    }

    /// The configured issuers.
    pub fn issuers(&self) -> &Issuers {
        &self.issuers
    }

    /// True when some issuer's decisions read the user store.
    pub fn needs_store(&self) -> bool {
        self.users.needed()
    }

    /// Decides one request and records the decision ([`Decision`]): the
    /// whole request for the Verify RPC, `authgate verify` and tests.
    pub async fn verify(
        &self,
        adapter: crate::obs::metrics::Adapter,
        input: VerifyInput<'_>,
    ) -> Result<Verified, AuthError> {
        let mut decision = Decision::start(adapter, input.client, opentelemetry::Context::current());
        let result = self.decide(input, &mut decision).await;
        decision.record(&self.metrics, result.as_ref().map(|v| &*v.identity));
        result
    }

    /// Decides one request without recording it: a caller that does more
    /// (Exchange, the edge) records the whole request once.
    pub async fn decide(
        &self,
        input: VerifyInput<'_>,
        decision: &mut Decision<'_>,
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
        decision.signed_proxy = proxy.is_some();
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
        decision.issuer = Some(verifier.name().to_string());
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
            self.metrics.cache_lookup(crate::obs::metrics::CacheName::Identity, hit.is_some());
            if let Some(hit) = hit {
                decision.cache_hit = true;
                return self.finish(hit, token, &input, proxy, decision).await;
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
        self.finish(identity, token, &input, proxy, decision).await
    }

    /// Revocations, the app's roles and claims (user store), the request's
    /// policy, and the user's just-in-time row when granted. Cache hits come
    /// here too: a revocation refuses a cached identity at once.
    async fn finish(
        &self,
        identity: Arc<Identity>,
        token: &str,
        input: &VerifyInput<'_>,
        proxy: Option<ProxyAttestation>,
        decision: &mut Decision<'_>,
    ) -> Result<Verified, AuthError> {
        self.users.check_revoked(&identity, token, decision)?;
        let identity = self.users.apply(identity, decision).await?;
        let verified = authorize(identity, input, proxy)?;
        self.users.seen(&verified.identity);
        Ok(verified)
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
        crate::gate::edge::check_header_safe(&identity)?;
    }
    if !identity.has_any_role(input.required_roles) {
        return Err(AuthError::InsufficientRole);
    }
    Ok(Verified { identity, proxy })
}
