//! Hosted Netlify Identity: tokens whose secret nobody has, checked by
//! GoTrue itself with `GET <identity_url>/user` and `Authorization: Bearer`.
//!
//! Order: cheap local rejection from the *unverified* token (shape, `alg`,
//! `exp` past beyond the leeway, missing `exp`, the operator `sub`), read only
//! to reject, never to grant → negative cache → positive cache with
//! single-flight (N concurrent identical misses make one upstream call) →
//! a bounded number of upstream calls → mapping of GoTrue's answer.
//!
//! GoTrue's answers (netlify.md §1.4) and what they become:
//!
//! | GoTrue | authgate |
//! | --- | --- |
//! | 200 user JSON with an `id` equal to the token's `sub` | the identity (roles from the user's `app_metadata`) |
//! | 401 `{"code":401,"msg":"Invalid token: token is expired by …"}` | `token_expired` |
//! | 401 `…signature is invalid…` | `bad_signature` |
//! | 401 any other documented body | `invalid_token` |
//! | 400 `Token audience doesn't match request audience` | `wrong_audience` |
//! | 400 any other documented body (e.g. `Could not read User ID claim`) | `invalid_token` |
//! | 404 documented body (user deleted) | `user_not_found` |
//! | 429 | `upstream_rate_limited` (+ `Retry-After`) |
//! | 5xx, other statuses, timeouts, connection errors, bodies that are not the documented JSON or too large | `upstream_unavailable` |
//!
//! A 404 or 401 whose body is not GoTrue's JSON (e.g. an HTML page from a
//! site without Identity) is an upstream problem, not a verdict on the
//! token. Definitive rejections are cached for `negative_cache_ttl`;
//! unavailability never is.

use super::{Verifier, VerifyFuture};
use crate::config::ClaimPath;
use crate::config::{IssuerConfig, NetlifyIdentitySettings};
use crate::core::claims::{Claims, SYSTEM_SUBJECTS, unix_now};
use crate::core::error::AuthError;
use crate::core::identity::Identity;
use crate::core::jws::CompactJws;
use crate::obs::metrics::{CacheName, Protection, UpstreamKind};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone)]
struct Positive {
    identity: Arc<Identity>,
    ttl: Duration,
}

struct PositiveExpiry;

impl moka::Expiry<crate::core::cache::Key, Positive> for PositiveExpiry {
    fn expire_after_create(
        &self,
        _: &crate::core::cache::Key,
        value: &Positive,
        _: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// One hosted-Identity issuer.
pub struct IntrospectVerifier {
    name: Arc<str>,
    user_url: String,
    client: reqwest::Client,
    leeway: i64,
    audiences: Vec<String>,
    role_claims: Vec<ClaimPath>,
    settings: NetlifyIdentitySettings,
    positive: moka::future::Cache<crate::core::cache::Key, Positive>,
    negative: Option<moka::future::Cache<crate::core::cache::Key, AuthError>>,
    slots: tokio::sync::Semaphore,
    clients: ClientShares,
    metrics: Arc<crate::obs::metrics::Metrics>,
    /// Refreshed from each `/user` answer (reconciliation).
    store: Option<Arc<crate::store::UserStore>>,
}

/// Upstream calls in flight per client, so that one source (a flood of
/// forged, well-formed tokens) cannot take every upstream slot. Entries
/// exist only while a client has a call in flight, so the map is bounded by
/// `max_concurrent_requests` plus the calls queued for a slot.
struct ClientShares {
    per_client: usize,
    in_flight: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

impl ClientShares {
    /// Counts a call for `client`; `None` when it already has its share.
    /// Callers whose address is unknown are one client together.
    fn enter(&self, client: Option<&str>) -> Option<ClientShare<'_>> {
        let client = client.unwrap_or("");
        let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(client.to_owned()).or_insert(0);
        if *n >= self.per_client {
            return None;
        }
        *n += 1;
        Some(ClientShare { shares: self, client: client.to_owned() })
    }
}

/// One counted call; uncounted on drop.
struct ClientShare<'s> {
    shares: &'s ClientShares,
    client: String,
}

impl Drop for ClientShare<'_> {
    fn drop(&mut self) {
        let mut map = self.shares.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.client);
            }
        }
    }
}

