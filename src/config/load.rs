//! [`Config::load`]: one pass over file, environment and flags.

use super::callers::{read_access, read_callers};
use super::dev::{dev_exchange, dev_issuer};
use super::edge::read_edge;
use super::exchange::read_exchange;
use super::issuers::{check_issuers, read_issuer};
use super::limits::read_limits;
use super::proxy::read_signed_proxy;
use super::read::{Reader, Section, parse_addr, parse_bounded, parse_duration, parse_log_filter};
use super::store::read_store;
use super::tls::{check_plaintext, read_tls};
use super::traces::read_tracing;
use super::*;
use toml::Table;

impl Config {
    /// Loads, overrides and validates in one pass.
    pub fn load(inputs: &Inputs<'_>) -> Result<Config, ConfigErrors> {
        let path = inputs.config_path.clone().or_else(|| (inputs.env)(ENV_CONFIG).map(PathBuf::from));
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
        let mut r = Reader::new(inputs.env, inputs.offline);
        r.files.extend(path.clone());
        match Self::read(&mut r, &root, mode, inputs) {
            Some(config) if r.errors.is_empty() => Ok(config),
            _ => Err(ConfigErrors(match &locations {
                Some(l) => r.errors.into_iter().map(|e| l.locate(e)).collect(),
                None => r.errors,
            })),
        }
    }

