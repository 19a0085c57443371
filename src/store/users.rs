//! [`UserStore`]: the store as the request path and the webhook use it.

use super::revocations::{RevocationIndex, TokenFacts};
use super::row::{Applied, Change, FeedRow, NetlifyFields};
use super::view::StoreView;
use super::{Backend, StoreError};
use crate::config::StoreConfig;
use crate::core::identity::Identity;
use crate::obs::metrics::{CacheName, Metrics, Protection, StoreOp};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};

/// How long feed rows are kept (a replica away longer starts over).
const FEED_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How often a replica prunes the feed.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// First and longest wait between migration attempts at start.
const MIGRATE_RETRY: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(5));

/// The store, its cache of rows and its background work. One per process:
/// it outlives config reloads.
pub struct UserStore {
    backend: Arc<dyn Backend>,
    views: moka::sync::Cache<String, Arc<StoreView>>,
    touched: moka::sync::Cache<String, ()>,
    queue: mpsc::Sender<Change>,
    queue_rx: Mutex<Option<mpsc::Receiver<Change>>>,
    /// Milliseconds since `started` of the last good feed read; -1 before.
    synced_at_ms: AtomicI64,
    started: Instant,
    migrated: AtomicBool,
    /// Bumped on every invalidation: a read that raced one is not cached.
    invalidations: AtomicU64,
    wake: Arc<Notify>,
    config: StoreConfig,
    metrics: Arc<Metrics>,
    /// Active revocations and deleted users (`store.revocations`).
    revocations: RwLock<RevocationIndex>,
    revocations_loaded: AtomicBool,
}

fn key(issuer: &str, subject: &str) -> String {
    format!("{issuer}\0{subject}")
}

