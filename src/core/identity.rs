//! The normalised identity every verifier produces and every adapter returns.

use serde_json::{Map, Value};
use std::sync::Arc;

/// A verified user. Built only by verifiers, after the signature checked out.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Identity {
    /// `sub`.
    pub subject: String,
    /// `email`, empty when absent.
    pub email: String,
    /// Roles from the issuer's configured claim paths.
    pub roles: Vec<String>,
    /// `app_metadata.provider`, empty when absent.
    pub provider: String,
    /// The configured issuer's name (not the `iss` claim).
    pub issuer: Arc<str>,
    /// `aud`, normalised to a list.
    pub audiences: Vec<String>,
    /// `exp`, seconds since the Unix epoch.
    pub expires_at: i64,
    /// `app_metadata` as issued.
    pub app_metadata: Map<String, Value>,
    /// `user_metadata` as issued: user-writable, never used for decisions.
    pub user_metadata: Map<String, Value>,
    /// `session_id`, empty when absent.
    pub session_id: String,
    /// `aal`, empty when absent.
    pub aal: String,
    /// `is_anonymous`.
    pub is_anonymous: bool,
    /// `jti`, empty when absent (revocation by token id).
    pub jti: String,
    /// `iat`, when the token has one (revocation "issued before T").
    pub issued_at: Option<i64>,
    /// The app's claims from the user store (issuers with
    /// `claims_from_store`); empty otherwise.
    pub claims: Map<String, Value>,
    /// This identity as an adapter answers it, made on first use: a cached
    /// identity is encoded once, not on every request that hits it.
    pub encoded: Encoded,
}

/// An identity's encoded form (the gRPC adapter's `Identity` message), kept
/// with the identity from its second answer on: a token answered once (most
/// of a large cache's entries) does not carry its bytes twice. A clone
/// starts empty, so an identity copied and then changed (roles from the
/// store, say) is never answered with the bytes of the one it was copied
/// from; equality ignores it.
#[derive(Default)]
pub struct Encoded {
    bytes: std::sync::OnceLock<bytes::Bytes>,
    answered: std::sync::atomic::AtomicBool,
}

impl Encoded {
    /// The bytes: made by `encode` on each of the first two calls, kept
    /// from the second.
    pub fn get_or_init(&self, encode: impl FnOnce() -> bytes::Bytes) -> bytes::Bytes {
        if let Some(bytes) = self.bytes.get() {
            return bytes.clone();
        }
        if !self.answered.swap(true, std::sync::atomic::Ordering::Relaxed) {
            return encode();
        }
        self.bytes.get_or_init(encode).clone()
    }
}

impl Clone for Encoded {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl PartialEq for Encoded {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for Encoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.bytes.get().is_some() { "Encoded(..)" } else { "Encoded(-)" })
    }
}

impl Identity {
    /// True when `required` is empty or the identity holds any of its roles.
    pub fn has_any_role(&self, required: &[String]) -> bool {
        required.is_empty() || required.iter().any(|r| self.roles.contains(r))
    }

    /// The identity as JSON (`authgate verify`), field names as in the proto.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "subject": self.subject,
            "email": self.email,
            "roles": self.roles,
            "provider": self.provider,
            "issuer": &*self.issuer,
            "audiences": self.audiences,
            "expires_at": self.expires_at,
            "app_metadata": self.app_metadata,
            "user_metadata": self.user_metadata,
            "session_id": self.session_id,
            "aal": self.aal,
            "is_anonymous": self.is_anonymous,
            "claims": self.claims,
        })
    }
}

/// Verified claims of one `x-nf-sign` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyAttestation {
    /// `netlify_id`, empty when absent.
    pub site_id: String,
    /// `site_url`, empty when absent.
    pub site_url: String,
    /// `deploy_context`, empty when absent.
    pub deploy_context: String,
    /// `iat`, seconds since the epoch.
    pub issued_at: i64,
    /// `exp`, seconds since the epoch.
    pub expires_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_check_is_any_of() {
        let id = Identity {
            subject: "u".into(),
            email: String::new(),
            roles: vec!["editor".into()],
            provider: String::new(),
            issuer: Arc::from("dev"),
            audiences: vec![],
            expires_at: 0,
            app_metadata: Map::new(),
            user_metadata: Map::new(),
            ..Identity::default()
        };
        assert!(id.has_any_role(&[]));
        assert!(id.has_any_role(&["admin".into(), "editor".into()]));
        assert!(!id.has_any_role(&["admin".into()]));
    }

    #[test]
    fn encoded_bytes_are_kept_from_the_second_answer_and_never_copied() {
        let id = Identity { subject: "u".into(), ..Identity::default() };
        let calls = std::cell::Cell::new(0);
        let encode = || {
            calls.set(calls.get() + 1);
            bytes::Bytes::from_static(b"\x0a\x01u")
        };
        let answers: Vec<_> = (0..4).map(|_| id.encoded.get_or_init(encode)).collect();
        assert!(answers.iter().all(|a| a.as_ref() == b"\x0a\x01u"));
        assert_eq!(calls.get(), 2, "encoded for the first answer, then once more and kept");
        let copy = id.clone();
        assert_eq!(format!("{:?}", copy.encoded), "Encoded(-)", "a clone starts empty");
        assert_eq!(copy, id, "equality ignores the encoded form");
    }
}
