//! The PostgreSQL backend: a few pooled connections for queries and one
//! that `LISTEN`s for the change feed's notifications.
//!
//! Reading the feed without skipping a row: `seq` values are taken when a
//! row is inserted, not when its transaction commits, so a `seq > last`
//! read can pass a row whose transaction commits later with a smaller
//! `seq`. Each feed row carries its transaction id instead. A read takes a
//! snapshot and returns every row whose transaction id is at or above the
//! previous read's snapshot `xmin` (the oldest transaction still running
//! then); every transaction below the new `xmin` has ended, so nothing
//! older can appear later. Rows read twice are told apart by `seq`.

use super::migrations::{POSTGRES, latest};
use super::postgres_rows::{COLUMNS, REVOCATION_COLUMNS, error, read_revocation, read_row, roles, ts};
use super::revocations::{NewRevocation, Revocation};
use super::row::{Applied, Change, Existing, FeedRow, Stamp, UserRow, Write, decide};
use super::{Backend, Cursor, Feed, StoreError, StoreFuture};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, SemaphorePermit};
use tokio_postgres::{AsyncMessage, Client, IsolationLevel, NoTls};

/// Connections used for queries at most (the listener is one more).
const MAX_CONNECTIONS: usize = 4;
/// Feed rows read at most per call; more means the reader starts over.
const FEED_BATCH: i64 = 10_000;
/// The `application_name` of the listening connection (operators and
/// tests find it in `pg_stat_activity`).
pub const LISTEN_APPLICATION_NAME: &str = "authgate-listen";

/// A PostgreSQL database.
pub struct Postgres {
    config: tokio_postgres::Config,
    schema: Option<String>,
    timeout: Duration,
    idle: Mutex<Vec<Client>>,
    slots: Semaphore,
}

/// A pooled connection, returned to the pool only when the operation
/// finished (one cut short by a timeout may be inside a transaction).
struct Lease<'a> {
    pg: &'a Postgres,
    client: Option<Client>,
    finished: bool,
    _slot: SemaphorePermit<'a>,
}

impl Lease<'_> {
    fn client(&mut self) -> Result<&mut Client, StoreError> {
        self.client.as_mut().ok_or_else(|| StoreError("postgres: no connection".into()))
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.client.take().filter(|c| self.finished && !c.is_closed()) {
            self.pg.idle.lock().unwrap_or_else(|p| p.into_inner()).push(c);
        }
    }
}

