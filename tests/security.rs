//! Attacks from the adversarial review of authgate's own surface, each
//! reproduced against the real server: forged log lines, signed-proxy
//! replay through edge + Exchange and across reloads, unreadable credential
//! headers.

mod common;

use authgate::pb::VerifyRequest;
use common::*;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request as AttrRequest};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};
use serde_json::json;
use std::time::Duration;

const PROXY_SECRET: &str = "netlify-signed-proxy-secret-0123456789";

/// An `x-nf-sign` header as Netlify's proxy writes it (HS256, `iss:
/// netlify`, five minutes), made unique by `nonce` in `site_url`.
fn nf_sign(nonce: u32) -> String {
    sign(
        jsonwebtoken::Algorithm::HS256,
        None,
        &json!({"iss": "netlify", "exp": now() + 300, "iat": now(), "netlify_id": "site-1",
                "site_url": format!("https://s{nonce}.netlify.app"), "deploy_context": "production"}),
        PROXY_SECRET,
    )
}

/// Splits a human log line into fields, a quoted value being one field.
fn fields(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted, mut escaped) = (Vec::new(), String::new(), false, false);
    for c in line.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

/// Values from a request or a token cannot forge a log line, a field or
/// terminal output in the human format: an unauthenticated Exchange with a
/// crafted audience, a signed subject with a newline, an e-mail with an
/// escape sequence and a bidi override, a client address with fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn human_logs_cannot_be_forged() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("authgate.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n[log]\nformat = \"human\"\n{}\n\
             [[issuers]]\nname = \"site\"\nsecret = \"{SECRET}\"\n",
            exchange_section(dir.path())
        ),
    )
    .unwrap();
    let server = Binary::start(&cfg, &[]);
    let mut client = server.client().await;
    let forged =
        "x\n2026-11-27T00:00:00.000000Z  INFO authgate::gate: decision granted=true subject=admin\u{1b}[2J";
    let denied = client
        .exchange(authgate::pb::ExchangeRequest {
            audience: forged.into(),
            subject_token: "not-a-token".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&denied).as_deref(), Some("invalid_target"));
    let token = gotrue_token(
        &json!({"exp": now() + 600, "sub": "u1\n2026-11-27T00:00:00.000000Z  INFO decision granted=true subject=admin\0",
                "email": "a\u{1b}[31m@example.com\u{202e}moc.elpmaxe"}),
        SECRET,
    );
    client.verify(VerifyRequest { token: token.clone(), ..Default::default() }).await.expect("a valid token");
    client
        .exchange(authgate::pb::ExchangeRequest {
            audience: "orders".into(),
            subject_token: token,
            ..Default::default()
        })
        .await
        .expect("exchange");
    let logs = server.logs_handle();
    assert!(server.stop().success());
    let lines = logs.lock().unwrap().clone();
    let all = lines.join("\n");
    for bad in ['\u{1b}', '\u{202e}', '\0'] {
        assert!(!all.contains(bad), "a raw {bad:?} reached the log:\n{all}");
    }
    assert!(!lines.iter().any(|l| l.starts_with("2026-11-27T00:00:00")), "a forged line:\n{all}");
    let granted: Vec<&String> =
        lines.iter().filter(|l| fields(l).iter().any(|f| f == "granted=true")).collect();
    // The Verify and the Exchange: one decision line each, never a forged one.
    assert!(
        granted.len() == 2 && lines.iter().all(|l| !fields(l).iter().any(|f| f == "subject=admin")),
        "forged fields:\n{all}"
    );
    assert!(all.contains("\\u{a}2026-11-27"), "the newline is shown escaped:\n{all}");
}

