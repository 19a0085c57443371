//! JWKS issuers: tokens signed with asymmetric keys that the provider
//! publishes (Auth0, Supabase, Okta, Keycloak, any OpenID provider) or that
//! are given as files.
//!
//! Order of checks: `alg` in the configured set (HS* and `none` never) →
//! key by `kid` from the current [`KeySet`] snapshot, whose entries carry
//! the algorithm *the key* allows (a header `alg` that differs from its
//! JWK's is `unsupported_algorithm`) → signature → payload → `exp`
//! (required) → `nbf` → `iss` (exact) → `aud` (any-of, required) → `sub`
//! (required: Supabase's legacy `anon`/`service_role` keys have none) →
//! `require_claims`, `is_anonymous` → roles. `jku`, `x5u`, `jwk` and `x5c`
//! headers are never read.
//!
//! Key refresh discipline (remote sources):
//! - a background task fetches at start, then on a schedule from
//!   `Cache-Control: max-age` clamped to `[min, max]_refresh_interval`, with
//!   ±10 % jitter; after a failure it retries with backoff from 1 s up to
//!   `min_refresh_interval`;
//! - an unknown `kid` causes at most one fetch at a time (single-flight) and
//!   none within `refetch_cooldown` of the last fetch of any kind; unknown
//!   kids are remembered for the cooldown, so a flood of random kids costs
//!   at most one fetch per window; a failed refetch answers
//!   `keys_unavailable` (the kid may be a key we cannot see), not
//!   `unknown_key`;
//! - a new document replaces the snapshot only if it yields at least one
//!   usable key; otherwise the last good set stays (stale-while-error) until
//!   it is older than `max_staleness`, after which every token of this
//!   issuer is `keys_unavailable` and readiness reports not ready;
//! - a key removed from the JWKS stops verifying with the next successful
//!   fetch (the snapshot is replaced whole);
//! - a token without `kid` is tried against at most
//!   [`crate::keys::public::MAX_KIDLESS_CANDIDATES`] keys of its algorithm.

use super::{Verifier, VerifyFuture};
use crate::config::ClaimPath;
use crate::config::JwsAlg;
use crate::config::{IssuerConfig, JwksSettings, KeySource};
use crate::core::claims::{Claims, unix_now};
use crate::core::error::AuthError;
use crate::core::identity::Identity;
use crate::core::jws::{CompactJws, signature_buffer};
use crate::keys::public::{KeySet, Lookup};
use crate::obs::metrics::Metrics;
use crate::obs::metrics::UpstreamKind;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

/// Longest `kid` remembered as unknown; longer ones are refused outright.
const MAX_KID_CHARS: usize = 256;
/// Unknown kids remembered per issuer.
const NEGATIVE_KIDS: u64 = 10_000;

/// One JWKS issuer.
pub struct JwksVerifier {
    name: Arc<str>,
    expected_iss: String,
    audiences: Vec<String>,
    leeway: i64,
    role_claims: Vec<ClaimPath>,
    settings: JwksSettings,
    keys: Arc<KeyStore>,
    /// This instance, in cache keys ([`Verifier::cache_epoch`]).
    instance: u64,
}

/// The current snapshot and what refreshing it needs; shared with the
/// background refresher.
struct KeyStore {
    issuer: Arc<str>,
    current: RwLock<Option<Arc<KeySet>>>,
    fetcher: Option<Fetcher>,
    /// Single-flight: held for the duration of every fetch.
    fetch_log: tokio::sync::Mutex<FetchLog>,
    unknown_kids: Option<moka::sync::Cache<String, AuthError>>,
    settings: JwksSettings,
    metrics: Arc<Metrics>,
}

#[derive(Default)]
struct FetchLog {
    last_attempt: Option<Instant>,
    last_ok: bool,
    /// From discovery, once found.
    jwks_uri: Option<String>,
}

struct Fetcher {
    client: reqwest::Client,
    source: KeySource,
    expected_iss: String,
}

/// A successful fetch: the new set and the server's `max-age`, if any.
struct Fetched {
    set: KeySet,
    max_age: Option<Duration>,
}

