//! Netlify Identity's outgoing webhook (GoTrue hooks), transport-free: the
//! signature is verified before the body is read as JSON, then the event
//! is applied to the user store and answered as GoTrue expects.
//!
//! Signature (`x-webhook-signature`): a compact JWS, HS256 only, signed
//! with the issuer's `webhook_secret`, claims `iss = "gotrue"`, `sha256` =
//! the lowercase hex SHA-256 of the exact body, `iat` (no `exp`: its age is
//! bounded by `webhook_max_age`, its lead by the issuer's leeway), `sub` =
//! the instance id when one is pinned.
//!
//! Answers: 401 for any signature failure (and a body over
//! [`MAX_BODY_BYTES`], which is never hashed), 400 for a verified body that
//! is not an event, 403 for a signup the allow-list refuses, 503 when the
//! store cannot be written (GoTrue retries twice at once), else 200: with
//! `{"app_metadata": …}` carrying the app's roles for `validate`, `signup`
//! and `login` when the store holds roles, empty otherwise (a body on
//! `usermodified` would undo the admin's change at Netlify).

use crate::config::{Config, OnStoreError, WebhookConfig};
use crate::core::claims::unix_now;
use crate::core::jws::{CompactJws, signature_buffer, strict_object};
use crate::keys::hmac::HmacKeySet;
use crate::obs::metrics::{Metrics, WebhookOutcome};
use crate::store::UserStore;
use crate::store::row::{Change, EventKind, NetlifyFields};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Largest body accepted. A GoTrue event is a user object: a few KiB, more
/// only with large metadata.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Largest signature header accepted.
const MAX_SIGNATURE_BYTES: usize = 4096;

/// One issuer's webhook, its key built once.
struct Hook {
    issuer: String,
    config: WebhookConfig,
    key: HmacKeySet,
    leeway_secs: i64,
}

/// The webhooks of every issuer that has one.
pub struct Webhooks {
    hooks: Vec<Hook>,
    store: Option<Arc<UserStore>>,
    metrics: Arc<Metrics>,
}

/// What to send back to GoTrue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAnswer {
    /// HTTP status.
    pub status: u16,
    /// A JSON body, when there is one.
    pub body: Option<String>,
}

impl WebhookAnswer {
    fn empty(status: u16) -> Self {
        Self { status, body: None }
    }

    fn error(status: u16, message: &str) -> Self {
        Self { status, body: Some(serde_json::json!({ "error": message }).to_string()) }
    }
}

impl Webhooks {
    /// From config: every issuer with a `webhook_secret`.
    pub fn new(config: &Config, store: Option<Arc<UserStore>>, metrics: Arc<Metrics>) -> Self {
        let hooks = config
            .issuers
            .iter()
            .filter_map(|i| {
                let w = i.store.webhook.as_ref()?;
                Some(Hook {
                    issuer: i.name.clone(),
                    config: w.clone(),
                    key: HmacKeySet::new(&w.secret, None),
                    leeway_secs: i.leeway.as_secs() as i64,
                })
            })
            .collect();
        Self { hooks, store, metrics }
    }

    /// The user store the webhooks write to.
    pub fn store(&self) -> Option<&Arc<UserStore>> {
        self.store.as_ref()
    }

    /// Handles one delivery to `/hooks/netlify-identity/<issuer>`; `body`
    /// is `None` when it was longer than [`MAX_BODY_BYTES`] (not read).
    pub async fn receive(&self, issuer: &str, signature: Option<&str>, body: Option<&[u8]>) -> WebhookAnswer {
        let Some(hook) = self.hooks.iter().find(|h| h.issuer == issuer) else {
            return WebhookAnswer::error(404, "no webhook for this issuer");
        };
        let (event, outcome, answer) = self.handle(hook, signature, body).await;
        self.metrics.webhook(event.map_or("unknown", EventKind::as_str), outcome);
        // Names and outcomes only: never the body or the signature.
        tracing::info!(
            issuer = hook.issuer.as_str(),
            event = event.map(EventKind::as_str),
            outcome = outcome.as_str(),
            status = answer.status,
            "webhook"
        );
        answer
    }

