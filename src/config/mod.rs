//! Configuration: a TOML file, `AUTHGATE_*` environment overrides, secrets
//! from `*_FILE` paths, and the embedded zero-config dev default.
//!
//! [`Config::load`] parses and validates everything in one pass and returns
//! *every* problem at once ([`ConfigErrors`]), before any socket is bound.
//! Precedence, highest first: command-line flag, environment variable, file,
//! default.

mod edge;
mod limits;
mod source;

use edge::read_edge;
pub use edge::{EdgeConfig, IdentityHeaderNames, RoutePolicy, is_route_name};
pub use limits::ListenLimits;
use limits::read_limits;

use crate::claims::ClaimPath;
use crate::keys::Secret;
use std::collections::BTreeSet;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::{Table, Value};

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
/// Name of the issuer the zero-config mode creates.
pub const DEV_ISSUER: &str = "dev";
/// Where the zero-config mode keeps its generated secret, under the
/// working directory.
pub const DEV_SECRET_PATH: &str = ".authgate/dev-secret";

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
}

/// Verified-identity cache settings (`[cache]`).
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// `max_entries`: default 10000; 0 turns the cache off.
    pub max_entries: u64,
    /// `max_ttl`: default 5m; an entry never outlives its token's `exp`.
    pub max_ttl: Duration,
}

/// The kinds of issuer authgate can verify, with their own settings.
#[derive(Debug, Clone)]
pub enum IssuerKind {
    /// `kind = "hs256"` (default): HMAC-SHA256 with shared secrets (GoTrue /
    /// Netlify Identity with a known secret, or any service that signs with
    /// a shared secret).
    Hs256(Hs256Settings),
    /// `kind = "netlify_identity"`: hosted Netlify Identity, whose secret
    /// nobody has, checked by GoTrue itself (`GET <identity_url>/user`).
    NetlifyIdentity(IdentitySettings),
    /// `kind = "jwks"`: asymmetric keys published as a JWKS (Auth0,
    /// Supabase, Okta, Keycloak, any OpenID provider) or given as files.
    Jwks(JwksSettings),
}

impl IssuerKind {
    /// The `kind` value as written in config.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Hs256(_) => "hs256",
            Self::NetlifyIdentity(_) => "netlify_identity",
            Self::Jwks(_) => "jwks",
        }
    }
}

/// Where a `jwks` issuer's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Neither `jwks_url` nor a file: OpenID discovery at
    /// `<iss>/.well-known/openid-configuration` → `jwks_uri`.
    Discovery(String),
    /// `jwks_url`.
    Url(String),
    /// `jwks_file`: the document, read at load.
    JwksDocument(String),
    /// `public_key_files`: (kid = file stem, SPKI PEM text), read at load.
    Pems(Vec<(String, String)>),
}

impl KeySource {
    /// True when keys are fetched over HTTP (and refreshed).
    pub fn is_remote(&self) -> bool {
        matches!(self, Self::Discovery(_) | Self::Url(_))
    }
}

/// Settings of a `jwks` issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksSettings {
    /// `jwks_url` | `jwks_file` | `public_key_files`; default discovery.
    pub source: KeySource,
    /// `algorithms`: default `["RS256", "ES256", "EdDSA"]` (`PS256` may be
    /// added); intersected with each key's own type and `alg`.
    pub algorithms: Vec<crate::keyset::JwsAlg>,
    /// `required`: default true. Readiness waits for this issuer's keys.
    pub required: bool,
    /// `fetch_timeout`: default 5s, per discovery or JWKS request.
    pub fetch_timeout: Duration,
    /// `min_refresh_interval`: default 1m. `Cache-Control: max-age` is
    /// clamped to [min, max]; without it, `max_refresh_interval` applies.
    pub min_refresh_interval: Duration,
    /// `max_refresh_interval`: default 1h.
    pub max_refresh_interval: Duration,
    /// `refetch_cooldown`: default 30s. At most one fetch for unknown kids
    /// per window, counted from the last fetch of any kind.
    pub refetch_cooldown: Duration,
    /// `max_staleness`: default 24h. Keys older than this (refreshes kept
    /// failing) are not used: `keys_unavailable` and not ready.
    pub max_staleness: Duration,
    /// `max_response_bytes`: default 256 KiB.
    pub max_response_bytes: usize,
    /// `require_claims`: default none. Claim name → exact string value
    /// (e.g. Supabase `role = "authenticated"`).
    pub require_claims: Vec<(String, String)>,
    /// `allow_anonymous`: default true. False refuses `is_anonymous: true`.
    pub allow_anonymous: bool,
}

/// Settings of an `hs256` issuer.
#[derive(Debug, Clone)]
pub struct Hs256Settings {
    /// `secret` / `secret_file` / `AUTHGATE_ISSUER_<NAME>_SECRET[_FILE]`:
    /// required, at least 16 bytes.
    pub secret: Secret,
    /// `previous_secret` / `previous_secret_file` / `..._PREVIOUS_SECRET[_FILE]`:
    /// optional, still accepted during a rotation. Default none.
    pub previous_secret: Option<Secret>,
    /// `allow_system_principal`: accept `sub` "0"/nil UUID (Netlify's
    /// operator token). Default false.
    pub allow_system_principal: bool,
}

/// Settings of a `netlify_identity` issuer (remote introspection).
#[derive(Debug, Clone)]
pub struct IdentitySettings {
    /// `site_url` (the Identity base is `<site_url>/.netlify/identity`) or
    /// `identity_url` (the base itself: self-hosted GoTrue, tests). One is
    /// required. `https` unless the host is loopback.
    pub identity_url: String,
    /// `connect_timeout`: default 2s.
    pub connect_timeout: Duration,
    /// `timeout`: whole upstream call, default 5s.
    pub timeout: Duration,
    /// `max_concurrent_requests`: upstream calls in flight, default 32.
    pub max_concurrent_requests: usize,
    /// `max_concurrent_per_client`: uncached checks one client (end-user
    /// address, see `server.trusted_proxy_hops`) may have in flight,
    /// default 8 or `max_concurrent_requests` if lower; then `client_busy`.
    pub max_concurrent_per_client: usize,
    /// `queue_timeout`: wait for a free upstream slot, default 1s; then
    /// `upstream_busy`.
    pub queue_timeout: Duration,
    /// `cache_ttl`: longest life of a positive result, default 2m (a user
    /// deleted or a role removed at Netlify is seen after at most this).
    pub cache_ttl: Duration,
    /// `negative_cache_ttl`: life of a definitive rejection (401/404/400),
    /// default 10s; 0s disables. Outages are never cached.
    pub negative_cache_ttl: Duration,
    /// `cache_max_entries`: default 10000.
    pub cache_max_entries: u64,
    /// `cache_max_bytes`: approximate memory bound, default 16 MiB.
    pub cache_max_bytes: u64,
    /// `max_response_bytes`: larger `/user` answers are refused, default 64 KiB.
    pub max_response_bytes: usize,
}

/// Netlify signed-proxy verification (`[signed_proxy]`).
#[derive(Debug, Clone)]
pub struct SignedProxyConfig {
    /// `secret` / `secret_file` / `AUTHGATE_SIGNED_PROXY_SECRET[_FILE]`: the
    /// value of the environment variable named in `signed = "..."` at Netlify.
    pub secret: Secret,
    /// `previous_secret` / `previous_secret_file` /
    /// `AUTHGATE_SIGNED_PROXY_PREVIOUS_SECRET[_FILE]`: accepted during a rotation.
    pub previous_secret: Option<Secret>,
    /// `site_ids`: if set, `netlify_id` must be one of them. Default any.
    pub site_ids: Vec<String>,
    /// `site_urls`: if set, `site_url` must be one of them. Default any.
    pub site_urls: Vec<String>,
    /// `deploy_contexts`: if set, `deploy_context` must be one of them
    /// (e.g. `["production"]`). Default any.
    pub deploy_contexts: Vec<String>,
    /// `leeway`: clock skew on `exp`/`iat`/`nbf`, default 30s, at most 300s.
    pub leeway: Duration,
    /// `max_lifetime`: largest accepted `exp − iat`, default 330s (Netlify
    /// signs for 300 s), so a long-lived forgery fails even with the secret.
    pub max_lifetime: Duration,
    /// `replay_protection`: accept each header value once within its
    /// lifetime. Default false: it breaks client retries.
    pub replay_protection: bool,
    /// `replay_cache_max_entries`: default 100000.
    pub replay_cache_max_entries: u64,
}

/// Signing algorithms for minted tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MintAlg {
    /// Ed25519 (default): fast to sign and verify, small keys.
    EdDSA,
    /// ECDSA P-256.
    ES256,
    /// RSA 2048+: widely supported, but signing costs 25–35× EdDSA.
    RS256,
}

impl MintAlg {
    /// The JOSE name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
        }
    }

    fn parse(v: &str) -> Result<Self, String> {
        match v {
            "EdDSA" => Ok(Self::EdDSA),
            "ES256" => Ok(Self::ES256),
            "RS256" => Ok(Self::RS256),
            _ => Err("must be EdDSA, ES256 or RS256".into()),
        }
    }

    /// Parses a name typed on the command line, in any case (`es256`).
    /// The config file keeps JOSE's exact spelling.
    pub fn from_flag(v: &str) -> Result<Self, String> {
        [Self::EdDSA, Self::ES256, Self::RS256]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(v))
            .ok_or_else(|| format!("unknown --alg {v}: use EdDSA, ES256 or RS256"))
    }
}

/// Where a signing key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, not yet signing (so verifiers learn it first).
    Next,
    /// Signs every new token; exactly one.
    Active,
    /// No longer signs; still published until the tokens it signed expire.
    Retired,
}

impl KeyState {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Active => "active",
            Self::Retired => "retired",
        }
    }
}

/// One `[[exchange.keys]]` entry.
#[derive(Debug, Clone)]
pub struct SigningKeyConfig {
    /// `kid`: required, unique; goes into the JWT header and the JWKS.
    pub kid: String,
    /// `alg`: `EdDSA` (default), `ES256` or `RS256`.
    pub alg: MintAlg,
    /// `state`: `next`, `active` (default) or `retired`.
    pub state: KeyState,
    /// `private_key` / `private_key_file` / `AUTHGATE_EXCHANGE_KEY_<KID>[_FILE]`:
    /// PKCS#8 PEM (as `authgate keys generate` writes).
    pub private_key: Secret,
}