thread_local! {
    /// A lookup key built without allocating on the request path.
    static LOOKUP: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Runs `f` with the cache key of (issuer, subject), built in a reused
/// per-thread buffer.
fn with_key<T>(issuer: &str, subject: &str, f: impl FnOnce(&str) -> T) -> T {
    LOOKUP.with(|buf| {
        // Not re-entered: `f` only looks up a cache.
        let Ok(mut buf) = buf.try_borrow_mut() else { return f(&key(issuer, subject)) };
        buf.clear();
        buf.push_str(issuer);
        buf.push('\0');
        buf.push_str(subject);
        f(&buf)
    })
}

impl UserStore {
    /// Opens the configured database (connections are made by
    /// [`UserStore::start`] and on use).
    pub fn open(config: &StoreConfig, metrics: Arc<Metrics>) -> Result<Arc<Self>, StoreError> {
        let backend = super::open(config)?;
        Ok(Self::with_backend(backend, config, metrics))
    }

    /// The store over an already opened backend.
    pub fn with_backend(backend: Arc<dyn Backend>, config: &StoreConfig, metrics: Arc<Metrics>) -> Arc<Self> {
        let (queue, rx) = mpsc::channel(config.queue_capacity);
        Arc::new(Self {
            backend,
            views: moka::sync::Cache::builder()
                .max_capacity(config.cache_max_entries)
                .time_to_live(config.cache_ttl)
                .build(),
            touched: moka::sync::Cache::builder()
                .max_capacity(config.cache_max_entries.max(1))
                .time_to_live(config.touch_interval)
                .build(),
            queue,
            queue_rx: Mutex::new(Some(rx)),
            synced_at_ms: AtomicI64::new(-1),
            started: Instant::now(),
            migrated: AtomicBool::new(false),
            invalidations: AtomicU64::new(0),
            wake: Arc::new(Notify::new()),
            config: config.clone(),
            metrics,
            revocations: RwLock::default(),
            revocations_loaded: AtomicBool::new(false),
        })
    }

    /// The database itself (the CLI, tests).
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Migrates (retrying until the database answers), then follows the
    /// change feed and writes queued changes, until the returned tasks are
    /// aborted.
    pub fn start(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        let store = self.clone();
        tasks.push(tokio::spawn(async move { store.follow().await }));
        if let Some(rx) = self.queue_rx.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let store = self.clone();
            tasks.push(tokio::spawn(async move { store.write_queued(rx).await }));
        }
        tasks.extend(self.backend.listen(self.wake.clone(), self.config.poll_interval));
        tasks
    }

    /// True once migrated (and revocations loaded, when on) and while the
    /// change feed is fresh.
    pub fn ready(&self) -> bool {
        self.migrated.load(Ordering::Acquire)
            && (!self.config.revocations || self.revocations_loaded.load(Ordering::Acquire))
            && self.sync_age().is_some_and(|a| a <= self.config.max_staleness)
    }

    /// True when `store.revocations` is on.
    pub fn checks_revocations(&self) -> bool {
        self.config.revocations
    }

    /// Whether a revocation refuses this token: `Ok(Some(kind))` refused,
    /// `Ok(None)` not, `Err` when this replica's revocations are not
    /// current (not loaded, or the feed is older than `max_staleness`).
    pub fn revoked(&self, facts: &TokenFacts<'_>) -> Result<Option<&'static str>, StoreError> {
        if !self.config.revocations {
            return Ok(None);
        }
        if !self.ready() {
            return Err(StoreError("revocations are not current".into()));
        }
        Ok(self.revoked_stale(facts))
    }

    /// The revocation index as it stands, fresh or not: for an issuer that
    /// goes on with stale revocations.
    pub fn revoked_stale(&self, facts: &TokenFacts<'_>) -> Option<&'static str> {
        // A poisoned lock holds a whole index (updates cannot panic halfway).
        self.revocations.read().unwrap_or_else(|p| p.into_inner()).refuses(facts)
    }

    /// Time since the last good feed read; `None` before the first.
    pub fn sync_age(&self) -> Option<Duration> {
        let at = self.synced_at_ms.load(Ordering::Acquire);
        (at >= 0).then(|| self.started.elapsed().saturating_sub(Duration::from_millis(at as u64)))
    }

    /// Sets the store gauges (at scrape).
    pub fn report(&self) {
        self.metrics.store_sync_age(self.sync_age());
        self.metrics.cache_size(CacheName::Store, self.views.entry_count());
        if self.config.revocations {
            let (kinds, deleted) = self.revocations.read().unwrap_or_else(|p| p.into_inner()).counts();
            for (kind, n) in kinds {
                self.metrics.revocations(kind.as_str(), n);
            }
            self.metrics.revocations("deleted_user", deleted);
        }
    }

    /// The app's part of a user for a decision: cached, else read. Fails
    /// when the feed is older than `store.max_staleness` (the cache may be
    /// outdated) or the row cannot be read. The flag is true on a cache hit.
    pub async fn view(&self, issuer: &str, subject: &str) -> Result<(Arc<StoreView>, bool), StoreError> {
        if !self.ready() {
            return Err(StoreError("the change feed is not current".into()));
        }
        let hit = with_key(issuer, subject, |k| self.views.get(k));
        self.metrics.cache_lookup(CacheName::Store, hit.is_some());
        if let Some(v) = hit {
            return Ok((v, true));
        }
        let before = self.invalidations.load(Ordering::Acquire);
        let started = Instant::now();
        let row = self.backend.user(issuer, subject).await;
        self.metrics.store(StoreOp::Read, row.is_ok(), started.elapsed());
        let row = row?;
        let (view, omitted) = StoreView::from_row(row.as_ref());
        for (claim, why) in omitted {
            self.metrics.protection(Protection::ClaimOmitted);
            // Every field value is escaped by the log formatter (obs::logs).
            tracing::warn!(
                table = "authgate_users",
                issuer = %issuer,
                subject = %subject,
                claim = %&claim,
                why,
                "app-written claim left out"
            );
        }
        let view = Arc::new(view);
        if self.invalidations.load(Ordering::Acquire) == before {
            self.views.insert(key(issuer, subject), view.clone());
        }
        Ok((view, false))
    }

    /// Applies a change now (the webhook), and drops this replica's cached
    /// row at once; other replicas follow the feed.
    pub async fn apply(&self, change: &Change) -> Result<Applied, StoreError> {
        let started = Instant::now();
        let applied = self.backend.apply(change).await;
        self.metrics.store(StoreOp::Event, applied.is_ok(), started.elapsed());
        let f = change.fields();
        self.invalidate(&f.issuer, &f.subject);
        self.wake.notify_one();
        applied
    }

    /// Queues a background change (never waits; a full queue drops it and
    /// counts the drop).
    pub fn queue(&self, change: Change) {
        let k = {
            let f = change.fields();
            key(&f.issuer, &f.subject)
        };
        if self.queue.try_send(change).is_err() {
            self.metrics.protection(Protection::StoreWriteDropped);
            // Retried on the user's next request.
            self.touched.invalidate(&k);
        }
    }

    /// A granted request saw this user: at most once per
    /// `store.touch_interval`, queue a row refresh from the identity.
    pub fn seen(&self, identity: &Identity) {
        if with_key(&identity.issuer, &identity.subject, |k| self.touched.contains_key(k)) {
            return;
        }
        self.touched.insert(key(&identity.issuer, &identity.subject), ());
        self.queue(Change::Seen(NetlifyFields {
            email: identity.email.to_string(),
            provider: identity.provider.to_string(),
            app_metadata: identity.app_metadata.to_map(),
            user_metadata: identity.user_metadata.to_map(),
            ..NetlifyFields::bare(&identity.issuer, &identity.subject)
        }));
    }

    /// True when the issuer's signup allow-list admits `email`.
    pub async fn signup_allowed(&self, issuer: &str, email: &str) -> Result<bool, StoreError> {
        let started = Instant::now();
        let r = self.backend.signup_allowed(issuer, email).await;
        self.metrics.store(StoreOp::Event, r.is_ok(), started.elapsed());
        r
    }

    fn invalidate(&self, issuer: &str, subject: &str) {
        self.invalidations.fetch_add(1, Ordering::AcqRel);
        self.views.invalidate(&key(issuer, subject));
    }

    fn invalidate_all(&self) {
        self.invalidations.fetch_add(1, Ordering::AcqRel);
        self.views.invalidate_all();
    }

    async fn migrate(&self) {
        let mut wait = MIGRATE_RETRY.0;
        loop {
            let started = Instant::now();
            let r = self.backend.migrate().await;
            self.metrics.store(StoreOp::Migrate, r.is_ok(), started.elapsed());
            match r {
                Ok((from, to)) => {
                    if from != to {
                        tracing::info!(backend = self.backend.kind(), from, to, "store schema migrated");
                    }
                    self.migrated.store(true, Ordering::Release);
                    return;
                }
                Err(error) => {
                    tracing::warn!(backend = self.backend.kind(), %error, retry_in = ?wait, "store not reachable yet");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(MIGRATE_RETRY.1);
                }
            }
        }
    }

    /// Reads the feed on every notification and every `poll_interval`,
    /// dropping cached rows as they change.
    async fn follow(&self) {
        self.migrate().await;
        let mut cursor = None;
        let mut failing = false;
        let mut pruned = Instant::now();
        let mut reload = self.config.revocations;
        loop {
            let started = Instant::now();
            let read = match &cursor {
                None => self.backend.feed_head().await.map(|c| (Vec::new(), c, false)),
                Some(c) => self.backend.feed_read(c).await.map(|f| (f.rows, f.next, f.overflow)),
            };
            self.metrics.store(StoreOp::Feed, read.is_ok(), started.elapsed());
            let read = match read {
                // After a failed read the cursor did not move, so no row
                // was missed; but rows older than the feed's retention may
                // be gone, so a long gap starts over, as does an overflow.
                Ok((rows, next, overflow)) => {
                    if overflow || (failing && self.sync_age().is_none_or(|a| a > FEED_RETENTION / 2)) {
                        self.invalidate_all();
                        reload = self.config.revocations;
                    }
                    // The full load comes after the cursor was placed, so
                    // nothing committed in between is missed (applying a
                    // change twice is harmless).
                    let applied = if reload {
                        self.reload_revocations().await.map(|()| reload = false)
                    } else {
                        self.apply_feed(&rows).await
                    };
                    applied.map(|()| next)
                }
                Err(e) => Err(e),
            };
            match read {
                Ok(next) => {
                    cursor = Some(next);
                    self.synced_at_ms.store(self.started.elapsed().as_millis() as i64, Ordering::Release);
                    if failing {
                        tracing::info!("store: change feed readable again");
                    }
                    failing = false;
                }
                Err(error) => {
                    if !failing {
                        tracing::warn!(%error, "store: cannot read the change feed");
                    }
                    failing = true;
                }
            }
            // Expired revocations go within max_staleness (or 10 min).
            if pruned.elapsed() >= PRUNE_EVERY.min(self.config.max_staleness) {
                pruned = Instant::now();
                if let Err(error) = self.backend.prune_feed(FEED_RETENTION).await {
                    tracing::debug!(%error, "store: feed prune failed");
                }
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
    }

    /// Drops changed rows from the cache and applies changed revocations
    /// and deletions to the index.
    async fn apply_feed(&self, rows: &[FeedRow]) -> Result<(), StoreError> {
        for r in rows {
            match r.table.as_str() {
                "authgate_users" => {
                    let (Some(i), Some(s)) = (&r.issuer, &r.subject) else { continue };
                    self.invalidate(i, s);
                    if self.config.revocations {
                        let deleted = self.backend.user(i, s).await?.is_some_and(|u| u.deleted_at.is_some());
                        self.revocations
                            .write()
                            .unwrap_or_else(|p| p.into_inner())
                            .set_deleted(i, s, deleted);
                    }
                }
                "authgate_revocations" if self.config.revocations => {
                    let Some(id) = r.row_id.as_deref().and_then(|v| v.parse::<i64>().ok()) else { continue };
                    let entry = self.backend.revocation(id).await?;
                    let mut index = self.revocations.write().unwrap_or_else(|p| p.into_inner());
                    match entry {
                        Some(e) => index.upsert(e),
                        None => index.remove(id),
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Loads every active revocation and deleted user.
    async fn reload_revocations(&self) -> Result<(), StoreError> {
        let entries = self.backend.revocations().await?;
        let deleted = self.backend.deleted_users().await?;
        let n = entries.len();
        self.revocations.write().unwrap_or_else(|p| p.into_inner()).replace_all(entries, deleted);
        if !self.revocations_loaded.swap(true, Ordering::AcqRel) {
            tracing::info!(revocations = n, "store: revocations loaded");
        }
        Ok(())
    }

    async fn write_queued(&self, mut rx: mpsc::Receiver<Change>) {
        while let Some(change) = rx.recv().await {
            let started = Instant::now();
            let r = self.backend.apply(&change).await;
            self.metrics.store(StoreOp::Background, r.is_ok(), started.elapsed());
            let f = change.fields();
            if let Err(error) = r {
                tracing::debug!(%error, "store: background write failed");
                self.touched.invalidate(&key(&f.issuer, &f.subject));
            }
        }
    }
}