impl JwksVerifier {
    /// Builds the verifier. `initial` is the static key set parsed when
    /// the generation was built (`jwks_file`, `public_key_files`); remote
    /// keys are fetched by a background task when a tokio runtime is running
    /// (else on the first request).
    pub fn new(
        config: &IssuerConfig,
        settings: &JwksSettings,
        initial: Option<Arc<KeySet>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let name: Arc<str> = Arc::from(config.name.as_str());
        let expected_iss = config.expected_iss.clone().unwrap_or_default();
        let fetcher = settings.source.is_remote().then(|| Fetcher {
            client: crate::verify::upstream::client_trusting(
                settings.fetch_timeout,
                settings.fetch_timeout,
                settings.ca_pem.as_deref(),
            ),
            source: settings.source.clone(),
            expected_iss: expected_iss.clone(),
        });
        let unknown_kids = (!settings.refetch_cooldown.is_zero()).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(NEGATIVE_KIDS)
                .time_to_live(settings.refetch_cooldown)
                .build()
        });
        let keys = Arc::new(KeyStore {
            issuer: name.clone(),
            current: RwLock::new(initial),
            fetcher,
            fetch_log: tokio::sync::Mutex::new(FetchLog::default()),
            unknown_kids,
            settings: settings.clone(),
            metrics,
        });
        if keys.fetcher.is_some()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(refresh_loop(Arc::downgrade(&keys)));
        }
        Self {
            name,
            expected_iss,
            audiences: config.audiences.clone(),
            // Config validation caps leeway at 300 s.
            leeway: config.leeway.as_secs() as i64,
            role_claims: config.role_claims.clone(),
            settings: settings.clone(),
            keys,
            instance: rand::random(),
        }
    }

    async fn check(&self, jws: &CompactJws<'_>) -> Result<Identity, AuthError> {
        let alg = JwsAlg::parse(&jws.header.alg)
            .filter(|a| self.settings.algorithms.contains(a))
            .ok_or(AuthError::UnsupportedAlgorithm)?;
        let kid = jws.header.kid.as_deref();
        if kid.is_some_and(|k| k.len() > MAX_KID_CHARS) {
            return Err(AuthError::UnknownKey);
        }
        let mut buf = signature_buffer();
        let signature = jws.signature(&mut buf)?;
        let set = self.keys.usable_set(kid, alg).await?;
        let candidates = match set.lookup(kid, alg) {
            Lookup::Keys(k) => k,
            Lookup::AlgorithmMismatch => return Err(AuthError::UnsupportedAlgorithm),
            // usable_set only returns a set that knows the kid.
            Lookup::Unknown => return Err(AuthError::UnknownKey),
        };
        if !candidates.iter().any(|k| k.verifies(jws.signing_input.as_bytes(), signature)) {
            return Err(AuthError::BadSignature);
        }
        let claims = Claims::from_slice(&jws.payload_bytes()?)?;
        self.identity(claims, unix_now())
    }

    fn identity(&self, claims: Claims, now: i64) -> Result<Identity, AuthError> {
        // Config requires `iss` and at least one audience for this kind.
        let registered =
            claims.check_registered(now, self.leeway, Some(&self.expected_iss), &self.audiences)?;
        let subject = claims.subject()?.to_owned();
        for (name, want) in &self.settings.require_claims {
            if claims.string_any(name) != Some(want.as_str()) {
                return Err(AuthError::ClaimMismatch);
            }
        }
        let identity = claims.into_identity(self.name.clone(), subject, registered, &self.role_claims)?;
        if identity.is_anonymous && !self.settings.allow_anonymous {
            return Err(AuthError::AnonymousUser);
        }
        Ok(identity)
    }
}

