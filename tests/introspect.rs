//! Hosted Netlify Identity (`kind = "netlify_identity"`) through the real
//! gRPC server, against a GoTrue stand-in that follows netlify.md §1.4 and
//! counts upstream requests.

mod common;

use authgate::pb::VerifyRequest;
use common::gotrue::{FakeGoTrue, Mode};
use common::*;
use serde_json::{Value, json};
use std::time::Duration;
use tonic::Code;
use tonic_types::StatusExt;

/// The hosted instance's secret: only the stand-in knows it.
const HOSTED: &str = "hosted-identity-secret-nobody-has-0123";
const USER: &str = "6a2f41a3-c54c-4c0d-8a7e-2a1c0c7f9d11";

/// A call's outcome: granted, or (code, reason).
type Outcome = Result<(), (Code, String)>;

fn config(fake_url: &str, extra: &str) -> String {
    format!(
        r#"
[server]
grpc_addr = "127.0.0.1:0"
http_addr = "127.0.0.1:0"
[log]
level = "warn"
[[issuers]]
name = "hosted"
kind = "netlify_identity"
identity_url = "{fake_url}"
timeout = "500ms"
negative_cache_ttl = "1s"
{extra}
"#
    )
}

async fn setup(extra: &str) -> (FakeGoTrue, TestServer) {
    let fake = FakeGoTrue::start(HOSTED, Some("site")).await;
    fake.add_user(USER, "hosted@example.com", &["editor"]);
    let server = TestServer::start(&config(&fake.url(), extra)).await;
    (fake, server)
}

fn claims(sub: &str, exp_in: i64) -> Value {
    json!({"exp": now() + exp_in, "sub": sub, "email": "hosted@example.com",
           "app_metadata": {"provider": "email"}, "user_metadata": {}})
}

fn hosted_token(sub: &str, exp_in: i64) -> String {
    gotrue_token(&claims(sub, exp_in), HOSTED)
}

async fn verify(server: &TestServer, token: String) -> Result<authgate::pb::Identity, (Code, String)> {
    let mut client = server.client().await;
    client
        .verify(VerifyRequest { token, ..Default::default() })
        .await
        .map(|r| r.into_inner().identity.unwrap())
        .map_err(|s| (s.code(), s.get_details_error_info().map(|i| i.reason).unwrap_or_default()))
}

