//! The normalised identity every verifier produces and every adapter returns.

use serde_json::{Map, Value};
use std::sync::Arc;

/// A verified user. Built only by verifiers, after the signature checked out.
///
/// A cache holds up to `max_entries` of these, so the layout is kept at
/// 240 bytes (a 256-byte allocation inside its `Arc`; a unit test holds
/// it there): strings and lists are boxed slices (no spare capacity, 16
/// bytes each instead of 24), the rarely present parts are boxed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Identity {
    /// `sub`.
    pub subject: Box<str>,
    /// `email`, empty when absent.
    pub email: Box<str>,
    /// Roles from the issuer's configured claim paths.
    pub roles: Box<[String]>,
    /// `app_metadata.provider`, empty when absent.
    pub provider: Box<str>,
    /// The configured issuer's name (not the `iss` claim).
    pub issuer: Arc<str>,
    /// `aud`, normalised to a list.
    pub audiences: Box<[String]>,
    /// `exp`, seconds since the Unix epoch.
    pub expires_at: i64,
    /// `app_metadata` as issued.
    pub app_metadata: Metadata,
    /// `user_metadata` as issued: user-writable, never used for decisions.
    pub user_metadata: Metadata,
    /// `session_id`, empty when absent.
    pub session_id: Box<str>,
    /// `aal`, empty when absent.
    pub aal: Box<str>,
    /// `is_anonymous`.
    pub is_anonymous: bool,
    /// `jti`, empty when absent (revocation by token id).
    pub jti: Box<str>,
    /// `iat`, when the token has one (revocation "issued before T").
    pub issued_at: Option<i64>,
    /// The app's claims from the user store (issuers with
    /// `claims_from_store`); empty otherwise.
    pub claims: AppClaims,
    /// This identity as an adapter answers it, made on first use: a cached
    /// identity is encoded once, not on every request that hits it.
    pub encoded: Encoded,
}

/// A metadata object (`app_metadata`, `user_metadata`) kept as its compact
/// JSON text. A cache holds up to `max_entries` identities, and a parsed
/// object costs many times its text (serde_json's `Map` is a B-tree whose
/// first node takes 640 bytes for two keys); nothing on the request path
/// reads metadata, only the answer and the user store's row, which parse it
/// back. An empty object holds nothing. `Debug` shows only the size: the
/// content is the user's.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Metadata(Option<Box<str>>);

impl Metadata {
    /// The object's compact text (none when empty).
    pub fn from_map(map: &Map<String, Value>) -> Self {
        if map.is_empty() {
            return Self(None);
        }
        // Cannot fail: a `Map` holds string keys and JSON values only.
        Self(serde_json::to_string(map).ok().map(String::into_boxed_str))
    }

    /// The object again (empty when none). The text was written by
    /// [`Metadata::from_map`], so it always parses.
    pub fn to_map(&self) -> Map<String, Value> {
        self.0.as_deref().and_then(|text| serde_json::from_str(text).ok()).unwrap_or_default()
    }

    /// Length of the JSON text (0 when empty).
    pub fn json_len(&self) -> usize {
        self.0.as_deref().map_or(0, str::len)
    }
}

impl From<Map<String, Value>> for Metadata {
    fn from(map: Map<String, Value>) -> Self {
        Self::from_map(&map)
    }
}

impl std::fmt::Debug for Metadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Metadata({} bytes)", self.json_len())
    }
}

/// The app's claims from the user store: boxed, as most identities have
/// none (an empty map would still take 24 bytes of every cached identity).
/// Reads as a map; empty when none.
#[derive(Clone, Default, PartialEq)]
pub struct AppClaims(Option<Box<Map<String, Value>>>);

impl std::ops::Deref for AppClaims {
    type Target = Map<String, Value>;
    fn deref(&self) -> &Map<String, Value> {
        static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
        self.0.as_deref().unwrap_or(&EMPTY)
    }
}

impl From<Map<String, Value>> for AppClaims {
    fn from(map: Map<String, Value>) -> Self {
        Self((!map.is_empty()).then(|| Box::new(map)))
    }
}

impl std::fmt::Debug for AppClaims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

/// An identity's encoded form (the gRPC adapter's `Identity` message), kept
/// with the identity from its second answer on: a token answered once (most
/// of a large cache's entries) does not carry its bytes twice. A clone
/// starts empty, so an identity copied and then changed (roles from the
/// store, say) is never answered with the bytes of the one it was copied
/// from; equality ignores it.
#[derive(Default)]
pub struct Encoded {
    // Boxed: 16 bytes instead of 40 in every cached identity, most of
    // which are never answered twice.
    bytes: std::sync::OnceLock<Box<bytes::Bytes>>,
    answered: std::sync::atomic::AtomicBool,
}

impl Encoded {
    /// The bytes: made by `encode` on each of the first two calls, kept
    /// from the second.
    pub fn get_or_init(&self, encode: impl FnOnce() -> bytes::Bytes) -> bytes::Bytes {
        if let Some(bytes) = self.bytes.get() {
            return (**bytes).clone();
        }
        if !self.answered.swap(true, std::sync::atomic::Ordering::Relaxed) {
            return encode();
        }
        (**self.bytes.get_or_init(|| Box::new(encode()))).clone()
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
            "app_metadata": self.app_metadata.to_map(),
            "user_metadata": self.user_metadata.to_map(),
            "session_id": self.session_id,
            "aal": self.aal,
            "is_anonymous": self.is_anonymous,
            "claims": *self.claims,
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
            email: "".into(),
            roles: vec!["editor".into()].into(),
            provider: "".into(),
            issuer: Arc::from("dev"),
            audiences: vec![].into(),
            expires_at: 0,
            ..Identity::default()
        };
        assert!(id.has_any_role(&[]));
        assert!(id.has_any_role(&["admin".into(), "editor".into()]));
        assert!(!id.has_any_role(&["admin".into()]));
    }

    #[test]
    fn a_cached_identity_fits_a_256_byte_allocation() {
        // An `Arc` adds two counters (16 bytes); mimalloc's next size class
        // after 256 is 320, which would cost 6.4 MB per 100,000 entries.
        assert!(std::mem::size_of::<Identity>() + 16 <= 256, "{} bytes", std::mem::size_of::<Identity>());
    }

    #[test]
    fn metadata_round_trips_through_its_text() {
        let cases = [
            ("empty holds nothing", serde_json::json!({}), 0),
            (
                "provider and roles",
                serde_json::json!({"provider": "email", "roles": ["editor", "member"]}),
                48,
            ),
            (
                "nested, numbers, null, unicode",
                serde_json::json!({"a": {"b": [1, 2.5, -3, null, true]}, "n": 18446744073709551615u64, "é": "ü"}),
                67,
            ),
        ];
        for (what, value, len) in cases {
            let map = value.as_object().unwrap().clone();
            let kept = Metadata::from_map(&map);
            assert_eq!(kept.to_map(), map, "{what}");
            assert_eq!(kept.json_len(), len, "{what}");
            assert_eq!(format!("{kept:?}"), format!("Metadata({len} bytes)"), "{what}: no content in Debug");
        }
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