impl KeyStore {
    /// The current snapshot, if loaded (whatever its age).
    pub fn snapshot(&self) -> Option<Arc<KeySet>> {
        // A poisoned lock means a panic while swapping an Arc, which cannot
        // leave the Option half-written; keep using it.
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// True when keys are loaded and not older than `max_staleness`.
    pub fn is_fresh(&self) -> bool {
        self.snapshot().is_some_and(|s| self.fresh(&s))
    }

    fn fresh(&self, set: &KeySet) -> bool {
        self.fetcher.is_none() || set.loaded_at.elapsed() <= self.settings.max_staleness
    }

    /// A fresh set that knows `kid` (or has keys of `alg` for a token
    /// without one), fetching under the refresh discipline if needed.
    async fn usable_set(&self, kid: Option<&str>, alg: JwsAlg) -> Result<Arc<KeySet>, AuthError> {
        let knows = |set: &KeySet| !matches!(set.lookup(kid, alg), Lookup::Unknown);
        if let Some(set) = self.snapshot() {
            if !self.fresh(&set) {
                return Err(AuthError::KeysUnavailable);
            }
            if knows(&set) {
                return Ok(set);
            }
            if self.fetcher.is_none() {
                return Err(AuthError::UnknownKey);
            }
        }
        let memo = kid.unwrap_or("").to_owned();
        if let Some(answer) = self.unknown_kids.as_ref().and_then(|c| c.get(&memo)) {
            return Err(answer);
        }
        let answer = {
            let mut log = self.fetch_log.lock().await;
            // A fetch that finished while we waited may have brought it.
            match self.snapshot() {
                Some(set) if self.fresh(&set) && knows(&set) => return Ok(set),
                _ => {}
            }
            let cooling = log.last_attempt.is_some_and(|t| t.elapsed() < self.settings.refetch_cooldown);
            if cooling {
                if log.last_ok && self.snapshot().is_some() {
                    AuthError::UnknownKey
                } else {
                    AuthError::KeysUnavailable
                }
            } else {
                match self.fetch_locked(&mut log).await {
                    Ok(_) => match self.snapshot() {
                        Some(set) if knows(&set) => return Ok(set),
                        _ => AuthError::UnknownKey,
                    },
                    Err(_) => AuthError::KeysUnavailable,
                }
            }
        };
        if let Some(c) = &self.unknown_kids {
            c.insert(memo, answer.clone());
        }
        Err(answer)
    }

    /// One fetch, single-flighted by the caller holding `log`. Swaps the
    /// snapshot on success; returns the server's max-age.
    async fn fetch_locked(&self, log: &mut FetchLog) -> Result<Option<Duration>, String> {
        let Some(fetcher) = &self.fetcher else { return Ok(None) };
        log.last_attempt = Some(Instant::now());
        let result = self.fetch_document(fetcher, log).await;
        log.last_ok = result.is_ok();
        match result {
            Ok(fetched) => {
                tracing::info!(issuer = %self.issuer, keys = fetched.set.len(), "signing keys loaded");
                let mut slot = self.current.write().unwrap_or_else(|p| p.into_inner());
                *slot = Some(Arc::new(fetched.set));
                Ok(fetched.max_age)
            }
            Err(why) => {
                tracing::warn!(issuer = %self.issuer, error = %why, "signing key refresh failed; keeping the last good keys");
                Err(why)
            }
        }
    }

    async fn fetch_document(&self, fetcher: &Fetcher, log: &mut FetchLog) -> Result<Fetched, String> {
        let jwks_uri = match (&fetcher.source, &log.jwks_uri) {
            (KeySource::Url(u), _) => u.clone(),
            (KeySource::Discovery(_), Some(u)) => u.clone(),
            (KeySource::Discovery(iss), None) => {
                let url = format!("{}/.well-known/openid-configuration", iss.trim_end_matches('/'));
                let (body, _) = self.get(fetcher, UpstreamKind::Discovery, &url).await?;
                let doc: serde_json::Value = serde_json::from_slice(&body)
                    .map_err(|_| "discovery document is not JSON".to_string())?;
                // OpenID Connect Discovery §4.3: the issuer must match exactly.
                if doc["issuer"].as_str() != Some(fetcher.expected_iss.as_str()) {
                    return Err("discovery document names another issuer".into());
                }
                let uri = doc["jwks_uri"].as_str().ok_or("discovery document has no jwks_uri")?;
                let uri = crate::config::check_upstream_url(uri).map_err(|e| format!("jwks_uri: {e}"))?;
                log.jwks_uri = Some(uri.clone());
                uri
            }
            (_, _) => return Err("not a remote key source".into()),
        };
        let fetched = self.get(fetcher, UpstreamKind::Jwks, &jwks_uri).await;
        let (body, max_age) = match fetched {
            Ok(ok) => ok,
            Err(e) => {
                // The provider may have moved its JWKS: discover again next time.
                log.jwks_uri = None;
                return Err(e);
            }
        };
        let (set, skipped) = KeySet::from_jwks(&body, &self.settings.algorithms)?;
        for why in &skipped {
            tracing::info!(issuer = %self.issuer, skipped = %why, "JWKS entry not used");
        }
        if set.is_empty() {
            return Err("the JWKS has no usable key".into());
        }
        Ok(Fetched { set, max_age })
    }

    async fn get(
        &self,
        fetcher: &Fetcher,
        kind: UpstreamKind,
        url: &str,
    ) -> Result<(Vec<u8>, Option<Duration>), String> {
        let started = Instant::now();
        let mut span = crate::obs::traces::UpstreamSpan::start(kind, &self.issuer);
        let result = self.get_once(fetcher, url).await;
        let outcome = if result.is_ok() { "ok" } else { "error" };
        self.metrics.upstream(kind, &self.issuer, outcome, started.elapsed());
        span.outcome(outcome);
        result
    }

    async fn get_once(&self, fetcher: &Fetcher, url: &str) -> Result<(Vec<u8>, Option<Duration>), String> {
        let mut request = fetcher.client.get(url);
        if let Some(path) = &self.settings.bearer_token_file {
            // Read at every fetch: projected service-account tokens rotate.
            let token = std::fs::read_to_string(path)
                .map_err(|e| format!("bearer_token_file {}: {e}", path.display()))?;
            request = request.bearer_auth(token.trim());
        }
        let resp = crate::verify::upstream::send(request).await.map_err(|e| e.as_str().to_string())?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status().as_u16()));
        }
        let max_age = resp
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_max_age);
        let body = crate::verify::upstream::body(resp, self.settings.max_response_bytes)
            .await
            .map_err(|e| e.as_str().to_string())?;
        Ok((body, max_age))
    }
}

