//! Configuration: a TOML file, `AUTHGATE_*` environment overrides, secrets
//! from `*_FILE` paths, and the embedded zero-config dev default.
//!
//! [`Config::load`] parses and validates everything in one pass and returns
//! *every* problem at once ([`ConfigErrors`]), before any socket is bound.
//! Precedence, highest first: command-line flag, environment variable, file,
//! default.

mod callers;
mod dev;
mod edge;
mod exchange;
mod issuers;
mod limits;
mod load;
mod proxy;
mod read;
mod render;
mod schema;
mod secret;
mod source;
mod store;
#[cfg(test)]
mod tests;
mod tls;
mod traces;
mod values;

pub use callers::{AccessConfig, CallerConfig, CallerPattern};
pub use dev::{create_dev_secret, dev_secret_path};
pub use edge::{EdgeConfig, IdentityHeaderNames, RoutePolicy, is_route_name};
pub use exchange::{AudienceConfig, ExchangeConfig, SigningKeyConfig};
pub use issuers::{
    Hs256Settings, IssuerConfig, IssuerKind, JwksSettings, KeySource, NetlifyIdentitySettings,
    issuer_env_name,
};
pub use limits::ListenLimits;
pub use proxy::SignedProxyConfig;
pub use read::check_upstream_url;
pub use schema::schema;
pub use secret::Secret;
pub use store::{
    DEFAULT_SQLITE_PATH, ENV_STORE_URL, IssuerStoreConfig, OnStoreError, RolesSource, StoreConfig, StoreUrl,
    WebhookConfig,
};
pub use tls::{
    ClientAuth, ENV_PLAINTEXT, ENV_TLS_CERT_FILE, ENV_TLS_CLIENT_CA_FILE, ENV_TLS_KEY_FILE, Plaintext,
    TlsConfig,
};
pub use traces::{OtlpProtocol, TracingConfig};
pub use values::{ClaimPath, JwsAlg, KeyState, MintAlg};

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

/// Path of the config file.
pub const ENV_CONFIG: &str = "AUTHGATE_CONFIG";
/// gRPC listen address.
pub const ENV_GRPC_ADDR: &str = "AUTHGATE_GRPC_ADDR";
/// HTTP listen address.
pub const ENV_HTTP_ADDR: &str = "AUTHGATE_HTTP_ADDR";
/// Log format: `human` or `json`.
pub const ENV_LOG_FORMAT: &str = "AUTHGATE_LOG_FORMAT";
/// Log level / filter (tracing `EnvFilter` syntax).
pub const ENV_LOG_LEVEL: &str = "AUTHGATE_LOG_LEVEL";
/// Maximum token size in bytes.
pub const ENV_MAX_TOKEN_BYTES: &str = "AUTHGATE_MAX_TOKEN_BYTES";
/// Grace period for in-flight calls on shutdown.
pub const ENV_SHUTDOWN_GRACE: &str = "AUTHGATE_SHUTDOWN_GRACE";
/// How long to keep serving (while reporting NOT_SERVING) before draining.
pub const ENV_DRAIN_DELAY: &str = "AUTHGATE_DRAIN_DELAY";
/// The dev issuer's secret (zero-config mode only).
pub const ENV_DEV_SECRET: &str = "AUTHGATE_DEV_SECRET";
/// The signed-proxy secret (`AUTHGATE_SIGNED_PROXY_SECRET[_FILE]`, and
/// `AUTHGATE_SIGNED_PROXY_PREVIOUS_SECRET[_FILE]` during a rotation).
pub const ENV_SIGNED_PROXY_SECRET: &str = "AUTHGATE_SIGNED_PROXY_SECRET";
/// Prefix of per-issuer secret variables: `AUTHGATE_ISSUER_<NAME>_SECRET`,
/// `..._SECRET_FILE`, `..._PREVIOUS_SECRET`, `..._PREVIOUS_SECRET_FILE`.
pub const ENV_ISSUER_PREFIX: &str = "AUTHGATE_ISSUER_";