#[tokio::test]
async fn answers_are_mapped_and_cheap_rejections_cost_no_upstream_call() {
    let (fake, server) = setup("").await;
    let good = hosted_token(USER, 3600);
    let unauth = |r: &str| Err((Code::Unauthenticated, r.to_string()));
    let cases: Vec<(&str, String, Outcome, usize)> = vec![
        ("valid user", good.clone(), Ok(()), 1),
        ("same token again: served from the cache", good.clone(), Ok(()), 0),
        ("expired beyond the leeway: rejected locally", hosted_token(USER, -120), unauth("token_expired"), 0),
        (
            "expired within the leeway: GoTrue says expired",
            hosted_token(USER, -5),
            unauth("token_expired"),
            1,
        ),
        ("signed with another secret", gotrue_token(&claims(USER, 600), SECRET), unauth("bad_signature"), 1),
        (
            "deleted user",
            hosted_token("0b7e2c1d-7a55-4b7f-9d3e-5f8e1a2b3c4d", 600),
            unauth("user_not_found"),
            1,
        ),
        (
            "audience mismatch",
            gotrue_token(
                &{
                    let mut c = claims(USER, 601);
                    c["aud"] = json!("another-site");
                    c
                },
                HOSTED,
            ),
            unauth("wrong_audience"),
            1,
        ),
        ("sub is not a UUID", hosted_token("not-a-uuid", 600), unauth("invalid_token"), 1),
        (
            "alg none",
            raw_token(r#"{"alg":"none"}"#, &claims(USER, 600), b""),
            unauth("unsupported_algorithm"),
            0,
        ),
        (
            "RS256 header",
            raw_token(r#"{"alg":"RS256"}"#, &claims(USER, 600), &[1; 256]),
            unauth("unsupported_algorithm"),
            0,
        ),
        (
            "HS512",
            sign(jsonwebtoken::Algorithm::HS512, None, &claims(USER, 600), HOSTED),
            unauth("unsupported_algorithm"),
            0,
        ),
        ("garbage", "not-a-token".into(), unauth("malformed_token"), 0),
        ("no exp", gotrue_token(&json!({"sub": USER}), HOSTED), unauth("missing_claim"), 0),
        (
            "operator token",
            gotrue_token(&json!({"sub": "0", "exp": now() + 60}), HOSTED),
            unauth("system_principal"),
            0,
        ),
        ("oversized", format!("{good}{}", "A".repeat(17 * 1024)), unauth("token_too_large"), 0),
    ];
    let mut failures = Vec::new();
    for (what, token, want, calls) in cases {
        let before = fake.hits();
        let got = verify(&server, token).await;
        let got_calls = fake.hits() - before;
        let outcome = got.as_ref().map(|_| ()).map_err(|e| e.clone());
        if outcome != want || got_calls != calls {
            failures.push(format!(
                "{what}: got {outcome:?} with {got_calls} call(s), want {want:?} with {calls}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let id = verify(&server, good).await.unwrap();
    assert_eq!(id.subject, USER);
    assert_eq!(id.email, "hosted@example.com");
    assert_eq!(id.roles, ["editor"]);
    assert_eq!(id.provider, "email");
    assert_eq!(id.issuer, "hosted");
    assert_eq!(id.audiences, ["site"]);
    assert!(id.user_metadata.unwrap().fields.contains_key("full_name"));
}

#[tokio::test]
async fn outages_are_unavailable_never_a_bad_token_and_never_cached() {
    let (fake, server) = setup("").await;
    let unavailable = |r: &str| Err::<(), _>((Code::Unavailable, r.to_string()));
    let modes: Vec<(&str, Mode, Outcome)> = vec![
        ("500", Mode::Status(500), unavailable("upstream_unavailable")),
        ("503", Mode::Status(503), unavailable("upstream_unavailable")),
        (
            "slow beyond the timeout",
            Mode::Normal { delay: Duration::from_secs(2) },
            unavailable("upstream_unavailable"),
        ),
        ("200 that is not JSON", Mode::NonJson, unavailable("upstream_unavailable")),
        ("huge body", Mode::Huge(200_000), unavailable("upstream_unavailable")),
        (
            "404 that is not GoTrue's (site without Identity)",
            Mode::Html(404),
            unavailable("upstream_unavailable"),
        ),
        ("401 that is not GoTrue's", Mode::Html(401), unavailable("upstream_unavailable")),
        ("302 redirect", Mode::Status(302), unavailable("upstream_unavailable")),
        ("429", Mode::RateLimited(Some(7)), unavailable("upstream_rate_limited")),
    ];
    for (i, (what, mode, want)) in modes.into_iter().enumerate() {
        // A fresh token per mode, so the caches cannot answer.
        let token = hosted_token(USER, 3000 + i as i64);
        fake.set_mode(mode);
        let got = verify(&server, token.clone()).await.map(|_| ());
        assert_eq!(got, want, "{what}");
        fake.set_mode(Mode::Normal { delay: Duration::ZERO });
        let before = fake.hits();
        assert!(verify(&server, token).await.is_ok(), "{what}: the failure was cached");
        assert_eq!(fake.hits() - before, 1, "{what}");
    }

    // The retry delay reaches the caller.
    fake.set_mode(Mode::RateLimited(Some(7)));
    let status = server
        .client()
        .await
        .verify(VerifyRequest { token: hosted_token(USER, 2000), ..Default::default() })
        .await
        .unwrap_err();
    let info = status.get_details_error_info().unwrap();
    assert_eq!(info.metadata.get("retry_after_seconds").map(String::as_str), Some("7"));
    assert_eq!(status.get_details_retry_info().unwrap().retry_delay, Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn connection_refused_is_unavailable() {
    let server = TestServer::start(&config(&closed_port_url(), "")).await;
    let got = verify(&server, hosted_token(USER, 600)).await.map(|_| ());
    assert_eq!(got, Err((Code::Unavailable, "upstream_unavailable".into())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_misses_make_one_upstream_call() {
    let (fake, server) = setup("").await;
    fake.set_mode(Mode::Normal { delay: Duration::from_millis(300) });
    let token = hosted_token(USER, 3600);
    let channel = server.channel().await;
    // One call first: the client then knows the server's HTTP/2 settings
    // (max_streams_per_connection) and queues what is above them, instead
    // of racing the SETTINGS frame and meeting REFUSED_STREAM.
    let mut warm = authgate::pb::auth_service_client::AuthServiceClient::new(channel.clone());
    let _ = warm.verify(VerifyRequest { token: "warm.up.call".into(), ..Default::default() }).await;
    let calls = (0..200).map(|_| {
        let mut client = authgate::pb::auth_service_client::AuthServiceClient::new(channel.clone());
        let token = token.clone();
        tokio::spawn(async move { client.verify(VerifyRequest { token, ..Default::default() }).await })
    });
    let results = futures_join(calls.collect()).await;
    let failed: Vec<_> =
        results.iter().filter_map(|r| r.as_ref().ok().and_then(|r| r.as_ref().err())).take(3).collect();
    assert!(failed.is_empty(), "some calls failed: {failed:?}");
    assert_eq!(fake.hits(), 1);
}

async fn futures_join<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<Result<T, tokio::task::JoinError>> {
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await);
    }
    out
}

#[tokio::test]
async fn negative_entries_expire() {
    let (fake, server) = setup("").await;
    let forged = gotrue_token(&claims(USER, 600), SECRET);
    for _ in 0..5 {
        assert_eq!(
            verify(&server, forged.clone()).await.map(|_| ()),
            Err((Code::Unauthenticated, "bad_signature".into()))
        );
    }
    assert_eq!(fake.hits(), 1, "a flood of one bad token reached GoTrue");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(verify(&server, forged).await.is_err());
    assert_eq!(fake.hits(), 2, "the negative entry outlived negative_cache_ttl");
}

#[tokio::test]
async fn cached_identities_die_with_the_token_and_the_positive_ttl() {
    let (fake, server) = setup("leeway = \"0s\"\ncache_ttl = \"1s\"").await;
    // Entry bounded by exp.
    let exp = now() + 3;
    let short = gotrue_token(&json!({"exp": exp, "sub": USER}), HOSTED);
    assert!(verify(&server, short.clone()).await.is_ok());
    assert!(verify(&server, short.clone()).await.is_ok());
    assert_eq!(fake.hits(), 1);
    while now() < exp {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        verify(&server, short).await.map(|_| ()),
        Err((Code::Unauthenticated, "token_expired".into()))
    );

    // A deleted user is seen once the positive TTL has passed.
    let token = hosted_token(USER, 600);
    assert!(verify(&server, token.clone()).await.is_ok());
    fake.delete_user(USER);
    assert!(verify(&server, token.clone()).await.is_ok(), "served from the cache within cache_ttl");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        verify(&server, token).await.map(|_| ()),
        Err((Code::Unauthenticated, "user_not_found".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_concurrency_is_bounded() {
    let (fake, server) = setup("max_concurrent_requests = 1\nqueue_timeout = \"100ms\"").await;
    fake.set_mode(Mode::Normal { delay: Duration::from_millis(350) });
    // Two users at two addresses: each within its own share, so the
    // shared slots are what refuses the second.
    let from = |addr: &str| [("x-forwarded-for".to_string(), addr.to_string())].into();
    let a = tokio::spawn({
        let mut c = server.client().await;
        let token = hosted_token(USER, 3601);
        let headers = from("192.0.2.1");
        async move { c.verify(VerifyRequest { token, headers, ..Default::default() }).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let b = server
        .client()
        .await
        .verify(VerifyRequest {
            token: hosted_token(USER, 3602),
            headers: from("192.0.2.2"),
            ..Default::default()
        })
        .await
        .map(|_| ())
        .map_err(|s| (s.code(), s.get_details_error_info().map(|i| i.reason).unwrap_or_default()));
    assert_eq!(b, Err((Code::Unavailable, "upstream_busy".into())));
    assert!(a.await.unwrap().is_ok());
    assert_eq!(fake.hits(), 1);
}

#[test]
fn config_rules_for_hosted_identity() {
    let cases = [
        ("plain http to a public host", "identity_url = \"http://example.com\"", "must be https"),
        ("both URLs", "site_url = \"https://a.netlify.app\"\nidentity_url = \"https://b\"", "not both"),
        ("no URL", "", "needs site_url"),
        ("iss on hosted identity", "site_url = \"https://a.netlify.app\"\niss = \"x\"", "carry no `iss`"),
        (
            "secret is not a hosted-identity key",
            "site_url = \"https://a.netlify.app\"\nsecret = \"0123456789abcdef0\"",
            "unknown key",
        ),
    ];
    for (what, body, needle) in cases {
        let toml = format!("[[issuers]]\nname = \"h\"\nkind = \"netlify_identity\"\n{body}\n");
        let err = load_config(&toml).expect_err(what).to_string();
        assert!(err.contains(needle), "{what}: {err}");
    }
    let ok = load_config(
        "[[issuers]]\nname = \"h\"\nkind = \"netlify_identity\"\nsite_url = \"https://a.netlify.app/\"\n",
    )
    .unwrap();
    match &ok.issuers[0].kind {
        authgate::config::IssuerKind::NetlifyIdentity(n) => {
            assert_eq!(n.identity_url, "https://a.netlify.app/.netlify/identity");
            assert_eq!(n.cache_ttl, Duration::from_secs(120));
        }
        other => panic!("{other:?}"),
    }
}

/// A flood of distinct, well-formed forged tokens from one client (each
/// passes the local precheck and needs GoTrue) takes at most that client's
/// share of the upstream slots: the flood is refused `client_busy` beyond
/// it, whatever `X-Forwarded-For` prefix it writes, and a legitimate user
/// from another address is verified meanwhile (before: `upstream_busy`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_cannot_take_every_upstream_slot() {
    let (fake, server) =
        setup("max_concurrent_requests = 4\nmax_concurrent_per_client = 2\nqueue_timeout = \"300ms\"").await;
    fake.set_mode(Mode::Normal { delay: Duration::from_millis(400) });
    let forged = |i: usize| {
        gotrue_token(&json!({"exp": now() + 600, "sub": format!("forged-{i}")}), "not-the-hosted-secret-0123")
    };
    let flood: Vec<_> = (0..40)
        .map(|i| {
            let (addr, token) = (server.http, forged(i));
            tokio::spawn(async move {
                // A client-written prefix must not buy a fresh share.
                let xff = format!("198.51.100.{i}, 203.0.113.66");
                let bearer = format!("Bearer {token}");
                let (status, head, _) =
                    get(addr, "/forward-auth", &[("authorization", &bearer), ("x-forwarded-for", &xff)])
                        .await;
                (status, head.lines().find_map(|l| l.strip_prefix("x-authgate-reason: ")).map(str::to_owned))
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let bearer = format!("Bearer {}", hosted_token(USER, 600));
    let (status, head, _) =
        get(server.http, "/forward-auth", &[("authorization", &bearer), ("x-forwarded-for", "192.0.2.10")])
            .await;
    assert_eq!(status, 200, "the legitimate user during the flood: {head}");
    let mut reasons = std::collections::BTreeMap::<String, usize>::new();
    for f in flood {
        let (_, reason) = f.await.unwrap();
        *reasons.entry(reason.unwrap_or_default()).or_default() += 1;
    }
    assert!(reasons.get("client_busy").is_some_and(|n| *n >= 30), "{reasons:?}");
    assert!(!reasons.contains_key("upstream_busy"), "the flood exhausted the shared slots: {reasons:?}");
    assert!(fake.hits() <= 12, "the flood reached GoTrue {} times", fake.hits());
    let (status, head, _) = get(server.http, "/forward-auth", &[("authorization", &bearer)]).await;
    assert_eq!(status, 200, "{head}");
}