    async fn handle(
        &self,
        hook: &Hook,
        signature: Option<&str>,
        body: Option<&[u8]>,
    ) -> (Option<EventKind>, WebhookOutcome, WebhookAnswer) {
        let unauthorized = |why: &'static str| {
            tracing::debug!(issuer = hook.issuer.as_str(), why, "webhook signature refused");
            (None, WebhookOutcome::Unauthorized, WebhookAnswer::error(401, "invalid webhook signature"))
        };
        let Some(body) = body.filter(|b| b.len() <= MAX_BODY_BYTES) else {
            return unauthorized("body too large");
        };
        let Some(signature) = signature else { return unauthorized("no x-webhook-signature") };
        if let Err(why) = verify_signature(hook, signature, body, unix_now()) {
            return unauthorized(why);
        }
        let (kind, fields) = match parse_event(&hook.issuer, body) {
            Ok(Some(event)) => event,
            // An event added after this release: accepted and ignored, so
            // a signup or login never fails on it.
            Ok(None) => return (None, WebhookOutcome::Unchanged, WebhookAnswer::empty(204)),
            Err((kind, why)) => return (kind, WebhookOutcome::BadRequest, WebhookAnswer::error(400, why)),
        };
        let Some(store) = &self.store else {
            return (Some(kind), WebhookOutcome::StoreError, WebhookAnswer::error(503, "no user store"));
        };
        let store_error = |error: &dyn std::fmt::Display| {
            tracing::warn!(issuer = hook.issuer.as_str(), event = kind.as_str(), %error, "webhook: store unavailable");
            if kind == EventKind::Login && hook.config.on_store_error == OnStoreError::Allow {
                (Some(kind), WebhookOutcome::AllowedWithoutStore, WebhookAnswer::empty(204))
            } else {
                (Some(kind), WebhookOutcome::StoreError, WebhookAnswer::error(503, "user store unavailable"))
            }
        };
        if kind == EventKind::Validate {
            match store.signup_allowed(&hook.issuer, &fields.email).await {
                Ok(true) => {}
                Ok(false) => {
                    return (
                        Some(kind),
                        WebhookOutcome::SignupRefused,
                        WebhookAnswer::error(403, "signups from this address are not allowed"),
                    );
                }
                Err(e) => return store_error(&e),
            }
        }
        let app_metadata = fields.app_metadata.clone();
        let applied = match store.apply(&Change::Event(kind, fields)).await {
            Ok(a) => a,
            Err(e) => return store_error(&e),
        };
        let outcome = match applied.write {
            crate::store::row::Write::Nothing => WebhookOutcome::Unchanged,
            _ => WebhookOutcome::Applied,
        };
        let answers_roles = matches!(kind, EventKind::Validate | EventKind::Signup | EventKind::Login);
        let answer = match applied.roles {
            Some(roles) if answers_roles && !applied.deleted => {
                // GoTrue replaces app_metadata whole: keep every key it has
                // (provider above all) and set only the roles.
                let mut meta: Map<String, Value> = app_metadata;
                meta.insert("roles".into(), Value::from(roles));
                WebhookAnswer {
                    status: 200,
                    body: Some(serde_json::json!({ "app_metadata": meta }).to_string()),
                }
            }
            _ => WebhookAnswer::empty(200),
        };
        (Some(kind), outcome, answer)
    }
}

/// What a verified body is: the event and its user, `None` for an event
/// this release does not know; or why it is not one (with the event when
/// that much was read).
type Parsed = Result<Option<(EventKind, NetlifyFields)>, (Option<EventKind>, &'static str)>;

/// A verified body as an event.
fn parse_event(issuer: &str, body: &[u8]) -> Parsed {
    let mut event = strict_object(body).map_err(|_| (None, "the body is not one JSON object"))?;
    let Some(kind) = event.get("event").and_then(Value::as_str).map(str::to_string) else {
        return Err((None, "the body has no event"));
    };
    let Some(kind) = EventKind::parse(&kind) else { return Ok(None) };
    let Some(Value::Object(user)) = event.remove("user") else {
        return Err((Some(kind), "the body has no user object"));
    };
    let fields = NetlifyFields::from_gotrue_user(issuer, &user).map_err(|why| (Some(kind), why))?;
    Ok(Some((kind, fields)))
}

/// What a delivery to an issuer with `secret` (and `instance_id`) comes to
/// before the store is touched: the event, `Ok(None)` for an unknown one,
/// or why it is refused. For fuzzing.
#[doc(hidden)]
pub fn inspect(
    secret: &[u8],
    instance_id: Option<&str>,
    signature: &str,
    body: &[u8],
    now: i64,
) -> Result<Option<EventKind>, &'static str> {
    let hook = Hook {
        issuer: "fuzz".into(),
        config: WebhookConfig {
            secret: crate::config::Secret::new(secret.to_vec()),
            instance_id: instance_id.map(str::to_string),
            max_age: std::time::Duration::from_secs(300),
            on_store_error: OnStoreError::Deny,
        },
        key: HmacKeySet::new(&crate::config::Secret::new(secret.to_vec()), None),
        leeway_secs: 30,
    };
    if body.len() > MAX_BODY_BYTES {
        return Err("body too large");
    }
    verify_signature(&hook, signature, body, now)?;
    parse_event(&hook.issuer, body).map(|e| e.map(|(k, _)| k)).map_err(|(_, why)| why)
}

