//! The user store: the application's database, where authgate keeps the
//! users Netlify tells it about and reads the roles and claims the app
//! assigns.
//!
//! One [`Backend`] trait, two real backends ([`postgres`], [`sqlite`]),
//! and [`UserStore`], what the rest of authgate uses: cached reads for
//! decisions (dropped by the change feed as rows change, whoever wrote
//! them), background writes for users seen on granted requests, and the
//! staleness rule (a replica that has not read the feed for
//! `store.max_staleness` stops trusting what it cached).

pub mod migrations;
pub mod postgres;
mod postgres_rows;
pub mod revocations;
pub mod row;
pub mod sqlite;
mod users;
pub mod view;

pub use users::UserStore;

use revocations::{NewRevocation, Revocation};
use row::{Applied, Change, FeedRow, UserRow};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// A store failure, worded for the log (never a URL or a password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

/// What a [`Backend`] call returns: boxed so backends are trait objects.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where the change feed was last read up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// SQLite: the last `seq` read.
    Sequence(i64),
    /// PostgreSQL: the previous read's snapshot `xmin`, and the rows at or
    /// above it already delivered.
    Snapshot {
        /// `pg_snapshot_xmin` as text (an `xid8`).
        xmin: String,
        /// `seq` of rows read whose transaction id is at or above `xmin`.
        seen: BTreeSet<i64>,
    },
}

/// One read of the change feed.
#[derive(Debug, Clone)]
pub struct Feed {
    /// Rows not delivered before.
    pub rows: Vec<FeedRow>,
    /// Where the next read starts.
    pub next: Cursor,
    /// More rows than one read returns: forget every cached row.
    pub overflow: bool,
}

/// One database. Every write of a change goes through [`row::decide`], so
/// both backends follow the same rules.
pub trait Backend: Send + Sync {
    /// `postgres` or `sqlite`.
    fn kind(&self) -> &'static str;
    /// Applies the embedded migrations not applied yet: (from, to) versions.
    fn migrate(&self) -> StoreFuture<'_, (i32, i32)>;
    /// Applies one change in one transaction.
    fn apply<'a>(&'a self, change: &'a Change) -> StoreFuture<'a, Applied>;
    /// One row.
    fn user<'a>(&'a self, issuer: &'a str, subject: &'a str) -> StoreFuture<'a, Option<UserRow>>;
    /// Rows, by issuer then first seen.
    fn list<'a>(&'a self, issuer: Option<&'a str>, limit: u32) -> StoreFuture<'a, Vec<UserRow>>;
    /// Sets (or clears) the app-owned roles; false when there is no row.
    fn set_roles<'a>(
        &'a self,
        issuer: &'a str,
        subject: &'a str,
        roles: Option<&'a [String]>,
    ) -> StoreFuture<'a, bool>;
    /// Sets (or clears) the app-owned claims; false when there is no row.
    fn set_claims<'a>(
        &'a self,
        issuer: &'a str,
        subject: &'a str,
        claims: Option<&'a Map<String, Value>>,
    ) -> StoreFuture<'a, bool>;
    /// True when the issuer's allow-list is empty or names the address or
    /// its domain.
    fn signup_allowed<'a>(&'a self, issuer: &'a str, email: &'a str) -> StoreFuture<'a, bool>;
    /// A cursor at the feed's current end.
    fn feed_head(&self) -> StoreFuture<'_, Cursor>;
    /// The feed after `after`.
    fn feed_read<'a>(&'a self, after: &'a Cursor) -> StoreFuture<'a, Feed>;
    /// Deletes feed rows older than `older_than`, and revocations past
    /// their `expires_at`.
    fn prune_feed(&self, older_than: Duration) -> StoreFuture<'_, u64>;
    /// Every revocation not yet past its `expires_at`.
    fn revocations(&self) -> StoreFuture<'_, Vec<Revocation>>;
    /// One revocation.
    fn revocation(&self, id: i64) -> StoreFuture<'_, Option<Revocation>>;
    /// Inserts one revocation.
    fn revoke<'a>(&'a self, r: &'a NewRevocation) -> StoreFuture<'a, Revocation>;
    /// Deletes one revocation (never a user's deletion); false when absent.
    fn delete_revocation(&self, id: i64) -> StoreFuture<'_, bool>;
    /// (issuer, subject) of every user marked deleted.
    fn deleted_users(&self) -> StoreFuture<'_, Vec<(String, String)>>;
    /// Starts waking `wake` on change notifications, when the database
    /// sends them (PostgreSQL `LISTEN`); `retry` paces reconnects.
    fn listen(&self, _wake: Arc<Notify>, _retry: Duration) -> Option<tokio::task::JoinHandle<()>> {
        None
    }
}

/// Opens the configured backend (connections are made on first use).
pub fn open(config: &crate::config::StoreConfig) -> Result<Arc<dyn Backend>, StoreError> {
    Ok(match &config.url {
        crate::config::StoreUrl::Sqlite(path) => Arc::new(sqlite::Sqlite::new(path, config.timeout)),
        crate::config::StoreUrl::Postgres(url) => {
            let url =
                std::str::from_utf8(url.expose()).map_err(|_| StoreError("store.url is not UTF-8".into()))?;
            Arc::new(postgres::Postgres::new(url, config.schema.as_deref(), config.timeout)?)
        }
    })
}

/// The roles column as the app wrote it: strings kept, anything else
/// dropped (fewer roles, never more).
fn roles_from_json(text: &str) -> Vec<String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => items.into_iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    }
}

/// The allow-list patterns an address matches: itself and `@domain`,
/// lowercased.
fn allow_patterns(email: &str) -> (String, String) {
    let email = email.trim().to_ascii_lowercase();
    let domain = email.rsplit_once('@').map(|(_, d)| format!("@{d}")).unwrap_or_default();
    (email, domain)
}
