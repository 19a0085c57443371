//! `[store]` (the application's user database) and each issuer's use of it
//! (`roles_source`, `claims_from_store`, the Identity webhook).

use super::read::{Reader, Section, parse_bounded, parse_duration, read_secret};
use super::{ENV_ISSUER_PREFIX, Secret, issuer_env_name};
use std::path::PathBuf;
use std::time::Duration;
use toml::Table;

/// The store URL (`AUTHGATE_STORE_URL[_FILE]`): it may carry a password.
pub const ENV_STORE_URL: &str = "AUTHGATE_STORE_URL";
/// Where `[store]` without a `url` keeps its SQLite file, under the working
/// directory.
pub const DEFAULT_SQLITE_PATH: &str = ".authgate/users.db";

/// Which database, and where.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreUrl {
    /// `postgres://…` / `postgresql://…`, kept secret (it may hold a
    /// password).
    Postgres(Secret),
    /// `sqlite://<path>` (relative paths from the working directory).
    Sqlite(PathBuf),
}

/// `[store]`: the user store. Absent by default (no database is touched).
#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    /// `url` / `url_file` / `AUTHGATE_STORE_URL[_FILE]`: default
    /// `sqlite://.authgate/users.db`.
    pub url: StoreUrl,
    /// `schema`: PostgreSQL schema for authgate's tables (created by the
    /// migration); default none (the connection's `search_path`).
    pub schema: Option<String>,
    /// `max_staleness`: default 5m. How long a replica that cannot read the
    /// change feed keeps answering from what it cached; after that, issuers
    /// that read the store fail closed (`store_unavailable`, not ready).
    pub max_staleness: Duration,
    /// `cache_ttl`: default 60s. Longest life of a cached store read (the
    /// change feed drops an entry as soon as its row changes).
    pub cache_ttl: Duration,
    /// `cache_max_entries`: default 100000.
    pub cache_max_entries: u64,
    /// `poll_interval`: default 1s. How often the change feed is read
    /// without a notification: the bound when a notification is lost.
    pub poll_interval: Duration,
    /// `touch_interval`: default 1h. A granted user's row is refreshed
    /// (created if missing, `last_seen_at`) at most this often.
    pub touch_interval: Duration,
    /// `queue_capacity`: default 1024 pending background writes; beyond it
    /// writes are dropped and counted, never waited for.
    pub queue_capacity: usize,
    /// `timeout`: default 2s, per store operation (connect included).
    pub timeout: Duration,
    /// `revocations`: default true. Every decision checks the store's
    /// revocations and deleted users (loaded at start, followed through
    /// the change feed).
    pub revocations: bool,
}

/// Where an issuer's roles come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolesSource {
    /// `token` (default): the token's role claims.
    Token,
    /// `store`: the app's `roles` column (empty when it holds none).
    Store,
    /// `both`: the union.
    Both,
}

impl RolesSource {
    fn parse(v: &str) -> Result<Self, String> {
        match v {
            "token" => Ok(Self::Token),
            "store" => Ok(Self::Store),
            "both" => Ok(Self::Both),
            _ => Err("must be `token`, `store` or `both`".into()),
        }
    }

    /// The value as written in config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Store => "store",
            Self::Both => "both",
        }
    }
}

/// What the webhook answers to `login` while the store is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStoreError {
    /// `deny` (default): 503, so the login fails after GoTrue's retries.
    Deny,
    /// `allow`: 204 (the login goes on with the roles Netlify has) and a
    /// counted miss.
    Allow,
}

/// The Netlify Identity webhook of one issuer.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookConfig {
    /// `webhook_secret` / `webhook_secret_file` /
    /// `AUTHGATE_ISSUER_<NAME>_WEBHOOK_SECRET[_FILE]`: the secret set at
    /// Netlify (Identity → Notifications → outgoing webhook).
    pub secret: Secret,
    /// `webhook_instance_id`: when set, the signature's `sub` must equal it.
    /// Default none.
    pub instance_id: Option<String>,
    /// `webhook_max_age`: default 5m. Oldest `iat` accepted (a signature has
    /// no `exp`); up to the issuer's leeway ahead is accepted too.
    pub max_age: Duration,
    /// `on_store_error`: `deny` (default) or `allow` (`login` only).
    pub on_store_error: OnStoreError,
}

