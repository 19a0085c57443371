//! What requests use, built from one config and swapped whole on reload.
//!
//! A [`Generation`] holds the core (issuers, keys, caches), the Exchange
//! key ring and the edge policy. Adapters call [`Live::get`] once per
//! request and keep that `Arc` to the end, so an in-flight request finishes
//! on the generation it started with; the old generation (and its key
//! refresh tasks) goes away when its last request does.
//!
//! A reload builds the next generation from a freshly loaded and validated
//! config, waits (bounded) until its required issuers have keys, and only
//! then swaps it in. Settings bound at start (listen addresses, message
//! limits, log format and level) are not reloadable; a change to them is
//! reported and otherwise ignored until a restart.

use crate::config::{Config, EdgeConfig, RoutePolicy};
use crate::core::error::AuthError;
use crate::core::headers::Headers;
use crate::core::identity::Identity;
use crate::gate::Gate;
use crate::gate::VerifyInput;
use crate::gate::decision::Decision;
use crate::gate::exchange::Exchanger;
use crate::gate::exchange::MintRequest;
use crate::keys::Material;
use crate::obs::metrics::Metrics;
use crate::store::UserStore;
use crate::verify::nf_sign::ReplayCache;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Documents published on the HTTP port for Exchange's key ring.
#[derive(Debug, Clone)]
pub struct Published {
    /// `{"keys": [...]}`.
    pub jwks: String,
    /// The OpenID-style discovery document.
    pub openid_configuration: String,
    /// `Cache-Control: public, max-age=<this>`.
    pub max_age_secs: u64,
}

/// Everything built from one config that a request needs.
pub struct Generation {
    /// The request path.
    pub gate: Arc<Gate>,
    /// Exchange, when `[exchange]` is configured.
    pub exchanger: Option<Arc<Exchanger>>,
    /// `[edge]`.
    pub edge: EdgeConfig,
    /// JWKS and discovery documents of the Exchange key ring.
    pub published: Option<Published>,
    /// `server.decision_deadline`.
    pub decision_deadline: Duration,
    /// `server.trusted_proxy_hops`.
    pub trusted_proxy_hops: usize,
    /// `[[callers]]` and `[access]`.
    pub callers: crate::gate::callers::Callers,
    /// `[[caller_issuers]]`.
    pub caller_tokens: crate::gate::callers::CallerTokens,
    /// `server.trust_forwarded_client_cert` (mesh mode only).
    pub trust_forwarded_client_cert: bool,
    /// The Identity webhooks of the issuers that have one.
    pub webhooks: crate::gate::webhook::Webhooks,
    /// Distinct for every generation the process builds: what an adapter
    /// caches from one generation's config is keyed by it.
    pub serial: u64,
}

impl Generation {
    /// Builds every verifier, key set and the key ring from `config`;
    /// on a reload, `previous` is the running generation and its config,
    /// whose unchanged issuers and identity cache carry over ([`Gate::new`]).
    pub fn build(
        config: &Config,
        metrics: Arc<Metrics>,
        replay: &ReplayCache,
        store: Option<Arc<UserStore>>,
        previous: Option<(&Generation, &Config)>,
    ) -> Result<Self, String> {
        let material = Material::build(config).map_err(|e| e.0.join("; "))?;
        let caller_tokens =
            crate::gate::callers::CallerTokens::new(config, &material.caller_static_sets, &metrics);
        let webhooks = crate::gate::webhook::Webhooks::new(config, store.clone(), metrics.clone());
        let previous = previous.map(|(g, c)| (g.gate.as_ref(), c));
        let gate = Arc::new(Gate::new(config, &material.static_sets, metrics, replay, store, previous));
        let exchanger = match (&config.exchange, material.ring) {
            (Some(x), Some(ring)) => Some(Arc::new(Exchanger::new(gate.clone(), x, ring))),
            _ => None,
        };
        let published = exchanger.as_ref().zip(config.exchange.as_ref()).map(|(e, x)| Published {
            jwks: e.ring().jwks_json().to_string(),
            openid_configuration: serde_json::json!({
                "issuer": x.issuer_url,
                "jwks_uri": format!("{}/.well-known/jwks.json", x.public_base_url),
                "id_token_signing_alg_values_supported": e.ring().algorithms(),
                "token_endpoint_auth_signing_alg_values_supported": e.ring().algorithms(),
                "grant_types_supported": ["urn:ietf:params:oauth:grant-type:token-exchange"],
            })
            .to_string(),
            max_age_secs: x.jwks_max_age.as_secs(),
        });
        Ok(Self {
            gate,
            exchanger,
            edge: config.edge.clone(),
            published,
            decision_deadline: config.decision_deadline,
            trusted_proxy_hops: config.trusted_proxy_hops,
            callers: crate::gate::callers::Callers::from_config(config),
            caller_tokens,
            trust_forwarded_client_cert: config.trust_forwarded_client_cert,
            webhooks,
            serial: {
                static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            },
        })
    }
}