impl IntrospectVerifier {
    /// Builds the verifier, its HTTP client and caches (once, at load time).
    pub fn new(
        config: &IssuerConfig,
        settings: &NetlifyIdentitySettings,
        metrics: Arc<crate::obs::metrics::Metrics>,
        store: Option<Arc<crate::store::UserStore>>,
    ) -> Self {
        // Every entry weighs at least max_bytes / max_entries, so the weight
        // bound also bounds the entry count.
        let floor =
            (settings.cache_max_bytes / settings.cache_max_entries.max(1)).clamp(1, u64::from(u32::MAX));
        let positive = moka::future::Cache::builder()
            .max_capacity(if settings.cache_max_entries == 0 { 0 } else { settings.cache_max_bytes })
            .weigher(move |_: &crate::core::cache::Key, v: &Positive| {
                approx_bytes(&v.identity).max(floor).min(u64::from(u32::MAX)) as u32
            })
            .expire_after(PositiveExpiry)
            .eviction_listener(crate::core::cache::count_evictions(metrics.clone(), CacheName::Introspection))
            .build();
        let negative = (!settings.negative_cache_ttl.is_zero()).then(|| {
            moka::future::Cache::builder()
                .max_capacity(settings.cache_max_entries)
                .time_to_live(settings.negative_cache_ttl)
                .build()
        });
        let client = crate::verify::upstream::client(settings.connect_timeout, settings.timeout);
        Self {
            name: Arc::from(config.name.as_str()),
            user_url: format!("{}/user", settings.identity_url),
            client,
            // Config validation caps leeway at 300 s.
            leeway: config.leeway.as_secs() as i64,
            audiences: config.audiences.clone(),
            role_claims: config.role_claims.clone(),
            settings: settings.clone(),
            positive,
            negative,
            slots: tokio::sync::Semaphore::new(settings.max_concurrent_requests),
            clients: ClientShares {
                per_client: settings.max_concurrent_per_client,
                in_flight: std::sync::Mutex::new(std::collections::HashMap::new()),
            },
            metrics,
            store,
        }
    }

    /// Rejects, without any network call, what GoTrue could never accept.
    /// Returns the token's (unverified) `exp` and `sub`.
    fn precheck(&self, jws: &CompactJws<'_>, now: i64) -> Result<(i64, String), AuthError> {
        if jws.header.alg != "HS256" {
            return Err(AuthError::UnsupportedAlgorithm);
        }
        let unverified = Claims::from_slice(&jws.payload_bytes()?)?;
        let exp = unverified.numeric_date("exp")?.ok_or(AuthError::MissingClaim("exp"))?;
        if now >= exp.saturating_add(self.leeway) {
            return Err(AuthError::TokenExpired);
        }
        let sub = match unverified.string("sub")? {
            None | Some("") => return Err(AuthError::MissingClaim("sub")),
            Some(s) => s.to_owned(),
        };
        if SYSTEM_SUBJECTS.contains(&sub.as_str()) {
            return Err(AuthError::SystemPrincipal);
        }
        Ok((exp, sub))
    }