    /// Reads a parsed document; `None` or errors in `r` when invalid.
    pub(super) fn read(r: &mut Reader<'_>, root: &Table, mode: Mode, inputs: &Inputs<'_>) -> Option<Config> {
        let mut top = Section::new("", Some(root));
        let server = top.table(r, "server");
        let log = top.table(r, "log");
        let cache = top.table(r, "cache");
        let signed_proxy = top.table(r, "signed_proxy");
        let exchange = top.table(r, "exchange");
        let edge = top.table(r, "edge");
        let tracing = top.table(r, "tracing");
        let tls = top.table(r, "tls");
        let store = top.table(r, "store");
        let callers_raw = top.array_of_tables(r, "callers");
        let caller_issuers_raw = top.array_of_tables(r, "caller_issuers");
        let access = top.table(r, "access");
        let issuers_raw = top.array_of_tables(r, "issuers");
        top.finish(r);

        let mut s = Section::new("server", server);
        let grpc_addr = s
            .parsed(r, "grpc_addr", Some(ENV_GRPC_ADDR), inputs.grpc_addr.as_deref(), parse_addr)
            .unwrap_or(DEFAULT_GRPC_ADDR);
        let http_addr = s
            .parsed(r, "http_addr", Some(ENV_HTTP_ADDR), inputs.http_addr.as_deref(), parse_addr)
            .unwrap_or(DEFAULT_HTTP_ADDR);
        let max_token_bytes = s
            .parsed(r, "max_token_bytes", Some(ENV_MAX_TOKEN_BYTES), None, |v| {
                parse_bounded(v, 1024, 1024 * 1024)
            })
            .unwrap_or(DEFAULT_MAX_TOKEN_BYTES);
        let max_message_bytes = s
            .parsed(r, "max_message_bytes", None, None, |v| parse_bounded(v, 4096, 4 * 1024 * 1024))
            .unwrap_or(DEFAULT_MAX_MESSAGE_BYTES);
        let max_check_request_bytes = s
            .parsed(r, "max_check_request_bytes", None, None, |v| parse_bounded(v, 4096, 4 * 1024 * 1024))
            .unwrap_or(128 * 1024);
        let shutdown_grace = s
            .parsed(r, "shutdown_grace", Some(ENV_SHUTDOWN_GRACE), None, parse_duration)
            .unwrap_or(DEFAULT_SHUTDOWN_GRACE);
        let drain_delay =
            s.parsed(r, "drain_delay", Some(ENV_DRAIN_DELAY), None, parse_duration).unwrap_or_default();
        let decision_deadline =
            s.parsed(r, "decision_deadline", None, None, parse_duration).unwrap_or(Duration::from_secs(2));
        if decision_deadline.is_zero() {
            r.errors.push("server.decision_deadline must be above zero".into());
        }
        let watch_interval =
            s.parsed(r, "watch_interval", None, None, parse_duration).unwrap_or(Duration::ZERO);
        if !watch_interval.is_zero() && watch_interval < Duration::from_millis(100) {
            r.errors.push("server.watch_interval must be 0 (off) or at least 100ms".into());
        }
        let webhook_addr = s.parsed(r, "webhook_addr", None, None, parse_addr);
        let limits = read_limits(r, &mut s);
        let trust_forwarded_client_cert = s.boolean(r, "trust_forwarded_client_cert").unwrap_or(false);
        let plaintext = s
            .parsed(r, "plaintext", Some(ENV_PLAINTEXT), None, Plaintext::parse)
            .unwrap_or(Plaintext::Loopback);
        let trusted_proxy_hops =
            s.parsed(r, "trusted_proxy_hops", None, None, |v| parse_bounded(v, 0, 10)).unwrap_or(1);
        if limits.request_timeout < decision_deadline {
            r.errors.push("server.request_timeout must not be shorter than server.decision_deadline".into());
        }
        s.finish(r);
        if grpc_addr == http_addr && grpc_addr.port() != 0 {
            r.errors.push(format!("server.grpc_addr and server.http_addr are both {grpc_addr}"));
        }
        if max_message_bytes < max_token_bytes {
            r.errors.push(format!(
                "server.max_message_bytes ({max_message_bytes}) is smaller than server.max_token_bytes ({max_token_bytes})"
            ));
        }

        let tls = read_tls(r, tls);
        if trust_forwarded_client_cert && (plaintext != Plaintext::Mesh || tls.is_some()) {
            r.errors.push(
                "server.trust_forwarded_client_cert needs server.plaintext = \"mesh\" and no [tls]: only a mesh \
                 sidecar in front of authgate sets x-forwarded-client-cert; anywhere else a client could write it"
                    .into(),
            );
        }
        check_plaintext(
            r,
            tls.as_ref(),
            plaintext,
            &[
                ("server.grpc_addr", Some(grpc_addr)),
                ("server.http_addr", Some(http_addr)),
                ("server.webhook_addr", webhook_addr),
            ],
        );
        let store = read_store(r, store, &inputs.workdir);

        let mut l = Section::new("log", log);
        let format = l
            .parsed(r, "format", Some(ENV_LOG_FORMAT), None, |v| match v {
                "human" => Ok(LogFormat::Human),
                "json" => Ok(LogFormat::Json),
                _ => Err("must be `human` or `json`".to_string()),
            })
            .unwrap_or(LogFormat::Human);
        let level = l
            .parsed(r, "level", Some(ENV_LOG_LEVEL), None, parse_log_filter)
            .unwrap_or_else(|| "info".to_string());
        let queue_lines = l
            .parsed(r, "queue_lines", None, None, |v| parse_bounded(v, 1024, 1 << 20))
            .unwrap_or(DEFAULT_LOG_QUEUE_LINES);
        l.finish(r);

        let mut c = Section::new("cache", cache);
        let cache = CacheConfig {
            max_entries: c
                .parsed(r, "max_entries", None, None, |v| parse_bounded(v, 0, 10_000_000).map(|n| n as u64))
                .unwrap_or(DEFAULT_CACHE_MAX_ENTRIES),
            max_ttl: c.parsed(r, "max_ttl", None, None, parse_duration).unwrap_or(DEFAULT_CACHE_MAX_TTL),
        };
        c.finish(r);
        let signed_proxy = read_signed_proxy(r, signed_proxy);
        let exchange = match (&mode, exchange) {
            (_, Some(t)) => read_exchange(r, t),
            (Mode::Dev { .. }, None) => dev_exchange(http_addr),
            (Mode::File(_), None) => None,
        };

        let mut issuers = Vec::new();
        let mode = match mode {
            Mode::File(p) => {
                for (i, t) in issuers_raw.iter().enumerate() {
                    if let Some(iss) = read_issuer(r, "issuers", i, t) {
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
        check_issuers(r, &issuers);
        let edge = read_edge(r, edge, &issuers, exchange.as_ref(), signed_proxy.is_some());
        let tracing = read_tracing(r, tracing);
        let callers = read_callers(r, &callers_raw);
        let mut caller_issuers = Vec::new();
        for (i, t) in caller_issuers_raw.iter().enumerate() {
            let Some(iss) = read_issuer(r, "caller_issuers", i, t) else { continue };
            if !matches!(iss.kind, IssuerKind::Jwks(_)) {
                r.errors.push(format!(
                    "caller_issuers[{i}] ({}): kind must be jwks (caller tokens are checked with public keys)",
                    iss.name
                ));
            }
            caller_issuers.push(iss);
        }
        check_issuers(r, &caller_issuers);
        for i in caller_issuers.iter().filter(|i| i.store.reads_store() || i.store.webhook.is_some()) {
            r.errors.push(format!(
                "caller_issuers ({}): roles_source, claims_from_store and webhook settings apply to [[issuers]] only",
                i.name
            ));
        }
        check_store_use(r, &issuers, store.as_ref(), webhook_addr, [grpc_addr, http_addr]);
        let access = read_access(r, access, &callers);
        for a in exchange.iter().flat_map(|e| &e.audiences) {
            for c in a.callers.iter().filter(|c| !callers.iter().any(|k| &k.name == *c)) {
                r.errors.push(format!(
                    "exchange audience `{}` names caller `{c}`, which no [[callers]] entry defines",
                    a.name
                ));
            }
        }
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

        Some(Config {
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
            source_files: r.files.clone(),
            limits,
            trusted_proxy_hops,
            plaintext,
            trust_forwarded_client_cert,
            tls,
            webhook_addr,
            store,
            log: LogConfig { format, level, queue_lines },
            cache,
            signed_proxy,
            exchange,
            edge,
            tracing,
            issuers,
            callers,
            caller_issuers,
            access,
        })
    }
}

/// Issuers that read the store or take webhooks need `[store]`; a webhook
/// needs its listener, and the listener needs a webhook.
fn check_store_use(
    r: &mut Reader<'_>,
    issuers: &[IssuerConfig],
    store: Option<&StoreConfig>,
    webhook_addr: Option<SocketAddr>,
    others: [SocketAddr; 2],
) {
    if store.is_none() {
        for i in issuers.iter().filter(|i| i.store.reads_store() || i.store.webhook.is_some()) {
            r.errors.push(format!(
                "issuer `{}` uses the user store (roles_source = \"{}\", claims_from_store, or a webhook) but no [store] is configured",
                i.name,
                i.store.roles_source.as_str()
            ));
        }
    }
    let hooks = issuers.iter().filter(|i| i.store.webhook.is_some()).count();
    match webhook_addr {
        Some(addr) => {
            if hooks == 0 {
                r.errors.push("server.webhook_addr is set but no issuer has a webhook_secret".into());
            }
            if addr.port() != 0 && others.contains(&addr) {
                r.errors.push(format!("server.webhook_addr {addr} is also another listener's address"));
            }
        }
        None if hooks > 0 => r.errors.push(
            "an issuer has a webhook_secret but server.webhook_addr is not set (the webhook gets its own listener)"
                .into(),
        ),
        None => {}
    }
}