/// Default gRPC listen address (loopback: exposing it is a decision).
pub const DEFAULT_GRPC_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 50051));
/// Default HTTP listen address.
pub const DEFAULT_HTTP_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));
/// Default maximum token size: 16 KiB.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Default maximum decoded gRPC message: 64 KiB (a request is a token and
/// some headers; anything bigger is refused before it is decoded).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Default grace for in-flight calls on shutdown.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Default capacity of the verified-identity cache (entries; 0 disables).
pub const DEFAULT_CACHE_MAX_ENTRIES: u64 = 10_000;
/// `[log] queue_lines` default: at ~300 bytes a line, about 2.5 MB when full.
pub const DEFAULT_LOG_QUEUE_LINES: usize = 8192;
/// Default longest life of a cached identity (never beyond the token's `exp`).
pub const DEFAULT_CACHE_MAX_TTL: Duration = Duration::from_secs(300);
/// Default leeway on `exp`/`nbf`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// Largest leeway accepted.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// Shortest HS256 secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 16;
/// Default role claim paths for GoTrue-shaped issuers.
pub const DEFAULT_ROLE_CLAIMS: [&str; 2] = ["app_metadata.roles", "app_metadata.authorization.roles"];
/// Default role claim paths for `jwks` issuers: a plain `roles` array, Auth0's
/// `permissions`, and the space-separated `scope`.
pub const DEFAULT_JWKS_ROLE_CLAIMS: [&str; 3] = ["roles", "permissions", "scope"];
/// Claim names the app's claims may not take (registered JWT claims and
/// what authgate writes into minted tokens); the user store leaves them
/// out, `authgate users set-claims` refuses them.
pub const RESERVED_CLAIM_NAMES: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "act",
    "azp",
    "client_id",
    "scope",
    "cnf",
    "sid",
    "email",
    "roles",
    "idp",
];
/// Name of the issuer the zero-config mode creates.
pub const DEV_ISSUER: &str = "dev";
/// Where the zero-config mode keeps its generated secret, under the user's
/// configuration directory (see [`dev_secret_path`]).
pub const DEV_SECRET_PATH: &str = "authgate/dev-secret";

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (default).
    Human,
    /// One JSON object per line.
    Json,
}

/// Logging settings (`[log]`).
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// `format`: `human` (default) or `json`.
    pub format: LogFormat,
    /// `level`: a tracing filter, default `info`.
    pub level: String,
    /// `queue_lines`: lines waiting for stderr, default 8192 (1024..=1048576).
    /// Past three quarters full, granted decision lines are dropped; past
    /// full, every line is (counted, and summarised once stderr catches up).
    pub queue_lines: usize,
}

/// Verified-identity cache settings (`[cache]`).
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// `max_entries`: default 10000; 0 turns the cache off.
    pub max_entries: u64,
    /// `max_ttl`: default 5m; an entry never outlives its token's `exp`.
    pub max_ttl: Duration,
}

/// Where the configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Zero-config: one `dev` issuer; the secret's origin is described.
    Dev {
        /// `AUTHGATE_DEV_SECRET` or the secret file's path.
        secret_origin: String,
    },
    /// A config file was given; no issuer is invented.
    File(PathBuf),
}

