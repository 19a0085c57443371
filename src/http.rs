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
//!   Caddy ([`crate::forward_auth`]).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
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

/// Documents published on the side port, rendered once at start.
#[derive(Debug, Clone)]
pub struct Published {
    /// `{"keys": [...]}`.
    pub jwks: String,
    /// The OpenID-style discovery document.
    pub openid_configuration: String,
    /// `Cache-Control: public, max-age=<this>`.
    pub max_age_secs: u64,
}

/// The side-port router.
pub fn router(
    readiness: Readiness,
    published: Option<Published>,
    forward_auth: Arc<crate::forward_auth::ForwardAuth>,
) -> Router {
    let forward_auth = Router::new()
        .route("/forward-auth", any(crate::forward_auth::handle))
        .route("/forward-auth/{*rest}", any(crate::forward_auth::handle))
        .with_state(forward_auth);
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(readiness)
        .merge(forward_auth);
    match published {
        None => router,
        Some(p) => {
            let cache = format!("public, max-age={}", p.max_age_secs);
            let json = |body: String, cache: String| {
                get(move || {
                    let (body, cache) = (body.clone(), cache.clone());
                    async move {
                        (
                            [
                                (axum::http::header::CONTENT_TYPE, "application/json".to_string()),
                                (axum::http::header::CACHE_CONTROL, cache),
                            ],
                            body,
                        )
                    }
                })
            };
            router
                .route("/.well-known/jwks.json", json(p.jwks, cache.clone()))
                .route("/.well-known/openid-configuration", json(p.openid_configuration, cache))
        }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(r): State<Readiness>) -> (StatusCode, &'static str) {
    if r.get() { (StatusCode::OK, "ready\n") } else { (StatusCode::SERVICE_UNAVAILABLE, "not ready\n") }
}