/// An ext_authz route that exchanges (the shipped `/internal/` route) with
/// replay protection on: one verification per request, so the first use of
/// a signed-proxy header is allowed (before: every such request was denied
/// `proxy_signature_replayed`, its header checked twice), the second is a
/// replay, and each request is one decision.
#[tokio::test]
async fn edge_exchange_verifies_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&format!(
        "[signed_proxy]\nsecret = \"{PROXY_SECRET}\"\nreplay_protection = true\n{}\n{}",
        exchange_section(dir.path()),
        standard_config()
    ))
    .await;
    let mut client = AuthorizationClient::new(server.channel().await);
    let bearer = format!("Bearer {}", gotrue_token(&gotrue_claims(), SECRET));
    let header = nf_sign(1);
    let check = CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(AttrRequest {
                http: Some(HttpRequest {
                    headers: [("authorization".to_string(), bearer), ("x-nf-sign".to_string(), header)]
                        .into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            context_extensions: [
                ("exchange_audience".to_string(), "orders".to_string()),
                ("signed_proxy".to_string(), "required".to_string()),
            ]
            .into(),
            ..Default::default()
        }),
    };
    let first = client.check(check.clone()).await.unwrap().into_inner();
    let Some(HttpResponse::OkResponse(ok)) = &first.http_response else { panic!("denied: {first:?}") };
    assert!(
        ok.headers
            .iter()
            .filter_map(|h| h.header.as_ref())
            .any(|h| h.key == "authorization" && h.value.starts_with("Bearer ey")),
        "{ok:?}"
    );
    let second = client.check(check).await.unwrap().into_inner();
    let Some(HttpResponse::DeniedResponse(denied)) = &second.http_response else { panic!("allowed twice") };
    let reason =
        denied.headers.iter().filter_map(|h| h.header.as_ref()).find(|h| h.key == "x-authgate-reason");
    assert_eq!(reason.map(|h| h.value.as_str()), Some("proxy_signature_replayed"));
    let samples = scrape(server.http).await;
    let decisions: f64 = samples
        .iter()
        .filter(|s| s["name"] == "authgate_decisions_total")
        .filter_map(|s| s["value"].as_f64())
        .sum();
    assert_eq!(decisions, 2.0, "one decision per request: {samples:?}");
}

/// The replay cache outlives a reload (SIGHUP, or a rotated secret file):
/// a header accepted before the reload is still a replay after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_cache_survives_reload() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("authgate.toml");
    let base = format!(
        "[server]\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\n\
         [signed_proxy]\nsecret = \"{PROXY_SECRET}\"\nreplay_protection = true\n\
         [[issuers]]\nname = \"site\"\nsecret = \"{SECRET}\"\n"
    );
    std::fs::write(&cfg, &base).unwrap();
    let server = Binary::start(&cfg, &[]);
    let mut client = server.client().await;
    let header = nf_sign(7);
    let request = || VerifyRequest {
        headers: [
            ("authorization".to_string(), format!("Bearer {}", gotrue_token(&gotrue_claims(), SECRET))),
            ("x-nf-sign".to_string(), header.clone()),
        ]
        .into(),
        ..Default::default()
    };
    client.verify(request()).await.expect("first use");
    std::fs::write(&cfg, base.replace("[[issuers]]", "[[issuers]]\nleeway = \"10s\"")).unwrap();
    server.signal("HUP");
    server.wait_for_log("configuration reloaded");
    let again = client.verify(request()).await.unwrap_err();
    assert_eq!(reason(&again).as_deref(), Some("proxy_signature_replayed"));
    assert!(server.stop().success());
}

/// A raw HTTP/1.1 request with arbitrary header bytes: (status, head).
async fn raw_get(addr: std::net::SocketAddr, headers: &[(&str, &[u8])]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = b"GET /forward-auth HTTP/1.1\r\nhost: x\r\nconnection: close\r\n".to_vec();
    for (k, v) in headers {
        req.extend_from_slice(k.as_bytes());
        req.extend_from_slice(b": ");
        req.extend_from_slice(v);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    s.write_all(&req).await.unwrap();
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut raw)).await;
    let raw = String::from_utf8_lossy(&raw).to_lowercase();
    let status = raw.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, raw)
}

/// A header authgate reads that is not visible ASCII is a 400, never
/// skipped: a second `Authorization` of bytes, or an `x-nf-sign` of bytes,
/// must not leave the first credential (or none) to decide.
#[tokio::test]
async fn unreadable_credential_headers_are_refused() {
    let server =
        TestServer::start(&format!("[signed_proxy]\nsecret = \"{PROXY_SECRET}\"\n{}", standard_config()))
            .await;
    let bearer = format!("Bearer {}", gotrue_token(&gotrue_claims(), SECRET));
    let cookie = format!("nf_jwt={}", gotrue_token(&gotrue_claims(), SECRET));
    type Case<'a> = (&'a str, Vec<(&'a str, &'a [u8])>, u16);
    let cases: [Case; 6] = [
        ("a valid bearer alone", vec![("authorization", bearer.as_bytes())], 200),
        (
            "a second authorization of non-ASCII bytes",
            vec![("authorization", bearer.as_bytes()), ("authorization", b"Bearer \xff\xfe")],
            400,
        ),
        (
            "a non-ASCII authorization beside a cookie",
            vec![("authorization", b"Bearer \xff"), ("cookie", cookie.as_bytes())],
            400,
        ),
        ("a non-ASCII x-nf-sign", vec![("authorization", bearer.as_bytes()), ("x-nf-sign", b"\xff")], 400),
        (
            "a non-ASCII forwarded address",
            vec![("authorization", bearer.as_bytes()), ("x-forwarded-for", b"1.2.3.4\xff")],
            400,
        ),
        (
            "another header with non-ASCII bytes is none of authgate's business",
            vec![("authorization", bearer.as_bytes()), ("x-note", b"caf\xc3\xa9")],
            200,
        ),
    ];
    for (description, headers, want) in cases {
        let (status, head) = raw_get(server.http, &headers).await;
        assert_eq!(status, want, "{description}: {head}");
        if want == 400 {
            assert!(head.contains("x-authgate-reason: invalid_request"), "{description}: {head}");
        }
    }
}

