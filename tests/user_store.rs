//! The user store on the request path: roles and claims the app writes
//! with its own SQL reach Verify, ext_authz/forward-auth headers and
//! Exchange tokens within a bound; granted users get just-in-time rows;
//! replicas on one PostgreSQL follow each other's and the app's writes,
//! also when the notification is lost; an outage fails closed after
//! `store.max_staleness` and recovers.

mod common;

use authgate::pb::{ExchangeRequest, VerifyRequest};
use common::db::{Db, postgres, sqlite};
use common::{SECRET, TestServer, gotrue_claims, gotrue_token, reason};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn token(sub: &str) -> String {
    let mut c = gotrue_claims();
    c["sub"] = sub.into();
    gotrue_token(&c, SECRET)
}

fn config(db: &Db, extra: &str) -> String {
    format!(
        r#"
[server]
grpc_addr = "127.0.0.1:0"
http_addr = "127.0.0.1:0"

[store]
url = "{url}"
poll_interval = "200ms"
max_staleness = "2s"

[[issuers]]
name = "site"
secret = "{SECRET}"
roles_source = "store"
default = true

[[issuers]]
name = "both"
secret = "{SECRET}"
roles_source = "both"
{extra}
"#,
        url = db.url()
    )
}

async fn verify(
    server: &TestServer,
    token: &str,
    issuer: &str,
) -> Result<authgate::pb::Identity, tonic::Status> {
    let req = VerifyRequest { token: token.into(), issuer: issuer.into(), ..Default::default() };
    server.client().await.verify(req).await.map(|r| r.into_inner().identity.expect("identity"))
}

fn claims_json(id: &authgate::pb::Identity) -> Value {
    let fields = id.claims.as_ref().map(|s| s.fields.clone()).unwrap_or_default();
    fn value(v: &prost_types::Value) -> Value {
        use prost_types::value::Kind;
        match &v.kind {
            Some(Kind::StringValue(s)) => s.clone().into(),
            Some(Kind::NumberValue(n)) => json!(n),
            Some(Kind::BoolValue(b)) => (*b).into(),
            Some(Kind::StructValue(s)) => {
                s.fields.iter().map(|(k, v)| (k.clone(), value(v))).collect::<serde_json::Map<_, _>>().into()
            }
            Some(Kind::ListValue(l)) => l.values.iter().map(value).collect::<Vec<_>>().into(),
            _ => Value::Null,
        }
    }
    fields.iter().map(|(k, v)| (k.clone(), value(v))).collect::<serde_json::Map<_, _>>().into()
}

async fn wait_ready(server: &TestServer) {
    let ok = common::within(Duration::from_secs(10), || async {
        server.health("").await == tonic_health::pb::health_check_response::ServingStatus::Serving
    })
    .await;
    assert!(ok.is_some(), "never ready");
}

