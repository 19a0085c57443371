//! Verifiers and the issuer dispatch.
//!
//! Each configured issuer is one [`Verifier`]. [`Issuers::preselect`] and
//! [`Issuers::route_by_token`] pick the
//! one that owns a token, and that verifier's answer is final: a token an
//! issuer claimed and rejected never falls through to another issuer.
//!
//! Routing rules, in order (the unverified `iss` peek only *routes*; the
//! chosen verifier checks everything again and is the only one that grants):
//! 1. the request names an issuer: that one, else `unknown_issuer`;
//! 2. only one issuer is configured: that one;
//! 3. the token's `iss` equals an issuer's configured `iss`: that one;
//! 4. an issuer has `default = true`: that one;
//! 5. otherwise `wrong_issuer`.

pub mod hs256;
pub mod introspect;
pub mod jwks;
pub mod nf_sign;
pub mod upstream;

use crate::config::{Config, IssuerKind};
use crate::core::error::AuthError;
use crate::core::identity::Identity;
use crate::core::jws::CompactJws;
use crate::keys::public::KeySet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What [`Verifier::verify`] returns: boxed so verifiers can be trait
/// objects, and async so remote checks (introspection, JWKS) fit the trait.
pub type VerifyFuture<'a> = Pin<Box<dyn Future<Output = Result<Arc<Identity>, AuthError>> + Send + 'a>>;

/// One issuer's check of a token it owns.
pub trait Verifier: Send + Sync {
    /// The configured issuer name.
    fn name(&self) -> &str;
    /// The `iss` value that routes tokens here, if any.
    fn expected_iss(&self) -> Option<&str>;
    /// Clock skew allowed on `exp`, in seconds (re-checked on cache hits).
    fn leeway_secs(&self) -> i64;
    /// True when the verifier keeps its own cache with its own rules (remote
    /// introspection), so the shared verified-identity cache must not.
    fn has_own_cache(&self) -> bool {
        false
    }
    /// What a cached answer of the shared cache depends on: this verifier
    /// instance (drawn at random when it is built, so the entries of a
    /// verifier a reload replaced are never served by its successor, which
    /// may have other secrets or rules) and the generation of its key
    /// material (a key removed from the issuer's key set stops granting at
    /// once). An error means the issuer cannot answer now (keys past their
    /// staleness). Verifiers with their own cache need none.
    fn cache_epoch(&self) -> Result<u64, AuthError> {
        Ok(0)
    }
    /// False while a required issuer cannot verify (keys not loaded yet, or
    /// past their maximum staleness); readiness reports it.
    fn ready(&self) -> bool {
        true
    }
    /// Sets this issuer's state gauges (key sets, caches) before a scrape.
    fn report(&self, _metrics: &crate::obs::metrics::Metrics) {}
    /// Verifies the token completely and builds the identity. `client` is
    /// the end user's address, when known, for verifiers that
    /// spend a shared resource per request (remote introspection).
    fn verify<'a>(&'a self, jws: &'a CompactJws<'a>, client: Option<&'a str>) -> VerifyFuture<'a>;
}

/// The configured issuers, built once from config; immutable afterwards.
pub struct Issuers {
    verifiers: Vec<Arc<dyn Verifier>>,
    default: Option<usize>,
}

impl Issuers {
    /// Builds every verifier (and its keys) from a validated config.
    /// `static_sets` are the issuers' parsed static key sets, in config
    /// order ([`crate::keys::Material`]).
    /// With `previous` (the running issuers and the config they were built
    /// from; a reload), an issuer whose `[[issuers]]` entry is unchanged
    /// keeps its verifier: its caches, fetched keys and upstream limits
    /// live on, so a reload costs no re-verification and sends no burst of
    /// introspection calls to GoTrue. The metrics and the store are the
    /// process's, the same across reloads.
    pub fn from_config(
        config: &Config,
        static_sets: &[Option<Arc<KeySet>>],
        metrics: &Arc<crate::obs::metrics::Metrics>,
        store: Option<Arc<crate::store::UserStore>>,
        previous: Option<(&Issuers, &Config)>,
    ) -> Self {
        let mut built = Self::build(&config.issuers, static_sets, metrics, store);
        if let Some((running, was)) = previous {
            for (slot, issuer) in built.verifiers.iter_mut().zip(&config.issuers) {
                let unchanged = was.issuers.iter().any(|old| old == issuer);
                if let Some(kept) =
                    running.verifiers.iter().find(|v| v.name() == issuer.name).filter(|_| unchanged)
                {
                    *slot = kept.clone();
                }
            }
        }
        built
    }