impl Postgres {
    /// Parses the URL (validated at config load) and sets the schema and
    /// a server-side statement timeout on every connection.
    pub fn new(url: &str, schema: Option<&str>, timeout: Duration) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|_| StoreError("store.url is not a valid PostgreSQL URL".into()))?;
        let mut options = format!("-c statement_timeout={}", timeout.as_millis().max(1));
        if let Some(s) = schema {
            options.push_str(&format!(" -c search_path={s}"));
        }
        config.options(&options).connect_timeout(timeout);
        if config.get_application_name().is_none() {
            config.application_name("authgate");
        }
        Ok(Self {
            config,
            schema: schema.map(str::to_string),
            timeout,
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(MAX_CONNECTIONS),
        })
    }

    async fn lease(&self) -> Result<Lease<'_>, StoreError> {
        let slot = self.slots.acquire().await.map_err(|_| StoreError("postgres: pool closed".into()))?;
        let idle = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.retain(|c| !c.is_closed());
            idle.pop()
        };
        let client = match idle {
            Some(c) => c,
            None => {
                let (client, conn) = self.config.connect(NoTls).await.map_err(error)?;
                tokio::spawn(async move {
                    // The connection ends when the client is dropped or the
                    // server goes away; the next lease reconnects.
                    let _ = conn.await;
                });
                client
            }
        };
        Ok(Lease { pg: self, client: Some(client), finished: false, _slot: slot })
    }

    /// Runs `op` on a leased connection within the store timeout.
    fn with<'a, T: Send + 'a>(
        &'a self,
        op: impl for<'c> FnOnce(
            &'c mut Client,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T, tokio_postgres::Error>> + Send + 'c>,
        > + Send
        + 'a,
    ) -> StoreFuture<'a, T> {
        Box::pin(async move {
            let work = async {
                let mut lease = self.lease().await?;
                let out = op(lease.client()?).await.map_err(error)?;
                lease.finished = true;
                Ok(out)
            };
            match tokio::time::timeout(self.timeout, work).await {
                Ok(r) => r,
                Err(_) => Err(StoreError("postgres: timed out".into())),
            }
        })
    }

    /// Keeps one connection listening on `authgate_changes` and wakes
    /// `wake` for each notification, and after each (re)connect, so a
    /// read covers what was sent while it was away.
    pub fn listen(&self, wake: Arc<Notify>, retry: Duration) -> tokio::task::JoinHandle<()> {
        let mut config = self.config.clone();
        config.application_name(LISTEN_APPLICATION_NAME);
        let timeout = self.timeout;
        tokio::spawn(async move {
            loop {
                if let Ok(Ok((client, mut conn))) = tokio::time::timeout(timeout, config.connect(NoTls)).await
                {
                    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                    let driver = tokio::spawn(async move {
                        while let Some(Ok(m)) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                            if let AsyncMessage::Notification(_) = m
                                && tx.send(()).is_err()
                            {
                                return;
                            }
                        }
                    });
                    if client.batch_execute("LISTEN authgate_changes").await.is_ok() {
                        tracing::debug!("store: listening for changes");
                        wake.notify_one();
                        while rx.recv().await.is_some() {
                            wake.notify_one();
                        }
                        tracing::warn!("store: the listening connection was lost; reconnecting");
                    }
                    driver.abort();
                }
                wake.notify_one();
                tokio::time::sleep(retry).await;
            }
        })
    }
}

