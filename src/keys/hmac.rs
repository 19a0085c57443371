//! HMAC keys of a shared-secret issuer, built once from its secrets.

use crate::config::Secret;
use std::fmt;

/// Which of an issuer's HMAC keys verified a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySlot {
    /// The current secret.
    Current,
    /// The previous secret, kept during a rotation.
    Previous,
}

impl KeySlot {
    /// Stable label for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::Previous => "previous",
        }
    }
}

/// HS256 keys of one issuer: the current one first, then the previous.
/// Built once from config; verification never rebuilds a key.
pub struct HmacKeySet {
    keys: Vec<(KeySlot, aws_lc_rs::hmac::Key)>,
}

impl HmacKeySet {
    /// Builds the keys; `previous` is accepted for verification only.
    pub fn new(current: &Secret, previous: Option<&Secret>) -> Self {
        let key = |s: &Secret| aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, s.expose());
        let mut keys = vec![(KeySlot::Current, key(current))];
        if let Some(p) = previous {
            keys.push((KeySlot::Previous, key(p)));
        }
        Self { keys }
    }

    /// Constant-time check of `signature` over `message` with each key.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Option<KeySlot> {
        self.keys
            .iter()
            .find(|(_, k)| aws_lc_rs::hmac::verify(k, message, signature).is_ok())
            .map(|(slot, _)| *slot)
    }
}

impl fmt::Debug for HmacKeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacKeySet").field("keys", &self.keys.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new(b"super-secret-value".to_vec());
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert!(!format!("{:?}", Some(&s)).contains("super"));
    }

    #[test]
    fn previous_key_verifies() {
        let cur = Secret::new(b"current-secret-0123456789".to_vec());
        let prev = Secret::new(b"previous-secret-0123456789".to_vec());
        let sign = |s: &Secret, m: &[u8]| {
            aws_lc_rs::hmac::sign(&aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, s.expose()), m)
        };
        let set = HmacKeySet::new(&cur, Some(&prev));
        assert_eq!(set.verify(b"m", sign(&cur, b"m").as_ref()), Some(KeySlot::Current));
        assert_eq!(set.verify(b"m", sign(&prev, b"m").as_ref()), Some(KeySlot::Previous));
        assert_eq!(set.verify(b"x", sign(&prev, b"m").as_ref()), None);
        assert_eq!(HmacKeySet::new(&cur, None).verify(b"m", sign(&prev, b"m").as_ref()), None);
    }
}
