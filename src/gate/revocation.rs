//! Building a revocation entry from what an operator asks for, the same
//! for the command line (`authgate revoke`) and the admin RPC
//! (`AdminService/Revoke`): what it refuses, from when, and until when it
//! must be kept.

use crate::config::Config;
use crate::store::revocations::{NewRevocation, RevocationKind, token_hash};

/// What to revoke: exactly one of `subject`, `jti`, `token`,
/// `issuer_wide`.
#[derive(Debug, Clone, Default)]
pub struct RevokeSpec {
    /// A subject's tokens.
    pub subject: Option<String>,
    /// The token with this `jti`.
    pub jti: Option<String>,
    /// This exact token (only its SHA-256 is kept).
    pub token: Option<String>,
    /// Every token of `issuer`.
    pub issuer_wide: bool,
    /// Limit to this configured issuer.
    pub issuer: Option<String>,
    /// Tokens issued before this (seconds) are refused; default the end
    /// of the current second (times are whole seconds, so a token issued
    /// in the second of the revocation is refused too).
    pub before: Option<i64>,
    /// No cut-off and no end (subject only).
    pub forever: bool,
    /// Why.
    pub reason: String,
    /// Who.
    pub created_by: String,
}

/// The longest token lifetime of `issuer` (or of any issuer), plus leeway:
/// how long after its cut-off an entry can still refuse a token.
fn longest_lifetime(config: &Config, issuer: Option<&str>) -> i64 {
    config
        .issuers
        .iter()
        .filter(|i| issuer.is_none_or(|n| n == i.name))
        .map(|i| (i.store.access_token_ttl + i.leeway).as_secs() as i64)
        .max()
        .unwrap_or(3600 + 300)
}

/// Largest value accepted in a text field of an entry.
const MAX_FIELD_BYTES: usize = 1024;

/// The entry `spec` describes, or why it cannot be one.
pub fn entry(config: &Config, spec: RevokeSpec, now: i64) -> Result<NewRevocation, String> {
    let lifetime = longest_lifetime(config, spec.issuer.as_deref());
    if spec.issuer.as_deref().is_some_and(|n| !config.issuers.iter().any(|i| i.name == n)) {
        return Err("the issuer is not configured".into());
    }
    let fields = [&spec.subject, &spec.jti, &Some(spec.reason.clone()), &Some(spec.created_by.clone())];
    if fields
        .iter()
        .any(|f| f.as_ref().is_some_and(|v| v.len() > MAX_FIELD_BYTES || v.chars().any(char::is_control)))
    {
        return Err(
            "subject, jti, reason and created_by must be at most 1 KiB without control characters".into()
        );
    }
    let chosen = [spec.subject.is_some(), spec.jti.is_some(), spec.token.is_some(), spec.issuer_wide];
    if chosen.iter().filter(|c| **c).count() != 1 {
        return Err("name exactly one of: subject, jti, token, issuer-wide".into());
    }
    let before = if spec.forever { None } else { Some(spec.before.unwrap_or(now + 1)) };
    let scoped = spec.before.is_some() || spec.forever;
    let mut new = NewRevocation {
        kind: RevocationKind::Subject,
        issuer: spec.issuer.clone(),
        subject: None,
        jti: None,
        token_hash: None,
        issued_before: None,
        expires_at: None,
        reason: spec.reason,
        created_by: spec.created_by,
    };
    if let Some(subject) = spec.subject {
        if subject.is_empty() {
            return Err("the subject is empty".into());
        }
        new.subject = Some(subject);
        new.issued_before = before;
        new.expires_at = before.map(|b| b + lifetime);
    } else if spec.issuer_wide {
        if spec.issuer.is_none() || spec.forever {
            return Err(
                "an issuer-wide revocation needs the issuer, and a cut-off (default now), not forever".into(),
            );
        }
        new.kind = RevocationKind::Issuer;
        new.issued_before = before;
        new.expires_at = before.map(|b| b + lifetime);
    } else if let Some(jti) = spec.jti {
        if scoped || jti.is_empty() {
            return Err("a jti revocation takes a non-empty jti and no cut-off".into());
        }
        new.kind = RevocationKind::Jti;
        new.jti = Some(jti);
        new.expires_at = Some(now + lifetime);
    } else if let Some(token) = spec.token {
        if scoped || token.is_empty() {
            return Err("a token revocation takes the token and no cut-off".into());
        }
        new.kind = RevocationKind::TokenHash;
        new.token_hash = Some(token_hash(&token));
        // The token's `exp` (read, not trusted: it only sets when the
        // entry may go) bounds the entry; without one it is kept longest.
        let exp = crate::core::jws::CompactJws::parse(&token, 1 << 20)
            .ok()
            .and_then(|j| j.payload_bytes().ok())
            .and_then(|p| serde_json::from_slice::<serde_json::Value>(&p).ok())
            .and_then(|c| c.get("exp").and_then(serde_json::Value::as_i64));
        new.expires_at = Some(exp.map_or(now + lifetime, |e| e.clamp(now, now + 366 * 86400) + 300));
    }
    Ok(new)
}