impl Generation {
    /// Sets the state gauges (cache sizes, key sets) before a scrape.
    pub fn report(&self) {
        self.gate.report();
        if let Some(store) = self.webhooks.store() {
            store.report();
        }
        if let Some(x) = &self.exchanger {
            self.gate.metrics().cache_size(crate::obs::metrics::CacheName::Mint, x.cached_tokens());
        }
    }
}

/// The current generation, and what outlives generations: the metrics and
/// the signed-proxy replay cache.
pub struct Live {
    current: RwLock<Arc<Generation>>,
    metrics: Arc<Metrics>,
    replay: ReplayCache,
    store: Option<Arc<UserStore>>,
    /// The config the current generation was built from (to report
    /// settings a reload cannot change).
    config: RwLock<Config>,
}

impl Live {
    /// Builds the first generation from `config`, without a user store.
    pub fn start(config: Config, metrics: Arc<Metrics>) -> Result<Self, String> {
        Self::with_store(config, metrics, None)
    }

    /// Builds the first generation from `config`; `store` (opened from
    /// `[store]`) serves every generation.
    pub fn with_store(
        config: Config,
        metrics: Arc<Metrics>,
        store: Option<Arc<UserStore>>,
    ) -> Result<Self, String> {
        let replay = ReplayCache::for_config(&config);
        let first = Generation::build(&config, metrics.clone(), &replay, store.clone(), None)?;
        Ok(Self {
            current: RwLock::new(Arc::new(first)),
            metrics,
            replay,
            store,
            config: RwLock::new(config),
        })
    }

