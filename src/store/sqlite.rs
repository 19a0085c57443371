//! The SQLite backend: one file, one connection, for one instance and
//! development. Calls run on the blocking pool; SQLite's own lock
//! serialises writers (the app's too), so the change feed is read by `seq`.

use super::migrations::{Migration, SQLITE, latest};
use super::revocations::{NewRevocation, Revocation, RevocationKind};
use super::row::{Applied, Change, Existing, FeedRow, NetlifyFields, Stamp, UserRow, Write, decide};
use super::{Backend, Cursor, Feed, StoreError, StoreFuture};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A SQLite database file.
pub struct Sqlite {
    path: PathBuf,
    conn: Arc<Mutex<Option<Connection>>>,
    timeout: Duration,
}

const COLUMNS: &str = "issuer, subject, email, provider, app_metadata, user_metadata, roles, claims, \
    netlify_created_at, netlify_confirmed_at, netlify_last_sign_in_at, netlify_updated_at, \
    first_seen_at, last_seen_at, deleted_at";

impl Sqlite {
    /// Names the file; it is opened (and created, with its directory) on
    /// first use.
    pub fn new(path: &Path, timeout: Duration) -> Self {
        Self { path: path.to_path_buf(), conn: Arc::new(Mutex::new(None)), timeout }
    }

    /// Runs `f` on the connection, on the blocking pool.
    fn run<'a, T: Send + 'static>(
        &'a self,
        f: impl FnOnce(&mut Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> StoreFuture<'a, T> {
        let conn = self.conn.clone();
        let path = self.path.clone();
        let timeout = self.timeout;
        Box::pin(async move {
            let task = tokio::task::spawn_blocking(move || {
                // A panic inside rusqlite would poison the lock with the
                // connection whole; keep using it.
                let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
                if guard.is_none() {
                    *guard = Some(open(&path, timeout).map_err(|e| StoreError(format!("sqlite: {e}")))?);
                }
                match guard.as_mut() {
                    Some(c) => f(c).map_err(|e| StoreError(format!("sqlite: {e}"))),
                    None => Err(StoreError("sqlite: not open".into())),
                }
            });
            match tokio::time::timeout(timeout * 2, task).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => Err(StoreError(format!("sqlite task failed: {e}"))),
                Err(_) => Err(StoreError("sqlite: timed out".into())),
            }
        })
    }
}

fn open(path: &Path, timeout: Duration) -> Result<Connection, String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let conn = Connection::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    conn.busy_timeout(timeout).map_err(|e| e.to_string())?;
    // WAL: readers (the app) do not block the writer, nor it them.
    conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| e.to_string())?;
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(|e| e.to_string())?;
    Ok(conn)
}

fn json_text(m: &Map<String, Value>) -> String {
    Value::Object(m.clone()).to_string()
}

