//! Wiring: builds the core from config, serves gRPC and HTTP, and shuts
//! down honestly (NOT_SERVING first, then drain, then finish in-flight calls).

use crate::adapters::ext_authz::ExtAuthz;
use crate::adapters::grpc::AuthGrpc;
use crate::adapters::http::{Readiness, router};
use crate::adapters::listen::{self, InFlightLayer, PortLimits};
use crate::config::{Config, ConfigErrors};
use crate::gate::live::Live;
use crate::keys::tls::TlsStore;
use crate::obs::metrics::Metrics;
use crate::obs::metrics::{Port, ReloadOutcome};
use crate::pb;
use crate::pb::auth_service_server::AuthServiceServer;
use crate::store::UserStore;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic_health::ServingStatus;

/// The gRPC health service name that means "the process is alive": SERVING
/// from start to shutdown whatever the issuers' state, for liveness probes
/// (a provider outage must make a replica unready, never restart it).
pub const LIVENESS_SERVICE: &str = "liveness";

/// How often readiness is recomputed from the issuers' key state.
const READINESS_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// Largest HTTP/2 header list a gRPC client may send. gRPC metadata is
/// small; this bounds memory per stream against header floods.
const MAX_HEADER_LIST_BYTES: u32 = 64 * 1024;

/// HTTP/2 flow-control windows of the gRPC port: what one stream, and one
/// connection, may send ahead of what the server has read (hyper's default
/// is 1 MiB each). Small requests never wait on them.
const STREAM_WINDOW_BYTES: u32 = 64 * 1024;
const CONNECTION_WINDOW_BYTES: u32 = 256 * 1024;

/// Refused or reset streams one gRPC connection may cause before GOAWAY.
const MAX_RESETS_PER_CONNECTION: usize = 64;

/// The HTTP/2 client preface: a gRPC connection has started its handshake
/// once these bytes arrived.
const H2_PREFACE_BYTES: usize = 24;

/// Memory budgeted for one open connection (measured: 30–42 KiB for a
/// handshaken idle HTTP/2 connection, tests/limits.rs).
const PER_CONNECTION_BYTES: u64 = 64 * 1024;

/// Memory budgeted for one request in flight beyond its announced message:
/// its header block (up to [`MAX_HEADER_LIST_BYTES`]) and decode buffers
/// (tests/limits.rs measures the whole).
const PER_REQUEST_OVERHEAD_BYTES: u64 = 192 * 1024;

/// The most memory clients can make the server hold, with every limit
/// reached: each open connection on both ports, and each request in flight
/// with the largest message it may announce. The README's Security model
/// derives it for the defaults (72 MiB).
pub fn worst_case_memory(config: &Config) -> u64 {
    let l = &config.limits;
    let largest = config.max_message_bytes.max(config.max_check_request_bytes) as u64;
    2 * l.max_connections as u64 * PER_CONNECTION_BYTES
        + l.max_in_flight as u64 * (largest + PER_REQUEST_OVERHEAD_BYTES)
}

/// The two listening sockets, bound before [`run`] so that tests can bind
/// port 0 and read the real addresses.
pub struct Listeners {
    /// gRPC (AuthService, health, reflection).
    pub grpc: TcpListener,
    /// HTTP side port.
    pub http: TcpListener,
    /// The Identity webhook's port (`server.webhook_addr`).
    pub webhook: Option<TcpListener>,
}

impl Listeners {
    /// Binds both addresses from config.
    pub async fn bind(config: &Config) -> std::io::Result<Self> {
        Ok(Self {
            grpc: TcpListener::bind(config.grpc_addr).await?,
            http: TcpListener::bind(config.http_addr).await?,
            webhook: match config.webhook_addr {
                Some(addr) => Some(TcpListener::bind(addr).await?),
                None => None,
            },
        })
    }

