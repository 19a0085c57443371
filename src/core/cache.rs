//! Cache of verified identities, so a token seen again skips parsing and
//! signature work (Envoy's jwt_authn calls the same idea `jwt_cache_config`).
//!
//! - Keyed by a 128-bit keyed hash ([`key`]) of (issuer name, token): tokens
//!   never sit in memory as keys, and a token verified by one issuer is never
//!   an answer for another.
//! - Only successful verifications are stored. An entry lives at most
//!   `min(max_ttl, exp + leeway − now)`, and `exp` is re-checked on every hit,
//!   so no entry outlives its token.
//! - Bounded by entry count. Kept across reloads while `[cache]` is
//!   unchanged; keys include the verifier instance and its key set's
//!   fingerprint, so a changed issuer or new key material never serves an
//!   entry made before it.
//! - Required roles are checked per request, after the cache.

use crate::core::identity::Identity;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A cached identity and how long it may live.
#[derive(Clone)]
struct Entry {
    identity: Arc<Identity>,
    ttl: Duration,
}

struct EntryExpiry;

impl moka::Expiry<Key, Entry> for EntryExpiry {
    fn expire_after_create(&self, _key: &Key, value: &Entry, _created_at: Instant) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Verified identities of one issuer set. A clone is another handle on the
/// same entries (a reload keeps them).
#[derive(Clone)]
pub struct IdentityCache {
    entries: moka::sync::Cache<Key, Entry>,
    max_ttl: Duration,
}

/// Counts entries evicted for space under `cache` in `metrics`.
pub fn count_evictions<K, V>(
    metrics: Arc<crate::obs::metrics::Metrics>,
    cache: crate::obs::metrics::CacheName,
) -> impl Fn(Arc<K>, V, moka::notification::RemovalCause) + Send + Sync + 'static {
    move |_, _, cause| {
        if cause == moka::notification::RemovalCause::Size {
            metrics.cache_evicted(cache);
        }
    }
}

/// A cache key: 128 bits of SipHash-2-4 under a key drawn at random when
/// the process starts.
///
/// Why not SHA-256: hashing a ~400-byte token with it cost ~16,000
/// instructions, a sixth of a whole cached Verify. SipHash is a PRF: without
/// the process's secret key nobody can aim for a collision, and chance
/// collisions among even 10^6 live entries have probability ~10^-27. A
/// collision would be a wrong answer, so the key must stay unguessable; it
/// never leaves memory and is never logged.
pub type Key = u128;

/// The cache key of `token` as verified by `issuer` with key material of
/// generation `epoch` (the verifier's `cache_epoch`).
pub fn key(issuer: &str, epoch: u64, token: &str) -> Key {
    keyed([issuer.as_bytes(), &epoch.to_le_bytes(), token.as_bytes()])
}

/// A key part naming one allocation: for caches whose entries hold the
/// `Arc` they were made for, so that no other value can have that address
/// while the entry exists. A hit must still be checked with `Arc::ptr_eq`
/// against the value in hand.
pub fn address<T>(value: &Arc<T>) -> [u8; 8] {
    (Arc::as_ptr(value) as usize as u64).to_le_bytes()
}

/// The keyed hash of `parts`, each prefixed with its length so that no two
/// different lists of parts hash the same input. Every in-memory cache key
/// in authgate is made with it.
pub fn keyed<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> Key {
    use siphasher::sip128::Hasher128;
    use std::hash::Hasher;
    static PROCESS_KEY: std::sync::OnceLock<(u64, u64)> = std::sync::OnceLock::new();
    let (k0, k1) = *PROCESS_KEY.get_or_init(rand::random);
    let mut h = siphasher::sip128::SipHasher24::new_with_keys(k0, k1);
    for p in parts {
        h.write(&(p.len() as u64).to_le_bytes());
        h.write(p);
    }
    h.finish128().as_u128()
}

/// SHA-256 of `parts`, each prefixed with its length so that no two
/// different lists of parts hash the same input: content fingerprints that
/// must be stable across processes (files, keys), never a hot path.
pub fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for p in parts {
        ctx.update(&(p.len() as u64).to_be_bytes());
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

impl IdentityCache {
    /// A cache of at most `max_entries` identities, each kept at most `max_ttl`.
    pub fn new(max_entries: u64, max_ttl: Duration, metrics: Arc<crate::obs::metrics::Metrics>) -> Self {
        let entries = moka::sync::Cache::builder()
            .max_capacity(max_entries)
            .expire_after(EntryExpiry)
            .eviction_listener(count_evictions(metrics, crate::obs::metrics::CacheName::Identity))
            .build();
        Self { entries, max_ttl }
    }

    /// The identity verified earlier under `key`, if it is still unexpired
    /// at `now` (seconds) given the issuer's `leeway` (seconds).
    pub fn get(&self, key: &Key, now: i64, leeway: i64) -> Option<Arc<Identity>> {
        let entry = self.entries.get(key)?;
        if now >= entry.identity.expires_at.saturating_add(leeway) {
            self.entries.invalidate(key);
            return None;
        }
        Some(entry.identity)
    }

    /// Stores a successful verification.
    pub fn insert(&self, key: Key, identity: Arc<Identity>, now: i64, leeway: i64) {
        let remaining = identity.expires_at.saturating_add(leeway).saturating_sub(now);
        if remaining <= 0 {
            return;
        }
        let ttl = self.max_ttl.min(Duration::from_secs(remaining as u64));
        self.entries.insert(key, Entry { identity, ttl });
    }

    /// Entries currently held (after applying pending inserts/evictions).
    pub fn len(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(exp: i64) -> Arc<Identity> {
        Arc::new(Identity {
            subject: "u".into(),
            email: "".into(),
            roles: vec![].into(),
            provider: "".into(),
            issuer: Arc::from("dev"),
            audiences: vec![].into(),
            expires_at: exp,
            ..Identity::default()
        })
    }

    #[test]
    fn keys_separate_issuers_and_tokens() {
        assert_ne!(key("a", 0, "t"), key("b", 0, "t"));
        assert_ne!(key("a", 0, "t1"), key("a", 0, "t2"));
        // The separator keeps ("ab","c") and ("a","bc") apart.
        assert_ne!(key("ab", 0, "c"), key("a", 0, "bc"));
        // New key material (another epoch) never serves an old entry.
        assert_ne!(key("a", 1, "t"), key("a", 2, "t"));
    }

    #[test]
    fn hit_is_rechecked_against_exp() {
        let c = IdentityCache::new(100, Duration::from_secs(300), Default::default());
        let k = key("dev", 0, "tok");
        c.insert(k, identity(1_000), 900, 30);
        assert!(c.get(&k, 950, 30).is_some());
        assert!(c.get(&k, 1_029, 30).is_some(), "within leeway");
        assert!(c.get(&k, 1_030, 30).is_none(), "expired beyond leeway");
        assert!(c.get(&k, 950, 30).is_none(), "expired entries are dropped");
    }

    #[test]
    fn expired_identities_are_not_stored() {
        let c = IdentityCache::new(100, Duration::from_secs(300), Default::default());
        let k = key("dev", 0, "tok");
        c.insert(k, identity(1_000), 2_000, 30);
        assert!(c.get(&k, 990, 30).is_none());
    }
}
