//! A Netlify Identity webhook sender written from
//! `shared/reference/netlify-webhooks.md`, not from authgate's receiver:
//! `POST`, `Content-Type: application/json`, `X-Netlify-Event:
//! identity_<event>`, body `{"event", "instance_id", "user"}`, and
//! `x-webhook-signature`, an HS256 JWS over `{iat, sub: instance id, iss:
//! "gotrue", sha256: hex(body)}` with no `exp`.

use serde_json::{Value, json};
use std::net::SocketAddr;

pub const HOOK_SECRET: &str = "webhook-secret-0123456789abcdef";
pub const INSTANCE_ID: &str = "8f6e1f43-5a3e-4d8b-9c1a-000000000001";

/// A GoTrue user object.
pub fn user(id: &str, email: &str, updated_at: &str, roles: &[&str]) -> Value {
    json!({
        "id": id,
        "aud": "",
        "role": "",
        "email": email,
        "confirmed_at": "2026-01-01T00:00:00Z",
        "app_metadata": {"provider": "email", "roles": roles},
        "user_metadata": {"full_name": "Test User"},
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": updated_at,
    })
}

/// The body GoTrue sends for `event`.
pub fn body(event: &str, user: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"event": event, "instance_id": INSTANCE_ID, "user": user})).unwrap()
}

fn sha256_hex(body: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The signature claims for `body`, signed `iat` seconds from now.
pub fn claims(body: &[u8], iat_offset: i64) -> Value {
    json!({"iat": super::now() + iat_offset, "sub": INSTANCE_ID, "iss": "gotrue", "sha256": sha256_hex(body)})
}

/// Signs `claims` with `alg` and `secret`.
pub fn sign_claims(claims: &Value, alg: jsonwebtoken::Algorithm, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// The signature GoTrue would send for `body`.
pub fn signature(body: &[u8]) -> String {
    sign_claims(&claims(body, 0), jsonwebtoken::Algorithm::HS256, HOOK_SECRET)
}

/// POSTs one delivery; `(status, body)`.
pub async fn deliver(
    addr: SocketAddr,
    issuer: &str,
    event: &str,
    body: &[u8],
    signature: Option<&str>,
) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(format!("http://{addr}/hooks/netlify-identity/{issuer}"))
        .header("content-type", "application/json")
        .header("x-netlify-event", format!("identity_{event}"))
        .body(body.to_vec());
    if let Some(s) = signature {
        req = req.header("x-webhook-signature", s);
    }
    let resp = req.send().await.expect("webhook request");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// Sends `event` for `user`, signed properly.
pub async fn send(addr: SocketAddr, issuer: &str, event: &str, user: &Value) -> (u16, String) {
    let body = body(event, user);
    deliver(addr, issuer, event, &body, Some(&signature(&body))).await
}

/// The parsed JSON answer, `Value::Null` when empty.
pub fn answer(text: &str) -> Value {
    if text.is_empty() { Value::Null } else { serde_json::from_str(text).expect("JSON answer") }
}
