//! Prometheus metrics (`GET /metrics` on the HTTP port), with the
//! `prometheus-client` crate's registry and text encoder.
//!
//! Label values are bounded: adapter, configured issuer names, outcome, the
//! stable denial reasons, upstream kinds, cache names and configured
//! audiences. Never a subject, a token or anything read from a request.
//!
//! One [`Metrics`] lives for the whole process (it survives config
//! reloads); the core and verifiers hold an `Arc` and record as they go.
//! Gauges that describe state (cache sizes, key-set age) are set when
//! `/metrics` is scraped.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// A closed set of label values: each variant and the text it is
/// exported as, so no call site can invent a label.
macro_rules! labels {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            /// How many values there are (the size of a per-value table).
            pub const COUNT: usize = [$($text),*].len();

            /// The label value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)*
                }
            }
        }
    };
}

labels! {
    /// Which adapter a decision came through.
    Adapter {
        /// `authgate.v1.AuthService/Verify`.
        Verify => "verify",
        /// `authgate.v1.AuthService/Exchange`.
        Exchange => "exchange",
        /// Envoy `Authorization/Check`.
        ExtAuthz => "ext_authz",
        /// `/forward-auth`.
        ForwardAuth => "forward_auth",
        /// `authgate verify` on the command line.
        Cli => "cli",
        /// `authgate.v1.AdminService` (revocations).
        Admin => "admin",
    }
}

labels! {
    /// The caches authgate keeps.
    CacheName {
        /// Verified identities (shared by the local verifiers).
        Identity => "identity",
        /// Hosted Identity's answers from GoTrue `/user`.
        Introspection => "introspection",
        /// Tokens minted by Exchange.
        Mint => "mint",
        /// Rows read from the user store.
        Store => "store",
    }
}

labels! {
    /// Requests authgate makes to identity providers.
    UpstreamKind {
        /// GoTrue `/user`.
        Introspection => "introspection",
        /// OpenID discovery.
        Discovery => "discovery",
        /// A JWKS document.
        Jwks => "jwks",
    }
}

labels! {
    /// Defensive actions.
    Protection {
        /// A role that cannot travel in a comma-separated header was left out.
        RoleOmittedFromHeader => "role_omitted_from_header",
        /// A client had its share of introspection calls in flight.
        ClientBusy => "client_busy",
        /// `accept` failed (out of descriptors?); the loop backed off.
        AcceptError => "accept_error",
        /// A connection sent nothing usable within the handshake deadline.
        HandshakeTimeout => "handshake_timeout",
        /// A TLS handshake failed (not TLS, an unknown CA, no certificate
        /// where one is required, an expired one).
        TlsHandshakeFailed => "tls_handshake_failed",
        /// A request found the in-flight limit full.
        InFlightLimit => "in_flight_limit",
        /// An app-written claim was left out (reserved name, too big, too deep).
        ClaimOmitted => "claim_omitted",
        /// A background store write found its queue full and was dropped.
        StoreWriteDropped => "store_write_dropped",
    }
}

labels! {
    /// The two listening ports.
    Port {
        /// The gRPC port.
        Grpc => "grpc",
        /// The HTTP port.
        Http => "http",
        /// The Identity webhook's port.
        Webhook => "webhook",
    }
}

labels! {
    /// What authgate asks of the user store.
    StoreOp {
        /// A row read for a decision.
        Read => "read",
        /// A webhook event applied.
        Event => "event",
        /// A background write (a user seen, a hosted-Identity answer).
        Background => "background",
        /// A read of the change feed.
        Feed => "feed",
        /// A migration.
        Migrate => "migrate",
    }
}

labels! {
    /// What became of one webhook delivery.
    WebhookOutcome {
        /// Written (a row inserted, updated or marked deleted).
        Applied => "applied",
        /// Verified; nothing to write (a retry, an older event, a deleted user).
        Unchanged => "unchanged",
        /// A `validate` refused by the signup allow-list.
        SignupRefused => "signup_refused",
        /// The signature did not verify (or the body was too big).
        Unauthorized => "unauthorized",
        /// A verified body that is not a GoTrue event.
        BadRequest => "bad_request",
        /// The store could not be written: 503.
        StoreError => "store_error",
        /// The store could not be written and `on_store_error = "allow"`: 204.
        AllowedWithoutStore => "allowed_without_store",
    }
}

