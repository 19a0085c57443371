//! The request path, transport-free: credential → issuer → verifier →
//! identity → decision. Adapters (gRPC, later ext_authz and HTTP) build a
//! [`VerifyInput`] and translate the result; they decide nothing.

use crate::config::Config;
use crate::credential;
use crate::error::AuthError;
use crate::identity::Identity;
use crate::jws::CompactJws;
use crate::verify::Issuers;
use std::collections::HashMap;
use std::time::Instant;

/// One verification request, borrowed from whichever transport carried it.
#[derive(Debug, Clone, Copy)]
pub struct VerifyInput<'a> {
    /// An explicit token (empty when absent).
    pub token: &'a str,
    /// The incoming request's headers (names in any case).
    pub headers: &'a HashMap<String, String>,
    /// Any-of roles the identity must hold.
    pub required_roles: &'a [String],
    /// A configured issuer name, or empty to route by the rules.
    pub issuer: &'a str,
}

/// The verification core. Built once from config; immutable and shared.
pub struct Authenticator {
    issuers: Issuers,
    max_token_bytes: usize,
}

impl Authenticator {
    /// Builds every issuer's verifier and keys.
    pub fn from_config(config: &Config) -> Self {
        Self { issuers: Issuers::from_config(config), max_token_bytes: config.max_token_bytes }
    }

    /// The configured issuers.
    pub fn issuers(&self) -> &Issuers {
        &self.issuers
    }

    /// Decides one request and writes exactly one decision log line. The
    /// line never carries the token, a secret or an unverified claim; the
    /// subject appears only when access is granted.
    pub async fn verify(&self, input: VerifyInput<'_>) -> Result<Identity, AuthError> {
        let started = Instant::now();
        let mut issuer = None;
        let result = self.decide(input, &mut issuer).await;
        let latency_us = started.elapsed().as_micros() as u64;
        let issuer = issuer.unwrap_or("");
        match &result {
            Ok(id) => {
                tracing::info!(granted = true, issuer, subject = %id.subject, latency_us, "decision")
            }
            Err(e) => tracing::info!(granted = false, reason = e.reason(), issuer, latency_us, "decision"),
        }
        result
    }

    async fn decide<'a>(
        &'a self,
        input: VerifyInput<'_>,
        issuer: &mut Option<&'a str>,
    ) -> Result<Identity, AuthError> {
        // A misspelt issuer name is the caller's bug whatever the token is.
        if !input.issuer.is_empty() && self.issuers.by_name(input.issuer).is_none() {
            return Err(AuthError::UnknownIssuer);
        }
        let credential = credential::extract(input.token, input.headers)?;
        let jws = CompactJws::parse(credential.token, self.max_token_bytes)?;
        let verifier = self.issuers.route(input.issuer, &jws)?;
        *issuer = Some(verifier.name());
        let identity = verifier.verify(&jws).await?;
        if !identity.has_any_role(input.required_roles) {
            return Err(AuthError::InsufficientRole);
        }
        Ok(identity)
    }
}