/// One `[[exchange.audiences]]` entry: a downstream service.
#[derive(Debug, Clone)]
pub struct AudienceConfig {
    /// `name`: required, unique; the minted token's `aud`.
    pub name: String,
    /// `scopes`: scopes any allowed user may get. Default none.
    pub scopes: Vec<String>,
    /// `default_scopes`: granted when none are requested; must be allowed.
    pub default_scopes: Vec<String>,
    /// `role_scopes`: `{role = [scopes]}`, extra scopes for holders of a role.
    pub role_scopes: Vec<(String, Vec<String>)>,
    /// `max_ttl`: default 5m, at most 24h.
    pub max_ttl: Duration,
    /// `issuers`: configured issuers whose users may get tokens; default all.
    pub issuers: Vec<String>,
    /// `required_roles`: any-of; default none.
    pub required_roles: Vec<String>,
    /// `allow_ttl_beyond_subject`: let the minted token outlive the subject
    /// token (still ≤ `max_ttl`). Default false.
    pub allow_ttl_beyond_subject: bool,
}

/// `[exchange]`: minting internal tokens.
#[derive(Debug, Clone)]
pub struct ExchangeConfig {
    /// `issuer_url`: the minted `iss`; required (dev mode: the HTTP address).
    pub issuer_url: String,
    /// `public_base_url`: where `/.well-known/jwks.json` is reachable;
    /// default `issuer_url`.
    pub public_base_url: String,
    /// `jwks_max_age`: `Cache-Control: max-age` of the JWKS, default 5m.
    pub jwks_max_age: Duration,
    /// `mint_cache_max_entries`: minted tokens reused for identical
    /// requests, default 10000; 0 turns reuse off.
    pub mint_cache_max_entries: u64,
    /// `mint_cache_min_remaining`: reuse a minted token only while more than
    /// this fraction of its lifetime is left, default 0.5.
    pub mint_cache_min_remaining: f64,
    /// `[[exchange.keys]]`.
    pub keys: Vec<SigningKeyConfig>,
    /// `[[exchange.audiences]]`.
    pub audiences: Vec<AudienceConfig>,
    /// `leeway`: clock skew allowed on the `exp` and `nbf` of actor tokens
    /// authgate minted itself; default 30s, at most 300s.
    pub leeway: Duration,
}

/// One `[[issuers]]` entry.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// `name`: required, unique, `[a-z0-9_-]+`. Reported as `Identity.issuer`.
    pub name: String,
    /// `kind` and its settings.
    pub kind: IssuerKind,
    /// `leeway`: clock skew allowed on `exp` and `nbf`. Default 30s, at most 300s.
    pub leeway: Duration,
    /// `audiences`: when non-empty, `aud` must contain one of them. Default
    /// empty (GoTrue often omits `aud`).
    pub audiences: Vec<String>,
    /// `iss`: when set, the `iss` claim must equal it, and tokens carrying it
    /// are routed here. Default unset (GoTrue writes no `iss`).
    pub expected_iss: Option<String>,
    /// `role_claims`: dotted claim paths holding role arrays (for
    /// `netlify_identity`, paths into the user GoTrue returns). Default
    /// `["app_metadata.roles", "app_metadata.authorization.roles"]`; never
    /// under `user_metadata`.
    pub role_claims: Vec<ClaimPath>,
    /// `default`: route tokens here when no issuer's `iss` matches. Default
    /// false; with a single issuer it is implied.
    pub default: bool,
    /// `require_signed_proxy`: this issuer's users must also come through
    /// the site's Netlify proxy (a valid `x-nf-sign`). Default false; needs
    /// `[signed_proxy]`.
    pub require_signed_proxy: bool,
}

impl IssuerConfig {
    /// The HS256 secret that signs tokens for this issuer (`authgate token`),
    /// if it has one.
    pub fn signing_secret(&self) -> Option<&Secret> {
        match &self.kind {
            IssuerKind::Hs256(h) => Some(&h.secret),
            IssuerKind::NetlifyIdentity(_) | IssuerKind::Jwks(_) => None,
        }
    }
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

/// OTLP trace export protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// `http/protobuf` (default).
    HttpProtobuf,
    /// `http/json`.
    HttpJson,
}