labels! {
    /// What became of a reload.
    ReloadOutcome {
        /// The new generation serves.
        Applied => "applied",
        /// The running generation stays.
        Rejected => "rejected",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    adapter: &'static str,
    issuer: String,
    outcome: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AdapterLabels {
    adapter: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    kind: &'static str,
    issuer: String,
    outcome: &'static str,
}

/// A `kind` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// The kind.
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    cache: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabel {
    cache: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IssuerLabels {
    issuer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AudienceLabels {
    audience: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    op: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    event: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// Every metric authgate exports.
pub struct Metrics {
    registry: Registry,
    decisions: Family<DecisionLabels, Counter>,
    decision_seconds: Family<AdapterLabels, Histogram>,
    upstream: Family<UpstreamLabels, Counter>,
    upstream_seconds: Family<KindLabels, Histogram>,
    cache: Family<CacheLabels, Counter>,
    cache_evictions: Family<CacheLabel, Counter>,
    cache_entries: Family<CacheLabel, Gauge>,
    key_set_age: Family<IssuerLabels, Gauge<f64, AtomicU64>>,
    key_set_keys: Family<IssuerLabels, Gauge>,
    key_set_stale: Family<IssuerLabels, Gauge>,
    minted: Family<AudienceLabels, Counter>,
    ready: Gauge,
    reloads: Family<KindLabels, Counter>,
    protection: Family<KindLabels, Counter>,
    connections: Family<KindLabels, Gauge>,
    store: Family<StoreLabels, Counter>,
    store_seconds: Family<KindLabels, Histogram>,
    store_sync_age: Gauge<f64, AtomicU64>,
    webhook: Family<WebhookLabels, Counter>,
    revocations: Family<KindLabels, Gauge>,
    hot: HotHandles,
}

/// Handles on the series every request updates, resolved on first use:
/// a `Family` lookup hashes the whole label set under a lock and the
/// decision's issuer label is an owned `String`, which cost ~1,700
/// instructions of a cached Verify's ~65,000. A handle shares its series
/// with the family (the registry exports the same counter).
struct HotHandles {
    decision_seconds: [std::sync::OnceLock<Histogram>; Adapter::COUNT],
    /// `[cache][hit]`.
    cache: [[std::sync::OnceLock<Counter>; 2]; CacheName::COUNT],
    /// Granted decisions by adapter, then issuer: configured names, so the
    /// list stays as short as the configuration (a scan beats a hash).
    granted: [std::sync::RwLock<IssuerCounters>; Adapter::COUNT],
}

/// Counters by configured issuer name.
type IssuerCounters = Vec<(Box<str>, Counter)>;

impl Default for HotHandles {
    fn default() -> Self {
        Self {
            decision_seconds: [const { std::sync::OnceLock::new() }; Adapter::COUNT],
            cache: [const { [const { std::sync::OnceLock::new() }; 2] }; CacheName::COUNT],
            granted: [const { std::sync::RwLock::new(Vec::new()) }; Adapter::COUNT],
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("authgate");
        let latency = || Histogram::new(exponential_buckets(0.000_025, 2.0, 18));
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "decisions",
            "Decisions by adapter, issuer, outcome (granted/denied) and reason",
            decisions.clone(),
        );
        let decision_seconds = Family::<AdapterLabels, Histogram>::new_with_constructor(latency);
        registry.register(
            "decision_duration_seconds",
            "Time to decide, by adapter",
            decision_seconds.clone(),
        );
        let upstream = Family::<UpstreamLabels, Counter>::default();
        registry.register(
            "upstream_requests",
            "Requests to identity providers (introspection, discovery, jwks) by outcome",
            upstream.clone(),
        );
        let upstream_seconds = Family::<KindLabels, Histogram>::new_with_constructor(latency);
        registry.register(
            "upstream_request_duration_seconds",
            "Identity provider request latency, by kind",
            upstream_seconds.clone(),
        );
        let cache = Family::<CacheLabels, Counter>::default();
        registry.register("cache_requests", "Cache lookups by cache and result (hit/miss)", cache.clone());
        let cache_evictions = Family::<CacheLabel, Counter>::default();
        registry.register(
            "cache_evictions",
            "Entries evicted for space (not expiry), by cache",
            cache_evictions.clone(),
        );
        let cache_entries = Family::<CacheLabel, Gauge>::default();
        registry.register("cache_entries", "Entries held, by cache", cache_entries.clone());
        let key_set_age = Family::<IssuerLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "key_set_age_seconds",
            "Seconds since the issuer's current key set was fetched or read",
            key_set_age.clone(),
        );
        let key_set_keys = Family::<IssuerLabels, Gauge>::default();
        registry.register(
            "key_set_keys",
            "Usable keys in the issuer's current key set",
            key_set_keys.clone(),
        );
        let key_set_stale = Family::<IssuerLabels, Gauge>::default();
        registry.register(
            "key_set_stale",
            "1 when the issuer has no key set or it is past max_staleness",
            key_set_stale.clone(),
        );
        let minted = Family::<AudienceLabels, Counter>::default();
        registry.register("minted_tokens", "Internal tokens signed by Exchange, by audience", minted.clone());
        let ready = Gauge::default();
        registry.register("ready", "1 when every required issuer can verify", ready.clone());
        registry.register(
            "log_lines_dropped",
            "Log lines dropped because stderr took them more slowly than they came, by kind (granted decisions first, then other)",
            crate::obs::sink::DROPPED.clone(),
        );
        let reloads = Family::<KindLabels, Counter>::default();
        registry.register("config_reloads", "Configuration reloads by outcome", reloads.clone());
        let protection = Family::<KindLabels, Counter>::default();
        registry.register(
            "protection_events",
            "Defensive actions by kind: role_omitted_from_header, accept_error, in_flight_limit, client_busy, handshake_timeout",
            protection.clone(),
        );
        let connections = Family::<KindLabels, Gauge>::default();
        registry.register(
            "open_connections",
            "Open client connections, by port (grpc/http)",
            connections.clone(),
        );
        let store = Family::<StoreLabels, Counter>::default();
        registry.register(
            "store_operations",
            "User store operations by op and outcome (ok/error)",
            store.clone(),
        );
        let store_seconds = Family::<KindLabels, Histogram>::new_with_constructor(latency);
        registry.register(
            "store_operation_duration_seconds",
            "User store latency, by op",
            store_seconds.clone(),
        );
        let store_sync_age = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "store_sync_age_seconds",
            "Seconds since the change feed was last read successfully (NaN before the first read)",
            store_sync_age.clone(),
        );
        let webhook = Family::<WebhookLabels, Counter>::default();
        registry.register(
            "webhook_events",
            "Identity webhook deliveries by event and outcome",
            webhook.clone(),
        );
        let revocations = Family::<KindLabels, Gauge>::default();
        registry.register(
            "revocations",
            "Active revocations by kind (subject, jti, token_hash, issuer) and deleted users (deleted_user)",
            revocations.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build.get_or_create(&BuildLabels { version: env!("CARGO_PKG_VERSION") }).set(1);
        registry.register("build_info", "Build information", build);
        Self {
            registry,
            decisions,
            decision_seconds,
            upstream,
            upstream_seconds,
            cache,
            cache_evictions,
            cache_entries,
            key_set_age,
            key_set_keys,
            key_set_stale,
            minted,
            ready,
            reloads,
            protection,
            connections,
            store,
            store_seconds,
            store_sync_age,
            webhook,
            revocations,
            hot: HotHandles::default(),
        }
    }

    /// One user store operation.
    pub fn store(&self, op: StoreOp, ok: bool, took: Duration) {
        let outcome = if ok { "ok" } else { "error" };
        self.store.get_or_create(&StoreLabels { op: op.as_str(), outcome }).inc();
        self.store_seconds.get_or_create(&KindLabels { kind: op.as_str() }).observe(took.as_secs_f64());
    }

    /// Sets the change feed's age (at scrape); `None` before the first read.
    pub fn store_sync_age(&self, age: Option<Duration>) {
        self.store_sync_age.set(age.map_or(f64::NAN, |a| a.as_secs_f64()));
    }

    /// Sets the active revocations of a kind (at scrape).
    pub fn revocations(&self, kind: &'static str, n: usize) {
        self.revocations.get_or_create(&KindLabels { kind }).set(n as i64);
    }

    /// One webhook delivery; `event` is a GoTrue event name or `unknown`.
    pub fn webhook(&self, event: &'static str, outcome: WebhookOutcome) {
        self.webhook.get_or_create(&WebhookLabels { event, outcome: outcome.as_str() }).inc();
    }

    /// One defensive action (a bounded, fixed set of kinds).
    pub fn protection(&self, kind: Protection) {
        self.protection.get_or_create(&KindLabels { kind: kind.as_str() }).inc();
    }

    /// One connection opened (`+1`) or closed (`-1`) on `port` (`grpc`/`http`).
    pub fn connection(&self, port: Port, delta: i64) {
        self.connections.get_or_create(&KindLabels { kind: port.as_str() }).inc_by(delta);
    }

    /// One decision.
    pub fn decision(&self, adapter: Adapter, issuer: &str, reason: Option<&'static str>, took: Duration) {
        if reason.is_some() || !self.granted(adapter, issuer) {
            let labels = DecisionLabels {
                adapter: adapter.as_str(),
                issuer: issuer.to_owned(),
                outcome: if reason.is_some() { "denied" } else { "granted" },
                reason: reason.unwrap_or("none"),
            };
            self.decisions.get_or_create(&labels).inc();
        }
        self.hot.decision_seconds[adapter as usize]
            .get_or_init(|| {
                self.decision_seconds.get_or_create(&AdapterLabels { adapter: adapter.as_str() }).clone()
            })
            .observe(took.as_secs_f64());
    }

    /// Counts a granted decision on its handle; false when it has none yet
    /// (the caller counts it through the family, and the handle is made).
    fn granted(&self, adapter: Adapter, issuer: &str) -> bool {
        let slot = &self.hot.granted[adapter as usize];
        if let Ok(list) = slot.read()
            && let Some((_, counter)) = list.iter().find(|(name, _)| **name == *issuer)
        {
            counter.inc();
            return true;
        }
        if let Ok(mut list) = slot.write()
            && !list.iter().any(|(name, _)| **name == *issuer)
        {
            let labels = DecisionLabels {
                adapter: adapter.as_str(),
                issuer: issuer.to_owned(),
                outcome: "granted",
                reason: "none",
            };
            list.push((issuer.into(), self.decisions.get_or_create(&labels).clone()));
        }
        false
    }

    /// One request to an identity provider: `kind` is `introspection`,
    /// `discovery` or `jwks`; `outcome` a short fixed word.
    pub fn upstream(&self, kind: UpstreamKind, issuer: &str, outcome: &'static str, took: Duration) {
        let kind = kind.as_str();
        self.upstream.get_or_create(&UpstreamLabels { kind, issuer: issuer.to_owned(), outcome }).inc();
        self.upstream_seconds.get_or_create(&KindLabels { kind }).observe(took.as_secs_f64());
    }

    /// One cache lookup (`identity`, `introspection`, `mint`).
    pub fn cache_lookup(&self, cache: CacheName, hit: bool) {
        self.hot.cache[cache as usize][usize::from(hit)]
            .get_or_init(|| {
                let labels = CacheLabels { cache: cache.as_str(), result: if hit { "hit" } else { "miss" } };
                self.cache.get_or_create(&labels).clone()
            })
            .inc();
    }

    /// One entry evicted for space.
    pub fn cache_evicted(&self, cache: CacheName) {
        self.cache_evictions.get_or_create(&CacheLabel { cache: cache.as_str() }).inc();
    }

    /// Sets a cache's size gauge (at scrape).
    pub fn cache_size(&self, cache: CacheName, entries: u64) {
        self.cache_entries.get_or_create(&CacheLabel { cache: cache.as_str() }).set(entries as i64);
    }

    /// Sets an issuer's key-set gauges (at scrape); `age` is `None` before
    /// the first key set.
    pub fn key_set(&self, issuer: &str, age: Option<Duration>, keys: usize, stale: bool) {
        let l = IssuerLabels { issuer: issuer.to_owned() };
        self.key_set_age.get_or_create(&l).set(age.map_or(f64::NAN, |a| a.as_secs_f64()));
        self.key_set_keys.get_or_create(&l).set(keys as i64);
        self.key_set_stale.get_or_create(&l).set(stale as i64);
    }

    /// One token signed by Exchange.
    pub fn minted(&self, audience: &str) {
        self.minted.get_or_create(&AudienceLabels { audience: audience.to_owned() }).inc();
    }

    /// Readiness, as health reports it.
    pub fn set_ready(&self, ready: bool) {
        self.ready.set(ready as i64);
    }

    /// One reload attempt: `applied` or `rejected`.
    pub fn reload(&self, outcome: ReloadOutcome) {
        self.reloads.get_or_create(&KindLabels { kind: outcome.as_str() }).inc();
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests;