impl Backend for Postgres {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn migrate(&self) -> StoreFuture<'_, (i32, i32)> {
        let schema = self.schema.clone();
        self.with(move |c| {
            Box::pin(async move {
                let tx = c.transaction().await?;
                // Replicas starting together migrate one after the other.
                tx.execute("SELECT pg_advisory_xact_lock(7125042016)", &[]).await?;
                if let Some(s) = &schema {
                    // The name is checked against [a-z0-9_] at config load.
                    tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {s}")).await?;
                }
                tx.batch_execute(
                    "CREATE TABLE IF NOT EXISTS authgate_schema_migrations (version integer PRIMARY KEY, \
                     description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
                )
                .await?;
                let from: i32 = tx
                    .query_one("SELECT coalesce(max(version), 0) FROM authgate_schema_migrations", &[])
                    .await?
                    .get(0);
                for m in POSTGRES.iter().filter(|m| m.version > from) {
                    tx.batch_execute(m.sql).await?;
                    tx.execute(
                        "INSERT INTO authgate_schema_migrations (version, description) VALUES ($1, $2)",
                        &[&m.version, &m.description],
                    )
                    .await?;
                }
                tx.commit().await?;
                Ok((from, latest(POSTGRES).max(from)))
            })
        })
    }

    fn apply<'a>(&'a self, change: &'a Change) -> StoreFuture<'a, Applied> {
        let change = change.clone();
        self.with(move |c| {
            Box::pin(async move {
                let change = &change;
                let f = change.fields();
                let tx = c.transaction().await?;
                let existing = tx
                    .query_opt(
                        &format!(
                            "SELECT deleted_at IS NOT NULL, {} FROM authgate_users \
                             WHERE issuer = $1 AND subject = $2 FOR UPDATE",
                            ts("netlify_updated_at")
                        ),
                        &[&f.issuer, &f.subject],
                    )
                    .await?
                    .map(|r| Existing { deleted: r.get(0), updated_at: r.get::<_, Option<String>>(1).map(Stamp::from_stored) });
                let write = decide(existing.as_ref(), change);
                let s = |v: &Option<Stamp>| v.as_ref().map(|s| s.as_str().to_string());
                let app = Value::Object(f.app_metadata.clone());
                let user = Value::Object(f.user_metadata.clone());
                let (created, confirmed, signed_in, updated) =
                    (s(&f.created_at), s(&f.confirmed_at), s(&f.last_sign_in_at), s(&f.updated_at));
                match write {
                    Write::Insert | Write::InsertDeleted => {
                        // A concurrent insert of the same new user wins;
                        // this one then changes nothing (GoTrue retries).
                        tx.execute(
                            "INSERT INTO authgate_users (issuer, subject, email, provider, app_metadata, user_metadata, \
                             netlify_created_at, netlify_confirmed_at, netlify_last_sign_in_at, netlify_updated_at, deleted_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7::text::timestamptz, $8::text::timestamptz, \
                             $9::text::timestamptz, $10::text::timestamptz, CASE WHEN $11 THEN now() END) \
                             ON CONFLICT (issuer, subject) DO NOTHING",
                            &[
                                &f.issuer, &f.subject, &f.email, &f.provider, &app, &user, &created, &confirmed,
                                &signed_in, &updated, &(write == Write::InsertDeleted),
                            ],
                        )
                        .await?;
                    }
                    Write::UpdateNetlify => {
                        tx.execute(
                            "UPDATE authgate_users SET email = $3, provider = $4, app_metadata = $5, user_metadata = $6, \
                             netlify_created_at = coalesce($7::text::timestamptz, netlify_created_at), \
                             netlify_confirmed_at = $8::text::timestamptz, \
                             netlify_last_sign_in_at = coalesce($9::text::timestamptz, netlify_last_sign_in_at), \
                             netlify_updated_at = $10::text::timestamptz, last_seen_at = now() \
                             WHERE issuer = $1 AND subject = $2",
                            &[&f.issuer, &f.subject, &f.email, &f.provider, &app, &user, &created, &confirmed, &signed_in, &updated],
                        )
                        .await?;
                    }
                    Write::Touch => {
                        tx.execute(
                            "UPDATE authgate_users SET last_seen_at = now() WHERE issuer = $1 AND subject = $2",
                            &[&f.issuer, &f.subject],
                        )
                        .await?;
                    }
                    Write::MarkDeleted => {
                        tx.execute(
                            "UPDATE authgate_users SET deleted_at = now() WHERE issuer = $1 AND subject = $2",
                            &[&f.issuer, &f.subject],
                        )
                        .await?;
                    }
                    Write::Nothing => {}
                }
                let row = tx
                    .query_opt(
                        "SELECT roles, deleted_at IS NOT NULL FROM authgate_users WHERE issuer = $1 AND subject = $2",
                        &[&f.issuer, &f.subject],
                    )
                    .await?;
                tx.commit().await?;
                let (roles, deleted) = match row {
                    Some(r) => (roles(r.get(0)), r.get(1)),
                    None => (None, false),
                };
                Ok(Applied { write, roles, deleted })
            })
        })
    }

    fn user<'a>(&'a self, issuer: &'a str, subject: &'a str) -> StoreFuture<'a, Option<UserRow>> {
        let (issuer, subject) = (issuer.to_string(), subject.to_string());
        self.with(move |c| {
            Box::pin(async move {
                let sql =
                    format!("SELECT {} FROM authgate_users WHERE issuer = $1 AND subject = $2", *COLUMNS);
                c.query_opt(&sql, &[&issuer, &subject]).await?.as_ref().map(read_row).transpose()
            })
        })
    }

    fn list<'a>(&'a self, issuer: Option<&'a str>, limit: u32) -> StoreFuture<'a, Vec<UserRow>> {
        let issuer = issuer.map(str::to_string);
        self.with(move |c| {
            Box::pin(async move {
                let sql = format!(
                    "SELECT {} FROM authgate_users WHERE $1::text IS NULL OR issuer = $1 \
                     ORDER BY issuer, first_seen_at, subject LIMIT $2",
                    *COLUMNS
                );
                c.query(&sql, &[&issuer, &i64::from(limit)]).await?.iter().map(read_row).collect()
            })
        })
    }

    fn set_roles<'a>(
        &'a self,
        issuer: &'a str,
        subject: &'a str,
        roles: Option<&'a [String]>,
    ) -> StoreFuture<'a, bool> {
        let (issuer, subject) = (issuer.to_string(), subject.to_string());
        let roles = roles.map(<[String]>::to_vec);
        self.with(move |c| {
            Box::pin(async move {
                let n = c
                    .execute(
                        "UPDATE authgate_users SET roles = $3 WHERE issuer = $1 AND subject = $2",
                        &[&issuer, &subject, &roles],
                    )
                    .await?;
                Ok(n > 0)
            })
        })
    }

    fn set_claims<'a>(
        &'a self,
        issuer: &'a str,
        subject: &'a str,
        claims: Option<&'a Map<String, Value>>,
    ) -> StoreFuture<'a, bool> {
        let (issuer, subject) = (issuer.to_string(), subject.to_string());
        let claims = claims.map(|m| Value::Object(m.clone()));
        self.with(move |c| {
            Box::pin(async move {
                let n = c
                    .execute(
                        "UPDATE authgate_users SET claims = $3 WHERE issuer = $1 AND subject = $2",
                        &[&issuer, &subject, &claims],
                    )
                    .await?;
                Ok(n > 0)
            })
        })
    }

    fn signup_allowed<'a>(&'a self, issuer: &'a str, email: &'a str) -> StoreFuture<'a, bool> {
        let issuer = issuer.to_string();
        let (exact, domain) = super::allow_patterns(email);
        self.with(move |c| {
            Box::pin(async move {
                let row = c
                    .query_one(
                        "SELECT NOT EXISTS (SELECT 1 FROM authgate_signup_allow WHERE issuer = $1) \
                         OR EXISTS (SELECT 1 FROM authgate_signup_allow WHERE issuer = $1 AND pattern IN ($2, $3))",
                        &[&issuer, &exact, &domain],
                    )
                    .await?;
                Ok(row.get(0))
            })
        })
    }

    fn feed_head(&self) -> StoreFuture<'_, Cursor> {
        self.with(|c| {
            Box::pin(async move {
                let xmin: String =
                    c.query_one("SELECT pg_snapshot_xmin(pg_current_snapshot())::text", &[]).await?.get(0);
                Ok(Cursor::Snapshot { xmin, seen: BTreeSet::new() })
            })
        })
    }

    fn feed_read<'a>(&'a self, after: &'a Cursor) -> StoreFuture<'a, Feed> {
        let (from, seen) = match after {
            Cursor::Snapshot { xmin, seen } => (xmin.clone(), seen.clone()),
            Cursor::Sequence(_) => ("0".to_string(), BTreeSet::new()),
        };
        self.with(move |c| {
            Box::pin(async move {
                let tx = c
                    .build_transaction()
                    .isolation_level(IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()
                    .await?;
                let xmin: String =
                    tx.query_one("SELECT pg_snapshot_xmin(pg_current_snapshot())::text", &[]).await?.get(0);
                let rows = tx
                    .query(
                        "SELECT seq, xid::text, table_name, issuer, subject, row_id FROM authgate_changes \
                         WHERE xid >= $1::text::xid8 ORDER BY seq LIMIT $2",
                        &[&from, &FEED_BATCH],
                    )
                    .await?;
                tx.commit().await?;
                let overflow = rows.len() as i64 >= FEED_BATCH;
                let floor: u64 = xmin.parse().unwrap_or(0);
                let mut next_seen = BTreeSet::new();
                let mut fresh = Vec::new();
                for r in &rows {
                    let seq: i64 = r.get(0);
                    let xid: u64 = r.get::<_, String>(1).parse().unwrap_or(u64::MAX);
                    if xid >= floor {
                        next_seen.insert(seq);
                    }
                    if !seen.contains(&seq) {
                        fresh.push(FeedRow {
                            seq,
                            table: r.get(2),
                            issuer: r.get(3),
                            subject: r.get(4),
                            row_id: r.get(5),
                        });
                    }
                }
                Ok(Feed { rows: fresh, next: Cursor::Snapshot { xmin, seen: next_seen }, overflow })
            })
        })
    }

    fn prune_feed(&self, older_than: Duration) -> StoreFuture<'_, u64> {
        let cutoff = Stamp::before(older_than);
        self.with(move |c| {
            Box::pin(async move {
                let feed = c
                    .execute(
                        "DELETE FROM authgate_changes WHERE at < $1::text::timestamptz",
                        &[&cutoff.as_str()],
                    )
                    .await?;
                let expired =
                    c.execute("DELETE FROM authgate_revocations WHERE expires_at < now()", &[]).await?;
                Ok(feed + expired)
            })
        })
    }

    fn revocations(&self) -> StoreFuture<'_, Vec<Revocation>> {
        self.with(|c| {
            Box::pin(async move {
                let sql = format!(
                    "SELECT {REVOCATION_COLUMNS} FROM authgate_revocations WHERE expires_at IS NULL OR expires_at >= now() ORDER BY id"
                );
                c.query(&sql, &[]).await?.iter().map(read_revocation).collect()
            })
        })
    }

    fn revocation(&self, id: i64) -> StoreFuture<'_, Option<Revocation>> {
        self.with(move |c| {
            Box::pin(async move {
                let sql = format!("SELECT {REVOCATION_COLUMNS} FROM authgate_revocations WHERE id = $1");
                c.query_opt(&sql, &[&id]).await?.as_ref().map(read_revocation).transpose()
            })
        })
    }

    fn revoke<'a>(&'a self, r: &'a NewRevocation) -> StoreFuture<'a, Revocation> {
        let r = r.clone();
        self.with(move |c| {
            Box::pin(async move {
                let sql = format!(
                    "INSERT INTO authgate_revocations (kind, issuer, subject, jti, token_hash, issued_before, expires_at, \
                     reason, created_by) VALUES ($1, $2, $3, $4, $5, to_timestamp($6::bigint), to_timestamp($7::bigint), $8, $9) \
                     RETURNING {REVOCATION_COLUMNS}"
                );
                let row = c
                    .query_one(
                        &sql,
                        &[
                            &r.kind.as_str(),
                            &r.issuer,
                            &r.subject,
                            &r.jti,
                            &r.token_hash,
                            &r.issued_before,
                            &r.expires_at,
                            &r.reason,
                            &r.created_by,
                        ],
                    )
                    .await?;
                read_revocation(&row)
            })
        })
    }

    fn delete_revocation(&self, id: i64) -> StoreFuture<'_, bool> {
        self.with(move |c| {
            Box::pin(async move {
                Ok(c.execute("DELETE FROM authgate_revocations WHERE id = $1", &[&id]).await? > 0)
            })
        })
    }

    fn deleted_users(&self) -> StoreFuture<'_, Vec<(String, String)>> {
        self.with(|c| {
            Box::pin(async move {
                let rows = c
                    .query("SELECT issuer, subject FROM authgate_users WHERE deleted_at IS NOT NULL", &[])
                    .await?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
            })
        })
    }

    fn listen(&self, wake: Arc<Notify>, retry: Duration) -> Option<tokio::task::JoinHandle<()>> {
        Some(Postgres::listen(self, wake, retry))
    }
}