/// `[tracing]`: OpenTelemetry traces over OTLP/HTTP. Off unless an
/// endpoint is configured here or in `OTEL_EXPORTER_OTLP_ENDPOINT` /
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`.
#[derive(Debug, Clone, PartialEq)]
pub struct TracingConfig {
    /// `otlp_endpoint`: default unset. The collector's base URL; traces go
    /// to `<base>/v1/traces`. When unset, the standard variables apply.
    pub otlp_endpoint: Option<String>,
    /// True when an endpoint comes from config or the environment.
    pub enabled: bool,
    /// `protocol` (or `OTEL_EXPORTER_OTLP_PROTOCOL`): default `http/protobuf`.
    pub protocol: OtlpProtocol,
    /// `sample_ratio`: default 1.0; root spans kept at this ratio, child
    /// spans follow their parent's decision.
    pub sample_ratio: f64,
    /// `service_name` (or `OTEL_SERVICE_NAME`): default `authgate`.
    pub service_name: String,
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
    /// Base for the dev secret path.
    pub workdir: PathBuf,
}

impl Config {
    /// Loads, overrides and validates in one pass.
    pub fn load(inputs: &Inputs<'_>) -> Result<Config, ConfigErrors> {
        let path = inputs.config_path.clone().or_else(|| (inputs.env)(ENV_CONFIG).map(PathBuf::from));
        let mut r = Reader { errors: Vec::new(), env: inputs.env, files: Vec::new() };
        r.files.extend(path.clone());
        let mut locations = None;
        let (root, mode) = match &path {
            Some(p) => match std::fs::read_to_string(p) {
                Ok(text) => match text.parse::<Table>() {
                    Ok(t) => {
                        locations = Some(source::KeyLocations::new(p, &text));
                        (t, Mode::File(p.clone()))
                    }
                    Err(e) => {
                        let at =
                            source::KeyLocations::new(p, &text).position(e.span().map_or(0, |s| s.start));
                        return Err(ConfigErrors(vec![format!("{at}: {}", e.message().trim_end())]));
                    }
                },
                Err(e) => {
                    return Err(ConfigErrors(vec![format!("cannot read config file {}: {e}", p.display())]));
                }
            },
            None => (Table::new(), Mode::Dev { secret_origin: String::new() }),
        };

        let mut top = Section::new("", Some(&root));
        let server = top.table(&mut r, "server");
        let log = top.table(&mut r, "log");
        let cache = top.table(&mut r, "cache");
        let signed_proxy = top.table(&mut r, "signed_proxy");
        let exchange = top.table(&mut r, "exchange");
        let edge = top.table(&mut r, "edge");
        let tracing = top.table(&mut r, "tracing");
        let issuers_raw = top.array_of_tables(&mut r, "issuers");
        top.finish(&mut r);

        let mut s = Section::new("server", server);
        let grpc_addr = s
            .parsed(&mut r, "grpc_addr", Some(ENV_GRPC_ADDR), inputs.grpc_addr.as_deref(), parse_addr)
            .unwrap_or(DEFAULT_GRPC_ADDR);
        let http_addr = s
            .parsed(&mut r, "http_addr", Some(ENV_HTTP_ADDR), inputs.http_addr.as_deref(), parse_addr)
            .unwrap_or(DEFAULT_HTTP_ADDR);
        let max_token_bytes = s
            .parsed(&mut r, "max_token_bytes", Some(ENV_MAX_TOKEN_BYTES), None, |v| {
                parse_bounded(v, 1024, 1024 * 1024)
            })
            .unwrap_or(DEFAULT_MAX_TOKEN_BYTES);
        let max_message_bytes = s
            .parsed(&mut r, "max_message_bytes", None, None, |v| parse_bounded(v, 4096, 4 * 1024 * 1024))
            .unwrap_or(DEFAULT_MAX_MESSAGE_BYTES);
        let max_check_request_bytes = s
            .parsed(&mut r, "max_check_request_bytes", None, None, |v| {
                parse_bounded(v, 4096, 4 * 1024 * 1024)
            })
            .unwrap_or(128 * 1024);
        let shutdown_grace = s
            .parsed(&mut r, "shutdown_grace", Some(ENV_SHUTDOWN_GRACE), None, parse_duration)
            .unwrap_or(DEFAULT_SHUTDOWN_GRACE);
        let drain_delay =
            s.parsed(&mut r, "drain_delay", Some(ENV_DRAIN_DELAY), None, parse_duration).unwrap_or_default();
        let decision_deadline = s
            .parsed(&mut r, "decision_deadline", None, None, parse_duration)
            .unwrap_or(Duration::from_secs(2));
        if decision_deadline.is_zero() {
            r.errors.push("server.decision_deadline must be above zero".into());
        }
        let watch_interval =
            s.parsed(&mut r, "watch_interval", None, None, parse_duration).unwrap_or(Duration::ZERO);
        if !watch_interval.is_zero() && watch_interval < Duration::from_millis(100) {
            r.errors.push("server.watch_interval must be 0 (off) or at least 100ms".into());
        }
        let limits = read_limits(&mut r, &mut s);
        let trusted_proxy_hops =
            s.parsed(&mut r, "trusted_proxy_hops", None, None, |v| parse_bounded(v, 0, 10)).unwrap_or(1);
        if limits.request_timeout < decision_deadline {
            r.errors.push("server.request_timeout must not be shorter than server.decision_deadline".into());
        }
        s.finish(&mut r);
        if grpc_addr == http_addr && grpc_addr.port() != 0 {
            r.errors.push(format!("server.grpc_addr and server.http_addr are both {grpc_addr}"));
        }
        if max_message_bytes < max_token_bytes {
            r.errors.push(format!(
                "server.max_message_bytes ({max_message_bytes}) is smaller than server.max_token_bytes ({max_token_bytes})"
            ));
        }

        let mut l = Section::new("log", log);
        let format = l
            .parsed(&mut r, "format", Some(ENV_LOG_FORMAT), None, |v| match v {
                "human" => Ok(LogFormat::Human),
                "json" => Ok(LogFormat::Json),
                _ => Err("must be `human` or `json`".to_string()),
            })
            .unwrap_or(LogFormat::Human);
        let level = l
            .parsed(&mut r, "level", Some(ENV_LOG_LEVEL), None, parse_log_filter)
            .unwrap_or_else(|| "info".to_string());
        l.finish(&mut r);

        let mut c = Section::new("cache", cache);
        let cache = CacheConfig {
            max_entries: c
                .parsed(&mut r, "max_entries", None, None, |v| {
                    parse_bounded(v, 0, 10_000_000).map(|n| n as u64)
                })
                .unwrap_or(DEFAULT_CACHE_MAX_ENTRIES),
            max_ttl: c.parsed(&mut r, "max_ttl", None, None, parse_duration).unwrap_or(DEFAULT_CACHE_MAX_TTL),
        };
        c.finish(&mut r);
        let signed_proxy = read_signed_proxy(&mut r, signed_proxy);
        let exchange = match (&mode, exchange) {
            (_, Some(t)) => read_exchange(&mut r, t),
            (Mode::Dev { .. }, None) => dev_exchange(http_addr),
            (Mode::File(_), None) => None,
        };

        let mut issuers = Vec::new();
        let mode = match mode {
            Mode::File(p) => {
                for (i, t) in issuers_raw.iter().enumerate() {
                    if let Some(iss) = read_issuer(&mut r, i, t) {
                        issuers.push(iss);
                    }
                }
                if issuers_raw.is_empty() {
                    r.errors.push("no [[issuers]] configured: authgate would deny every request".into());
                }
                Mode::File(p)
            }
            Mode::Dev { .. } => match dev_issuer(inputs) {
                Ok((iss, secret_origin)) => {
                    issuers.push(iss);
                    Mode::Dev { secret_origin }
                }
                Err(e) => {
                    r.errors.push(e);
                    Mode::Dev { secret_origin: String::new() }
                }
            },
        };
        check_issuers(&mut r, &issuers);
        let edge = read_edge(&mut r, edge, &issuers, exchange.as_ref(), signed_proxy.is_some());
        let tracing = read_tracing(&mut r, tracing);
        for a in exchange.iter().flat_map(|e| &e.audiences) {
            for i in a.issuers.iter().filter(|i| !issuers.iter().any(|c| &c.name == *i)) {
                r.errors.push(format!(
                    "exchange audience `{}` names issuer `{i}`, which is not configured",
                    a.name
                ));
            }
        }
        if signed_proxy.is_none()
            && let Some(i) = issuers.iter().find(|i| i.require_signed_proxy)
        {
            r.errors.push(format!(
                "issuer `{}` has require_signed_proxy = true but no [signed_proxy] secret is configured",
                i.name
            ));
        }

        if r.errors.is_empty() {
            Ok(Config {
                mode,
                grpc_addr,
                http_addr,
                max_token_bytes,
                max_message_bytes,
                max_check_request_bytes,
                shutdown_grace,
                drain_delay,
                decision_deadline,
                watch_interval,
                source_files: r.files,
                limits,
                trusted_proxy_hops,
                log: LogConfig { format, level },
                cache,
                signed_proxy,
                exchange,
                edge,
                tracing,
                issuers,
            })
        } else {
            let errors = match &locations {
                Some(l) => r.errors.into_iter().map(|e| l.locate(e)).collect(),
                None => r.errors,
            };
            Err(ConfigErrors(errors))
        }
    }

    /// The effective configuration as TOML, secrets replaced by a marker.
    pub fn render_redacted(&self) -> String {
        let mut out = String::new();
        let q = |s: &str| Value::String(s.to_string()).to_string();
        let d = |d: Duration| q(&humantime::format_duration(d).to_string());
        if let Mode::Dev { secret_origin } = &self.mode {
            out.push_str(&format!("# zero-config dev mode; dev secret from {secret_origin}\n"));
        }
        out.push_str("[server]\n");
        out.push_str(&format!("grpc_addr = {}\n", q(&self.grpc_addr.to_string())));
        out.push_str(&format!("http_addr = {}\n", q(&self.http_addr.to_string())));
        out.push_str(&format!("max_token_bytes = {}\n", self.max_token_bytes));
        out.push_str(&format!("max_message_bytes = {}\n", self.max_message_bytes));
        out.push_str(&format!("max_check_request_bytes = {}\n", self.max_check_request_bytes));
        out.push_str(&format!("shutdown_grace = {}\n", d(self.shutdown_grace)));
        out.push_str(&format!("drain_delay = {}\n", d(self.drain_delay)));
        out.push_str(&format!("decision_deadline = {}\n", d(self.decision_deadline)));
        out.push_str(&format!("watch_interval = {}\n", d(self.watch_interval)));
        out.push_str(&format!("trusted_proxy_hops = {}\n", self.trusted_proxy_hops));
        let l = &self.limits;
        out.push_str(&format!(
            "max_connections = {}\nmax_streams_per_connection = {}\nmax_in_flight = {}\n",
            l.max_connections, l.max_streams_per_connection, l.max_in_flight
        ));
        out.push_str(&format!(
            "request_timeout = {}\nhandshake_timeout = {}\nhttp_header_timeout = {}\nkeepalive_interval = {}\nkeepalive_timeout = {}\n",
            d(l.request_timeout),
            d(l.handshake_timeout),
            d(l.http_header_timeout),
            d(l.keepalive_interval),
            d(l.keepalive_timeout)
        ));
        out.push_str("\n[log]\n");
        let format = match self.log.format {
            LogFormat::Human => "human",
            LogFormat::Json => "json",
        };
        out.push_str(&format!("format = {}\nlevel = {}\n", q(format), q(&self.log.level)));
        out.push_str(&format!(
            "\n[cache]\nmax_entries = {}\nmax_ttl = {}\n",
            self.cache.max_entries,
            d(self.cache.max_ttl)
        ));
        if let Some(p) = &self.signed_proxy {
            let list = |v: &[String]| v.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ");
            out.push_str("\n[signed_proxy]\n");
            out.push_str(&format!("secret = \"[redacted: {} bytes]\"\n", p.secret.len()));
            if let Some(prev) = &p.previous_secret {
                out.push_str(&format!("previous_secret = \"[redacted: {} bytes]\"\n", prev.len()));
            }
            out.push_str(&format!(
                "site_ids = [{}]\nsite_urls = [{}]\ndeploy_contexts = [{}]\n",
                list(&p.site_ids),
                list(&p.site_urls),
                list(&p.deploy_contexts)
            ));
            out.push_str(&format!("leeway = {}\nmax_lifetime = {}\n", d(p.leeway), d(p.max_lifetime)));
            out.push_str(&format!(
                "replay_protection = {}\nreplay_cache_max_entries = {}\n",
                p.replay_protection, p.replay_cache_max_entries
            ));
        }
        if let Some(x) = &self.exchange {
            let list = |v: &[String]| v.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ");
            out.push_str(&format!(
                "\n[exchange]\nissuer_url = {}\npublic_base_url = {}\njwks_max_age = {}\n",
                q(&x.issuer_url),
                q(&x.public_base_url),
                d(x.jwks_max_age)
            ));
            out.push_str(&format!(
                "mint_cache_max_entries = {}\nmint_cache_min_remaining = {}\nleeway = {}\n",
                x.mint_cache_max_entries,
                x.mint_cache_min_remaining,
                d(x.leeway)
            ));
            for k in &x.keys {
                out.push_str(&format!(
                    "\n[[exchange.keys]]\nkid = {}\nalg = {}\nstate = {}\nprivate_key = \"[redacted: {} bytes]\"\n",
                    q(&k.kid),
                    q(k.alg.as_str()),
                    q(k.state.as_str()),
                    k.private_key.len()
                ));
            }
            for a in &x.audiences {
                out.push_str(&format!(
                    "\n[[exchange.audiences]]\nname = {}\nscopes = [{}]\ndefault_scopes = [{}]\nmax_ttl = {}\n",
                    q(&a.name),
                    list(&a.scopes),
                    list(&a.default_scopes),
                    d(a.max_ttl)
                ));
                out.push_str(&format!(
                    "issuers = [{}]\nrequired_roles = [{}]\nallow_ttl_beyond_subject = {}\n",
                    list(&a.issuers),
                    list(&a.required_roles),
                    a.allow_ttl_beyond_subject
                ));
                let rs: Vec<String> =
                    a.role_scopes.iter().map(|(r, v)| format!("{} = [{}]", q(r), list(v))).collect();
                out.push_str(&format!("role_scopes = {{ {} }}\n", rs.join(", ")));
            }
        }
        let t = &self.tracing;
        out.push_str(&format!(
            "\n[tracing]\n# export {}\n",
            if t.enabled { "on" } else { "off (no endpoint configured)" }
        ));
        if let Some(e) = &t.otlp_endpoint {
            out.push_str(&format!("otlp_endpoint = {}\n", q(e)));
        }
        out.push_str(&format!(
            "protocol = {}\nsample_ratio = {}\nservice_name = {}\n",
            q(match t.protocol {
                OtlpProtocol::HttpProtobuf => "http/protobuf",
                OtlpProtocol::HttpJson => "http/json",
            }),
            t.sample_ratio,
            q(&t.service_name)
        ));
        let e = &self.edge;
        let list = |v: &[String]| v.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ");
        let route = |p: &RoutePolicy| {
            let mut out = format!(
                "issuer = {}\nroles = [{}]\nsigned_proxy = {}\nremove_headers = [{}]\n",
                q(p.issuer.as_deref().unwrap_or("")),
                list(&p.roles),
                q(if p.require_signed_proxy { "required" } else { "optional" }),
                list(&p.remove_headers)
            );
            if let Some(a) = &p.exchange_audience {
                out.push_str(&format!("exchange_audience = {}\n", q(a)));
            }
            out
        };
        out.push_str("\n[edge]\n");
        out.push_str(&route(&e.default));
        out.push_str(&format!("strip_cookies = [{}]\n", list(&e.strip_cookies)));
        out.push_str(&format!(
            "subject_header = {}\nemail_header = {}\nroles_header = {}\nissuer_header = {}\n",
            q(&e.headers.subject),
            q(&e.headers.email),
            q(&e.headers.roles),
            q(&e.headers.issuer)
        ));
        for (name, policy) in &e.routes {
            out.push_str(&format!("\n[edge.routes.{name}]\n"));
            out.push_str(&route(policy));
        }
        for i in &self.issuers {
            out.push_str("\n[[issuers]]\n");
            out.push_str(&format!("name = {}\nkind = {}\n", q(&i.name), q(i.kind.as_str())));
            match &i.kind {
                IssuerKind::Hs256(h) => {
                    out.push_str(&format!("secret = \"[redacted: {} bytes]\"\n", h.secret.len()));
                    if let Some(p) = &h.previous_secret {
                        out.push_str(&format!("previous_secret = \"[redacted: {} bytes]\"\n", p.len()));
                    }
                    out.push_str(&format!("allow_system_principal = {}\n", h.allow_system_principal));
                }
                IssuerKind::Jwks(j) => {
                    match &j.source {
                        KeySource::Discovery(u) => {
                            out.push_str(&format!("# keys by discovery from {}\n", q(u)))
                        }
                        KeySource::Url(u) => out.push_str(&format!("jwks_url = {}\n", q(u))),
                        KeySource::JwksDocument(_) => out.push_str("# keys from jwks_file (read at load)\n"),
                        KeySource::Pems(p) => {
                            let kids: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
                            out.push_str(&format!("# keys from public_key_files: {kids:?}\n"))
                        }
                    }
                    let algs: Vec<String> = j.algorithms.iter().map(|a| q(a.as_str())).collect();
                    out.push_str(&format!("algorithms = [{}]\nrequired = {}\n", algs.join(", "), j.required));
                    for (k, v) in [
                        ("fetch_timeout", j.fetch_timeout),
                        ("min_refresh_interval", j.min_refresh_interval),
                        ("max_refresh_interval", j.max_refresh_interval),
                        ("refetch_cooldown", j.refetch_cooldown),
                        ("max_staleness", j.max_staleness),
                    ] {
                        out.push_str(&format!("{k} = {}\n", d(v)));
                    }
                    let rc: Vec<String> =
                        j.require_claims.iter().map(|(k, v)| format!("{} = {}", q(k), q(v))).collect();
                    out.push_str(&format!(
                        "max_response_bytes = {}\nallow_anonymous = {}\nrequire_claims = {{ {} }}\n",
                        j.max_response_bytes,
                        j.allow_anonymous,
                        rc.join(", ")
                    ));
                }
                IssuerKind::NetlifyIdentity(n) => {
                    out.push_str(&format!("identity_url = {}\n", q(&n.identity_url)));
                    for (k, v) in [
                        ("connect_timeout", n.connect_timeout),
                        ("timeout", n.timeout),
                        ("queue_timeout", n.queue_timeout),
                        ("cache_ttl", n.cache_ttl),
                        ("negative_cache_ttl", n.negative_cache_ttl),
                    ] {
                        out.push_str(&format!("{k} = {}\n", d(v)));
                    }
                    out.push_str(&format!(
                        "max_concurrent_requests = {}\nmax_concurrent_per_client = {}\ncache_max_entries = {}\ncache_max_bytes = {}\nmax_response_bytes = {}\n",
                        n.max_concurrent_requests,
                        n.max_concurrent_per_client,
                        n.cache_max_entries,
                        n.cache_max_bytes,
                        n.max_response_bytes
                    ));
                }
            }
            out.push_str(&format!("leeway = {}\n", d(i.leeway)));
            let list = |v: Vec<String>| v.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ");
            out.push_str(&format!("audiences = [{}]\n", list(i.audiences.clone())));
            if let Some(iss) = &i.expected_iss {
                out.push_str(&format!("iss = {}\n", q(iss)));
            }
            out.push_str(&format!(
                "role_claims = [{}]\n",
                list(i.role_claims.iter().map(ClaimPath::as_dotted).collect())
            ));
            out.push_str(&format!("default = {}\n", i.default));
            out.push_str(&format!("require_signed_proxy = {}\n", i.require_signed_proxy));
        }
        out
    }
}

/// A log filter: comma-separated directives, each a level (`trace`,
/// `debug`, `info`, `warn`, `error`, `off`) or `target=level`. A bare word
/// that is no level (`verbose`) would be read by tracing as a target name
/// and silence every other log line, so it is an error.
fn parse_log_filter(v: &str) -> Result<String, String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    for directive in v.split(',').map(str::trim) {
        if !directive.contains('=') && !LEVELS.contains(&directive.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "`{directive}` is not a level (trace, debug, info, warn, error, off) or a `target=level` directive"
            ));
        }
    }
    tracing_subscriber::EnvFilter::try_new(v).map(|_| v.to_string()).map_err(|e| e.to_string())
}

fn parse_addr(v: &str) -> Result<SocketAddr, String> {
    v.parse().map_err(|_| "not a socket address like 127.0.0.1:8080".to_string())
}

fn parse_duration(v: &str) -> Result<Duration, String> {
    humantime::parse_duration(v).map_err(|e| format!("not a duration like \"30s\": {e}"))
}

fn parse_bounded(v: &str, min: usize, max: usize) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("must be an integer from {min} to {max}")),
    }
}

/// Env var name part for an issuer: `netlify-prod` → `NETLIFY_PROD`.
pub fn issuer_env_name(issuer: &str) -> String {
    issuer.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect()
}

fn read_issuer(r: &mut Reader<'_>, index: usize, table: &Table) -> Option<IssuerConfig> {
    let mut s = Section::new(&format!("issuers[{index}]"), Some(table));
    let name = s.parsed(r, "name", None, None, |v| Ok(v.to_string()));
    let Some(name) = name else {
        r.errors.push(format!("issuers[{index}].name is required"));
        s.finish(r);
        return None;
    };
    s.label = format!("issuers[{index}] ({name})");
    if name.is_empty()
        || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        r.errors.push(format!("{}: name must match [a-z0-9_-]+", s.label));
    }
    let kind_name = s
        .parsed(r, "kind", None, None, |v| match v {
            "hs256" | "netlify_identity" | "jwks" => Ok(v.to_string()),
            _ => Err("unknown kind (supported: hs256, netlify_identity, jwks)".to_string()),
        })
        .unwrap_or_else(|| "hs256".to_string());
    let expected_iss = s.parsed(r, "iss", None, None, |v| Ok(v.to_string()));
    if expected_iss.as_deref() == Some("") {
        r.errors.push(format!("{}.iss is empty: leave it out to accept tokens without `iss`", s.label));
    }
    let kind = match kind_name.as_str() {
        "netlify_identity" => read_identity_settings(r, &mut s).map(IssuerKind::NetlifyIdentity),
        "jwks" => read_jwks_settings(r, &mut s, expected_iss.as_deref()).map(IssuerKind::Jwks),
        _ => read_hs256_settings(r, &mut s, &name).map(IssuerKind::Hs256),
    };
    let leeway = s.parsed(r, "leeway", None, None, parse_duration).unwrap_or(DEFAULT_LEEWAY);
    if leeway > MAX_LEEWAY {
        r.errors.push(format!("{}.leeway must be at most 300s", s.label));
    }
    let audiences = s.strings(r, "audiences").unwrap_or_default();
    let default_roles: &[&str] =
        if kind_name == "jwks" { &DEFAULT_JWKS_ROLE_CLAIMS } else { &DEFAULT_ROLE_CLAIMS };
    let role_claims = s
        .strings(r, "role_claims")
        .unwrap_or_else(|| default_roles.iter().map(|p| p.to_string()).collect())
        .iter()
        .filter_map(|p| ClaimPath::parse(p).map_err(|e| r.errors.push(format!("{}: {e}", s.label))).ok())
        .collect();
    let default = s.boolean(r, "default").unwrap_or(false);
    let require_signed_proxy = s.boolean(r, "require_signed_proxy").unwrap_or(false);
    if matches!(kind, Some(IssuerKind::NetlifyIdentity(_))) && expected_iss.is_some() {
        r.errors
            .push(format!("{}.iss: netlify_identity tokens carry no `iss` (GoTrue writes none)", s.label));
    }
    if kind_name == "jwks" {
        if expected_iss.is_none() {
            r.errors
                .push(format!("{}.iss is required for kind jwks (tokens must name their issuer)", s.label));
        }
        if audiences.is_empty() {
            r.errors.push(format!(
                "{}.audiences is required for kind jwks (a token for another API of the same provider must not pass)",
                s.label
            ));
        }
    }
    s.finish(r);
    Some(IssuerConfig {
        name,
        kind: kind?,
        leeway,
        audiences,
        expected_iss,
        role_claims,
        default,
        require_signed_proxy,
    })
}

/// The dev-mode exchange: a fresh Ed25519 key per start (tokens die with the
/// process) and one audience, `dev`, with scopes `read` (default) and `write`.
fn dev_exchange(http_addr: SocketAddr) -> Option<ExchangeConfig> {
    let pem = crate::mint::generate_pkcs8_pem(MintAlg::EdDSA).ok()?;
    let url = format!("http://{http_addr}");
    Some(ExchangeConfig {
        issuer_url: url.clone(),
        public_base_url: url,
        jwks_max_age: Duration::from_secs(300),
        mint_cache_max_entries: 10_000,
        mint_cache_min_remaining: 0.5,
        keys: vec![SigningKeyConfig {
            kid: "dev-ephemeral".into(),
            alg: MintAlg::EdDSA,
            state: KeyState::Active,
            private_key: Secret::new(pem.into_bytes()),
        }],
        audiences: vec![AudienceConfig {
            name: "dev".into(),
            scopes: vec!["read".into(), "write".into()],
            default_scopes: vec!["read".into()],
            role_scopes: Vec::new(),
            max_ttl: Duration::from_secs(300),
            issuers: Vec::new(),
            required_roles: Vec::new(),
            allow_ttl_beyond_subject: false,
        }],
        leeway: DEFAULT_LEEWAY,
    })
}

fn read_exchange(r: &mut Reader<'_>, table: &Table) -> Option<ExchangeConfig> {
    let mut s = Section::new("exchange", Some(table));
    let issuer_url = s.parsed(r, "issuer_url", None, None, |v| {
        reqwest::Url::parse(v)
            .map(|u| u.as_str().trim_end_matches('/').to_string())
            .map_err(|e| e.to_string())
    });
    let public_base_url = s.parsed(r, "public_base_url", None, None, |v| {
        reqwest::Url::parse(v)
            .map(|u| u.as_str().trim_end_matches('/').to_string())
            .map_err(|e| e.to_string())
    });
    let jwks_max_age =
        s.parsed(r, "jwks_max_age", None, None, parse_duration).unwrap_or(Duration::from_secs(300));
    let leeway = s.parsed(r, "leeway", None, None, parse_duration).unwrap_or(DEFAULT_LEEWAY);
    if leeway > MAX_LEEWAY {
        r.errors.push("exchange.leeway must be at most 300s".into());
    }
    let mint_cache_max_entries = s
        .parsed(r, "mint_cache_max_entries", None, None, |v| {
            parse_bounded(v, 0, 10_000_000).map(|n| n as u64)
        })
        .unwrap_or(10_000);
    let mint_cache_min_remaining = s
        .parsed(r, "mint_cache_min_remaining", None, None, |v| match v.parse::<f64>() {
            Ok(f) if (0.0..1.0).contains(&f) => Ok(f),
            _ => Err("must be a fraction from 0 up to (not including) 1".into()),
        })
        .unwrap_or(0.5);
    let key_tables = s.array_of_tables(r, "keys");
    let audience_tables = s.array_of_tables(r, "audiences");
    s.finish(r);
    let keys: Vec<SigningKeyConfig> =
        key_tables.iter().enumerate().filter_map(|(i, t)| read_signing_key(r, i, t)).collect();
    let audiences: Vec<AudienceConfig> =
        audience_tables.iter().enumerate().filter_map(|(i, t)| read_audience(r, i, t)).collect();
    if keys.iter().filter(|k| k.state == KeyState::Active).count() != 1 {
        r.errors.push("[exchange] needs exactly one key with state = \"active\"".into());
    }
    let mut kids = BTreeSet::new();
    for k in &keys {
        if !kids.insert(k.kid.as_str()) {
            r.errors.push(format!("exchange key kid `{}` is used twice", k.kid));
        }
    }
    let mut names = BTreeSet::new();
    for a in &audiences {
        if !names.insert(a.name.as_str()) {
            r.errors.push(format!("exchange audience `{}` is configured twice", a.name));
        }
    }
    let Some(issuer_url) = issuer_url else {
        r.errors.push("exchange.issuer_url is required (the minted tokens' iss)".into());
        return None;
    };
    Some(ExchangeConfig {
        public_base_url: public_base_url.unwrap_or_else(|| issuer_url.clone()),
        issuer_url,
        jwks_max_age,
        mint_cache_max_entries,
        mint_cache_min_remaining,
        keys,
        audiences,
        leeway,
    })
}

fn read_signing_key(r: &mut Reader<'_>, index: usize, table: &Table) -> Option<SigningKeyConfig> {
    let mut s = Section::new(&format!("exchange.keys[{index}]"), Some(table));
    let kid = s.parsed(r, "kid", None, None, |v| {
        if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            Err("must match [A-Za-z0-9._-]+".to_string())
        } else {
            Ok(v.to_string())
        }
    });
    let alg = s.parsed(r, "alg", None, None, MintAlg::parse).unwrap_or(MintAlg::EdDSA);
    let state = s
        .parsed(r, "state", None, None, |v| match v {
            "next" => Ok(KeyState::Next),
            "active" => Ok(KeyState::Active),
            "retired" => Ok(KeyState::Retired),
            _ => Err("must be next, active or retired".to_string()),
        })
        .unwrap_or(KeyState::Active);
    let env = format!("AUTHGATE_EXCHANGE_KEY_{}", issuer_env_name(kid.as_deref().unwrap_or("")));
    let key = read_secret(r, &mut s, "private_key", &env);
    s.finish(r);
    let kid = kid.or_else(|| {
        r.errors.push(format!("exchange.keys[{index}].kid is required"));
        None
    })?;
    let private_key = key.ok()?.or_else(|| {
        r.errors
            .push(format!("exchange.keys[{index}] ({kid}): private_key_file (or {env}_FILE) is required"));
        None
    })?;
    if let Err(e) = crate::mint::check_private_key(&private_key, alg) {
        r.errors.push(format!("exchange.keys[{index}] ({kid}): {e}"));
        return None;
    }
    Some(SigningKeyConfig { kid, alg, state, private_key })
}

fn read_audience(r: &mut Reader<'_>, index: usize, table: &Table) -> Option<AudienceConfig> {
    let mut s = Section::new(&format!("exchange.audiences[{index}]"), Some(table));
    let name = s.parsed(r, "name", None, None, |v| Ok(v.to_string()));
    let scopes = s.strings(r, "scopes").unwrap_or_default();
    let default_scopes = s.strings(r, "default_scopes").unwrap_or_default();
    let mut role_scopes = Vec::new();
    match s.get("role_scopes") {
        None => {}
        Some(Value::Table(t)) => {
            for (role, v) in t {
                match v
                    .as_array()
                    .map(|a| a.iter().map(|x| x.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>())
                {
                    Some(Some(list)) => role_scopes.push((role.clone(), list)),
                    _ => r.errors.push(format!("{}.role_scopes.{role} must be an array of strings", s.label)),
                }
            }
        }
        Some(_) => r.errors.push(format!("{}.role_scopes must be a table of role = [scopes]", s.label)),
    }
    let max_ttl = s.parsed(r, "max_ttl", None, None, parse_duration).unwrap_or(Duration::from_secs(300));
    if max_ttl.is_zero() || max_ttl > Duration::from_secs(86_400) {
        r.errors.push(format!("{}.max_ttl must be between 1s and 24h", s.label));
    }
    let issuers = s.strings(r, "issuers").unwrap_or_default();
    let required_roles = s.strings(r, "required_roles").unwrap_or_default();
    let allow_ttl_beyond_subject = s.boolean(r, "allow_ttl_beyond_subject").unwrap_or(false);
    let label = s.label.clone();
    s.finish(r);
    for d in &default_scopes {
        if !scopes.contains(d) {
            r.errors.push(format!("{label}: default scope `{d}` is not in scopes"));
        }
    }
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        r.errors.push(format!("{label}.name is required"));
        return None;
    };
    Some(AudienceConfig {
        name,
        scopes,
        default_scopes,
        role_scopes,
        max_ttl,
        issuers,
        required_roles,
        allow_ttl_beyond_subject,
    })
}

/// `[signed_proxy]`: present when the section or its secret variable is.
fn read_tracing(r: &mut Reader<'_>, table: Option<&Table>) -> TracingConfig {
    let mut s = Section::new("tracing", table);
    let otlp_endpoint = s.parsed(r, "otlp_endpoint", None, None, |v| {
        let url = reqwest::Url::parse(v).map_err(|e| format!("not a URL: {e}"))?;
        match url.scheme() {
            "http" | "https" => Ok(v.trim_end_matches('/').to_string()),
            _ => Err("must be an http(s) URL".to_string()),
        }
    });
    let env_endpoint = ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
        .iter()
        .any(|k| (r.env)(k).is_some_and(|v| !v.is_empty()));
    let protocol = s
        .parsed(r, "protocol", Some("OTEL_EXPORTER_OTLP_PROTOCOL"), None, |v| match v {
            "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
            "http/json" => Ok(OtlpProtocol::HttpJson),
            _ => Err("must be `http/protobuf` or `http/json` (gRPC export is not built in)".to_string()),
        })
        .unwrap_or(OtlpProtocol::HttpProtobuf);
    let sample_ratio = s
        .parsed(r, "sample_ratio", None, None, |v| match v.parse::<f64>() {
            Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
            _ => Err("must be a number from 0 to 1".to_string()),
        })
        .unwrap_or(1.0);
    let service_name = s
        .parsed(r, "service_name", Some("OTEL_SERVICE_NAME"), None, |v| Ok(v.to_string()))
        .unwrap_or_else(|| "authgate".to_string());
    s.finish(r);
    TracingConfig {
        enabled: otlp_endpoint.is_some() || env_endpoint,
        otlp_endpoint,
        protocol,
        sample_ratio,
        service_name,
    }
}

fn read_signed_proxy(r: &mut Reader<'_>, table: Option<&Table>) -> Option<SignedProxyConfig> {
    let env_given = [ENV_SIGNED_PROXY_SECRET, &format!("{ENV_SIGNED_PROXY_SECRET}_FILE")]
        .iter()
        .any(|v| (r.env)(v).is_some());
    if table.is_none() && !env_given {
        return None;
    }
    let mut s = Section::new("signed_proxy", table);
    let secret = read_secret(r, &mut s, "secret", ENV_SIGNED_PROXY_SECRET);
    let previous = read_secret(r, &mut s, "previous_secret", "AUTHGATE_SIGNED_PROXY_PREVIOUS_SECRET");
    let site_ids = s.strings(r, "site_ids").unwrap_or_default();
    let site_urls = s.strings(r, "site_urls").unwrap_or_default();
    let deploy_contexts = s.strings(r, "deploy_contexts").unwrap_or_default();
    let leeway = s.parsed(r, "leeway", None, None, parse_duration).unwrap_or(DEFAULT_LEEWAY);
    if leeway > MAX_LEEWAY {
        r.errors.push("signed_proxy.leeway must be at most 300s".into());
    }
    let max_lifetime =
        s.parsed(r, "max_lifetime", None, None, parse_duration).unwrap_or(Duration::from_secs(330));
    if max_lifetime.is_zero() || max_lifetime > Duration::from_secs(3600) {
        r.errors.push("signed_proxy.max_lifetime must be between 1s and 1h".into());
    }
    let replay_protection = s.boolean(r, "replay_protection").unwrap_or(false);
    let replay_cache_max_entries = s
        .parsed(r, "replay_cache_max_entries", None, None, |v| {
            parse_bounded(v, 1, 10_000_000).map(|n| n as u64)
        })
        .unwrap_or(100_000);
    s.finish(r);
    let previous_secret = previous.ok()?;
    let Some(secret) = secret.ok()? else {
        r.errors.push(format!(
            "[signed_proxy] needs a secret (secret, secret_file or {ENV_SIGNED_PROXY_SECRET}[_FILE])"
        ));
        return None;
    };
    Some(SignedProxyConfig {
        secret,
        previous_secret,
        site_ids,
        site_urls,
        deploy_contexts,
        leeway,
        max_lifetime,
        replay_protection,
        replay_cache_max_entries,
    })
}

fn read_hs256_settings(r: &mut Reader<'_>, s: &mut Section<'_>, name: &str) -> Option<Hs256Settings> {
    let env = format!("{ENV_ISSUER_PREFIX}{}", issuer_env_name(name));
    let secret = read_secret(r, s, "secret", &format!("{env}_SECRET"));
    let previous_secret = read_secret(r, s, "previous_secret", &format!("{env}_PREVIOUS_SECRET"));
    let allow_system_principal = s.boolean(r, "allow_system_principal").unwrap_or(false);
    let previous_secret = previous_secret.ok()?;
    let Some(secret) = secret.ok()? else {
        r.errors
            .push(format!("{}: a secret is required (secret, secret_file or {env}_SECRET[_FILE])", s.label));
        return None;
    };
    Some(Hs256Settings { secret, previous_secret, allow_system_principal })
}

/// `iss` is the discovery base when no key location is given.
fn read_jwks_settings(r: &mut Reader<'_>, s: &mut Section<'_>, iss: Option<&str>) -> Option<JwksSettings> {
    use crate::keyset::JwsAlg;
    let label = s.label.clone();
    let url = s.parsed(r, "jwks_url", None, None, |v| parse_upstream_url(v).map(|u| u.to_string()));
    let file = s.parsed(r, "jwks_file", None, None, |v| Ok(PathBuf::from(v)));
    let pems = s.strings(r, "public_key_files");
    let algorithms: Vec<JwsAlg> = s
        .strings(r, "algorithms")
        .unwrap_or_else(|| vec!["RS256".into(), "ES256".into(), "EdDSA".into()])
        .iter()
        .filter_map(|a| {
            JwsAlg::parse(a)
                .ok_or_else(|| {
                    r.errors.push(format!(
                        "{label}.algorithms: `{a}` is not accepted (RS256, PS256, ES256, EdDSA; never HS*)"
                    ))
                })
                .ok()
        })
        .collect();
    if algorithms.is_empty() {
        r.errors.push(format!("{label}.algorithms must name at least one algorithm"));
    }
    let d = |r: &mut Reader<'_>, s: &mut Section<'_>, key: &str, default: u64| {
        s.parsed(r, key, None, None, parse_duration).unwrap_or(Duration::from_secs(default))
    };
    let fetch_timeout = d(r, s, "fetch_timeout", 5);
    let min_refresh_interval = d(r, s, "min_refresh_interval", 60);
    let max_refresh_interval = d(r, s, "max_refresh_interval", 3600);
    let refetch_cooldown = d(r, s, "refetch_cooldown", 30);
    let max_staleness = d(r, s, "max_staleness", 24 * 3600);
    if fetch_timeout.is_zero() {
        r.errors.push(format!("{label}.fetch_timeout must be above zero"));
    }
    if min_refresh_interval < Duration::from_secs(1) || min_refresh_interval > max_refresh_interval {
        r.errors.push(format!("{label}: need 1s <= min_refresh_interval <= max_refresh_interval"));
    }
    if max_staleness <= max_refresh_interval && max_staleness < min_refresh_interval * 2 {
        r.errors.push(format!("{label}.max_staleness must leave room for at least two refreshes"));
    }
    let max_response_bytes = s
        .parsed(r, "max_response_bytes", None, None, |v| parse_bounded(v, 1024, 16 << 20))
        .unwrap_or(256 << 10);
    let required = s.boolean(r, "required").unwrap_or(true);
    let allow_anonymous = s.boolean(r, "allow_anonymous").unwrap_or(true);
    let require_claims = match s.get("require_claims") {
        None => Vec::new(),
        Some(Value::Table(t)) if t.values().all(Value::is_str) => {
            t.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect()
        }
        Some(_) => {
            r.errors.push(format!("{label}.require_claims must be a table of strings"));
            Vec::new()
        }
    };
    r.files.extend(file.clone());
    let source = match (url, file, pems) {
        (None, None, None) => {
            // A missing `iss` is reported by read_issuer.
            let base = iss.unwrap_or_default();
            if let (false, Err(e)) = (base.is_empty(), parse_upstream_url(base)) {
                r.errors.push(format!("{label}.iss (used for discovery): {e}"));
            }
            KeySource::Discovery(base.to_string())
        }
        (Some(u), None, None) => KeySource::Url(u),
        (None, Some(path), None) => match std::fs::read_to_string(&path) {
            Ok(text) => match crate::keyset::KeySet::from_jwks(text.as_bytes(), &algorithms) {
                Ok((set, _)) if !set.is_empty() => KeySource::JwksDocument(text),
                Ok(_) => {
                    r.errors.push(format!("{label}.jwks_file {}: no usable key", path.display()));
                    return None;
                }
                Err(e) => {
                    r.errors.push(format!("{label}.jwks_file {}: {e}", path.display()));
                    return None;
                }
            },
            Err(e) => {
                r.errors.push(format!("{label}.jwks_file: cannot read {}: {e}", path.display()));
                return None;
            }
        },
        (None, None, Some(paths)) => {
            let mut pems = Vec::new();
            for p in paths.iter().map(PathBuf::from) {
                let kid = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
                r.files.push(p.clone());
                match std::fs::read_to_string(&p) {
                    Ok(text) => pems.push((kid, text)),
                    Err(e) => {
                        r.errors.push(format!("{label}.public_key_files: cannot read {}: {e}", p.display()))
                    }
                }
            }
            if let Err(e) = crate::keyset::KeySet::from_pems(&pems, &algorithms) {
                r.errors.push(format!("{label}.public_key_files: {e}"));
            }
            KeySource::Pems(pems)
        }
        _ => {
            r.errors.push(format!(
                "{label}: set one of jwks_url, jwks_file, public_key_files (or none, for discovery)"
            ));
            return None;
        }
    };
    Some(JwksSettings {
        source,
        algorithms,
        required,
        fetch_timeout,
        min_refresh_interval,
        max_refresh_interval,
        refetch_cooldown,
        max_staleness,
        max_response_bytes,
        require_claims,
        allow_anonymous,
    })
}

fn read_identity_settings(r: &mut Reader<'_>, s: &mut Section<'_>) -> Option<IdentitySettings> {
    let site = s.parsed(r, "site_url", None, None, |v| parse_upstream_url(v).map(|u| (u, true)));
    let base = s.parsed(r, "identity_url", None, None, |v| parse_upstream_url(v).map(|u| (u, false)));
    let seconds = |r: &mut Reader<'_>, s: &mut Section<'_>, key: &str, default: u64| {
        s.parsed(r, key, None, None, parse_duration).unwrap_or(Duration::from_secs(default))
    };
    let connect_timeout = seconds(r, s, "connect_timeout", 2);
    let timeout = seconds(r, s, "timeout", 5);
    let queue_timeout = seconds(r, s, "queue_timeout", 1);
    let cache_ttl = seconds(r, s, "cache_ttl", 120);
    let negative_cache_ttl = seconds(r, s, "negative_cache_ttl", 10);
    let max_concurrent_requests =
        s.parsed(r, "max_concurrent_requests", None, None, |v| parse_bounded(v, 1, 10_000)).unwrap_or(32);
    let per_client = s.parsed(r, "max_concurrent_per_client", None, None, |v| parse_bounded(v, 1, 10_000));
    if per_client.is_some_and(|n| n > max_concurrent_requests) {
        r.errors.push(format!("{}: max_concurrent_per_client is above max_concurrent_requests", s.label));
    }
    let max_concurrent_per_client = per_client.unwrap_or(8).min(max_concurrent_requests);
    let cache_max_entries = s
        .parsed(r, "cache_max_entries", None, None, |v| parse_bounded(v, 0, 10_000_000).map(|n| n as u64))
        .unwrap_or(10_000);
    let cache_max_bytes = s
        .parsed(r, "cache_max_bytes", None, None, |v| parse_bounded(v, 0, 1 << 34).map(|n| n as u64))
        .unwrap_or(16 << 20);
    let max_response_bytes = s
        .parsed(r, "max_response_bytes", None, None, |v| parse_bounded(v, 1024, 16 << 20))
        .unwrap_or(64 << 10);
    if timeout.is_zero() || connect_timeout.is_zero() {
        r.errors.push(format!("{}: timeouts must be above zero", s.label));
    }
    let identity_url = match (site, base) {
        (Some(_), Some(_)) => {
            r.errors.push(format!("{}: set site_url or identity_url, not both", s.label));
            return None;
        }
        (None, None) => {
            // A URL that was given but refused has its own error already.
            let given = s.table.is_some_and(|t| t.contains_key("site_url") || t.contains_key("identity_url"));
            if !given {
                r.errors.push(format!("{}: netlify_identity needs site_url (or identity_url)", s.label));
            }
            return None;
        }
        (Some((url, _)), None) => format!("{}/.netlify/identity", url.trim_end_matches('/')),
        (None, Some((url, _))) => url.trim_end_matches('/').to_string(),
    };
    Some(IdentitySettings {
        identity_url,
        connect_timeout,
        timeout,
        max_concurrent_requests,
        max_concurrent_per_client,
        queue_timeout,
        cache_ttl,
        negative_cache_ttl,
        cache_max_entries,
        cache_max_bytes,
        max_response_bytes,
    })
}

/// An upstream base URL: `https`, or `http` to a loopback host only (the
/// user's token travels in the request).
/// The upstream URL rule (https, or http to loopback only; no query,
/// fragment or credentials), for URLs learnt at run time (`jwks_uri`).
pub fn check_upstream_url(v: &str) -> Result<String, String> {
    parse_upstream_url(v)
}

fn parse_upstream_url(v: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(v).map_err(|e| format!("not a URL: {e}"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err("must be https (http only to a loopback host): tokens travel in this request".into());
        }
        _ => return Err("must be an https URL".into()),
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err("must not carry a query, fragment or credentials".into());
    }
    Ok(url.as_str().to_string())
}

/// A secret from (highest first) `<ENV>`, `<ENV>_FILE`, `key`, `key_file`.
/// Setting both a value and a file at the same level is an error; so is a
/// secret shorter than [`MIN_SECRET_BYTES`]. A file's trailing newline is
/// dropped (Kubernetes Secrets made with `echo` carry one).
/// `Err(())` means a source was given but unusable (already reported).
fn read_secret(r: &mut Reader<'_>, s: &mut Section<'_>, key: &str, env: &str) -> Result<Option<Secret>, ()> {
    let env_file = format!("{env}_FILE");
    let key_file = format!("{key}_file");
    let from_env = (r.env)(env);
    let from_env_file = (r.env)(&env_file);
    let inline = s.parsed(r, key, None, None, |v| Ok(v.to_string()));
    let file = s.parsed(r, &key_file, None, None, |v| Ok(PathBuf::from(v)));
    let label = s.label.clone();
    let (origin, value) = match (from_env, from_env_file, inline, file) {
        (Some(_), Some(_), _, _) => {
            r.errors.push(format!("{label}: both {env} and {env_file} are set"));
            return Err(());
        }
        (Some(v), None, _, _) => (env.to_string(), Ok(v.into_bytes())),
        (None, Some(p), _, _) => {
            r.files.push(PathBuf::from(&p));
            (env_file.clone(), read_secret_file(Path::new(&p)))
        }
        (None, None, Some(_), Some(_)) => {
            r.errors.push(format!("{label}: set {key} or {key_file}, not both"));
            return Err(());
        }
        (None, None, Some(v), None) => (key.to_string(), Ok(v.into_bytes())),
        (None, None, None, Some(p)) => {
            r.files.push(p.clone());
            (key_file.clone(), read_secret_file(&p))
        }
        (None, None, None, None) => return Ok(None),
    };
    match value {
        Err(e) => {
            r.errors.push(format!("{label}: {origin}: {e}"));
            Err(())
        }
        Ok(bytes) if bytes.len() < MIN_SECRET_BYTES => {
            r.errors.push(format!("{label}: {origin} is shorter than {MIN_SECRET_BYTES} bytes"));
            Err(())
        }
        Ok(bytes) => Ok(Some(Secret::new(bytes))),
    }
}

fn read_secret_file(path: &Path) -> Result<Vec<u8>, String> {
    let mut bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    while matches!(bytes.last(), Some(b'\n' | b'\r')) {
        bytes.pop();
    }
    Ok(bytes)
}

fn check_issuers(r: &mut Reader<'_>, issuers: &[IssuerConfig]) {
    let mut names = BTreeSet::new();
    let mut isses = BTreeSet::new();
    for i in issuers {
        if !names.insert(i.name.as_str()) {
            r.errors.push(format!("issuer name `{}` is used twice", i.name));
        }
        if let Some(iss) = &i.expected_iss
            && !isses.insert(iss.as_str())
        {
            r.errors.push(format!("two issuers expect the same iss `{iss}`: routing would be ambiguous"));
        }
    }
    if issuers.iter().filter(|i| i.default).count() > 1 {
        r.errors.push("more than one issuer has default = true".into());
    }
}

/// The zero-config issuer: GoTrue-shaped HS256, secret from
/// `AUTHGATE_DEV_SECRET`, else `.authgate/dev-secret` (created once).
fn dev_issuer(inputs: &Inputs<'_>) -> Result<(IssuerConfig, String), String> {
    let (secret, origin) = dev_secret(inputs)?;
    let issuer = IssuerConfig {
        name: DEV_ISSUER.to_string(),
        kind: IssuerKind::Hs256(Hs256Settings {
            secret,
            previous_secret: None,
            allow_system_principal: false,
        }),
        leeway: DEFAULT_LEEWAY,
        audiences: Vec::new(),
        expected_iss: None,
        // infallible: the default paths are valid (tested in claims).
        role_claims: DEFAULT_ROLE_CLAIMS.iter().filter_map(|p| ClaimPath::parse(p).ok()).collect(),
        default: true,
        require_signed_proxy: false,
    };
    Ok((issuer, origin))
}

/// The dev secret and where it came from; generates and stores one (mode
/// 0600) on first use so that `authgate token` and the server agree.
pub fn dev_secret(inputs: &Inputs<'_>) -> Result<(Secret, String), String> {
    if let Some(v) = (inputs.env)(ENV_DEV_SECRET) {
        if v.len() < MIN_SECRET_BYTES {
            return Err(format!("{ENV_DEV_SECRET} is shorter than {MIN_SECRET_BYTES} bytes"));
        }
        return Ok((Secret::new(v.into_bytes()), ENV_DEV_SECRET.to_string()));
    }
    let path = inputs.workdir.join(DEV_SECRET_PATH);
    let origin = path.display().to_string();
    if path.exists() {
        let bytes = read_secret_file(&path)?;
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(format!("{origin} is shorter than {MIN_SECRET_BYTES} bytes"));
        }
        return Ok((Secret::new(bytes), origin));
    }
    use base64::Engine;
    let raw: [u8; 32] = rand::random();
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    write_private(&path, text.as_bytes()).map_err(|e| format!("cannot create {origin}: {e}"))?;
    Ok((Secret::new(text.into_bytes()), origin))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(bytes)
}

/// Collects errors while reading.
struct Reader<'a> {
    errors: Vec<String>,
    env: &'a dyn Fn(&str) -> Option<String>,
    /// Every file read (config, secrets, keys), for `watch_interval`.
    files: Vec<PathBuf>,
}

/// One TOML table being read; remembers which keys were used so that
/// unknown keys (typos) are reported.
struct Section<'t> {
    label: String,
    table: Option<&'t Table>,
    used: BTreeSet<String>,
}

impl<'t> Section<'t> {
    fn new(label: &str, table: Option<&'t Table>) -> Self {
        Self { label: label.to_string(), table, used: BTreeSet::new() }
    }

    fn key(&self, key: &str) -> String {
        if self.label.is_empty() { key.to_string() } else { format!("{}.{key}", self.label) }
    }

    fn get(&mut self, key: &str) -> Option<&'t Value> {
        self.used.insert(key.to_string());
        self.table.and_then(|t| t.get(key))
    }

    fn table(&mut self, r: &mut Reader<'_>, key: &str) -> Option<&'t Table> {
        match self.get(key) {
            None => None,
            Some(Value::Table(t)) => Some(t),
            Some(_) => {
                r.errors.push(format!("{} must be a table", self.key(key)));
                None
            }
        }
    }

    fn array_of_tables(&mut self, r: &mut Reader<'_>, key: &str) -> Vec<&'t Table> {
        match self.get(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| match v {
                    Value::Table(t) => Some(t),
                    _ => {
                        r.errors.push(format!("{} must be an array of tables ([[{key}]])", self.key(key)));
                        None
                    }
                })
                .collect(),
            Some(_) => {
                r.errors.push(format!("{} must be an array of tables ([[{key}]])", self.key(key)));
                Vec::new()
            }
        }
    }

    /// A scalar given as a flag, an env var or a TOML string/integer,
    /// parsed by `parse`; errors name the origin.
    fn parsed<T>(
        &mut self,
        r: &mut Reader<'_>,
        key: &str,
        env: Option<&str>,
        flag: Option<&str>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let from_toml = self.get(key);
        let full = self.key(key);
        let (origin, text) = if let Some(f) = flag {
            (format!("{full} (from flag)"), f.to_string())
        } else if let Some((var, v)) = env.and_then(|var| (r.env)(var).map(|v| (var, v))) {
            (format!("{full} (from {var})"), v)
        } else {
            match from_toml {
                None => return None,
                Some(Value::String(s)) => (full, s.clone()),
                Some(Value::Integer(i)) => (full, i.to_string()),
                Some(Value::Float(f)) => (full, f.to_string()),
                Some(other) => {
                    r.errors.push(format!(
                        "{full} has the wrong type: expected a string or a number, found {}",
                        other.type_str()
                    ));
                    return None;
                }
            }
        };
        parse(&text).map_err(|e| r.errors.push(format!("{origin}: {e}"))).ok()
    }

    fn boolean(&mut self, r: &mut Reader<'_>, key: &str) -> Option<bool> {
        match self.get(key) {
            None => None,
            Some(Value::Boolean(b)) => Some(*b),
            Some(_) => {
                r.errors.push(format!("{} must be true or false", self.key(key)));
                None
            }
        }
    }

    fn strings(&mut self, r: &mut Reader<'_>, key: &str) -> Option<Vec<String>> {
        match self.get(key) {
            None => None,
            Some(Value::Array(items)) if items.iter().all(Value::is_str) => {
                Some(items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            }
            Some(_) => {
                r.errors.push(format!("{} must be an array of strings", self.key(key)));
                None
            }
        }
    }

    fn finish(self, r: &mut Reader<'_>) {
        let Some(t) = self.table else { return };
        for k in t.keys().filter(|k| !self.used.contains(*k)) {
            let hint = match source::closest(k, self.used.iter().map(String::as_str)) {
                Some(known) => format!(" (did you mean `{known}`?)"),
                None => String::new(),
            };
            r.errors.push(format!("unknown key `{}`{hint}", self.key(k)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authgate.toml");
        std::fs::write(&path, toml).unwrap();
        let env: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lookup = move |k: &str| env.get(k).cloned();
        Config::load(&Inputs {
            config_path: Some(path),
            grpc_addr: None,
            http_addr: None,
            env: &lookup,
            workdir: dir.path().to_path_buf(),
        })
    }

    const GOOD: &str = r#"
        [[issuers]]
        name = "netlify"
        secret = "0123456789abcdef0123"
    "#;

    #[test]
    fn defaults() {
        let c = load(GOOD, &[]).unwrap();
        assert_eq!(c.grpc_addr.to_string(), "127.0.0.1:50051");
        assert_eq!(c.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(c.max_token_bytes, 16384);
        let i = &c.issuers[0];
        assert_eq!(i.leeway, Duration::from_secs(30));
        assert_eq!(i.role_claims.len(), 2);
        assert!(matches!(&i.kind, IssuerKind::Hs256(h) if !h.allow_system_principal));
    }

    #[test]
    fn env_overrides_file_and_secret_from_file() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("s");
        std::fs::write(&secret, "from-a-mounted-secret-file\n").unwrap();
        let c = load(
            GOOD,
            &[
                ("AUTHGATE_GRPC_ADDR", "127.0.0.1:6000"),
                ("AUTHGATE_ISSUER_NETLIFY_SECRET_FILE", secret.to_str().unwrap()),
            ],
        )
        .unwrap();
        assert_eq!(c.grpc_addr.port(), 6000);
        assert_eq!(c.issuers[0].signing_secret().unwrap().expose(), b"from-a-mounted-secret-file");
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let errs = load(
            r#"
            [server]
            grpc_addr = "nowhere"
            max_token_bytes = 5
            shutdown_grace = "soon"
            typo = 1
            [log]
            format = "xml"
            [[issuers]]
            name = "A B"
            secret = "short"
            leeway = "10m"
            role_claims = ["user_metadata.roles"]
            [[issuers]]
            secret = "0123456789abcdef0123"
            "#,
            &[],
        )
        .unwrap_err();
        let text = errs.to_string();
        for needle in [
            "server.grpc_addr",
            "server.max_token_bytes",
            "server.shutdown_grace",
            "unknown key `server.typo`",
            "log.format",
            "name must match",
            "shorter than 16 bytes",
            "leeway must be at most 300s",
            "user_metadata",
            "issuers[1].name is required",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
        assert!(errs.0.len() >= 10, "{text}");
        assert!(!text.contains("short\""), "a secret value leaked into errors:\n{text}");
    }

    #[test]
    fn jwks_issuer_rules() {
        let errs = load(
            r#"
            [[issuers]]
            name = "a"
            kind = "jwks"
            algorithms = ["HS256", "none"]
            jwks_url = "https://idp.example.com/jwks"
            jwks_file = "/nonexistent"
            [[issuers]]
            name = "c"
            kind = "jwks"
            iss = "https://idp.example.com/"
            audiences = ["api"]
            jwks_url = "http://idp.example.com/jwks"
            [[issuers]]
            name = "b"
            kind = "jwks"
            iss = "http://idp.example.com/"
            audiences = ["api"]
            min_refresh_interval = "2h"
            require_claims = { role = 1 }
            "#,
            &[],
        )
        .unwrap_err()
        .to_string();
        for needle in [
            "issuers[0] (a).iss is required",
            "issuers[0] (a).audiences is required",
            "`HS256` is not accepted",
            "`none` is not accepted",
            "issuers[1] (c).jwks_url: must be https",
            "set one of jwks_url, jwks_file, public_key_files",
            "issuers[2] (b).iss (used for discovery): must be https",
            "min_refresh_interval <= max_refresh_interval",
            "require_claims must be a table of strings",
        ] {
            assert!(errs.contains(needle), "missing {needle:?} in:\n{errs}");
        }
        let ok = load(
            "[[issuers]]\nname = \"auth0\"\nkind = \"jwks\"\niss = \"https://t.auth0.com/\"\naudiences = [\"api\"]\n",
            &[],
        )
        .unwrap();
        let IssuerKind::Jwks(j) = &ok.issuers[0].kind else { panic!("not jwks") };
        assert_eq!(j.source, KeySource::Discovery("https://t.auth0.com/".into()));
        assert_eq!(j.refetch_cooldown, Duration::from_secs(30));
        assert_eq!(
            ok.issuers[0].role_claims.iter().map(ClaimPath::as_dotted).collect::<Vec<_>>(),
            ["roles", "permissions", "scope"]
        );
        assert!(ok.render_redacted().contains("kind = \"jwks\""));
    }

    #[test]
    fn tracing_section_and_standard_variables() {
        let off = load(GOOD, &[]).unwrap();
        assert!(!off.tracing.enabled, "tracing is off by default");
        let by_env = load(GOOD, &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")]).unwrap();
        assert!(
            by_env.tracing.enabled && by_env.tracing.otlp_endpoint.is_none(),
            "the SDK reads the variable"
        );
        let json =
            load(GOOD, &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"), ("OTEL_SERVICE_NAME", "edge-auth")])
                .unwrap();
        assert_eq!(
            (json.tracing.protocol, json.tracing.service_name.as_str()),
            (OtlpProtocol::HttpJson, "edge-auth")
        );
        let errs = load(
            &format!(
                "[tracing]\notlp_endpoint = \"ftp://x\"\nprotocol = \"grpc\"\nsample_ratio = 2.5\n{GOOD}"
            ),
            &[],
        )
        .unwrap_err()
        .to_string();
        for needle in ["tracing.otlp_endpoint", "gRPC export is not built in", "tracing.sample_ratio"] {
            assert!(errs.contains(needle), "missing {needle:?} in:\n{errs}");
        }
        let on =
            load(&format!("[tracing]\notlp_endpoint = \"http://c:4318/\"\nsample_ratio = 0.25\n{GOOD}"), &[])
                .unwrap();
        assert_eq!(on.tracing.otlp_endpoint.as_deref(), Some("http://c:4318"));
        assert_eq!(on.tracing.sample_ratio, 0.25);
    }

    #[test]
    fn edge_section_errors() {
        let base = "[[issuers]]\nname = \"a\"\nsecret = \"0123456789abcdef0123\"\n";
        let errs = load(
            &format!(
                "[edge]\nissuer = \"nope\"\nsigned_proxy = \"required\"\nexchange_audience = \"x\"\n\
                 subject_header = \"authorization\"\nemail_header = \"bad header\"\n\
                 roles_header = \"x-authgate-issuer\"\ncolour = 1\n\
                 [edge.routes.Admin]\nroles = [\"admin\"]\n[edge.routes.ok]\nsigned_proxy = \"Required\"\nrole = \"x\"\n{base}"
            ),
            &[],
        )
        .unwrap_err()
        .to_string();
        for needle in [
            "edge.issuer `nope`",
            "no [signed_proxy] secret",
            "edge.exchange_audience `x`",
            "edge.subject_header `authorization`",
            "edge.email_header `bad header`",
            "must differ",
            "unknown key `edge.colour`",
            "edge.routes.Admin: a route name",
            "edge.routes.ok.signed_proxy: must be `required` or `optional`",
            "unknown key `edge.routes.ok.role`",
        ] {
            assert!(errs.contains(needle), "missing {needle:?} in:\n{errs}");
        }
        let ok = load(
            &format!("[edge]\nissuer = \"a\"\nroles = [\"admin\"]\nsubject_header = \"X-User\"\n{base}"),
            &[],
        )
        .unwrap();
        assert_eq!(
            (ok.edge.default.issuer.as_deref(), ok.edge.headers.subject.as_str()),
            (Some("a"), "x-user")
        );
        assert_eq!(ok.edge.default.remove_headers, ["authorization"]);
        let routed = load(
            &format!("[edge]\nroles = [\"member\"]\nissuer = \"a\"\n[edge.routes.admin]\nroles = [\"admin\"]\n{base}"),
            &[],
        )
        .unwrap();
        let admin = &routed.edge.routes["admin"];
        assert_eq!(
            (admin.roles.as_slice(), admin.issuer.as_deref()),
            (&["admin".to_string()][..], Some("a"))
        );
    }

    #[test]
    fn log_filters() {
        for (description, level, ok) in [
            ("a level", "debug", true),
            ("a level in capitals", "WARN", true),
            ("directives", "warn,authgate::app=info", true),
            ("a word that is no level", "verbose", false),
            ("a misspelt level among directives", "warn,inf", false),
        ] {
            let got = load(&format!("[log]\nlevel = \"{level}\"\n{GOOD}"), &[]);
            assert_eq!(got.is_ok(), ok, "{description}: {got:?}");
        }
        let env = load(GOOD, &[("AUTHGATE_LOG_LEVEL", "verbose")]).unwrap_err().to_string();
        assert!(env.contains("AUTHGATE_LOG_LEVEL") && env.contains("`verbose` is not a level"), "{env}");
    }

    #[test]
    fn signed_proxy_section() {
        let needs = GOOD.replace("secret = ", "require_signed_proxy = true\nsecret = ");
        let errs = load(&needs, &[]).unwrap_err().to_string();
        assert!(errs.contains("no [signed_proxy] secret"), "{errs}");
        let c = load(&needs, &[("AUTHGATE_SIGNED_PROXY_SECRET", "proxy-secret-from-env-0123")]).unwrap();
        let p = c.signed_proxy.expect("configured by the env variable alone");
        assert_eq!(p.max_lifetime, Duration::from_secs(330));
        assert!(!p.replay_protection);
        let errs =
            load(&format!("[signed_proxy]\nmax_lifetime = \"2h\"\nsite_idz = []\n{GOOD}"), &[]).unwrap_err();
        let text = errs.to_string();
        for needle in ["max_lifetime", "unknown key `signed_proxy.site_idz`", "needs a secret"] {
            assert!(text.contains(needle), "missing {needle}: {text}");
        }
    }

    #[test]
    fn no_issuer_is_invented_with_a_file() {
        let errs = load("", &[]).unwrap_err();
        assert!(errs.to_string().contains("no [[issuers]]"));
    }

    #[test]
    fn redacted_render_has_no_secret() {
        let c =
            load(GOOD, &[("AUTHGATE_ISSUER_NETLIFY_PREVIOUS_SECRET", "previous-secret-value-xyz")]).unwrap();
        let out = c.render_redacted();
        assert!(!out.contains("0123456789abcdef0123") && !out.contains("previous-secret-value-xyz"), "{out}");
        assert!(out.contains("[redacted: 20 bytes]"), "{out}");
        assert!(!format!("{c:?}").contains("0123456789abcdef0123"));
        out.parse::<Table>().expect("rendered config is TOML");
    }

    #[test]
    fn dev_mode_creates_and_reuses_its_secret() {
        let dir = tempfile::tempdir().unwrap();
        let no_env = |_: &str| None;
        let inputs = Inputs {
            config_path: None,
            grpc_addr: None,
            http_addr: None,
            env: &no_env,
            workdir: dir.path().to_path_buf(),
        };
        let a = Config::load(&inputs).unwrap();
        let b = Config::load(&inputs).unwrap();
        assert_eq!(a.issuers[0].name, "dev");
        assert_eq!(a.issuers[0].signing_secret(), b.issuers[0].signing_secret());
        let meta = std::fs::metadata(dir.path().join(DEV_SECRET_PATH)).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
}
