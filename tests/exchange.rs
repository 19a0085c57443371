//! Exchange through the real gRPC server; minted tokens verified by two
//! independent implementations (Python PyJWT and Node jose) that fetch our
//! `/.well-known/jwks.json` over HTTP.

mod common;

use authgate::config::MintAlg;
use authgate::pb::{ExchangeRequest, ExchangeResponse};
use common::*;
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use tonic::Code;
use tonic_types::StatusExt;

const ISSUER_URL: &str = "https://authgate.test";

/// A call's outcome: granted, or (code, reason).
type Outcome = Result<(), (Code, String)>;

/// Key files made at test time with the same code as `authgate keys generate`.
fn write_key(dir: &Path, name: &str, alg: MintAlg) -> String {
    let path = dir.join(name);
    std::fs::write(&path, authgate::testing::generate_pkcs8_pem(alg).unwrap()).unwrap();
    path.display().to_string()
}

/// `keys`: (kid, alg name, state, file).
fn exchange_config(keys: &[(&str, &str, &str, String)]) -> String {
    let mut out = format!("[exchange]\nissuer_url = \"{ISSUER_URL}\"\njwks_max_age = \"90s\"\n");
    for (kid, alg, state, file) in keys {
        out += &format!(
            "[[exchange.keys]]\nkid = \"{kid}\"\nalg = \"{alg}\"\nstate = \"{state}\"\nprivate_key_file = \"{file}\"\n"
        );
    }
    out += r#"
[[exchange.audiences]]
name = "orders"
scopes = ["orders:read", "orders:write"]
default_scopes = ["orders:read"]
role_scopes = { admin = ["orders:admin"] }
max_ttl = "10m"

[[exchange.audiences]]
name = "billing"
required_roles = ["finance"]
scopes = ["billing:read"]

[[exchange.audiences]]
name = "partners"
issuers = ["functions"]

[[exchange.audiences]]
name = "reports"
max_ttl = "2h"
allow_ttl_beyond_subject = true
"#;
    format!("{out}\n{}", standard_config())
}

fn member_token(exp_in: i64) -> String {
    gotrue_token(
        &json!({"exp": now() + exp_in, "sub": "7d1a9a4e-2f1c-4a55-9b0e-1b2f3c4d5e6f", "email": "m@example.com",
                "app_metadata": {"provider": "email", "roles": ["member"]}, "user_metadata": {}}),
        SECRET,
    )
}

fn request(token: &str, audience: &str) -> ExchangeRequest {
    ExchangeRequest { subject_token: token.into(), audience: audience.into(), ..Default::default() }
}

async fn exchange(server: &TestServer, req: ExchangeRequest) -> Result<ExchangeResponse, (Code, String)> {
    server
        .client()
        .await
        .exchange(req)
        .await
        .map(|r| r.into_inner())
        .map_err(|s| (s.code(), s.get_details_error_info().map(|i| i.reason).unwrap_or_default()))
}