    async fn check(&self, jws: &CompactJws<'_>, client: Option<&str>) -> Result<Arc<Identity>, AuthError> {
        let now = unix_now();
        let token = jws.compact();
        let key = crate::core::cache::key(&self.name, 0, token);
        // A positive entry exists only for these exact bytes after GoTrue
        // accepted them, so shape, alg and sub need no second look; exp does.
        let hit = self.positive.get(&key).await;
        self.metrics.cache_lookup(
            CacheName::Introspection,
            hit.as_ref().is_some_and(|h| now < h.identity.expires_at),
        );
        if let Some(hit) = hit {
            if now < hit.identity.expires_at {
                return Ok(hit.identity);
            }
            self.positive.invalidate(&key).await;
        }
        if let Some(negative) = &self.negative
            && let Some(err) = negative.get(&key).await
        {
            return Err(err);
        }
        let (exp, sub) = self.precheck(jws, now)?;
        let fetched = self
            .positive
            .try_get_with(key, async {
                let identity = Arc::new(self.introspect(token, exp, &sub, client).await?);
                let remaining = exp.saturating_sub(unix_now()).max(1) as u64;
                Ok::<_, AuthError>(Positive {
                    identity,
                    ttl: self.settings.cache_ttl.min(Duration::from_secs(remaining)),
                })
            })
            .await;
        match fetched {
            Ok(p) => Ok(p.identity),
            Err(err) => {
                let err = (*err).clone();
                if let Some(negative) = &self.negative
                    && is_definitive(&err)
                {
                    negative.insert(key, err.clone()).await;
                }
                Err(err)
            }
        }
    }

    /// One upstream call, within the client's share and the concurrency
    /// limit (whose queue is first come, first served).
    async fn introspect(
        &self,
        token: &str,
        exp: i64,
        sub: &str,
        client: Option<&str>,
    ) -> Result<Identity, AuthError> {
        let _share = self.clients.enter(client).ok_or_else(|| {
            self.metrics.protection(Protection::ClientBusy);
            AuthError::ClientBusy
        })?;
        let _slot = tokio::time::timeout(self.settings.queue_timeout, self.slots.acquire())
            .await
            .map_err(|_| AuthError::UpstreamBusy)?
            .map_err(|_| AuthError::UpstreamBusy)?;
        let started = Instant::now();
        let mut span = crate::obs::traces::UpstreamSpan::start(UpstreamKind::Introspection, &self.name);
        let result = self.call(token).await;
        let elapsed = started.elapsed();
        let elapsed_ms = elapsed.as_millis() as u64;
        let outcome = match &result {
            Ok((200, _)) => "ok",
            Ok((400..=499, _)) => "rejected",
            Ok(_) => "error",
            Err(AuthError::UpstreamRateLimited { .. }) => "rate_limited",
            Err(_) => "error",
        };
        self.metrics.upstream(UpstreamKind::Introspection, &self.name, outcome, elapsed);
        span.outcome(outcome);
        match &result {
            Ok((status, _)) => tracing::debug!(issuer = %self.name, status, elapsed_ms, "introspection"),
            Err(e) => {
                tracing::warn!(issuer = %self.name, reason = e.reason(), error = %e, elapsed_ms, "introspection failed")
            }
        }
        let (status, body) = result?;
        let answer = self.map_answer(status, &body, exp, sub);
        self.reconcile(&answer, &body, sub);
        answer
    }

    /// GoTrue's answer is the freshest word on the user: a 200 refreshes
    /// the store's row (ordered by its `updated_at` like any event), a 404
    /// marks it deleted. Queued, never waited for.
    fn reconcile(&self, answer: &Result<Identity, AuthError>, body: &[u8], sub: &str) {
        use crate::store::row::{Change, EventKind, NetlifyFields};
        let Some(store) = &self.store else { return };
        match answer {
            Ok(_) => {
                let user = crate::core::jws::strict_object(body).ok();
                if let Some(fields) = user.and_then(|u| NetlifyFields::from_gotrue_user(&self.name, &u).ok())
                {
                    store.queue(Change::Event(EventKind::UserModified, fields));
                }
            }
            // GoTrue verified the token before looking its user up, so
            // `sub` names a user that existed and is gone.
            Err(AuthError::UserNotFound) => {
                store.queue(Change::Event(EventKind::UserDeleted, NetlifyFields::bare(&self.name, sub)))
            }
            Err(_) => {}
        }
    }