fn object(text: Option<String>) -> Option<Map<String, Value>> {
    match serde_json::from_str(&text?) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

fn read_row(r: &Row<'_>) -> rusqlite::Result<UserRow> {
    let stamp = |i| r.get::<_, Option<String>>(i).map(|s| s.map(Stamp::from_stored));
    let roles: Option<String> = r.get(6)?;
    Ok(UserRow {
        netlify: NetlifyFields {
            issuer: r.get(0)?,
            subject: r.get(1)?,
            email: r.get(2)?,
            provider: r.get(3)?,
            app_metadata: object(r.get(4)?).unwrap_or_default(),
            user_metadata: object(r.get(5)?).unwrap_or_default(),
            created_at: stamp(8)?,
            confirmed_at: stamp(9)?,
            last_sign_in_at: stamp(10)?,
            updated_at: stamp(11)?,
        },
        roles: roles.map(|t| super::roles_from_json(&t)),
        claims: object(r.get(7)?),
        first_seen_at: Stamp::from_stored(r.get(12)?),
        last_seen_at: Stamp::from_stored(r.get(13)?),
        deleted_at: stamp(14)?,
    })
}

const REVOCATION_COLUMNS: &str =
    "id, kind, issuer, subject, jti, token_hash, issued_before, expires_at, reason, created_by, created_at";

fn read_revocation(r: &Row<'_>) -> rusqlite::Result<Revocation> {
    let secs = |i| r.get::<_, Option<String>>(i).map(|s| s.and_then(|s| Stamp::from_stored(s).unix()));
    let kind: String = r.get(1)?;
    Ok(Revocation {
        id: r.get(0)?,
        created_at: secs(10)?.unwrap_or_default(),
        entry: NewRevocation {
            // The column's CHECK admits only the four kinds.
            kind: RevocationKind::parse(&kind).unwrap_or(RevocationKind::Subject),
            issuer: r.get(2)?,
            subject: r.get(3)?,
            jti: r.get(4)?,
            token_hash: r.get(5)?,
            issued_before: secs(6)?,
            expires_at: secs(7)?,
            reason: r.get(8)?,
            created_by: r.get(9)?,
        },
    })
}

fn stamp_of(secs: Option<i64>) -> Option<String> {
    secs.and_then(Stamp::from_unix).map(|s| s.as_str().to_string())
}

fn migrate(c: &mut Connection, migrations: &[Migration]) -> rusqlite::Result<(i32, i32)> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS authgate_schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)",
    )?;
    let from: i32 =
        tx.query_row("SELECT coalesce(max(version), 0) FROM authgate_schema_migrations", [], |r| r.get(0))?;
    for m in migrations.iter().filter(|m| m.version > from) {
        tx.execute_batch(m.sql)?;
        tx.execute(
            "INSERT INTO authgate_schema_migrations (version, description, applied_at) VALUES (?1, ?2, ?3)",
            params![m.version, m.description, Stamp::now().as_str()],
        )?;
    }
    tx.commit()?;
    Ok((from, latest(migrations).max(from)))
}

fn apply(c: &mut Connection, change: &Change) -> rusqlite::Result<Applied> {
    let f = change.fields();
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let existing = tx
        .query_row(
            "SELECT deleted_at IS NOT NULL, netlify_updated_at FROM authgate_users WHERE issuer = ?1 AND subject = ?2",
            params![f.issuer, f.subject],
            |r| Ok(Existing { deleted: r.get(0)?, updated_at: r.get::<_, Option<String>>(1)?.map(Stamp::from_stored) }),
        )
        .optional()?;
    let write = decide(existing.as_ref(), change);
    let now = Stamp::now();
    let s = |v: &Option<Stamp>| v.as_ref().map(|s| s.as_str().to_string());
    match write {
        Write::Insert | Write::InsertDeleted => {
            let deleted = (write == Write::InsertDeleted).then(|| now.as_str().to_string());
            tx.execute(
                "INSERT INTO authgate_users (issuer, subject, email, provider, app_metadata, user_metadata, \
                 netlify_created_at, netlify_confirmed_at, netlify_last_sign_in_at, netlify_updated_at, \
                 first_seen_at, last_seen_at, deleted_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12)",
                params![
                    f.issuer,
                    f.subject,
                    f.email,
                    f.provider,
                    json_text(&f.app_metadata),
                    json_text(&f.user_metadata),
                    s(&f.created_at),
                    s(&f.confirmed_at),
                    s(&f.last_sign_in_at),
                    s(&f.updated_at),
                    now.as_str(),
                    deleted
                ],
            )?;
        }
        Write::UpdateNetlify => {
            tx.execute(
                "UPDATE authgate_users SET email = ?3, provider = ?4, app_metadata = ?5, user_metadata = ?6, \
                 netlify_created_at = coalesce(?7, netlify_created_at), netlify_confirmed_at = ?8, \
                 netlify_last_sign_in_at = coalesce(?9, netlify_last_sign_in_at), netlify_updated_at = ?10, \
                 last_seen_at = ?11 WHERE issuer = ?1 AND subject = ?2",
                params![
                    f.issuer,
                    f.subject,
                    f.email,
                    f.provider,
                    json_text(&f.app_metadata),
                    json_text(&f.user_metadata),
                    s(&f.created_at),
                    s(&f.confirmed_at),
                    s(&f.last_sign_in_at),
                    s(&f.updated_at),
                    now.as_str()
                ],
            )?;
        }
        Write::Touch => {
            tx.execute(
                "UPDATE authgate_users SET last_seen_at = ?3 WHERE issuer = ?1 AND subject = ?2",
                params![f.issuer, f.subject, now.as_str()],
            )?;
        }
        Write::MarkDeleted => {
            tx.execute(
                "UPDATE authgate_users SET deleted_at = ?3 WHERE issuer = ?1 AND subject = ?2",
                params![f.issuer, f.subject, now.as_str()],
            )?;
        }
        Write::Nothing => {}
    }
    let (roles, deleted) = tx.query_row(
        "SELECT roles, deleted_at IS NOT NULL FROM authgate_users WHERE issuer = ?1 AND subject = ?2",
        params![f.issuer, f.subject],
        |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, bool>(1)?)),
    )?;
    tx.commit()?;
    Ok(Applied { write, roles: roles.map(|t| super::roles_from_json(&t)), deleted })
}

