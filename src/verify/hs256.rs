//! HS256 tokens with shared secrets: Netlify Identity / GoTrue access tokens,
//! or any service that signs with a shared secret (e.g. a Netlify Function
//! re-signing for a backend, with `iss`/`audiences` expectations switched on).
//!
//! Order of checks: `alg` (before any key is touched) → signature against the
//! current then the previous secret → payload → `exp` (required) → `nbf` →
//! `iss` → `aud` → `sub` (required; system principal refused) → roles.

use super::{Verifier, VerifyFuture};
use crate::config::ClaimPath;
use crate::config::{Hs256Settings, IssuerConfig};
use crate::core::claims::{Claims, SYSTEM_SUBJECTS, unix_now};
use crate::core::error::AuthError;
use crate::core::identity::Identity;
use crate::core::jws::{CompactJws, signature_buffer};
use crate::keys::hmac::{HmacKeySet, KeySlot};
use std::sync::Arc;

/// One HS256 issuer.
pub struct Hs256Verifier {
    name: Arc<str>,
    keys: HmacKeySet,
    leeway: i64,
    audiences: Vec<String>,
    expected_iss: Option<String>,
    role_claims: Vec<ClaimPath>,
    allow_system_principal: bool,
    /// This instance, in cache keys ([`Verifier::cache_epoch`]).
    instance: u64,
}

impl Hs256Verifier {
    /// Builds the verifier and its HMAC keys (once, at load time).
    pub fn new(config: &IssuerConfig, settings: &Hs256Settings) -> Self {
        Self {
            name: Arc::from(config.name.as_str()),
            keys: HmacKeySet::new(&settings.secret, settings.previous_secret.as_ref()),
            // Config validation caps leeway at 300 s, so this cannot overflow.
            leeway: config.leeway.as_secs() as i64,
            audiences: config.audiences.clone(),
            expected_iss: config.expected_iss.clone(),
            role_claims: config.role_claims.clone(),
            allow_system_principal: settings.allow_system_principal,
            instance: rand::random(),
        }
    }

    /// The whole check, synchronous: HS256 needs no I/O.
    pub fn check(&self, jws: &CompactJws<'_>, now: i64) -> Result<Identity, AuthError> {
        // Exact, case-sensitive: `none`/`None`/`NONE`, HS512, RS256 ... all stop here.
        if jws.header.alg != "HS256" {
            return Err(AuthError::UnsupportedAlgorithm);
        }
        let mut buf = signature_buffer();
        let signature = jws.signature(&mut buf)?;
        let slot =
            self.keys.verify(jws.signing_input.as_bytes(), signature).ok_or(AuthError::BadSignature)?;
        if slot == KeySlot::Previous {
            tracing::debug!(issuer = %self.name, key = slot.as_str(), "token verified with the previous secret");
        }
        let claims = Claims::from_slice(&jws.payload_bytes()?)?;
        let registered =
            claims.check_registered(now, self.leeway, self.expected_iss.as_deref(), &self.audiences)?;
        let subject = claims.subject()?;
        if !self.allow_system_principal && SYSTEM_SUBJECTS.contains(&subject) {
            return Err(AuthError::SystemPrincipal);
        }
        let subject = subject.to_owned();
        claims.into_identity(self.name.clone(), subject, registered, &self.role_claims)
    }
}

impl Verifier for Hs256Verifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn cache_epoch(&self) -> Result<u64, AuthError> {
        Ok(self.instance)
    }

    fn expected_iss(&self) -> Option<&str> {
        self.expected_iss.as_deref()
    }

    fn leeway_secs(&self) -> i64 {
        self.leeway
    }

    fn verify<'a>(&'a self, jws: &'a CompactJws<'a>, _client: Option<&'a str>) -> VerifyFuture<'a> {
        let result = self.check(jws, unix_now()).map(Arc::new);
        Box::pin(std::future::ready(result))
    }
}