    /// The config the current generation was built from.
    pub fn config(&self) -> Config {
        self.config.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The user store, when `[store]` is configured.
    pub fn store(&self) -> Option<&Arc<UserStore>> {
        self.store.as_ref()
    }

    /// The generation to use for one request.
    pub fn get(&self) -> Arc<Generation> {
        // Poisoning would need a panic while swapping an Arc; the value is
        // still whole, so keep serving it.
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The files the current config was read from.
    pub fn source_files(&self) -> Vec<std::path::PathBuf> {
        self.config.read().unwrap_or_else(|p| p.into_inner()).source_files.clone()
    }

    /// The process-wide metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Builds a generation from `next`, waits up to `ready_within` for its
    /// required issuers to have keys, and swaps it in. On any error the
    /// running generation stays and the error is returned.
    pub async fn reload(&self, next: Config, ready_within: Duration) -> Result<Vec<String>, String> {
        let (fixed, generation) = {
            let current = self.config.read().unwrap_or_else(|p| p.into_inner());
            let running = self.get();
            let generation = Generation::build(
                &next,
                self.metrics.clone(),
                &self.replay,
                self.store.clone(),
                Some((&running, &current)),
            )?;
            (restart_only_changes(&current, &next), generation)
        };
        let deadline = tokio::time::Instant::now() + ready_within;
        while !generation.gate.issuers().ready() {
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "issuers {:?} have no usable keys after {ready_within:?}",
                    generation.gate.issuers().not_ready()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(generation);
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = next;
        Ok(fixed)
    }
}

/// Settings that differ but only take effect after a restart.
fn restart_only_changes(current: &Config, next: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |name: &str, same: bool| {
        if !same {
            out.push(name.to_string());
        }
    };
    check("server.grpc_addr", current.grpc_addr == next.grpc_addr);
    check("server.http_addr", current.http_addr == next.http_addr);
    check("server.max_message_bytes", current.max_message_bytes == next.max_message_bytes);
    check("server.max_check_request_bytes", current.max_check_request_bytes == next.max_check_request_bytes);
    check("server.shutdown_grace", current.shutdown_grace == next.shutdown_grace);
    check("server.drain_delay", current.drain_delay == next.drain_delay);
    check("server limits (connections, streams, in-flight, timeouts)", current.limits == next.limits);
    check("server.plaintext", current.plaintext == next.plaintext);
    check(
        "server.trust_forwarded_client_cert",
        current.trust_forwarded_client_cert == next.trust_forwarded_client_cert,
    );
    check("[tls] (its files reload by themselves)", current.tls == next.tls);
    check("log.format", current.log.format == next.log.format);
    check("log.level", current.log.level == next.log.level);
    check("server.webhook_addr", current.webhook_addr == next.webhook_addr);
    check("[store]", current.store == next.store);
    let replay_entries = |c: &Config| c.signed_proxy.as_ref().map(|p| p.replay_cache_max_entries);
    check("signed_proxy.replay_cache_max_entries", replay_entries(current) == replay_entries(next));
    out
}

impl Generation {
    /// The caller a mesh sidecar's `x-forwarded-client-cert` names, when
    /// this generation trusts it; `None` otherwise.
    pub fn mesh_caller(&self, xfcc: impl FnOnce() -> Option<String>) -> Option<Arc<str>> {
        if !self.trust_forwarded_client_cert {
            return None;
        }
        xfcc().as_deref().and_then(crate::gate::callers::forwarded_client_cert).map(Arc::from)
    }

    /// Names the caller of the request `decision` records (a caller
    /// token's verified subject when the request carries one, else the
    /// connection's certificate identity) and applies `[access]`.
    pub async fn admit_caller(
        &self,
        decision: &mut Decision<'_>,
        caller_token: Option<&str>,
    ) -> Result<Option<Arc<str>>, AuthError> {
        if let Some(token) = caller_token {
            decision.caller = Some(self.caller_tokens.verify(token).await?);
        }
        self.callers.admit(decision)
    }

    /// One edge decision on this generation: verify once, then mint from the
    /// verified identity when the route names an audience, for `caller`
    /// (the admitted `[[callers]]` name, if any). The caller records
    /// `decision`.
    pub async fn decide_edge(
        &self,
        headers: &Headers,
        policy: &RoutePolicy,
        client: Option<&str>,
        caller: Option<&str>,
        decision: &mut Decision<'_>,
    ) -> Result<(Arc<Identity>, Option<String>), AuthError> {
        let input = VerifyInput {
            token: None,
            headers,
            required_roles: &policy.roles,
            issuer: policy.issuer.as_deref(),
            require_signed_proxy: policy.require_signed_proxy,
            client,
            identity_in_headers: true,
        };
        let verified = self.gate.decide(input, decision).await?;
        let Some(audience) = &policy.exchange_audience else {
            return Ok((verified.identity, None));
        };
        let exchanger = self.exchanger.as_ref().ok_or(AuthError::ExchangeDisabled)?;
        let request = MintRequest { audience, scopes: &[], actor_token: None, requested_ttl: None, caller };
        let minted = exchanger.mint_for(verified.identity.clone(), request, decision).await?;
        Ok((verified.identity, Some(minted.token.clone())))
    }
}
