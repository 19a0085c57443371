//! authgate: one place that answers "which Netlify user is this?" for
//! backends that live outside Netlify.
//!
//! A backend sends a credential (a token, or its incoming request's headers)
//! to `authgate.v1.AuthService/Verify` and gets back a normalised
//! [`Identity`] or a precise denial ([`AuthError`], a gRPC status with a
//! `google.rpc.ErrorInfo` reason).
//!
//! # Layout
//!
//! Layers, bottom first; a module uses only the layers below it
//! (`tests/layers.rs` checks every `crate::` path), so the graph has no
//! cycle.
//!
//! | layer | what it is |
//! | --- | --- |
//! | [`config`] | data only: the typed model of TOML + `AUTHGATE_*` env + `*_FILE` secrets, read in one pass that reports every error with its position; no side effects, nothing from the domain; its JSON Schema |
//! | `obs` | logs (escaped), Prometheus metrics with bounded labels, OpenTelemetry spans |
//! | `core` | what a request is made of: `core::credential`, `core::jws` (split before any key), `core::claims`, the normalised [`Identity`], [`AuthError`] (every denial mapped once to gRPC code, HTTP status, reason), the verified-identity `core::cache` |
//! | `keys` | key material parsed once per generation (`keys::Material`): HMAC keys, public key sets, Exchange's signing ring; the TLS certificate of both ports, swapped whole when its files change |
//! | `store` | the user store (the app's database): one `store::Backend` trait with PostgreSQL and SQLite backends, embedded migrations, the one rule for event ordering and final deletion (`store::row::decide`), `store::UserStore` (cached reads dropped by the trigger-fed change feed, staleness, background rows) |
//! | `verify` | the `verify::Verifier` trait and issuer routing; one file per verifier (`hs256`, `introspect` for hosted Identity, `jwks`, `nf_sign`) |
//! | `gate` | the transport-free request path (`gate::Gate`), the one `gate::decision::Decision` recorded per request, callers and `[access]`, Exchange, edge policy, the `gate::live::Generation` swapped whole on reload |
//! | `adapters` | thin translations: gRPC AuthService, Envoy ext_authz, forward-auth, the HTTP side port; the accept loop and limits both ports share |
//! | [`app`] | wiring, health and readiness, reloads, graceful shutdown: [`app::run_with_reload`] |
//! | [`cli`] | the command line; `main.rs` only parses it |
//!
//! # Data flow
//!
//! ```text
//!  gRPC AuthService/Verify ──► VerifyInput { token | headers, required_roles, issuer, require_signed_proxy }
//!                                   │
//!                  verify::nf_sign (x-nf-sign present? verify it; required? must be there)
//!                                   │
//!                  credential::extract ──► Credential { token, source }
//!                                   │
//!                  jws::CompactJws::parse  (size, shape, header; no key yet)
//!                                   │
//!                  verify::Issuers::preselect / route_by_token  (name | only one | unverified iss peek | default)
//!                                   │
//!                  cache::IdentityCache (hit: exp re-checked) ─┐ miss:
//!                  Verifier::verify ──► hs256: alg → HMAC (current, previous) → exp/nbf/iss/aud/sub
//!                                   │      introspect: local prechecks → cache → GoTrue /user (single-flight)
//!                                   │      jwks: alg ∩ key's alg → KeySet by kid (refetch: single-flight + cooldown) → signature → claims
//!                                   │          (claimed and rejected = final; never falls through)
//!                  Identity ──► gate::users: the app's roles/claims (store::UserStore, cached; store issuers only)
//!                                   │
//!                  required roles (any-of) ──► granted: queue the user's row ──► gate::decision: one metrics sample, log line, span end
//!                                   │
//!  adapter translates: VerifyResponse | Status(code, ErrorInfo{domain: authgate, reason})
//!
//!  gRPC AuthService/Exchange ──► gate::exchange::Exchanger: the same gate for the subject (and actor)
//!        ──► audience policy (target, issuers, roles, scopes, TTL) ──► keys::ring::KeyRing::sign ──► ExchangeResponse
//!
//!  POST /hooks/netlify-identity/<issuer> (webhook port) ──► gate::webhook: signature over the exact body
//!        ──► store::UserStore::apply (decide: order by updated_at, deletion final) ──► the app's roles answered
//! ```
#![deny(missing_docs)]

pub(crate) mod adapters;
pub mod app;
pub mod cli;
pub mod config;
pub(crate) mod core;
pub(crate) mod gate;
pub(crate) mod keys;
pub(crate) mod obs;
pub(crate) mod store;
pub(crate) mod verify;

pub use crate::core::error::AuthError;
pub use crate::core::identity::Identity;
pub use app::{Listeners, run};
pub use config::Config;

/// What the integration tests, fuzz targets and examples drive directly,
/// below the service's surface. Not a stable API.
#[doc(hidden)]
pub mod testing {
    pub use crate::adapters::ext_authz::ExtAuthz;
    pub use crate::adapters::forward_auth::flatten;
    pub use crate::core::claims::{Claims, unix_now};
    pub use crate::core::credential::extract;
    pub use crate::core::headers::Headers;
    pub use crate::core::jws::{CompactJws, signature_buffer};
    pub use crate::gate::edge::{client_address, header_value, strip_cookies};
    pub use crate::gate::live::{Generation, Live};
    pub use crate::gate::webhook::{inspect as inspect_webhook, sign as sign_webhook};
    pub use crate::gate::{Gate, VerifyInput};
    pub use crate::keys::public::KeySet;
    pub use crate::keys::ring::generate_pkcs8_pem;
    pub use crate::obs::metrics::{Adapter, Metrics};
    pub use crate::verify::nf_sign::{ProxyVerifier, ReplayCache, find_header};
}

/// Generated protobuf and gRPC code for `authgate.v1`.
#[allow(missing_docs)]
pub mod pb {
    tonic::include_proto!("authgate.v1");

    mod check_answer;
    mod exchange_response;
    mod verify_response;
    pub use check_answer::CheckAnswer;
    pub use exchange_response::ExchangeResponse;
    pub use verify_response::VerifyResponse;

    /// Encoded descriptors of `proto/` (and its imports), for reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/authgate_descriptor.bin"));

    /// Encoded descriptors of Envoy's `envoy.service.auth.v3.Authorization`
    /// (and its imports), compiled from the protos envoy-types ships.
    pub const ENVOY_AUTH_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/envoy_auth_descriptor.bin"));
}
