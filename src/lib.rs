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
//! | module | what it is |
//! | --- | --- |
//! | [`config`] | TOML + `AUTHGATE_*` env + `*_FILE` secrets, validated in one pass; zero-config dev mode |
//! | [`credential`] | finds the one credential in a request (token field, `Authorization: Bearer`, `nf_jwt` cookie) |
//! | [`jws`] | compact JWS split and header decode, before any key is touched |
//! | [`verify`] | the [`verify::Verifier`] trait, issuer routing; one file per verifier: `hs256` (shared secret), `introspect` (hosted Netlify Identity via GoTrue `/user`), `jwks` (asymmetric keys from a JWKS/OpenID provider, with its refresh discipline), `nf_sign` (Netlify signed-proxy attestation) |
//! | [`keyset`] | public keys (JWKS or PEM) parsed once into an immutable [`keyset::KeySet`] |
//! | [`claims`] | reading verified claims: dates, `aud`, role paths |
//! | [`identity`] | the normalised [`Identity`] and its protobuf form |
//! | [`keys`] | [`keys::Secret`] (redacted, zeroised) and key sets built at load time |
//! | [`error`] | [`AuthError`]: every denial, mapped once to gRPC code, HTTP status, reason |
//! | [`cache`] | verified identities by SHA-256(issuer, token), bounded, never past `exp` |
//! | [`exchange`], [`mint`] | Exchange policy; authgate's signing key ring, minted claims, JWKS |
//! | [`pipeline`] | the transport-free request path and the decision log line |
//! | [`listen`] | accept loop of both ports: connection caps, handshake deadline, accept backoff; the HTTP/1.1 server; the in-flight limit |
//! | [`live`] | the [`live::Generation`] built from one config and swapped whole on reload |
//! | [`edge`] | per-route policy for the edge adapters: `[edge]` defaults + route overrides |
//! | [`ext_authz`] | Envoy ext_authz v3 `Check` adapter |
//! | [`forward_auth`] | HTTP forward-auth adapter (nginx `auth_request`, Traefik, Caddy) |
//! | [`grpc`], [`http`] | thin adapters: AuthService (Verify, Exchange) over tonic; `/healthz`, `/readyz`, `/metrics`, JWKS and discovery over axum |
//! | [`app`] | wiring, health and readiness, reloads, graceful shutdown: [`app::run_with_reload`] |
//! | [`metrics`], [`otel`] | Prometheus metrics with bounded labels; OpenTelemetry spans over OTLP |
//! | [`cli`] | the command line (`serve`, `check-config`, `token`, `verify`, `jwks`, `keys generate`); `main.rs` only parses it |
//! | [`gotrue_token`] | mints GoTrue-shaped tokens for `authgate token` |
//! | [`telemetry`] | log setup |
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
//!                  Identity ──► required roles (any-of) ──► decision log line
//!                                   │
//!  adapter translates: VerifyResponse | Status(code, ErrorInfo{domain: authgate, reason})
//!
//!  gRPC AuthService/Exchange ──► exchange::Exchanger: the same pipeline for the subject (and actor)
//!        ──► audience policy (target, issuers, roles, scopes, TTL) ──► mint::KeyRing::sign ──► ExchangeResponse
//! ```
#![deny(missing_docs)]

pub mod app;
pub mod cache;
pub mod claims;
pub mod cli;
pub mod config;
pub mod credential;
pub mod edge;
pub mod error;
pub mod exchange;
pub mod ext_authz;
pub mod forward_auth;
pub mod gotrue_token;
pub mod grpc;
pub mod http;
pub mod identity;
pub mod jws;
pub mod keys;
pub mod keyset;
pub mod listen;
pub mod live;
pub mod metrics;
pub mod mint;
pub mod otel;
pub mod pipeline;
pub mod telemetry;
pub mod upstream;
pub mod verify;

pub use app::{Listeners, run};
pub use config::Config;
pub use error::AuthError;
pub use identity::Identity;

/// Generated protobuf and gRPC code for `authgate.v1`.
#[allow(missing_docs)]
pub mod pb {
    tonic::include_proto!("authgate.v1");

    /// Encoded descriptors of `proto/` (and its imports), for reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/authgate_descriptor.bin"));
}