/// A compact JWS of exactly these header and payload bytes, HS256-signed
/// with `secret` (no library re-serialises them).
fn hs256_raw(header: &str, payload: &str, secret: &str) -> String {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let input = format!("{}.{}", b64(header), b64(payload));
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    let signature =
        jsonwebtoken::crypto::sign(input.as_bytes(), &key, jsonwebtoken::Algorithm::HS256).unwrap();
    format!("{input}.{signature}")
}

/// No parser differentials: what one reading routes, another cannot read
/// differently. Every case is correctly signed, so only strict parsing
/// stands between it and a grant.
#[tokio::test]
async fn strict_parsing_of_signed_tokens() {
    let server =
        TestServer::start(&format!("[signed_proxy]\nsecret = \"{PROXY_SECRET}\"\n{}", standard_config()))
            .await;
    let mut client = server.client().await;
    let exp = now() + 600;
    let user = |extra: &str| format!(r#"{{"sub":"u1","exp":{exp}{extra}}}"#);
    let hs = r#"{"alg":"HS256","typ":"JWT"}"#;
    let cases: [(&str, String, &str); 9] = [
        ("control: a clean token", hs256_raw(hs, &user(""), SECRET), "granted"),
        (
            "iss twice: routed by one, read by another",
            hs256_raw(
                hs,
                &format!(r#"{{"iss":"{FN_ISS}","sub":"u1","exp":{exp},"aud":"backend","iss":"x"}}"#),
                FN_SECRET,
            ),
            "malformed_token",
        ),
        ("sub twice", hs256_raw(hs, &user(r#","sub":"admin""#), SECRET), "malformed_token"),
        (
            "roles twice inside app_metadata",
            hs256_raw(hs, &user(r#","app_metadata":{"roles":["member"],"roles":["admin"]}"#), SECRET),
            "malformed_token",
        ),
        (
            "alg twice in the header",
            hs256_raw(r#"{"alg":"none","alg":"HS256"}"#, &user(""), SECRET),
            "malformed_token",
        ),
        ("the header is an array", hs256_raw(r#"["HS256"]"#, &user(""), SECRET), "malformed_token"),
        ("crit: null", hs256_raw(r#"{"alg":"HS256","crit":null}"#, &user(""), SECRET), "malformed_token"),
        ("exp of 1e308", hs256_raw(hs, r#"{"sub":"u1","exp":1e308}"#, SECRET), "malformed_token"),
        (
            "exp of 2^64",
            hs256_raw(hs, r#"{"sub":"u1","exp":18446744073709551616}"#, SECRET),
            "malformed_token",
        ),
    ];
    for (description, token, want) in cases {
        let got = match client.verify(VerifyRequest { token, ..Default::default() }).await {
            Ok(_) => "granted".to_string(),
            Err(s) => reason(&s).unwrap_or_default(),
        };
        assert_eq!(got, want, "{description}");
    }
    // The signed-proxy header is read as strictly.
    let sign = hs256_raw(
        r#"{"alg":"HS256"}"#,
        &format!(r#"{{"iss":"netlify","exp":{exp},"iat":{},"iss":"netlify"}}"#, now()),
        PROXY_SECRET,
    );
    let bearer = format!("Bearer {}", gotrue_token(&gotrue_claims(), SECRET));
    let err = client
        .verify(VerifyRequest {
            headers: [("authorization".to_string(), bearer), ("x-nf-sign".to_string(), sign)].into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&err).as_deref(), Some("proxy_signature_invalid"));
}
