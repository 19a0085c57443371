//! A GoTrue stand-in for `GET /user` (real GoTrue cannot be built here),
//! following netlify.md §1.4 to the letter: the Bearer regex
//! `^(?:B|b)earer (\S+$)`, HS256 only, golang-jwt v4 error texts, bodies
//! `{"code":…,"msg":…}`, 400 on audience mismatch or a non-UUID `sub`, 404
//! for a deleted user. Served over real HTTP on 127.0.0.1:0; counts requests
//! and can be switched into failure modes.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the stand-in answers.
#[derive(Debug, Clone)]
pub enum Mode {
    /// As GoTrue would, after `delay`.
    Normal { delay: Duration },
    /// This status with GoTrue's error body.
    Status(u16),
    /// A 200 whose body is HTML.
    NonJson,
    /// This status with an HTML body (e.g. a site without Identity).
    Html(u16),
    /// A 200 with a body of this many bytes (valid JSON padding).
    Huge(usize),
    /// 429 with this Retry-After.
    RateLimited(Option<u64>),
}

pub struct FakeGoTrue {
    pub addr: SocketAddr,
    state: Arc<Inner>,
}

struct Inner {
    secret: String,
    aud: Option<String>,
    users: Mutex<HashMap<String, Value>>,
    mode: Mutex<Mode>,
    hits: AtomicUsize,
}

impl FakeGoTrue {
    pub async fn start(secret: &str, aud: Option<&str>) -> FakeGoTrue {
        let state = Arc::new(Inner {
            secret: secret.to_string(),
            aud: aud.map(str::to_owned),
            users: Mutex::new(HashMap::new()),
            mode: Mutex::new(Mode::Normal { delay: Duration::ZERO }),
            hits: AtomicUsize::new(0),
        });
        let app = axum::Router::new().route("/user", axum::routing::get(user)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeGoTrue { addr, state }
    }

    /// The Identity base URL to configure (`identity_url`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds a user as GoTrue's users table would return it.
    pub fn add_user(&self, id: &str, email: &str, roles: &[&str]) {
        let user = json!({
            "id": id, "aud": self.state.aud.clone().unwrap_or_default(), "role": "", "email": email,
            "confirmed_at": "2026-01-01T00:00:00Z",
            "app_metadata": {"provider": "email", "roles": roles},
            "user_metadata": {"full_name": "Hosted User"},
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"
        });
        self.state.users.lock().unwrap().insert(id.to_string(), user);
    }

    pub fn delete_user(&self, id: &str) {
        self.state.users.lock().unwrap().remove(id);
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    /// Requests served so far.
    pub fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }
}

fn error(status: u16, msg: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap();
    (code, [("content-type", "application/json")], json!({"code": status, "msg": msg}).to_string())
        .into_response()
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices()
            .all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() })
}

async fn user(State(st): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    st.hits.fetch_add(1, Ordering::SeqCst);
    let mode = st.mode.lock().unwrap().clone();
    match mode {
        Mode::Normal { delay } => tokio::time::sleep(delay).await,
        Mode::Status(s) => return error(s, "Internal server error"),
        Mode::NonJson => return (StatusCode::OK, "<html>Page not found</html>").into_response(),
        Mode::Html(s) => return (StatusCode::from_u16(s).unwrap(), "<html>Not Found</html>").into_response(),
        Mode::Huge(n) => {
            let body = format!("{{\"id\":\"x\",\"pad\":\"{}\"}}", "a".repeat(n));
            return (StatusCode::OK, [("content-type", "application/json")], body).into_response();
        }
        Mode::RateLimited(after) => {
            let mut resp = error(429, "Rate limit exceeded");
            if let Some(s) = after {
                resp.headers_mut().insert("retry-after", s.to_string().parse().unwrap());
            }
            return resp;
        }
    }
    // api/auth.go: `^(?:B|b)earer (\S+$)`
    let authz = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    let token = match authz.strip_prefix("Bearer ").or_else(|| authz.strip_prefix("bearer ")) {
        Some(t) if !t.is_empty() && !t.contains(char::is_whitespace) => t,
        _ => return error(401, "This endpoint requires a Bearer token"),
    };
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.leeway = 0;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let key = jsonwebtoken::DecodingKey::from_secret(st.secret.as_bytes());
    let claims = match jsonwebtoken::decode::<Value>(token, &key, &validation) {
        Ok(d) => d.claims,
        Err(e) => {
            use jsonwebtoken::errors::ErrorKind;
            let text = match e.kind() {
                ErrorKind::ExpiredSignature => "token is expired by 1m0s".to_string(),
                ErrorKind::InvalidSignature => "signature is invalid".to_string(),
                ErrorKind::InvalidAlgorithm => "signing method HS512 is invalid".to_string(),
                _ => "token contains an invalid number of segments".to_string(),
            };
            return error(401, &format!("Invalid token: {text}"));
        }
    };
    let token_aud = claims.get("aud").and_then(Value::as_str).unwrap_or("");
    let request_aud =
        headers.get("x-jwt-aud").and_then(|v| v.to_str().ok()).map(str::to_owned).or(st.aud.clone());
    if let Some(aud) = request_aud
        && !token_aud.is_empty()
        && token_aud != aud
    {
        return error(400, "Token audience doesn't match request audience");
    }
    let sub = claims.get("sub").and_then(Value::as_str).unwrap_or("");
    if !is_uuid(sub) {
        return error(400, "Could not read User ID claim");
    }
    match st.users.lock().unwrap().get(sub) {
        Some(u) => (StatusCode::OK, [("content-type", "application/json")], u.to_string()).into_response(),
        None => error(404, "User not found"),
    }
}