    /// The bound webhook address, when there is a webhook port.
    pub fn webhook_addr(&self) -> Option<SocketAddr> {
        self.webhook.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> std::io::Result<SocketAddr> {
        self.grpc.local_addr()
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> std::io::Result<SocketAddr> {
        self.http.local_addr()
    }
}

/// Why the server stopped abnormally.
pub type RunError = Box<dyn std::error::Error + Send + Sync>;

/// How long a reload waits for the new generation's required issuers to
/// have keys before it gives up and keeps the running one.
pub const RELOAD_READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// Live reload: `load` re-reads and validates the whole config (file,
/// environment, secret files) each time a message arrives on `requests`
/// (SIGHUP in the binary).
pub struct Reloader {
    /// Loads the config as at start.
    pub load: Box<dyn Fn() -> Result<Config, ConfigErrors> + Send + Sync>,
    /// One message per reload request.
    pub requests: tokio::sync::mpsc::Receiver<()>,
    /// The sending side of `requests`, for the file watcher
    /// (`server.watch_interval`).
    pub trigger: tokio::sync::mpsc::Sender<()>,
}

/// [`run_with_reload`] without reloads.
pub async fn run(
    listeners: Listeners,
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    run_with_reload(listeners, config, shutdown, None).await
}

/// Serves until `shutdown` resolves, then drains and returns.
///
/// Health (`""`, AuthService, Authorization; and `/readyz`) is NOT_SERVING
/// until the core is built and every required issuer has usable keys,
/// follows the issuers while it runs (keys past their maximum staleness →
/// NOT_SERVING), and is NOT_SERVING from the moment `shutdown` resolves.
/// [`LIVENESS_SERVICE`] is SERVING from start to shutdown. After
/// `drain_delay` the listeners stop accepting; in-flight calls then have
/// `shutdown_grace` to finish before the server is dropped. Each reload
/// request swaps in a generation built from the reloaded config, or keeps
/// the running one and logs every error ([`Live::reload`]).
pub async fn run_with_reload(
    listeners: Listeners,
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
    reloader: Option<Reloader>,
) -> Result<(), RunError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    // tonic-health starts "" as SERVING; nothing is loaded yet.
    set_readiness_services(&reporter, ServingStatus::NotServing).await;

    let metrics = Arc::new(Metrics::new());
    let store = config.store.as_ref().map(|s| UserStore::open(s, metrics.clone())).transpose()?;
    let store_tasks = store.as_ref().map(UserStore::start).unwrap_or_default();
    let live = Arc::new(Live::with_store(config.clone(), metrics, store)?);
    let tls = config.tls.as_ref().map(TlsStore::load).transpose()?.map(Arc::new);
    // Both reflection versions: grpcurl, evans and Postman still ask v1alpha.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(pb::ENVOY_AUTH_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let ext_authz = crate::adapters::envoy_service::AuthorizationService::new(
        ExtAuthz::new(live.clone()),
        config.max_check_request_bytes,
    );
    let admin = pb::admin_service_server::AdminServiceServer::new(crate::adapters::admin::AdminGrpc::new(
        live.clone(),
    ))
    .max_decoding_message_size(config.max_message_bytes);
    let auth = AuthServiceServer::new(AuthGrpc::new(live.clone()))
        .max_decoding_message_size(config.max_message_bytes)
        .max_encoding_message_size(config.max_message_bytes);

