//! The HTTP side port (axum).
//!
//! Routes:
//! - `GET /healthz`: 200 while the process is alive.
//! - `GET /readyz`: 200 once config and keys are loaded, 503 once shutdown
//!   has begun (mirrors gRPC health).
//! - `GET /.well-known/jwks.json`: the public keys of Exchange's key ring
//!   (`Cache-Control: public, max-age=…`); 404 without `[exchange]`.
//! - `GET /.well-known/openid-configuration`: issuer, `jwks_uri`, algorithms.
//! - `/forward-auth[/…]`, any method: forward-auth for nginx, Traefik and
//!   Caddy ([`crate::adapters::forward_auth`]).
//! - `GET /metrics`: Prometheus metrics ([`crate::obs::metrics`]).

use crate::gate::live::{Live, Published};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Shared readiness flag, flipped by the app on start and on shutdown.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Marks ready or not.
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    /// Current state.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The side-port router.
pub fn router(readiness: Readiness, live: Arc<Live>) -> Router {
    let dynamic = Router::new()
        .route("/forward-auth", any(crate::adapters::forward_auth::handle))
        .route("/forward-auth/{*rest}", any(crate::adapters::forward_auth::handle))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/.well-known/openid-configuration", get(openid_configuration))
        .route("/metrics", get(metrics))
        .with_state(live);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(readiness)
        .merge(dynamic)
}

fn published(live: &Live, pick: impl Fn(&Published) -> &String) -> Response {
    match &live.get().published {
        None => (StatusCode::NOT_FOUND, "no [exchange] signing keys are configured\n").into_response(),
        Some(p) => (
            [
                (header::CONTENT_TYPE, "application/json".to_string()),
                (header::CACHE_CONTROL, format!("public, max-age={}", p.max_age_secs)),
            ],
            pick(p).clone(),
        )
            .into_response(),
    }
}

async fn jwks(State(live): State<Arc<Live>>) -> Response {
    published(&live, |p| &p.jwks)
}

async fn openid_configuration(State(live): State<Arc<Live>>) -> Response {
    published(&live, |p| &p.openid_configuration)
}

/// Prometheus text exposition; state gauges are refreshed first.
async fn metrics(State(live): State<Arc<Live>>) -> Response {
    live.get().report();
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        live.metrics().encode(),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(r): State<Readiness>) -> (StatusCode, &'static str) {
    if r.get() { (StatusCode::OK, "ready\n") } else { (StatusCode::SERVICE_UNAVAILABLE, "not ready\n") }
}