#[tokio::test]
async fn app_roles_and_claims_reach_every_adapter_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(&dir).await;
    let exchange = common::exchange_section(dir.path())
        .replace("[exchange]\n", "[exchange]\nclaims_namespace = \"https://app.example/claims\"\n");
    let server = TestServer::start(&config(&db, &exchange)).await;
    wait_ready(&server).await;
    let t = token("u-sqlite");

    // No row yet: roles come from the store, which has none.
    let id = verify(&server, &t, "site").await.expect("granted");
    assert_eq!(id.roles, Vec::<String>::new(), "roles_source = store ignores the token's roles");
    // The granted user gets a just-in-time row, in the background.
    let seen = common::within(Duration::from_secs(3), || async { db.row("u-sqlite").await.is_some() }).await;
    assert!(seen.is_some(), "a just-in-time row appears");
    assert_eq!(db.row("u-sqlite").await, Some(("test@test.com".into(), false)));

    // The app writes roles and claims with its own SQL.
    db.set_roles("u-sqlite", &["editor"]).await;
    db.exec(r#"UPDATE authgate_users SET claims = '{"plan": "pro", "sub": "forged", "org": {"id": 7}}' WHERE subject = 'u-sqlite'"#)
        .await;
    let took = common::within(Duration::from_secs(3), || async {
        let id = verify(&server, &t, "site").await.unwrap();
        id.roles == ["editor"] && claims_json(&id) == json!({"plan": "pro", "org": {"id": 7.0}})
    })
    .await;
    assert!(took.is_some(), "the app's change reaches Verify (reserved `sub` left out)");
    println!("sqlite: app write to Verify in {took:?}");

    // roles_source = both: the union, on the `both` issuer's own row.
    verify(&server, &t, "both").await.unwrap();
    common::within(Duration::from_secs(3), || async { db.snapshot().await.contains("both,u-sqlite") })
        .await
        .expect("row");
    db.set_roles_of("both", "u-sqlite", &["editor"]).await;
    let union = common::within(Duration::from_secs(3), || async {
        verify(&server, &t, "both").await.unwrap().roles == ["member", "admin", "editor"]
    })
    .await;
    assert!(union.is_some(), "both = token roles then the app's");

    // Forward-auth carries the claims header (base64url JSON).
    let resp = reqwest::Client::new()
        .get(format!("http://{}/forward-auth", server.http))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let header =
        resp.headers().get("x-authgate-claims").expect("claims header").to_str().unwrap().to_string();
    use base64::Engine;
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&decoded).unwrap(), json!({"plan": "pro", "org": {"id": 7}}));

    // Envoy ext_authz: the claims in dynamic_metadata.
    use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
    use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};
    let check = CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(HttpRequest {
                    headers: [("authorization".to_string(), format!("Bearer {t}"))].into_iter().collect(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    };
    let mut authz = envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient::new(
        server.channel().await,
    );
    let resp = authz.check(check).await.unwrap().into_inner();
    let metadata = resp.dynamic_metadata.expect("dynamic metadata");
    let claims = format!("{:?}", metadata.fields.get("claims").expect("claims in dynamic_metadata"));
    assert!(claims.contains("\"plan\"") && claims.contains("StringValue(\"pro\")"), "{claims}");

    // Exchange puts them under the configured namespace.
    let minted = server
        .client()
        .await
        .exchange(ExchangeRequest {
            subject_token: t.clone(),
            audience: "orders".into(),
            ..Default::default()
        })
        .await
        .expect("exchange")
        .into_inner();
    let payload = minted.access_token.split('.').nth(1).unwrap();
    let payload: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap())
            .unwrap();
    assert_eq!(payload["https://app.example/claims"], json!({"plan": "pro", "org": {"id": 7}}));
    assert_eq!(payload["roles"], json!(["editor"]));
    assert_eq!(payload["sub"], "u-sqlite", "an app claim never overrides a registered one");
    server.stop().await;
}

/// p50 and max of a set of durations.
fn summary(mut d: Vec<Duration>) -> (Duration, Duration) {
    d.sort();
    (d[d.len() / 2], d[d.len() - 1])
}