/// `max-age` from a Cache-Control value (`no-store`/`no-cache` count as 0).
fn parse_max_age(value: &str) -> Option<Duration> {
    let mut out = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(Duration::ZERO);
        }
        if let Some(v) = lower.strip_prefix("max-age=") {
            out = v.trim_matches('"').parse::<u64>().ok().map(Duration::from_secs);
        }
    }
    out
}

/// The refresh schedule: `max-age` clamped to the configured bounds (the
/// maximum when the server gave none), ±10 % jitter so replicas spread out.
fn next_refresh(max_age: Option<Duration>, settings: &JwksSettings) -> Duration {
    let base = max_age
        .unwrap_or(settings.max_refresh_interval)
        .clamp(settings.min_refresh_interval, settings.max_refresh_interval);
    let jitter: f64 = rand::random_range(0.9..1.1);
    base.mul_f64(jitter)
}

/// Fetches at start, then on schedule, until the verifier is dropped.
async fn refresh_loop(store: Weak<KeyStore>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let Some(keys) = store.upgrade() else { return };
        let cx = crate::obs::traces::refresh_span(&keys.issuer);
        let outcome = {
            let mut log = keys.fetch_log.lock().await;
            opentelemetry::context::FutureExt::with_context(keys.fetch_locked(&mut log), cx.clone()).await
        };
        crate::obs::traces::end(&cx);
        let wait = match outcome {
            Ok(max_age) => {
                backoff = Duration::from_secs(1);
                next_refresh(max_age, &keys.settings)
            }
            Err(_) => {
                let wait = backoff;
                backoff = (backoff * 2).min(keys.settings.min_refresh_interval);
                wait
            }
        };
        drop(keys);
        tokio::time::sleep(wait).await;
    }
}

impl Verifier for JwksVerifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn expected_iss(&self) -> Option<&str> {
        Some(&self.expected_iss)
    }

    fn leeway_secs(&self) -> i64 {
        self.leeway
    }

    fn verify<'a>(&'a self, jws: &'a CompactJws<'a>, _client: Option<&'a str>) -> VerifyFuture<'a> {
        Box::pin(async move { self.check(jws).await.map(Arc::new) })
    }

    fn ready(&self) -> bool {
        !self.settings.required || self.keys.is_fresh()
    }

    fn report(&self, metrics: &Metrics) {
        let set = self.keys.snapshot();
        let age = set.as_ref().map(|s| s.loaded_at.elapsed());
        metrics.key_set(&self.name, age, set.as_ref().map_or(0, |s| s.len()), !self.keys.is_fresh());
    }

    fn cache_epoch(&self) -> Result<u64, AuthError> {
        match self.keys.snapshot() {
            Some(set) if !self.keys.fresh(&set) => Err(AuthError::KeysUnavailable),
            Some(set) => Ok(set.fingerprint ^ self.instance),
            None => Ok(self.instance),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_parsing() {
        let cases = [
            ("plain", "max-age=600", Some(600)),
            ("with public", "public, max-age=60, must-revalidate", Some(60)),
            ("no-store", "no-store", Some(0)),
            ("absent", "public", None),
            ("garbage", "max-age=soon", None),
        ];
        for (what, v, want) in cases {
            assert_eq!(parse_max_age(v), want.map(Duration::from_secs), "{what}");
        }
    }
}
