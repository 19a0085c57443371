//! The decision: made once per request whatever the adapter, and recorded
//! once, here: one metrics sample, one log line, the end of the request's
//! span.
//!
//! The line never carries the token, a secret or an unverified claim; the
//! subject appears only when access is granted. Every value in it is a
//! configured name, a stable reason, a verified subject or an address that
//! the log layer escapes.

use crate::core::error::AuthError;
use crate::core::identity::Identity;
use crate::obs::logs::FieldValue as V;
use crate::obs::metrics::{Adapter, Metrics};
use crate::obs::sink::Priority;
use opentelemetry::Context;
use opentelemetry::trace::TraceContextExt;
use std::time::Instant;

/// What one request decided, gathered on the way (by the gate, Exchange and
/// the edge) and written by [`Decision::record`].
pub struct Decision<'c> {
    adapter: Adapter,
    client: Option<&'c str>,
    started: Instant,
    span: Context,
    /// The configured issuer that owned the credential, once routed.
    pub(crate) issuer: Option<String>,
    /// The identity came from the verified-identity cache.
    pub(crate) cache_hit: bool,
    /// The request carried a valid `x-nf-sign`.
    pub(crate) signed_proxy: bool,
    /// The audience a token was minted for (Exchange, edge routes that mint).
    pub(crate) audience: Option<String>,
    /// The key that signed the minted token.
    pub(crate) key_id: Option<String>,
    /// The calling service, when its connection presented a verified
    /// client certificate: the certificate's identity.
    pub(crate) caller: Option<std::sync::Arc<str>>,
    /// Roles or claims came from the user store: `cached` or `read`.
    pub(crate) store: Option<&'static str>,
    /// What refused a revoked token: a revocation kind or `deleted_user`.
    pub(crate) revoked_by: Option<&'static str>,
}

impl<'c> Decision<'c> {
    /// Starts timing one request that came through `adapter` from `client`
    /// (the end user's address, when known), under `span` (the request's
    /// server span, or the remote parent when tracing is off).
    pub fn start(adapter: Adapter, client: Option<&'c str>, span: Context) -> Self {
        Self {
            adapter,
            client,
            started: Instant::now(),
            span,
            issuer: None,
            cache_hit: false,
            signed_proxy: false,
            audience: None,
            key_id: None,
            caller: None,
            store: None,
            revoked_by: None,
        }
    }

    /// The calling service, by its verified client certificate.
    pub fn with_caller(mut self, caller: Option<std::sync::Arc<str>>) -> Self {
        self.caller = caller;
        self
    }

    /// The identity granted is the one the identity cache holds, as it was
    /// verified (nothing added from the store): the same allocation on
    /// every request with that token, so what depends only on it can be
    /// kept by its address ([`crate::core::cache::address`]).
    pub fn identity_is_shared(&self) -> bool {
        self.cache_hit && self.store.is_none()
    }

    /// The adapter the request came through.
    pub fn adapter(&self) -> Adapter {
        self.adapter
    }

    /// The context to run the request's work under.
    pub fn span(&self) -> &Context {
        &self.span
    }

    /// Records the outcome: `Ok` with the identity that was granted, or the
    /// denial.
    pub fn record(self, metrics: &Metrics, outcome: Result<&Identity, &AuthError>) {
        let took = self.started.elapsed();
        let latency_us = took.as_micros() as u64;
        let issuer = match outcome {
            Ok(identity) => Some(&*identity.issuer),
            Err(_) => self.issuer.as_deref(),
        };
        let reason = outcome.err().map(AuthError::reason);
        metrics.decision(self.adapter, issuer.unwrap_or(""), reason, took);
        crate::obs::traces::finish(&self.span, issuer, reason);
        if !tracing::enabled!(target: "authgate::gate::decision", tracing::Level::INFO) {
            return;
        }
        let span = self.span.span();
        let context = span.span_context();
        let trace_id = context.is_valid().then(|| context.trace_id().to_string());
        let (adapter, client) = (self.adapter.as_str(), self.client);
        let (audience, key_id) = (self.audience.as_deref(), self.key_id.as_deref());
        let (caller, store, revoked_by) = (self.caller.as_deref(), self.store, self.revoked_by);
        let granted = outcome.is_ok();
        // The field order of earlier releases; absent ones left out.
        let fields = [
            ("adapter", Some(V::Str(adapter))),
            ("granted", Some(V::Bool(granted))),
            ("reason", text(reason)),
            ("issuer", text(issuer)),
            ("subject", text(outcome.ok().map(|identity| &*identity.subject))),
            ("cache_hit", granted.then_some(V::Bool(self.cache_hit))),
            ("signed_proxy", granted.then_some(V::Bool(self.signed_proxy))),
            ("store", text(store)),
            ("revoked_by", text(revoked_by).filter(|_| !granted)),
            ("audience", text(audience)),
            ("key_id", text(key_id).filter(|_| granted)),
            ("caller", text(caller)),
            ("client", text(client)),
            ("trace_id", text(trace_id.as_deref())),
            ("latency_us", Some(V::U64(latency_us))),
        ];
        let priority = if granted { Priority::Granted } else { Priority::Other };
        crate::obs::logs::info_line("authgate::gate::decision", "decision", &fields, priority);
    }
}

/// An optional string field of the decision line.
fn text(v: Option<&str>) -> Option<V<'_>> {
    v.map(V::Str)
}