/// One issuer's use of the store.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuerStoreConfig {
    /// `roles_source`: default `token`.
    pub roles_source: RolesSource,
    /// `claims_from_store`: default true when `roles_source` reads the
    /// store, else false. The app's `claims` join the identity.
    pub claims_from_store: bool,
    /// The webhook, when a secret is configured.
    pub webhook: Option<WebhookConfig>,
    /// `access_token_ttl`: default 1h (GoTrue's default). The lifetime
    /// this issuer gives its tokens: a token without `iat` counts as issued
    /// at `exp − access_token_ttl` for "revoked before T", and revocations
    /// are kept until no token they could refuse can still be valid.
    pub access_token_ttl: Duration,
    /// `on_stale_revocations`: `deny` (default): when this replica has not
    /// read the change feed for `store.max_staleness`, this issuer's
    /// decisions are `revocation_unavailable`; `allow`: they go on.
    pub allow_stale_revocations: bool,
}

impl Default for IssuerStoreConfig {
    fn default() -> Self {
        Self {
            roles_source: RolesSource::Token,
            claims_from_store: false,
            webhook: None,
            access_token_ttl: Duration::from_secs(3600),
            allow_stale_revocations: false,
        }
    }
}

impl IssuerStoreConfig {
    /// True when a decision for this issuer reads the store.
    pub fn reads_store(&self) -> bool {
        self.roles_source != RolesSource::Token || self.claims_from_store
    }
}

pub(super) fn read_store(
    r: &mut Reader<'_>,
    table: Option<&Table>,
    workdir: &std::path::Path,
) -> Option<StoreConfig> {
    let env_given = (r.env)(ENV_STORE_URL).is_some() || (r.env)(&format!("{ENV_STORE_URL}_FILE")).is_some();
    if table.is_none() && !env_given {
        return None;
    }
    let mut s = Section::new("store", table);
    // The URL is read as a secret (min length does not apply to URLs, so
    // it is read raw and checked here).
    let url = read_url(r, &mut s);
    let schema = s.parsed(r, "schema", None, None, |v| {
        if !v.is_empty()
            && v.len() <= 63
            && v.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            Ok(v.to_string())
        } else {
            Err("must match [a-z0-9_]{1,63}".into())
        }
    });
    let d = |r: &mut Reader<'_>, s: &mut Section<'_>, key: &str, default: u64| {
        s.parsed(r, key, None, None, parse_duration).unwrap_or(Duration::from_secs(default))
    };
    let max_staleness = d(r, &mut s, "max_staleness", 300);
    let cache_ttl = d(r, &mut s, "cache_ttl", 60);
    let poll_interval = d(r, &mut s, "poll_interval", 1);
    let touch_interval = d(r, &mut s, "touch_interval", 3600);
    let timeout = d(r, &mut s, "timeout", 2);
    let cache_max_entries = s
        .parsed(r, "cache_max_entries", None, None, |v| parse_bounded(v, 0, 10_000_000).map(|n| n as u64))
        .unwrap_or(100_000);
    let queue_capacity =
        s.parsed(r, "queue_capacity", None, None, |v| parse_bounded(v, 1, 1 << 20)).unwrap_or(1024);
    let revocations = s.boolean(r, "revocations").unwrap_or(true);
    s.finish(r);
    if poll_interval < Duration::from_millis(50) {
        r.errors.push("store.poll_interval must be at least 50ms".into());
    }
    if max_staleness < poll_interval * 2 {
        r.errors.push("store.max_staleness must be at least twice store.poll_interval".into());
    }
    if timeout.is_zero() {
        r.errors.push("store.timeout must be above zero".into());
    }
    let url = match url? {
        Some(u) => u,
        None => StoreUrl::Sqlite(workdir.join(DEFAULT_SQLITE_PATH)),
    };
    if schema.is_some() && matches!(url, StoreUrl::Sqlite(_)) {
        r.errors.push("store.schema applies to PostgreSQL only".into());
    }
    Some(StoreConfig {
        url,
        schema,
        max_staleness,
        cache_ttl,
        cache_max_entries,
        poll_interval,
        touch_interval,
        queue_capacity,
        timeout,
        revocations,
    })
}