impl Backend for Sqlite {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn migrate(&self) -> StoreFuture<'_, (i32, i32)> {
        self.run(|c| migrate(c, SQLITE))
    }

    fn apply<'a>(&'a self, change: &'a Change) -> StoreFuture<'a, Applied> {
        let change = change.clone();
        self.run(move |c| apply(c, &change))
    }

    fn user<'a>(&'a self, issuer: &'a str, subject: &'a str) -> StoreFuture<'a, Option<UserRow>> {
        let (issuer, subject) = (issuer.to_string(), subject.to_string());
        self.run(move |c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM authgate_users WHERE issuer = ?1 AND subject = ?2"),
                params![issuer, subject],
                read_row,
            )
            .optional()
        })
    }

    fn list<'a>(&'a self, issuer: Option<&'a str>, limit: u32) -> StoreFuture<'a, Vec<UserRow>> {
        let issuer = issuer.map(str::to_string);
        self.run(move |c| {
            let mut st = c.prepare(&format!(
                "SELECT {COLUMNS} FROM authgate_users WHERE ?1 IS NULL OR issuer = ?1 \
                 ORDER BY issuer, first_seen_at, subject LIMIT ?2"
            ))?;
            st.query_map(params![issuer, limit], read_row)?.collect()
        })
    }

    fn set_roles<'a>(
        &'a self,
        issuer: &'a str,
        subject: &'a str,
        roles: Option<&'a [String]>,
    ) -> StoreFuture<'a, bool> {
        let (issuer, subject) = (issuer.to_string(), subject.to_string());
        let roles = roles.map(|r| Value::from(r.to_vec()).to_string());
        self.run(move |c| {
            c.execute(
                "UPDATE authgate_users SET roles = ?3 WHERE issuer = ?1 AND subject = ?2",
                params![issuer, subject, roles],
            )
            .map(|n| n > 0)
        })
    }

    fn set_claims<'a>(
        &'a self,
        issuer: &'a str,
        subject: &'a str,
        claims: Option<&'a Map<String, Value>>,
    ) -> StoreFuture<'a, bool> {
        let (issuer, subject) = (issuer.to_string(), subject.to_string());
        let claims = claims.map(json_text);
        self.run(move |c| {
            c.execute(
                "UPDATE authgate_users SET claims = ?3 WHERE issuer = ?1 AND subject = ?2",
                params![issuer, subject, claims],
            )
            .map(|n| n > 0)
        })
    }

    fn signup_allowed<'a>(&'a self, issuer: &'a str, email: &'a str) -> StoreFuture<'a, bool> {
        let issuer = issuer.to_string();
        let (exact, domain) = super::allow_patterns(email);
        self.run(move |c| {
            c.query_row(
                "SELECT NOT EXISTS (SELECT 1 FROM authgate_signup_allow WHERE issuer = ?1) \
                 OR EXISTS (SELECT 1 FROM authgate_signup_allow WHERE issuer = ?1 AND pattern IN (?2, ?3))",
                params![issuer, exact, domain],
                |r| r.get(0),
            )
        })
    }

    fn feed_head(&self) -> StoreFuture<'_, Cursor> {
        self.run(|c| {
            c.query_row("SELECT coalesce(max(seq), 0) FROM authgate_changes", [], |r| r.get(0))
                .map(Cursor::Sequence)
        })
    }

    fn feed_read<'a>(&'a self, after: &'a Cursor) -> StoreFuture<'a, Feed> {
        let after = match after {
            Cursor::Sequence(n) => *n,
            Cursor::Snapshot { .. } => 0,
        };
        self.run(move |c| {
            let mut st = c.prepare(
                "SELECT seq, table_name, issuer, subject, row_id FROM authgate_changes WHERE seq > ?1 ORDER BY seq LIMIT 10000",
            )?;
            let rows: Vec<FeedRow> = st
                .query_map(params![after], |r| {
                    Ok(FeedRow {
                        seq: r.get(0)?,
                        table: r.get(1)?,
                        issuer: r.get(2)?,
                        subject: r.get(3)?,
                        row_id: r.get::<_, Option<rusqlite::types::Value>>(4)?.and_then(|v| match v {
                            rusqlite::types::Value::Integer(n) => Some(n.to_string()),
                            rusqlite::types::Value::Text(t) => Some(t),
                            _ => None,
                        }),
                    })
                })?
                .collect::<Result<_, _>>()?;
            let next = rows.last().map_or(after, |r| r.seq);
            // Rows past the batch are read next time, in order.
            Ok(Feed { rows, next: Cursor::Sequence(next), overflow: false })
        })
    }

    fn prune_feed(&self, older_than: Duration) -> StoreFuture<'_, u64> {
        let cutoff = Stamp::before(older_than);
        let now = Stamp::now();
        self.run(move |c| {
            let feed = c.execute("DELETE FROM authgate_changes WHERE at < ?1", params![cutoff.as_str()])?;
            let expired = c.execute(
                "DELETE FROM authgate_revocations WHERE expires_at IS NOT NULL AND expires_at < ?1",
                params![now.as_str()],
            )?;
            Ok((feed + expired) as u64)
        })
    }

    fn revocations(&self) -> StoreFuture<'_, Vec<Revocation>> {
        let now = Stamp::now();
        self.run(move |c| {
            let mut st = c.prepare(&format!(
                "SELECT {REVOCATION_COLUMNS} FROM authgate_revocations WHERE expires_at IS NULL OR expires_at >= ?1 ORDER BY id"
            ))?;
            st.query_map(params![now.as_str()], read_revocation)?.collect()
        })
    }

    fn revocation(&self, id: i64) -> StoreFuture<'_, Option<Revocation>> {
        self.run(move |c| {
            c.query_row(
                &format!("SELECT {REVOCATION_COLUMNS} FROM authgate_revocations WHERE id = ?1"),
                params![id],
                read_revocation,
            )
            .optional()
        })
    }

    fn revoke<'a>(&'a self, r: &'a NewRevocation) -> StoreFuture<'a, Revocation> {
        let r = r.clone();
        self.run(move |c| {
            c.query_row(
                &format!(
                    "INSERT INTO authgate_revocations (kind, issuer, subject, jti, token_hash, issued_before, expires_at, \
                     reason, created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING {REVOCATION_COLUMNS}"
                ),
                params![
                    r.kind.as_str(),
                    r.issuer,
                    r.subject,
                    r.jti,
                    r.token_hash,
                    stamp_of(r.issued_before),
                    stamp_of(r.expires_at),
                    r.reason,
                    r.created_by
                ],
                read_revocation,
            )
        })
    }

    fn delete_revocation(&self, id: i64) -> StoreFuture<'_, bool> {
        self.run(move |c| {
            c.execute("DELETE FROM authgate_revocations WHERE id = ?1", params![id]).map(|n| n > 0)
        })
    }

    fn deleted_users(&self) -> StoreFuture<'_, Vec<(String, String)>> {
        self.run(|c| {
            let mut st =
                c.prepare("SELECT issuer, subject FROM authgate_users WHERE deleted_at IS NOT NULL")?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })
    }
}