    let (stop_tx, stop_rx) = watch::channel(false);
    let grpc_addr = listeners.grpc_addr()?;
    let http_addr = listeners.http_addr()?;
    let webhook_addr = listeners.webhook_addr();
    let limits = &config.limits;
    let port = |port, handshake_bytes| PortLimits {
        port,
        max_connections: limits.max_connections,
        handshake_timeout: limits.handshake_timeout,
        handshake_bytes,
    };
    let grpc = tonic::transport::Server::builder()
        .http2_max_header_list_size(MAX_HEADER_LIST_BYTES)
        .max_concurrent_streams(limits.max_streams_per_connection)
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        .http2_keepalive_interval(Some(limits.keepalive_interval))
        .http2_keepalive_timeout(Some(limits.keepalive_timeout))
        // A client that keeps opening streams past the limit (each refused)
        // or resetting them is cut off with GOAWAY after this many, instead
        // of making the server track thousands of refusals.
        .http2_max_local_error_reset_streams(Some(MAX_RESETS_PER_CONNECTION))
        .http2_max_pending_accept_reset_streams(Some(MAX_RESETS_PER_CONNECTION))
        .timeout(limits.request_timeout)
        .layer(InFlightLayer::new(limits.max_in_flight, live.metrics().clone()))
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(auth)
        .add_service(ext_authz)
        .add_service(admin)
        .serve_with_incoming_shutdown(
            listen::incoming(
                listeners.grpc,
                port(Port::Grpc, H2_PREFACE_BYTES),
                live.metrics().clone(),
                tls.clone(),
            ),
            stopped(stop_rx.clone()),
        );
    let webhook = listeners.webhook.map(|listener| {
        tokio::spawn(listen::serve_http(
            listen::incoming(listener, port(Port::Webhook, 1), live.metrics().clone(), tls.clone()),
            crate::adapters::webhook::router(live.clone()),
            limits.http_header_timeout,
            stopped(stop_rx.clone()),
        ))
    });
    let readiness = Readiness::default();
    let http = listen::serve_http(
        listen::incoming(listeners.http, port(Port::Http, 1), live.metrics().clone(), tls.clone()),
        router(readiness.clone(), live.clone()),
        limits.http_header_timeout,
        stopped(stop_rx),
    );
    tracing::info!(
        max_connections_per_port = limits.max_connections,
        max_streams_per_connection = limits.max_streams_per_connection,
        max_in_flight = limits.max_in_flight,
        worst_case_request_memory_mib = worst_case_memory(&config) >> 20,
        "connection limits"
    );
    let mut grpc_task = tokio::spawn(grpc);
    let mut http_task = tokio::spawn(async move {
        http.await;
        Ok::<(), std::convert::Infallible>(())
    });

    reporter.set_service_status(LIVENESS_SERVICE, ServingStatus::Serving).await;
    // Evaluated once before "serving" is logged, so a probe right after
    // start already sees the issuers' state; then followed.
    let ready = apply_readiness(&live, &reporter, &readiness, None).await;
    let watcher = tokio::spawn(follow_readiness(live.clone(), reporter.clone(), readiness.clone(), ready));
    let watch = match (&reloader, config.watch_interval.is_zero()) {
        (Some(r), false) => {
            // The baseline is taken before "serving": a change made right
            // after start is a change, not part of the baseline.
            let files = live.source_files();
            let baseline = (fingerprint(&files), files);
            Some(tokio::spawn(watch_files(live.clone(), config.watch_interval, r.trigger.clone(), baseline)))
        }
        _ => None,
    };
    let reloads = reloader.map(|r| tokio::spawn(follow_reloads(live.clone(), r, tls.clone())));
    let tls_watch =
        tls.clone().filter(|t| !t.reload_interval().is_zero()).map(|t| tokio::spawn(watch_tls(t)));
    tracing::info!(%grpc_addr, %http_addr, webhook_addr = webhook_addr.map(|a| a.to_string()), store = config.store.as_ref().map(|_| "on"), tls = config.tls.is_some(), issuers = ?live.get().gate.issuers().names(), "serving");
    if config.tls.is_none() && !(grpc_addr.ip().is_loopback() && http_addr.ip().is_loopback()) {
        // Only reachable with server.plaintext = "mesh" (config validation).
        tracing::warn!(
            plaintext = config.plaintext.as_str(),
            trust_forwarded_client_cert = config.trust_forwarded_client_cert,
            "plaintext beyond loopback: a service mesh sidecar must encrypt and authenticate this traffic"
        );
    }