fn read_url(r: &mut Reader<'_>, s: &mut Section<'_>) -> Option<Option<StoreUrl>> {
    let from_env = (r.env)(ENV_STORE_URL);
    let from_env_file = (r.env)(&format!("{ENV_STORE_URL}_FILE"));
    let inline = s.parsed(r, "url", None, None, |v| Ok(v.to_string()));
    let file = s.parsed(r, "url_file", None, None, |v| Ok(PathBuf::from(v)));
    let from_file = from_env_file.is_some() || file.is_some();
    let raw = match (from_env, from_env_file, inline, file) {
        (Some(_), Some(_), _, _) => {
            r.errors.push(format!("store: both {ENV_STORE_URL} and {ENV_STORE_URL}_FILE are set"));
            return None;
        }
        (Some(v), None, _, _) => v.into_bytes(),
        (None, Some(p), _, _) => read_url_file(r, &PathBuf::from(p))?,
        (None, None, Some(_), Some(_)) => {
            r.errors.push("store: set url or url_file, not both".into());
            return None;
        }
        (None, None, Some(v), None) => v.into_bytes(),
        (None, None, None, Some(p)) => read_url_file(r, &p)?,
        (None, None, None, None) => return Some(None),
    };
    if r.offline && from_file {
        // Offline: the file was named, not read; take it as PostgreSQL.
        return Some(Some(StoreUrl::Postgres(Secret::new(raw))));
    }
    let Ok(text) = std::str::from_utf8(&raw) else {
        r.errors.push("store.url is not UTF-8".into());
        return None;
    };
    let text = text.trim_end_matches(['\n', '\r']);
    if let Some(path) = text.strip_prefix("sqlite://") {
        if path.is_empty() {
            r.errors.push("store.url: sqlite:// needs a path (sqlite://.authgate/users.db)".into());
            return None;
        }
        return Some(Some(StoreUrl::Sqlite(PathBuf::from(path))));
    }
    if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
        // Never echo the URL: it may carry a password.
        r.errors.push("store.url must start with postgres://, postgresql:// or sqlite://".into());
        return None;
    }
    match text.parse::<tokio_postgres::Config>() {
        Err(_) => {
            r.errors.push("store.url: not a valid PostgreSQL connection URL".into());
            None
        }
        Ok(c)
            if !matches!(
                c.get_ssl_mode(),
                tokio_postgres::config::SslMode::Disable | tokio_postgres::config::SslMode::Prefer
            ) =>
        {
            r.errors.push(
                "store.url: sslmode=require is not supported yet (authgate connects without TLS); \
                 reach PostgreSQL over a private network or a mesh sidecar"
                    .into(),
            );
            None
        }
        Ok(c) if c.get_hosts().is_empty() => {
            r.errors.push("store.url names no host".into());
            None
        }
        Ok(_) => Some(Some(StoreUrl::Postgres(Secret::new(text.as_bytes().to_vec())))),
    }
}

fn read_url_file(r: &mut Reader<'_>, path: &std::path::Path) -> Option<Vec<u8>> {
    match r.read_file(path) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            r.errors.push(format!("store.url_file: {e}"));
            None
        }
    }
}

/// An issuer's store settings (keys inside its `[[issuers]]` table).
pub(super) fn read_issuer_store(r: &mut Reader<'_>, s: &mut Section<'_>, name: &str) -> IssuerStoreConfig {
    let roles_source =
        s.parsed(r, "roles_source", None, None, RolesSource::parse).unwrap_or(RolesSource::Token);
    let claims_from_store = s.boolean(r, "claims_from_store").unwrap_or(roles_source != RolesSource::Token);
    let env = format!("{ENV_ISSUER_PREFIX}{}_WEBHOOK_SECRET", issuer_env_name(name));
    let secret = read_secret(r, s, "webhook_secret", &env).ok().flatten();
    let instance_id = s.parsed(r, "webhook_instance_id", None, None, |v| {
        if v.is_empty() { Err("is empty".to_string()) } else { Ok(v.to_string()) }
    });
    let max_age =
        s.parsed(r, "webhook_max_age", None, None, parse_duration).unwrap_or(Duration::from_secs(300));
    let on_store_error = s
        .parsed(r, "on_store_error", None, None, |v| match v {
            "deny" => Ok(OnStoreError::Deny),
            "allow" => Ok(OnStoreError::Allow),
            _ => Err("must be `deny` or `allow`".to_string()),
        })
        .unwrap_or(OnStoreError::Deny);
    if secret.is_none()
        && (instance_id.is_some() || s.table.is_some_and(|t| t.contains_key("on_store_error")))
    {
        r.errors.push(format!("{}: webhook settings need webhook_secret (or {env}[_FILE])", s.label));
    }
    if max_age < Duration::from_secs(10) || max_age > Duration::from_secs(3600) {
        r.errors.push(format!("{}.webhook_max_age must be between 10s and 1h", s.label));
    }
    let access_token_ttl =
        s.parsed(r, "access_token_ttl", None, None, parse_duration).unwrap_or(Duration::from_secs(3600));
    if access_token_ttl < Duration::from_secs(60) || access_token_ttl > Duration::from_secs(30 * 24 * 3600) {
        r.errors.push(format!("{}.access_token_ttl must be between 1m and 30d", s.label));
    }
    let allow_stale_revocations = s
        .parsed(r, "on_stale_revocations", None, None, |v| match v {
            "deny" => Ok(false),
            "allow" => Ok(true),
            _ => Err("must be `deny` or `allow`".to_string()),
        })
        .unwrap_or(false);
    IssuerStoreConfig {
        roles_source,
        claims_from_store,
        webhook: secret.map(|secret| WebhookConfig { secret, instance_id, max_age, on_store_error }),
        access_token_ttl,
        allow_stale_revocations,
    }
}