/// A valid `x-webhook-signature` for `body` (what GoTrue sends), for fuzzing.
#[doc(hidden)]
pub fn sign(secret: &[u8], instance_id: &str, body: &[u8], iat: i64) -> String {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let claims = serde_json::json!({"iat": iat, "sub": instance_id, "iss": "gotrue", "sha256": hex});
    let input = format!("{}.{}", b64(br#"{"alg":"HS256","typ":"JWT"}"#), b64(claims.to_string().as_bytes()));
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    format!("{input}.{}", b64(aws_lc_rs::hmac::sign(&key, input.as_bytes()).as_ref()))
}

/// Checks the `x-webhook-signature` JWS over `body`; the error names the
/// failed check (for a debug log line, never for the response).
fn verify_signature(hook: &Hook, signature: &str, body: &[u8], now: i64) -> Result<(), &'static str> {
    let jws = CompactJws::parse(signature.trim(), MAX_SIGNATURE_BYTES).map_err(|_| "not a compact JWS")?;
    if jws.header.alg != "HS256" {
        return Err("alg is not HS256");
    }
    let mut buf = signature_buffer();
    let sig = jws.signature(&mut buf).map_err(|_| "signature is not base64url")?;
    if hook.key.verify(jws.signing_input.as_bytes(), sig).is_none() {
        return Err("signature does not verify with the webhook secret");
    }
    let claims = strict_object(&jws.payload_bytes().map_err(|_| "payload is not base64url")?)
        .map_err(|_| "payload is not a JSON object")?;
    if claims.get("iss").and_then(Value::as_str) != Some("gotrue") {
        return Err("iss is not gotrue");
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    if claims.get("sha256").and_then(Value::as_str) != Some(hex.as_str()) {
        return Err("sha256 does not match the body");
    }
    let Some(iat) = claims.get("iat").and_then(Value::as_i64) else { return Err("no numeric iat") };
    if iat < now - hook.config.max_age.as_secs() as i64 {
        return Err("iat is older than webhook_max_age");
    }
    if iat > now + hook.leeway_secs {
        return Err("iat is in the future");
    }
    if let Some(id) = &hook.config.instance_id
        && claims.get("sub").and_then(Value::as_str) != Some(id.as_str())
    {
        return Err("sub is not the configured instance id");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_follows_the_signature_then_the_event() {
        let secret = b"webhook-secret-0123456789abcdef";
        let body = br#"{"event":"signup","user":{"id":"u1","updated_at":"2026-01-01T00:00:00Z"}}"#;
        let now = 1_800_000_000;
        let good = sign(secret, "i-1", body, now);
        let cases: Vec<(&str, Result<Option<EventKind>, &str>)> = vec![
            ("valid", inspect(secret, Some("i-1"), &good, body, now)),
            ("other instance", inspect(secret, Some("i-2"), &good, body, now)),
            ("other secret", inspect(b"another-secret-0123456789abcdef", None, &good, body, now)),
            ("other body", inspect(secret, None, &good, b"{}", now)),
            ("too old", inspect(secret, None, &good, body, now + 301)),
            (
                "unknown event",
                inspect(
                    secret,
                    None,
                    &sign(secret, "i", b"{\"event\":\"x\"}", now),
                    b"{\"event\":\"x\"}",
                    now,
                ),
            ),
        ];
        let want: Vec<Result<Option<EventKind>, &str>> = vec![
            Ok(Some(EventKind::Signup)),
            Err("sub is not the configured instance id"),
            Err("signature does not verify with the webhook secret"),
            Err("sha256 does not match the body"),
            Err("iat is older than webhook_max_age"),
            Ok(None),
        ];
        for ((what, got), want) in cases.into_iter().zip(want) {
            assert_eq!(got, want, "{what}");
        }
    }
}