    tokio::select! {
        () = shutdown => {}
        r = &mut grpc_task => {
            return Err(format!("gRPC server stopped: {}", failure(r).unwrap_or_else(|| "without an error".into())).into());
        }
        r = &mut http_task => {
            return Err(format!("HTTP server stopped: {}", failure(r).unwrap_or_else(|| "without an error".into())).into());
        }
    }

    tracing::info!(drain_delay = ?config.drain_delay, grace = ?config.shutdown_grace, "shutting down: NOT_SERVING");
    watcher.abort();
    for task in [reloads, watch, tls_watch].into_iter().flatten().chain(store_tasks) {
        task.abort();
    }
    reporter.set_service_status(LIVENESS_SERVICE, ServingStatus::NotServing).await;
    set_readiness_services(&reporter, ServingStatus::NotServing).await;
    readiness.set(false);
    tokio::time::sleep(config.drain_delay).await;
    // Receivers live inside the server futures; if both already ended there
    // is nobody to tell, which is fine.
    let _ = stop_tx.send(true);
    let finished = tokio::time::timeout(config.shutdown_grace, async {
        let (g, h) = tokio::join!(&mut grpc_task, &mut http_task);
        (g, h)
    })
    .await;
    match finished {
        Ok((g, h)) => {
            for (what, r) in [("gRPC", failure(g)), ("HTTP", failure(h))] {
                if let Some(error) = r {
                    tracing::warn!(server = what, %error, "server ended with an error during shutdown");
                }
            }
            tracing::info!("stopped");
        }
        Err(_) => {
            grpc_task.abort();
            http_task.abort();
            if let Some(w) = &webhook {
                w.abort();
            }
            tracing::warn!(grace = ?config.shutdown_grace, "shutdown grace elapsed; dropping remaining calls");
        }
    }
    Ok(())
}

/// The health services that mean "ready": `""`, AuthService and Envoy's
/// Authorization (liveness is separate).
async fn set_readiness_services(reporter: &tonic_health::server::HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    reporter
        .set_service_status(<AuthServiceServer<AuthGrpc> as tonic::server::NamedService>::NAME, status)
        .await;
    reporter.set_service_status(crate::adapters::envoy_service::SERVICE_NAME, status).await;
}

/// Keeps health and `/readyz` equal to "every issuer can verify", logging
/// each change with the issuers that are not ready.
async fn follow_readiness(
    live: Arc<Live>,
    reporter: tonic_health::server::HealthReporter,
    readiness: Readiness,
    mut last: bool,
) {
    loop {
        tokio::time::sleep(READINESS_POLL).await;
        last = apply_readiness(&live, &reporter, &readiness, Some(last)).await;
    }
}

/// Sets health and `/readyz` from the issuers when it differs from `last`;
/// returns the current state.
async fn apply_readiness(
    live: &Live,
    reporter: &tonic_health::server::HealthReporter,
    readiness: &Readiness,
    last: Option<bool>,
) -> bool {
    let core = live.get().gate.clone();
    let store_ready = !core.needs_store() || live.store().is_some_and(|s| s.ready());
    let ready = core.issuers().ready() && store_ready;
    live.metrics().set_ready(ready);
    if last == Some(ready) {
        return ready;
    }
    let status = if ready { ServingStatus::Serving } else { ServingStatus::NotServing };
    set_readiness_services(reporter, status).await;
    readiness.set(ready);
    if ready {
        tracing::info!("ready");
    } else {
        tracing::warn!(
            issuers = ?core.issuers().not_ready(),
            store_ready,
            "not ready: issuer keys missing or stale, or the user store's change feed is not current"
        );
    }
    ready
}

