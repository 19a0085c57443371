//! The user store's database as the app sees it: plain SQL through the
//! database's own client (rusqlite, tokio-postgres), never authgate's code.

use std::path::PathBuf;

/// The database as the app sees it: plain SQL, no authgate code.
pub enum Db {
    Sqlite(PathBuf),
    Postgres(super::postgres::Postgres),
}

impl Db {
    pub fn url(&self) -> String {
        match self {
            Db::Sqlite(p) => format!("sqlite://{}", p.display()),
            Db::Postgres(pg) => pg.url("app"),
        }
    }

    /// Runs the app's own statement.
    pub async fn exec(&self, sql: &str) {
        match self {
            Db::Sqlite(p) => {
                let c = rusqlite::Connection::open(p).unwrap();
                c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
                c.execute_batch(sql).unwrap();
            }
            Db::Postgres(pg) => pg.client("app").await.batch_execute(sql).await.unwrap(),
        }
    }

    /// The app sets a user's roles.
    pub async fn set_roles(&self, subject: &str, roles: &[&str]) {
        self.set_roles_of("site", subject, roles).await
    }

    /// The app sets the roles of `issuer`'s user.
    pub async fn set_roles_of(&self, issuer: &str, subject: &str, roles: &[&str]) {
        let sql = match self {
            Db::Sqlite(_) => format!(
                "UPDATE authgate_users SET roles = '{}' WHERE issuer = '{issuer}' AND subject = '{subject}'",
                serde_json::to_string(roles).unwrap()
            ),
            Db::Postgres(_) => {
                let list: Vec<String> = roles.iter().map(|r| format!("'{r}'")).collect();
                format!(
                    "UPDATE authgate_users SET roles = ARRAY[{}]::text[] WHERE issuer = '{issuer}' AND subject = '{subject}'",
                    list.join(",")
                )
            }
        };
        self.exec(&sql).await;
    }

    /// Every row, as text: equal snapshots mean nothing was written.
    pub async fn snapshot(&self) -> String {
        let sql = "SELECT issuer, subject, email, coalesce(deleted_at || '', ''), \
                   coalesce(netlify_updated_at || '', ''), last_seen_at || '' FROM authgate_users ORDER BY subject";
        match self {
            Db::Sqlite(p) => {
                let c = rusqlite::Connection::open(p).unwrap();
                let mut st = c.prepare(sql).unwrap();
                let rows: Vec<String> = st
                    .query_map([], |r| {
                        Ok((0..6)
                            .map(|i| r.get::<_, String>(i).unwrap_or_default())
                            .collect::<Vec<_>>()
                            .join(","))
                    })
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                rows.join("\n")
            }
            Db::Postgres(pg) => {
                let rows = pg.client("app").await.query(sql, &[]).await.unwrap();
                rows.iter()
                    .map(|r| (0..6).map(|i| r.get::<_, String>(i)).collect::<Vec<_>>().join(","))
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        }
    }

    /// One integer (PostgreSQL only).
    pub async fn query_i64(&self, sql: &str) -> i64 {
        match self {
            Db::Sqlite(_) => panic!("query_i64 is for PostgreSQL"),
            Db::Postgres(pg) => pg.client("app").await.query_one(sql, &[]).await.unwrap().get(0),
        }
    }

    /// (email, deleted) of a user, if there is a row.
    pub async fn row(&self, subject: &str) -> Option<(String, bool)> {
        let sql =
            format!("SELECT email, deleted_at IS NOT NULL FROM authgate_users WHERE subject = '{subject}'");
        match self {
            Db::Sqlite(p) => {
                let c = rusqlite::Connection::open(p).unwrap();
                c.query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?))).ok()
            }
            Db::Postgres(pg) => {
                pg.client("app").await.query_opt(&sql, &[]).await.unwrap().map(|r| (r.get(0), r.get(1)))
            }
        }
    }
}

/// A fresh database of each kind.
pub async fn sqlite(dir: &tempfile::TempDir) -> Db {
    Db::Sqlite(dir.path().join("users.db"))
}

pub async fn postgres() -> Db {
    let pg = tokio::task::spawn_blocking(super::postgres::Postgres::start).await.unwrap();
    pg.create_db("app").await;
    Db::Postgres(pg)
}
