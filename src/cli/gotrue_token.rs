//! Minting tokens shaped exactly like Netlify Identity (GoTrue) access
//! tokens, for `authgate token` and local development: header
//! `{"alg":"HS256","typ":"JWT","kid":"nf-ident"}`; claims `exp`, `sub`,
//! `email`, `app_metadata` {`provider`, `roles`}, `user_metadata`, and `aud`
//! only when given. No `iat`, no `iss` (GoTrue writes neither).

use crate::config::Secret;
use serde::Serialize;
use serde_json::{Map, Value};
use std::time::Duration;

/// What to put in the token.
#[derive(Debug, Clone)]
pub struct TokenSpec {
    /// `sub`; a random UUID when `None`.
    pub subject: Option<String>,
    /// `email`.
    pub email: String,
    /// `app_metadata.roles` (omitted when empty, as GoTrue does).
    pub roles: Vec<String>,
    /// `app_metadata.provider`.
    pub provider: String,
    /// `aud` as a string, omitted when `None`.
    pub audience: Option<String>,
    /// Lifetime from now.
    pub ttl: Duration,
}

#[derive(Serialize)]
struct GoTrueClaims<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
    exp: i64,
    sub: &'a str,
    email: &'a str,
    app_metadata: Map<String, Value>,
    user_metadata: Map<String, Value>,
}

/// Signs a GoTrue-shaped token with `secret`.
pub fn sign(spec: &TokenSpec, secret: &Secret, now: i64) -> Result<String, jsonwebtoken::errors::Error> {
    let subject = spec.subject.clone().unwrap_or_else(random_uuid);
    let mut app_metadata = Map::new();
    app_metadata.insert("provider".into(), Value::from(spec.provider.as_str()));
    if !spec.roles.is_empty() {
        app_metadata.insert("roles".into(), Value::from(spec.roles.clone()));
    }
    let claims = GoTrueClaims {
        aud: spec.audience.as_deref(),
        exp: now.saturating_add(spec.ttl.as_secs() as i64),
        sub: &subject,
        email: &spec.email,
        app_metadata,
        user_metadata: Map::new(),
    };
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("nf-ident".into());
    jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(secret.expose()))
}

/// A random version-4 UUID, as GoTrue uses for user ids.
pub fn random_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}