/// Asks for a reload when a file the config was read from changes
/// (content, or appearing/disappearing); a changed file list alone (after a
/// reload) is only noted.
async fn watch_files(
    live: Arc<Live>,
    interval: std::time::Duration,
    trigger: tokio::sync::mpsc::Sender<()>,
    (mut last, mut files): ([u8; 32], Vec<std::path::PathBuf>),
) {
    // File reads run on the blocking pool, not on a request worker.
    let fingerprint_of = |files: Vec<std::path::PathBuf>| async move {
        tokio::task::spawn_blocking(move || (fingerprint(&files), files)).await.ok()
    };
    loop {
        tokio::time::sleep(interval).await;
        let Some((now, now_files)) = fingerprint_of(live.source_files()).await else { return };
        if now_files != files {
            files = now_files;
            last = now;
            continue;
        }
        if now != last {
            last = now;
            tracing::info!("configuration files changed: reloading");
            // A reload already queued covers this change too.
            let _ = trigger.try_send(());
        }
    }
}

/// SHA-256 over every file's path and content ("missing" when unreadable).
fn fingerprint(files: &[std::path::PathBuf]) -> [u8; 32] {
    let contents: Vec<Vec<u8>> =
        files.iter().map(|f| std::fs::read(f).unwrap_or_else(|_| b"\0missing".to_vec())).collect();
    let parts: Vec<&[u8]> = files
        .iter()
        .zip(&contents)
        .flat_map(|(f, c)| [f.as_os_str().as_encoded_bytes(), c.as_slice()])
        .collect();
    crate::core::cache::digest(&parts)
}

/// Applies each reload request; the running generation stays on any error.
/// Checks the TLS files every `tls.reload_interval`.
async fn watch_tls(tls: Arc<TlsStore>) {
    loop {
        tokio::time::sleep(tls.reload_interval()).await;
        reload_tls(&tls);
    }
}

fn reload_tls(tls: &TlsStore) {
    match tls.reload() {
        Ok(true) => tracing::info!("TLS certificate reloaded; new connections use it"),
        Ok(false) => {}
        Err(error) => tracing::error!(%error, "new TLS files refused; the served certificate stays"),
    }
}

async fn follow_reloads(live: Arc<Live>, mut reloader: Reloader, tls: Option<Arc<TlsStore>>) {
    while reloader.requests.recv().await.is_some() {
        if let Some(tls) = &tls {
            reload_tls(tls);
        }
        let config = match (reloader.load)() {
            Ok(c) => c,
            Err(errors) => {
                for e in &errors.0 {
                    tracing::error!(error = %e, "reload rejected: invalid configuration");
                }
                live.metrics().reload(ReloadOutcome::Rejected);
                continue;
            }
        };
        match live.reload(config, RELOAD_READY_WITHIN).await {
            Ok(fixed) => {
                if !fixed.is_empty() {
                    tracing::warn!(settings = ?fixed, "changed settings take effect only after a restart");
                }
                tracing::info!(issuers = ?live.get().gate.issuers().names(), "configuration reloaded");
                live.metrics().reload(ReloadOutcome::Applied);
            }
            Err(e) => {
                tracing::error!(error = %e, "reload rejected; the running configuration stays");
                live.metrics().reload(ReloadOutcome::Rejected);
            }
        }
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    // An error means the sender is gone: treat as stop.
    let _ = rx.wait_for(|stop| *stop).await;
}

/// What made a server task end, if anything did.
fn failure<E: std::fmt::Display>(r: Result<Result<(), E>, tokio::task::JoinError>) -> Option<String> {
    match r {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(e) => Some(e.to_string()),
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C will stop the server");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("shutdown signal received");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's Security model states this number for the defaults.
    #[test]
    fn worst_case_memory_of_the_defaults_is_the_documented_72_mib() {
        let config = crate::config::Config::load(&crate::config::Inputs {
            config_path: None,
            grpc_addr: None,
            http_addr: None,
            env: &|name: &str| (name == "AUTHGATE_DEV_SECRET").then(|| "dev-secret-0123456789abcdef".into()),
            workdir: std::env::temp_dir(),
            offline: false,
        })
        .unwrap();
        assert_eq!(worst_case_memory(&config), 72 << 20);
    }
}
