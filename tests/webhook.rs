//! The Netlify Identity webhook against both real backends (SQLite, and a
//! private PostgreSQL cluster): each event does exactly what
//! `netlify-webhooks.md` and the issue say, every signature failure writes
//! nothing, retries apply once, deletion is final, the app's roles are
//! answered with Netlify's other `app_metadata` kept.

mod common;

use common::db::{Db, postgres, sqlite};
use common::webhook::{
    self, HOOK_SECRET, INSTANCE_ID, answer, body, claims, deliver, send, sign_claims, user,
};
use common::{SECRET, TestServer};
use serde_json::{Value, json};

fn config(db: &Db, issuer_extra: &str) -> String {
    format!(
        r#"
[server]
grpc_addr = "127.0.0.1:0"
http_addr = "127.0.0.1:0"
webhook_addr = "127.0.0.1:0"

[store]
url = "{url}"
poll_interval = "200ms"

[[issuers]]
name = "site"
secret = "{SECRET}"
webhook_secret = "{HOOK_SECRET}"
webhook_instance_id = "{INSTANCE_ID}"
{issuer_extra}
"#,
        url = db.url()
    )
}

/// Waits until the store is migrated (the webhook answers 503 before).
async fn wait_for_store(server: &TestServer) {
    let hook = server.webhook.unwrap();
    for _ in 0..100 {
        let (status, _) =
            send(hook, "site", "login", &user("probe", "p@example.com", "2026-01-01T00:00:00Z", &[])).await;
        if status == 200 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the store never became writable");
}

async fn events_follow_the_reference(db: Db) {
    let server = TestServer::start(&config(&db, "")).await;
    let hook = server.webhook.unwrap();
    wait_for_store(&server).await;
    let t = |day: u32| format!("2026-02-{day:02}T10:00:00.000000Z");

    // signup creates the row; nothing is answered (the store holds no roles).
    let (status, text) = send(hook, "site", "signup", &user("u1", "a@example.com", &t(1), &[])).await;
    assert_eq!((status, answer(&text)), (200, Value::Null), "signup");
    assert_eq!(db.row("u1").await, Some(("a@example.com".into(), false)));

    // GoTrue retries with the same body and signature: applied once.
    let retried = body("signup", &user("u1", "a@example.com", &t(1), &[]));
    let sig = webhook::signature(&retried);
    let before = db.snapshot().await;
    for _ in 0..3 {
        assert_eq!(deliver(hook, "site", "signup", &retried, Some(&sig)).await.0, 200);
    }
    assert_eq!(db.snapshot().await, before, "a retried event changes nothing");

    // An event with an equal updated_at changes nothing.
    let (status, _) = send(hook, "site", "usermodified", &user("u1", "old@example.com", &t(1), &[])).await;
    assert_eq!(status, 200);
    assert_eq!(db.row("u1").await.unwrap().0, "a@example.com", "equal updated_at is a no-op");

    // The app assigns roles; login answers them, keeping provider and the rest.
    db.set_roles("u1", &["editor"]).await;
    let mut u = user("u1", "a@example.com", &t(2), &["netlify-role"]);
    u["app_metadata"]["authorization"] = json!({"source": "netlify"});
    let (status, text) = send(hook, "site", "login", &u).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer(&text),
        json!({"app_metadata": {"provider": "email", "roles": ["editor"], "authorization": {"source": "netlify"}}}),
        "login carries the app's roles and keeps Netlify's other keys"
    );

    // usermodified: applied, answered empty (a body would undo the admin's change).
    let (status, text) = send(hook, "site", "usermodified", &user("u1", "b@example.com", &t(3), &[])).await;
    assert_eq!((status, answer(&text)), (200, Value::Null), "usermodified");
    assert_eq!(db.row("u1").await.unwrap().0, "b@example.com");

    // An older usermodified arriving late does not undo the newer one.
    send(hook, "site", "usermodified", &user("u1", "stale@example.com", &t(2), &[])).await;
    assert_eq!(db.row("u1").await.unwrap().0, "b@example.com", "an older event never undoes a newer one");

    // userdeleted marks it; nothing resurrects it, older or newer.
    let (status, text) = send(hook, "site", "userdeleted", &user("u1", "b@example.com", &t(4), &[])).await;
    assert_eq!((status, answer(&text)), (200, Value::Null), "userdeleted");
    assert_eq!(db.row("u1").await, Some(("b@example.com".into(), true)));
    for (what, day) in [("an older signup", 1), ("a newer signup", 9)] {
        let (status, text) = send(hook, "site", "signup", &user("u1", "c@example.com", &t(day), &[])).await;
        assert_eq!((status, answer(&text)), (200, Value::Null), "{what}");
        assert_eq!(db.row("u1").await, Some(("b@example.com".into(), true)), "{what} does not resurrect");
    }
    // A deletion of a user never seen leaves a tombstone.
    send(hook, "site", "userdeleted", &user("u9", "z@example.com", &t(1), &[])).await;
    assert_eq!(db.row("u9").await.map(|r| r.1), Some(true));
    send(hook, "site", "signup", &user("u9", "z@example.com", &t(2), &[])).await;
    assert_eq!(db.row("u9").await.map(|r| r.1), Some(true), "ids are never reused");

    // Signup control: with an allow-list, validate refuses other addresses.
    db.exec("INSERT INTO authgate_signup_allow (issuer, pattern) VALUES ('site', '@example.com')").await;
    let (status, _) = send(hook, "site", "validate", &user("u2", "x@other.org", &t(1), &[])).await;
    assert_eq!(status, 403, "a refused signup");
    assert_eq!(db.row("u2").await, None, "a refused signup writes nothing");
    let (status, _) = send(hook, "site", "validate", &user("u3", "y@Example.com", &t(1), &[])).await;
    assert_eq!(status, 200, "an allowed domain (any case)");

    // Every signature failure: 401, nothing written.
    let good = body("login", &user("u4", "d@example.com", &t(1), &[]));
    let hs256 = jsonwebtoken::Algorithm::HS256;
    let mut wrong_iss = claims(&good, 0);
    wrong_iss["iss"] = "not-gotrue".into();
    let mut wrong_sub = claims(&good, 0);
    wrong_sub["sub"] = "another-instance".into();
    let mut oversize_user = user("u4", "d@example.com", &t(1), &[]);
    oversize_user["user_metadata"]["blob"] = "x".repeat(300 * 1024).into();
    let oversize = body("login", &oversize_user);
    let tampered = body("login", &user("u4", "evil@example.com", &t(1), &[]));
    let cases: Vec<(&str, Vec<u8>, Option<String>)> = vec![
        (
            "wrong secret",
            good.clone(),
            Some(sign_claims(&claims(&good, 0), hs256, "another-secret-0123456789abcdef")),
        ),
        (
            "HS512",
            good.clone(),
            Some(sign_claims(&claims(&good, 0), jsonwebtoken::Algorithm::HS512, HOOK_SECRET)),
        ),
        (
            "HS384",
            good.clone(),
            Some(sign_claims(&claims(&good, 0), jsonwebtoken::Algorithm::HS384, HOOK_SECRET)),
        ),
        ("iss not gotrue", good.clone(), Some(sign_claims(&wrong_iss, hs256, HOOK_SECRET))),
        ("another instance id", good.clone(), Some(sign_claims(&wrong_sub, hs256, HOOK_SECRET))),
        ("body digest of another body", tampered, Some(webhook::signature(&good))),
        ("iat too old", good.clone(), Some(sign_claims(&claims(&good, -3600), hs256, HOOK_SECRET))),
        ("iat ahead", good.clone(), Some(sign_claims(&claims(&good, 3600), hs256, HOOK_SECRET))),
        ("no signature header", good.clone(), None),
        ("garbage signature", good.clone(), Some("not.a.jws".into())),
        ("oversize body", oversize.clone(), Some(webhook::signature(&oversize))),
    ];
    let before = db.snapshot().await;
    for (what, body, sig) in cases {
        let (status, _) = deliver(hook, "site", "login", &body, sig.as_deref()).await;
        assert_eq!(status, 401, "{what}");
        assert_eq!(db.snapshot().await, before, "{what}: nothing written");
    }
    // A verified body that is not an event.
    let junk = br#"{"event": "login"}"#.to_vec();
    assert_eq!(deliver(hook, "site", "login", &junk, Some(&webhook::signature(&junk))).await.0, 400);
    // Every delivery is counted by event and outcome (on the private port).
    let samples = common::scrape(server.http).await;
    let count = |event: &str, outcome: &str| {
        common::sample(&samples, "authgate_webhook_events_total", &[("event", event), ("outcome", outcome)])
            .unwrap_or(0.0)
    };
    assert!(count("signup", "applied") >= 1.0, "signup applied");
    assert!(count("signup", "unchanged") >= 3.0, "retries unchanged");
    assert!(count("validate", "signup_refused") >= 1.0);
    assert!(count("unknown", "unauthorized") >= 11.0, "signature failures");
    // The webhook port serves only webhooks.
    assert_eq!(common::get(hook, "/metrics", &[]).await.0, 404);
    assert_eq!(send(hook, "other", "login", &user("u5", "e@example.com", &t(1), &[])).await.0, 404);
    server.stop().await;
}

#[tokio::test]
async fn webhook_events_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    events_follow_the_reference(sqlite(&dir).await).await;
}

#[tokio::test]
async fn webhook_events_on_postgres() {
    events_follow_the_reference(postgres().await).await;
}