    /// GET /user; returns (status, body) or an upstream error. The body is
    /// read up to `max_response_bytes`.
    async fn call(&self, token: &str) -> Result<(u16, Vec<u8>), AuthError> {
        let unavailable =
            |e: crate::verify::upstream::UpstreamError| AuthError::UpstreamUnavailable(e.as_str());
        let resp = crate::verify::upstream::send(self.client.get(&self.user_url).bearer_auth(token))
            .await
            .map_err(unavailable)?;
        let status = resp.status().as_u16();
        if status == 429 {
            let retry_after_secs = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            return Err(AuthError::UpstreamRateLimited { retry_after_secs });
        }
        let body = crate::verify::upstream::body(resp, self.settings.max_response_bytes)
            .await
            .map_err(unavailable)?;
        Ok((status, body))
    }

    fn map_answer(&self, status: u16, body: &[u8], exp: i64, sub: &str) -> Result<Identity, AuthError> {
        match status {
            200 => self.identity_from_user(body, exp, sub),
            400 | 401 | 404 => {
                let msg = gotrue_error_msg(body, status)
                    .ok_or(AuthError::UpstreamUnavailable("undocumented error body"))?;
                Err(match status {
                    404 => AuthError::UserNotFound,
                    401 if msg.contains("expired") => AuthError::TokenExpired,
                    401 if msg.contains("signature is invalid") => AuthError::BadSignature,
                    400 if msg.contains("audience") => AuthError::WrongAudience,
                    _ => AuthError::InvalidToken,
                })
            }
            _ => Err(AuthError::UpstreamUnavailable("unexpected status")),
        }
    }

    fn identity_from_user(&self, body: &[u8], exp: i64, sub: &str) -> Result<Identity, AuthError> {
        let not_documented = |_| AuthError::UpstreamUnavailable("user answer is not the documented JSON");
        let user = Claims::from_slice(body).map_err(not_documented)?;
        let id = user.string("id").map_err(not_documented)?.unwrap_or_default().to_owned();
        if id.is_empty() || id != sub {
            return Err(AuthError::UpstreamUnavailable("user answer does not match the token"));
        }
        let audiences = user.audiences().map_err(not_documented)?;
        if !self.audiences.is_empty() && !audiences.iter().any(|a| self.audiences.contains(a)) {
            return Err(AuthError::WrongAudience);
        }
        // GoTrue answers `"aud": ""` when the token had none.
        let audiences = audiences.into_iter().filter(|a| !a.is_empty()).collect();
        user.into_identity(self.name.clone(), id, (exp, audiences), &self.role_claims).map_err(not_documented)
    }
}

/// GoTrue's error body `{"code": <status>, "msg": "..."}`, if that is what
/// `body` is.
fn gotrue_error_msg(body: &[u8], status: u16) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct GoTrueError {
        code: u16,
        msg: String,
    }
    let e: GoTrueError = serde_json::from_slice(body).ok()?;
    (e.code == status).then_some(e.msg)
}

/// Rejections that will not change on retry: safe to cache briefly.
fn is_definitive(err: &AuthError) -> bool {
    matches!(
        err,
        AuthError::TokenExpired
            | AuthError::BadSignature
            | AuthError::InvalidToken
            | AuthError::UserNotFound
            | AuthError::WrongAudience
    )
}

/// Rough heap size of a cached identity, for the cache's byte bound.
fn approx_bytes(id: &Identity) -> u64 {
    let strings = id.subject.len()
        + id.email.len()
        + id.provider.len()
        + id.roles.iter().map(String::len).sum::<usize>()
        + id.audiences.iter().map(String::len).sum::<usize>();
    (256 + strings + id.app_metadata.json_len() + id.user_metadata.json_len()) as u64
}

impl Verifier for IntrospectVerifier {
    fn report(&self, metrics: &crate::obs::metrics::Metrics) {
        metrics.cache_size(CacheName::Introspection, self.positive.entry_count());
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn expected_iss(&self) -> Option<&str> {
        None
    }

    fn leeway_secs(&self) -> i64 {
        self.leeway
    }

    fn has_own_cache(&self) -> bool {
        true
    }

    fn verify<'a>(&'a self, jws: &'a CompactJws<'a>, client: Option<&'a str>) -> VerifyFuture<'a> {
        Box::pin(self.check(jws, client))
    }
}