#[tokio::test]
async fn replicas_on_one_postgres_follow_the_app_and_survive_a_lost_notification() {
    let db = postgres().await;
    // The default poll interval (1s): the bound when a notification is lost.
    let toml = config(&db, "").replace("poll_interval = \"200ms\"\nmax_staleness = \"2s\"\n", "");
    let a = TestServer::start(&toml).await;
    let b = TestServer::start(&toml).await;
    wait_ready(&a).await;
    wait_ready(&b).await;
    let t = token("u-pg");
    verify(&a, &t, "site").await.unwrap();
    common::within(Duration::from_secs(3), || async { db.row("u-pg").await.is_some() })
        .await
        .expect("just-in-time row");
    // Both replicas have the row cached now.
    verify(&b, &t, "site").await.unwrap();

    let mut latencies = Vec::new();
    for i in 0..20 {
        let role = format!("r{i}");
        let started = Instant::now();
        db.set_roles("u-pg", &[&role]).await;
        for server in [&a, &b] {
            let ok = common::within(Duration::from_secs(5), || async {
                verify(server, &t, "site").await.unwrap().roles == [role.as_str()]
            })
            .await;
            assert!(ok.is_some(), "replica sees change {i}");
        }
        latencies.push(started.elapsed());
    }
    let (p50, max) = summary(latencies);
    println!("postgres: app write to both replicas: p50 {p50:?}, max {max:?} (20 changes)");
    assert!(max < Duration::from_secs(2), "notified changes arrive well within the poll bound: {max:?}");

    // Lose the notifications: cut the listening connections, write at once.
    let killed = db
        .query_i64("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'authgate-listen'")
        .await;
    assert_eq!(killed, 2, "both replicas listen");
    let started = Instant::now();
    db.set_roles("u-pg", &["after-loss"]).await;
    for server in [&a, &b] {
        let ok = common::within(Duration::from_secs(5), || async {
            verify(server, &t, "site").await.unwrap().roles == ["after-loss"]
        })
        .await;
        assert!(ok.is_some(), "a lost notification only delays");
    }
    println!("postgres: after the listeners were terminated: {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(3), "within poll_interval (1s) and slack");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_store_outage_fails_closed_after_max_staleness_then_recovers() {
    let db = postgres().await;
    let toml =
        config(&db, "webhook_secret = \"webhook-secret-0123456789abcdef\"\non_store_error = \"allow\"")
            .replace("[server]\n", "[server]\nwebhook_addr = \"127.0.0.1:0\"\n")
            // The roles' own failure policy (revocations have theirs: tests/revocation.rs).
            .replace("max_staleness = \"2s\"\n", "max_staleness = \"2s\"\nrevocations = false\n");
    let server = TestServer::start(&toml).await;
    wait_ready(&server).await;
    let t = token("u-out");
    verify(&server, &t, "site").await.unwrap();
    let Db::Postgres(pg) = &db else { unreachable!() };
    pg.stop_server();
    let stopped = Instant::now();

    // Within max_staleness, the cached row still answers.
    verify(&server, &t, "site").await.expect("cached answer while the feed is fresh");
    // The webhook cannot write: 503 (GoTrue retries), or 204 for login with on_store_error = allow.
    let hook = server.webhook.unwrap();
    let u = common::webhook::user("u-out", "o@example.com", "2026-03-01T00:00:00Z", &[]);
    assert_eq!(common::webhook::send(hook, "both", "signup", &u).await.0, 503);
    assert_eq!(common::webhook::send(hook, "both", "login", &u).await.0, 204);

    // After max_staleness (2s): store_unavailable, not ready.
    let failed = common::within(Duration::from_secs(5), || async {
        verify(&server, &t, "site")
            .await
            .err()
            .is_some_and(|s| reason(&s).as_deref() == Some("store_unavailable"))
    })
    .await;
    assert!(failed.is_some(), "fails closed");
    // The last good read was at most one poll (200ms) before the stop.
    assert!(
        stopped.elapsed() >= Duration::from_millis(1700),
        "not before max_staleness: {:?}",
        stopped.elapsed()
    );
    let unready = common::within(Duration::from_secs(2), || async {
        server.health("").await == tonic_health::pb::health_check_response::ServingStatus::NotServing
    })
    .await;
    assert!(unready.is_some(), "readiness follows the store");

    // Recovery is automatic.
    pg.start_server();
    let back =
        common::within(Duration::from_secs(10), || async { verify(&server, &t, "site").await.is_ok() }).await;
    assert!(back.is_some(), "recovers");
    wait_ready(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn hosted_identity_answers_reconcile_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(&dir).await;
    let hosted = "hosted-identity-secret-0123456789";
    let fake = common::gotrue::FakeGoTrue::start(hosted, None).await;
    let toml = format!(
        r#"
[server]
grpc_addr = "127.0.0.1:0"
http_addr = "127.0.0.1:0"

[store]
url = "{url}"
poll_interval = "200ms"

[[issuers]]
name = "hosted"
kind = "netlify_identity"
identity_url = "{fake}"
negative_cache_ttl = "0s"
"#,
        url = db.url(),
        fake = fake.url()
    );
    let server = TestServer::start(&toml).await;
    wait_ready(&server).await;
    let sub = "6d2f5d4e-8f0a-4c59-9d1e-2b7a4c3e9f10";
    fake.add_user(sub, "hosted@example.com", &["member"]);
    let mut claims = gotrue_claims();
    claims["sub"] = sub.into();
    let t = gotrue_token(&claims, hosted);
    verify(&server, &t, "").await.expect("granted by GoTrue");
    // The /user answer (with its updated_at) fills the row.
    let filled = common::within(Duration::from_secs(3), || async {
        db.snapshot().await.contains(
            "hosted,6d2f5d4e-8f0a-4c59-9d1e-2b7a4c3e9f10,hosted@example.com,,2026-01-01T00:00:00.000000Z",
        )
    })
    .await;
    assert!(filled.is_some(), "row from GoTrue's answer: {}", db.snapshot().await);

    // Deleted at Netlify, its webhook lost: GoTrue's 404 marks it deleted.
    fake.delete_user(sub);
    claims["exp"] = (common::now() + 1800).into();
    let err = verify(&server, &gotrue_token(&claims, hosted), "").await.unwrap_err();
    assert_eq!(reason(&err).as_deref(), Some("user_not_found"));
    let deleted =
        common::within(Duration::from_secs(3), || async { db.row(sub).await.is_some_and(|r| r.1) }).await;
    assert!(deleted.is_some(), "user_not_found marks the row deleted");
    server.stop().await;
}
