//! The webhook port: `POST /hooks/netlify-identity/<issuer>` and nothing
//! else, so the one listener that faces the internet serves no metrics,
//! no forward-auth and no health. It only translates: the body (read up to
//! its bound) and `x-webhook-signature` go to [`crate::gate::webhook`].

use crate::gate::live::Live;
use crate::gate::webhook::{MAX_BODY_BYTES, WebhookAnswer};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use std::sync::Arc;
use std::time::Duration;

/// GoTrue gives up on an attempt after 5 s; answering 503 before that lets
/// it retry at once instead.
const ANSWER_WITHIN: Duration = Duration::from_millis(4500);

/// The webhook port's router.
pub fn router(live: Arc<Live>) -> Router {
    Router::new()
        .route("/hooks/netlify-identity/{issuer}", post(receive))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .with_state(live)
}

async fn receive(
    State(live): State<Arc<Live>>,
    Path(issuer): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let generation = live.get();
    let mut signatures = headers.get_all("x-webhook-signature").iter();
    // Two signatures are no signature: which one would be checked?
    let signature = match (signatures.next(), signatures.next()) {
        (Some(v), None) => v.to_str().ok(),
        _ => None,
    };
    let work = async {
        let body = axum::body::to_bytes(body, MAX_BODY_BYTES).await.ok();
        generation.webhooks.receive(&issuer, signature, body.as_deref()).await
    };
    let answer = tokio::time::timeout(ANSWER_WITHIN, work)
        .await
        .unwrap_or_else(|_| WebhookAnswer { status: 503, body: Some(r#"{"error":"timed out"}"#.into()) });
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match answer.body {
        Some(body) => (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        None => status.into_response(),
    }
}