/// Verifies `(token, aud)` pairs with PyJWT and with jose; both must agree.
fn verify_independently(jwks_url: &str, tokens: &[(String, &str)]) -> Vec<Value> {
    let input = Value::from(tokens.iter().map(|(t, a)| json!({"token": t, "aud": a})).collect::<Vec<_>>())
        .to_string();
    let python = std::env::var("AUTHGATE_TEST_PYTHON")
        .unwrap_or_else(|_| repo_root().join(".venv/bin/python").display().to_string());
    let runs = [
        (python, repo_root().join("tests/python/verify_minted.py")),
        ("node".to_string(), repo_root().join("tests/node/verify_minted.mjs")),
    ];
    let mut results: Vec<Vec<Value>> = Vec::new();
    for (program, script) in runs {
        let mut child = Command::new(&program)
            .arg(&script)
            .args([jwks_url, ISSUER_URL])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{program}: {e} (run scripts/test.sh)"));
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}: {}", script.display(), String::from_utf8_lossy(&out.stderr));
        results.push(
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
        );
    }
    let strip = |v: &Vec<Value>| v.iter().map(|r| r["ok"].clone()).collect::<Vec<_>>();
    assert_eq!(strip(&results[0]), strip(&results[1]), "PyJWT and jose disagree: {results:?}");
    results.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_policy_and_independent_verification() {
    let dir = tempfile::tempdir().unwrap();
    let keys = [
        ("k-ed", "EdDSA", "active", write_key(dir.path(), "ed.pem", MintAlg::EdDSA)),
        ("k-es", "ES256", "next", write_key(dir.path(), "es.pem", MintAlg::ES256)),
        ("k-rs", "RS256", "retired", write_key(dir.path(), "rs.pem", MintAlg::RS256)),
    ];
    let server = TestServer::start(&exchange_config(&keys)).await;
    let admin = gotrue_token(&gotrue_claims(), SECRET); // roles member, admin; exp in 1 h
    let member = member_token(3600);
    let denied = |c: Code, r: &str| Err::<(), _>((c, r.to_string()));
    let cases: Vec<(&str, ExchangeRequest, Outcome)> = vec![
        ("unknown audience", request(&admin, "nowhere"), denied(Code::InvalidArgument, "invalid_target")),
        (
            "scope outside the audience",
            ExchangeRequest {
                scopes: vec!["orders:read".into(), "orders:delete".into()],
                ..request(&admin, "orders")
            },
            denied(Code::PermissionDenied, "invalid_scope"),
        ),
        (
            "role scope without the role",
            ExchangeRequest { scopes: vec!["orders:admin".into()], ..request(&member, "orders") },
            denied(Code::PermissionDenied, "invalid_scope"),
        ),
        (
            "required role missing",
            request(&member, "billing"),
            denied(Code::PermissionDenied, "insufficient_role"),
        ),
        (
            "issuer not allowed",
            request(&member, "partners"),
            denied(Code::PermissionDenied, "issuer_not_allowed"),
        ),
        (
            "expired subject",
            request(&member_token(-600), "orders"),
            denied(Code::Unauthenticated, "token_expired"),
        ),
        (
            "forged subject",
            request(&gotrue_token(&gotrue_claims(), "not-the-secret-0123456789"), "orders"),
            denied(Code::Unauthenticated, "bad_signature"),
        ),
        ("no credential", request("", "orders"), denied(Code::Unauthenticated, "missing_credential")),
        (
            "unsupported subject token type",
            ExchangeRequest {
                subject_token_type: "urn:ietf:params:oauth:token-type:saml2".into(),
                ..request(&admin, "orders")
            },
            denied(Code::InvalidArgument, "invalid_request"),
        ),
    ];
    for (what, req, want) in cases {
        assert_eq!(exchange(&server, req).await.map(|_| ()), want, "{what}");
    }

    // Grants, and what they carry.
    let defaults = exchange(&server, request(&member, "orders")).await.unwrap();
    assert_eq!(defaults.scopes, ["orders:read"]);
    assert_eq!((defaults.key_id.as_str(), defaults.token_type.as_str()), ("k-ed", "Bearer"));
    assert_eq!(defaults.issued_token_type, "urn:ietf:params:oauth:token-type:jwt");
    assert!((595..=600).contains(&defaults.expires_in), "{}", defaults.expires_in);
    let admin_scopes = exchange(
        &server,
        ExchangeRequest {
            scopes: vec!["orders:write".into(), "orders:admin".into()],
            ..request(&admin, "orders")
        },
    )
    .await
    .unwrap();
    assert_eq!(admin_scopes.scopes, ["orders:write", "orders:admin"]);
    let short_subject = exchange(&server, request(&member_token(120), "orders")).await.unwrap();
    assert!(short_subject.expires_in <= 120, "TTL not bounded by the subject: {}", short_subject.expires_in);
    let requested = exchange(
        &server,
        ExchangeRequest {
            requested_ttl: Some(prost_types::Duration { seconds: 60, nanos: 0 }),
            ..request(&member, "orders")
        },
    )
    .await
    .unwrap();
    assert!((55..=60).contains(&requested.expires_in), "{}", requested.expires_in);
    let beyond = exchange(
        &server,
        ExchangeRequest {
            requested_ttl: Some(prost_types::Duration { seconds: 3600, nanos: 0 }),
            ..request(&member_token(120), "reports")
        },
    )
    .await
    .unwrap();
    assert!(beyond.expires_in > 3500, "allow_ttl_beyond_subject: {}", beyond.expires_in);
    // Delegation: a service's own authgate-minted token as the actor.
    let service = exchange(&server, request(&admin, "orders")).await.unwrap();
    let delegated = exchange(
        &server,
        ExchangeRequest { actor_token: service.access_token.clone(), ..request(&member, "reports") },
    )
    .await
    .unwrap();
    // Reuse: the same request within the first half of the lifetime.
    let again = exchange(&server, request(&member, "orders")).await.unwrap();
    assert_eq!(again.access_token, defaults.access_token);
    assert_ne!(admin_scopes.access_token, defaults.access_token);
    // Metrics: tokens signed per audience; the reused one is a mint-cache
    // hit, not a signature.
    let samples = scrape(server.http).await;
    let minted = |aud: &str| sample(&samples, "authgate_minted_tokens_total", &[("audience", aud)]);
    assert!(minted("orders").is_some_and(|n| n >= 3.0), "{samples:?}");
    assert!(minted("reports").is_some_and(|n| n >= 1.0), "{samples:?}");
    assert!(
        sample(&samples, "authgate_cache_requests_total", &[("cache", "mint"), ("result", "hit")])
            .is_some_and(|n| n >= 1.0)
    );

    // Published keys: next, active and retired; public members only.
    let (head, body) = http_get(server.http, "/.well-known/jwks.json").await;
    assert!(head.contains("cache-control: public, max-age=90"), "{head}");
    let jwks: Value = serde_json::from_str(&body).unwrap();
    let kids: Vec<&str> =
        jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids, ["k-ed", "k-es", "k-rs"]);
    let public = ["kty", "crv", "x", "y", "n", "e", "kid", "alg", "use"];
    for key in jwks["keys"].as_array().unwrap() {
        for field in key.as_object().unwrap().keys() {
            assert!(public.contains(&field.as_str()), "JWKS member `{field}` is not public: {key}");
        }
    }
    let (_, discovery) = http_get(server.http, "/.well-known/openid-configuration").await;
    let discovery: Value = serde_json::from_str(&discovery).unwrap();
    assert_eq!(discovery["issuer"], ISSUER_URL);
    assert_eq!(discovery["jwks_uri"], format!("{ISSUER_URL}/.well-known/jwks.json"));

    // Independent verification over HTTP.
    let jwks_url = format!("http://{}/.well-known/jwks.json", server.http);
    let results = verify_independently(
        &jwks_url,
        &[
            (defaults.access_token.clone(), "orders"),
            (delegated.access_token.clone(), "reports"),
            (defaults.access_token.clone(), "billing"),
            (format!("{}x", defaults.access_token), "orders"),
        ],
    );
    assert_eq!(results[0]["ok"], true, "{results:?}");
    assert_eq!(results[0]["sub"], "7d1a9a4e-2f1c-4a55-9b0e-1b2f3c4d5e6f");
    assert_eq!(
        (results[0]["kid"].as_str(), results[0]["scope"].as_str()),
        (Some("k-ed"), Some("orders:read"))
    );
    assert_eq!(results[1]["act"], json!({"sub": "775a5344-0c6d-4dc6-9ac7-d2d646e071ec"}), "{results:?}");
    assert_eq!(results[1]["sub"], "7d1a9a4e-2f1c-4a55-9b0e-1b2f3c4d5e6f");
    assert_eq!(results[2]["ok"], false, "a token for another audience verified");
    assert_eq!(results[3]["ok"], false, "a tampered token verified");

    // Without [exchange] the RPC says so.
    let plain = TestServer::start(&standard_config()).await;
    assert_eq!(
        exchange(&plain, request(&admin, "orders")).await.map(|_| ()),
        Err((Code::Unimplemented, "exchange_disabled".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_next_active_retired_with_every_algorithm() {
    for (alg_name, alg) in [("EdDSA", MintAlg::EdDSA), ("ES256", MintAlg::ES256), ("RS256", MintAlg::RS256)] {
        let dir = tempfile::tempdir().unwrap();
        let k1 = write_key(dir.path(), "k1.pem", alg);
        let k2 = write_key(dir.path(), "k2.pem", alg);
        let member = member_token(3600);
        // Before: k1 signs, k2 is published in advance.
        let before = TestServer::start(&exchange_config(&[
            ("k1", alg_name, "active", k1.clone()),
            ("k2", alg_name, "next", k2.clone()),
        ]))
        .await;
        let old = exchange(&before, request(&member, "orders")).await.unwrap();
        assert_eq!(old.key_id, "k1");
        let (_, jwks) = http_get(before.http, "/.well-known/jwks.json").await;
        assert!(jwks.contains("\"k2\""), "{alg_name}: next key not published before it signs");
        // After: k2 signs, k1 retired but still published; minted-token reuse
        // never hands out the k1 token for the same request.
        let after = TestServer::start(&exchange_config(&[
            ("k1", alg_name, "retired", k1),
            ("k2", alg_name, "active", k2),
        ]))
        .await;
        let new = exchange(&after, request(&member, "orders")).await.unwrap();
        assert_eq!(new.key_id, "k2", "{alg_name}");
        assert_ne!(new.access_token, old.access_token);
        let jwks_url = format!("http://{}/.well-known/jwks.json", after.http);
        let results =
            verify_independently(&jwks_url, &[(old.access_token, "orders"), (new.access_token, "orders")]);
        assert!(results.iter().all(|r| r["ok"] == true), "{alg_name}: {results:?}");
        assert_eq!((results[0]["kid"].as_str(), results[1]["kid"].as_str()), (Some("k1"), Some("k2")));
    }
}

/// The mint cache answers an identity from the identity cache by its
/// address and one verified afresh by its content: every identical request
/// gets the one token, whichever way it was found, and only the first signs.
#[tokio::test]
async fn identical_requests_share_one_minted_token() {
    let dir = tempfile::tempdir().unwrap();
    let key = write_key(dir.path(), "ed.pem", MintAlg::EdDSA);
    let server = TestServer::start(&exchange_config(&[("k-ed", "EdDSA", "active", key)])).await;
    let member = member_token(3600);
    let mut tokens = Vec::new();
    // 1: verified and minted; 2: identity cached, found by content, held by
    // address; 3, 4: found by address.
    for _ in 0..4 {
        tokens.push(exchange(&server, request(&member, "orders")).await.unwrap().access_token);
    }
    assert!(tokens.iter().all(|t| *t == tokens[0]), "one token for identical requests");
    let other = exchange(
        &server,
        ExchangeRequest { scopes: vec!["orders:write".into()], ..request(&member, "orders") },
    )
    .await
    .unwrap();
    assert_ne!(other.access_token, tokens[0], "another scope is another token");
    let samples = scrape(server.http).await;
    let count = |name: &str, labels: &[(&str, &str)]| sample(&samples, name, labels).unwrap_or(0.0);
    assert_eq!(count("authgate_minted_tokens_total", &[("audience", "orders")]), 2.0, "{samples:?}");
    let mint = |result| count("authgate_cache_requests_total", &[("cache", "mint"), ("result", result)]);
    assert_eq!((mint("hit"), mint("miss")), (3.0, 2.0), "{samples:?}");
}

/// Actor tokens authgate minted itself are checked with `exchange.leeway`
/// (default 30 s, not the library's 60 s) and must be for one of authgate's
/// audiences; before, one that expired 40 s ago still delegated.
#[tokio::test]
async fn actor_tokens_get_authgate_leeway_and_audience() {
    let dir = tempfile::tempdir().unwrap();
    let key = write_key(dir.path(), "ed.pem", MintAlg::EdDSA);
    let server = TestServer::start(&exchange_config(&[("k-ed", "EdDSA", "active", key.clone())])).await;
    let signing = jsonwebtoken::EncodingKey::from_ed_pem(&std::fs::read(&key).unwrap()).unwrap();
    let actor = |claims: Value| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some("k-ed".into());
        jsonwebtoken::encode(&header, &claims, &signing).unwrap()
    };
    let member = member_token(600);
    let base = json!({"iss": ISSUER_URL, "sub": "svc-orders", "aud": "orders"});
    let with = |extra: Value| {
        let mut c = base.clone();
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        actor(c)
    };
    let cases: [(&str, String, Outcome); 6] = [
        ("fresh, for a configured audience", with(json!({"exp": now() + 60})), Ok(())),
        ("expired 10 s ago: within the 30 s leeway", with(json!({"exp": now() - 10})), Ok(())),
        (
            "expired 40 s ago: past the leeway",
            with(json!({"exp": now() - 40})),
            Err((Code::Unauthenticated, "token_expired".into())),
        ),
        (
            "not valid for another 120 s",
            with(json!({"exp": now() + 600, "nbf": now() + 120})),
            Err((Code::Unauthenticated, "token_not_yet_valid".into())),
        ),
        (
            "for an audience authgate does not serve",
            with(json!({"exp": now() + 60, "aud": "elsewhere"})),
            Err((Code::Unauthenticated, "wrong_audience".into())),
        ),
        (
            "no audience",
            actor(json!({"iss": ISSUER_URL, "sub": "svc", "exp": now() + 60})),
            Err((Code::Unauthenticated, "missing_claim".into())),
        ),
    ];
    for (description, actor_token, want) in cases {
        let got = exchange(&server, ExchangeRequest { actor_token, ..request(&member, "reports") }).await;
        assert_eq!(got.map(|_| ()), want, "{description}");
    }
}