/// The whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// How it was loaded.
    pub mode: Mode,
    /// `server.grpc_addr`: default `127.0.0.1:50051`.
    pub grpc_addr: SocketAddr,
    /// `server.http_addr`: default `127.0.0.1:8080`.
    pub http_addr: SocketAddr,
    /// `server.max_token_bytes`: default 16384 (1024..=1048576).
    pub max_token_bytes: usize,
    /// `server.max_message_bytes`: default 65536 (4096..=4194304).
    pub max_message_bytes: usize,
    /// `server.max_check_request_bytes`: default 131072 (4096..=4194304):
    /// largest Envoy `CheckRequest` decoded. Envoy sends up to 60 KiB of
    /// headers by default, plus the body when `with_request_body` is on; a
    /// request within it is always answered with an HTTP decision.
    pub max_check_request_bytes: usize,
    /// `server.shutdown_grace`: default 10s.
    pub shutdown_grace: Duration,
    /// `server.decision_deadline`: default 2s. An ext_authz decision that
    /// takes longer is denied with 503 (fail closed).
    pub decision_deadline: Duration,
    /// `server.watch_interval`: default 0 (off). When set, the config file
    /// and every secret and key file it names are checked this often, and
    /// a change reloads as SIGHUP does (Kubernetes updates mounted Secrets
    /// and ConfigMaps in place).
    pub watch_interval: Duration,
    /// The files this config was read from (config, secret and key files).
    pub source_files: Vec<PathBuf>,
    /// `server.drain_delay`: default 0s. After SIGTERM, keep serving this long
    /// while health reports NOT_SERVING, so load balancers stop sending.
    pub drain_delay: Duration,
    /// Connection and request limits of both ports.
    pub limits: ListenLimits,
    /// `server.trusted_proxy_hops`: default 1 (0..=10). The end user's
    /// address is the entry this many places from the right of
    /// `X-Forwarded-For` (each trusted proxy appends its peer), so a prefix
    /// the client wrote itself is never read; 0 ignores the header. It keys
    /// the per-client limits and the decision log's `client`.
    pub trusted_proxy_hops: usize,
    /// `server.plaintext` / `AUTHGATE_PLAINTEXT`: `loopback` (default) or
    /// `mesh`. Without `[tls]`, a listening address beyond loopback is a
    /// config error unless this is `mesh` (a sidecar encrypts and
    /// authenticates the traffic).
    pub plaintext: Plaintext,
    /// `server.trust_forwarded_client_cert`: default false. In mesh mode,
    /// the caller's identity comes from the sidecar's
    /// `x-forwarded-client-cert` (Envoy's XFCC: its last element's `URI`,
    /// else `DNS`, else the subject CN). Refused without `plaintext =
    /// "mesh"` or with `[tls]`: the header is then a client's to write.
    pub trust_forwarded_client_cert: bool,
    /// `server.webhook_addr`: the Netlify Identity webhook's own listener
    /// (`POST /hooks/netlify-identity/<issuer>`, nothing else), the one
    /// port meant to face the internet. Default off; needs an issuer with a
    /// `webhook_secret` and `[store]`.
    pub webhook_addr: Option<SocketAddr>,
    /// `[store]`: the application's user database; default none.
    pub store: Option<StoreConfig>,
    /// `[tls]`: TLS on both ports; default off.
    pub tls: Option<TlsConfig>,
    /// `[log]`.
    pub log: LogConfig,
    /// `[cache]`.
    pub cache: CacheConfig,
    /// `[signed_proxy]`, when configured (by the section or by
    /// `AUTHGATE_SIGNED_PROXY_SECRET[_FILE]`).
    pub signed_proxy: Option<SignedProxyConfig>,
    /// `[exchange]`, when configured (dev mode: an ephemeral key and a `dev`
    /// audience).
    pub exchange: Option<ExchangeConfig>,
    /// `[edge]`: default [`EdgeConfig::default`].
    pub edge: EdgeConfig,
    /// `[tracing]`: off by default.
    pub tracing: TracingConfig,
    /// `[[issuers]]`: at least one.
    pub issuers: Vec<IssuerConfig>,
    /// `[[callers]]`: the services that call authgate, by certificate
    /// identity or caller-token subject.
    pub callers: Vec<CallerConfig>,
    /// `[[caller_issuers]]`: `jwks` issuers whose tokens, sent by a calling
    /// service in gRPC metadata `authorization: Bearer`, name that service
    /// by their `sub` (Kubernetes service-account tokens:
    /// `system:serviceaccount:<ns>:<name>`). Never used for users' tokens.
    /// Default none.
    pub caller_issuers: Vec<IssuerConfig>,
    /// `[access]`: which callers may use each entry point; default open.
    pub access: AccessConfig,
}

/// Every problem found while loading, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration ({} error(s)):", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Everything [`Config::load`] reads from outside.
pub struct Inputs<'a> {
    /// `--config` (else `AUTHGATE_CONFIG` is read through `env`).
    pub config_path: Option<PathBuf>,
    /// `--grpc-addr`.
    pub grpc_addr: Option<String>,
    /// `--http-addr`.
    pub http_addr: Option<String>,
    /// Environment lookup (a closure so tests need not touch the process env).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Base for relative paths the config defaults to (the SQLite store),
    /// and for the dev secret when the user has no home directory.
    pub workdir: PathBuf,
    /// `check-config --offline`: name secret and key files without reading
    /// them (a config repository's CI has no secrets); such a config only
    /// validates, it cannot serve.
    pub offline: bool,
}