    /// Builds a verifier for each of `issuers` (`[[issuers]]`, or
    /// `[[caller_issuers]]` for caller tokens); hosted Identity's answers
    /// refresh `store` (reconciliation) when there is one.
    pub fn build(
        issuers: &[crate::config::IssuerConfig],
        static_sets: &[Option<Arc<KeySet>>],
        metrics: &Arc<crate::obs::metrics::Metrics>,
        store: Option<Arc<crate::store::UserStore>>,
    ) -> Self {
        let verifiers: Vec<Arc<dyn Verifier>> = issuers
            .iter()
            .enumerate()
            .map(|(index, i)| match &i.kind {
                IssuerKind::Hs256(h) => Arc::new(hs256::Hs256Verifier::new(i, h)) as Arc<dyn Verifier>,
                IssuerKind::NetlifyIdentity(n) => {
                    Arc::new(introspect::IntrospectVerifier::new(i, n, metrics.clone(), store.clone()))
                        as Arc<dyn Verifier>
                }
                IssuerKind::Jwks(j) => {
                    let initial = static_sets.get(index).cloned().flatten();
                    Arc::new(jwks::JwksVerifier::new(i, j, initial, metrics.clone())) as Arc<dyn Verifier>
                }
            })
            .collect();
        let default = issuers.iter().position(|i| i.default);
        Self { verifiers, default }
    }

    /// Rules 1 and 2: the verifier chosen without reading the token, if
    /// any. `Ok(None)` means the token must be read ([`Issuers::route_by_token`]).
    pub fn preselect(&self, requested: Option<&str>) -> Result<Option<&dyn Verifier>, AuthError> {
        if let Some(requested) = requested {
            return self.by_name(requested).map(Some).ok_or(AuthError::UnknownIssuer);
        }
        match self.verifiers.as_slice() {
            [only] => Ok(Some(only.as_ref())),
            _ => Ok(None),
        }
    }

    /// Rules 3 to 5: route by the token's unverified `iss`, else the default.
    pub fn route_by_token(&self, jws: &CompactJws<'_>) -> Result<&dyn Verifier, AuthError> {
        if let Some(iss) = jws.peek_issuer_unverified()?
            && let Some(v) = self.verifiers.iter().find(|v| v.expected_iss() == Some(iss.as_str()))
        {
            return Ok(v.as_ref());
        }
        self.default.map(|i| self.verifiers[i].as_ref()).ok_or(AuthError::WrongIssuer)
    }

    /// The verifier with this configured name.
    pub fn by_name(&self, name: &str) -> Option<&dyn Verifier> {
        self.verifiers.iter().find(|v| v.name() == name).map(|v| v.as_ref())
    }

    /// True when every issuer can verify (see [`Verifier::ready`]).
    pub fn ready(&self) -> bool {
        self.verifiers.iter().all(|v| v.ready())
    }

    /// Every issuer's state gauges.
    pub fn report(&self, metrics: &crate::obs::metrics::Metrics) {
        for v in &self.verifiers {
            v.report(metrics);
        }
    }

    /// Names of the issuers that are not ready.
    pub fn not_ready(&self) -> Vec<&str> {
        self.verifiers.iter().filter(|v| !v.ready()).map(|v| v.name()).collect()
    }

    /// Configured issuer names, in config order.
    pub fn names(&self) -> Vec<&str> {
        self.verifiers.iter().map(|v| v.name()).collect()
    }
}
