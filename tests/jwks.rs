//! JWKS issuers against a real OpenID provider (npm `oidc-provider`, run by
//! tests/oidc/provider.mjs on 127.0.0.1) issuing RS256, ES256 and EdDSA JWT
//! access tokens, with discovery and JWKS; key fetches are counted by a
//! small proxy in front of the provider's JWKS. Static-key issuers
//! (Supabase- and Auth0-shaped tokens) use keys made here.

mod common;

use common::oidc::Provider;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tonic_health::pb::health_check_response::ServingStatus;

const AUDIENCES: &str = r#"["https://api.test/rs256", "https://api.test/es256", "https://api.test/eddsa", "https://api.test/short"]"#;
const ROLES_CLAIM: &str = "https://authgate.test/roles";

/// A counting HTTP proxy for the provider's JWKS: every request is counted,
/// then forwarded (a stopped provider answers 502 here).
struct CountingProxy {
    url: String,
    count: Arc<AtomicU64>,
}

impl CountingProxy {
    async fn start(upstream: String) -> CountingProxy {
        let count = Arc::new(AtomicU64::new(0));
        let counter = count.clone();
        let handler = move |uri: axum::http::Uri| {
            let upstream = upstream.clone();
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                match reqwest::get(format!("{upstream}{}", uri.path())).await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let body = r.bytes().await.unwrap_or_default();
                        (axum::http::StatusCode::from_u16(status).unwrap(), body.to_vec())
                    }
                    Err(_) => (axum::http::StatusCode::BAD_GATEWAY, Vec::new()),
                }
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, axum::Router::new().fallback(handler)).await;
        });
        CountingProxy { url, count }
    }

    fn count(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }
}

fn issuer_config(iss: &str, source: &str, extra: &str) -> String {
    format!(
        "[server]\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n[cache]\nmax_entries = 0\n\
         [[issuers]]\nname = \"oidc\"\nkind = \"jwks\"\niss = \"{iss}\"\naudiences = {AUDIENCES}\n\
         role_claims = [\"{ROLES_CLAIM}\", \"scope\"]\nleeway = \"0s\"\n{source}\n{extra}\n"
    )
}

async fn verify(server: &TestServer, token: &str) -> Result<authgate::pb::Identity, String> {
    let mut client = server.client().await;
    let req = authgate::pb::VerifyRequest { token: token.into(), ..Default::default() };
    match client.verify(req).await {
        Ok(r) => Ok(r.into_inner().identity.expect("identity")),
        Err(status) => Err(reason(&status).unwrap_or_else(|| format!("no reason: {status:?}"))),
    }
}

async fn wait_until(what: &str, within: Duration, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// An attacker's key pair, as a jsonwebtoken key and its public JWK.
fn attacker_key(alg: authgate::config::MintAlg) -> (EncodingKey, Value) {
    use authgate::config::MintAlg;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let pem = authgate::testing::generate_pkcs8_pem(alg).unwrap();
    let der = pem::parse(&pem).unwrap().into_contents();
    match alg {
        MintAlg::ES256 => {
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der).unwrap();
            let p = pair.public_key().as_ref();
            let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..])});
            (EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(), jwk)
        }
        MintAlg::EdDSA => {
            let pair = Ed25519KeyPair::from_pkcs8(&der).unwrap();
            let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())});
            (EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(), jwk)
        }
        MintAlg::RS256 => (EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(), json!({})),
    }
}

fn claims_for(iss: &str, aud: &str) -> Value {
    json!({"iss": iss, "aud": aud, "sub": "backend", "exp": now() + 300, "iat": now()})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_from_a_real_openid_provider() {
    let dir = tempfile::tempdir().unwrap();
    let provider = Provider::start(0, &dir.path().join("keys.json"), false);
    // Discovery straight from the provider: <iss>/.well-known/openid-configuration.
    let server = TestServer::start(&issuer_config(&provider.issuer, "", "")).await;
    wait_until("keys loaded", Duration::from_secs(10), async || {
        server.health("").await == ServingStatus::Serving
    })
    .await;

    for (resource, kid) in [
        ("https://api.test/rs256", "rs-1"),
        ("https://api.test/es256", "es-1"),
        ("https://api.test/eddsa", "ed-1"),
    ] {
        let token = provider.token(resource).await;
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(kid), "{resource}");
        let id = verify(&server, &token).await.unwrap_or_else(|r| panic!("{resource}: {r}"));
        assert_eq!(id.subject, "backend");
        assert_eq!(id.issuer, "oidc");
        assert_eq!(id.audiences, [resource]);
        assert_eq!(id.roles, ["admin", "editor", "orders:read"], "namespaced roles, then scope");
    }

    // Same keys, another issuer URL: valid signature, wrong `iss`.
    let other = Provider::start(0, &provider.keys, false);
    let foreign = other.token("https://api.test/es256").await;

    let jwks = provider.jwks().await;
    let es1 = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == "es-1").unwrap().clone();
    let (attacker, attacker_jwk) = attacker_key(authgate::config::MintAlg::EdDSA);
    let (attacker_rsa, _) = attacker_key(authgate::config::MintAlg::RS256);
    // An attacker's JWKS server: must never be asked.
    let attacker_jwks = CountingProxy::start(closed_port_url()).await;
    let iss = provider.issuer.clone();
    let good_claims = claims_for(&iss, "https://api.test/es256");
    let with_header = |mutate: &dyn Fn(&mut Header), key: &EncodingKey, alg: Algorithm| {
        let mut h = Header::new(alg);
        mutate(&mut h);
        jsonwebtoken::encode(&h, &good_claims, key).unwrap()
    };
    let short = provider.token("https://api.test/short").await;

    let cases: Vec<(&str, String, &str)> = vec![
        ("token from the same keys at another issuer URL", foreign, "wrong_issuer"),
        (
            "HS256 signed with the provider's public JWK as the secret",
            sign(Algorithm::HS256, Some("es-1"), &good_claims, &es1.to_string()),
            "unsupported_algorithm",
        ),
        ("alg none", raw_token(r#"{"alg":"none","kid":"es-1"}"#, &good_claims, b""), "unsupported_algorithm"),
        (
            "header alg RS256 with the kid of the ES256 key",
            with_header(&|h| h.kid = Some("es-1".into()), &attacker_rsa, Algorithm::RS256),
            "unsupported_algorithm",
        ),
        (
            "attacker key embedded as `jwk` and offered by `jku`, attacker kid",
            with_header(
                &|h| {
                    h.kid = Some("attacker".into());
                    h.jwk = Some(serde_json::from_value(attacker_jwk.clone()).unwrap());
                    h.jku = Some(format!("{}/jwks", attacker_jwks.url));
                },
                &attacker,
                Algorithm::EdDSA,
            ),
            "unknown_key",
        ),
        (
            "attacker key as `jwk`, the provider's kid",
            with_header(
                &|h| {
                    h.kid = Some("ed-1".into());
                    h.jwk = Some(serde_json::from_value(attacker_jwk.clone()).unwrap());
                },
                &attacker,
                Algorithm::EdDSA,
            ),
            "bad_signature",
        ),
    ];
    for (what, token, want) in cases {
        assert_eq!(verify(&server, &token).await.err().as_deref(), Some(want), "{what}");
    }
    assert_eq!(attacker_jwks.count(), 0, "a jku URL was fetched");

    // A 1 s token with zero leeway, after it expired.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(verify(&server, &short).await.err().as_deref(), Some("token_expired"));

    // An audience this issuer does not list.
    let narrow = TestServer::start(
        &issuer_config(&provider.issuer, "", "").replace(AUDIENCES, r#"["https://api.test/rs256"]"#),
    )
    .await;
    wait_until("keys loaded", Duration::from_secs(10), async || {
        narrow.health("").await == ServingStatus::Serving
    })
    .await;
    let es = provider.token("https://api.test/es256").await;
    assert_eq!(verify(&narrow, &es).await.err().as_deref(), Some("wrong_audience"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kids_rotation_and_removed_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut provider = Provider::start(0, &dir.path().join("keys.json"), false);
    let proxy = CountingProxy::start(provider.issuer.clone()).await;
    let cooldown = Duration::from_secs(3);
    // No background refresh during the test: every fetch after the first is
    // an unknown-kid refetch.
    let server = TestServer::start(&issuer_config(
        &provider.issuer,
        &format!("jwks_url = \"{}/jwks\"", proxy.url),
        "refetch_cooldown = \"3s\"\nmin_refresh_interval = \"10m\"\nmax_refresh_interval = \"10m\"",
    ))
    .await;
    wait_until("keys loaded", Duration::from_secs(10), async || {
        server.health("").await == ServingStatus::Serving
    })
    .await;
    assert_eq!(proxy.count(), 1, "one fetch at start");
    let es1 = provider.token("https://api.test/es256").await;
    verify(&server, &es1).await.expect("es-1 verifies");

    // 500 random kids in one burst, past the cooldown: exactly one fetch.
    tokio::time::sleep(cooldown + Duration::from_millis(200)).await;
    let (attacker, _) = attacker_key(authgate::config::MintAlg::ES256);
    let claims = claims_for(&provider.issuer, "https://api.test/es256");
    let burst = |n: usize| {
        let tokens: Vec<String> = (0..n)
            .map(|_| {
                let mut h = Header::new(Algorithm::ES256);
                h.kid = Some(format!("k-{}", rand::random::<u64>()));
                jsonwebtoken::encode(&h, &claims, &attacker).unwrap()
            })
            .collect();
        let grpc = server.grpc;
        async move {
            let channel = tonic::transport::Channel::from_shared(format!("http://{grpc}"))
                .unwrap()
                .connect()
                .await
                .unwrap();
            let mut set = tokio::task::JoinSet::new();
            for token in tokens {
                let mut client = authgate::pb::auth_service_client::AuthServiceClient::new(channel.clone());
                set.spawn(async move {
                    let req = authgate::pb::VerifyRequest { token, ..Default::default() };
                    match client.verify(req).await {
                        Ok(_) => "granted".to_string(),
                        Err(status) => reason(&status).unwrap_or_default(),
                    }
                });
            }
            let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
            while let Some(r) = set.join_next().await {
                *counts.entry(r.unwrap()).or_default() += 1;
            }
            counts.into_iter().collect::<Vec<_>>()
        }
    };
    let before = proxy.count();
    let reasons = burst(500).await;
    assert_eq!(proxy.count() - before, 1, "500 unknown kids → one fetch");
    assert_eq!(reasons, vec![("unknown_key".to_string(), 500)]);
    let reasons = burst(500).await;
    assert_eq!(proxy.count() - before, 1, "a second burst inside the cooldown → no fetch");
    assert_eq!(reasons, vec![("unknown_key".to_string(), 500)]);

    // Rotation at the provider: a new ES256 key `es-2` signs; it is picked up
    // through the unknown-kid path with exactly one fetch.
    provider.restart(true);
    let es2 = provider.token("https://api.test/es256").await;
    assert_eq!(jsonwebtoken::decode_header(&es2).unwrap().kid.as_deref(), Some("es-2"));
    tokio::time::sleep(cooldown + Duration::from_millis(200)).await;
    let before = proxy.count();
    verify(&server, &es2).await.expect("the rotated key verifies");
    assert_eq!(proxy.count() - before, 1, "exactly one fetch for the new kid");
    verify(&server, &es1).await.expect("the old key is still published");

    // The provider drops es-1: after the next successful fetch it stops
    // verifying (cached identities included: a new key set is a new epoch).
    let mut keys: Vec<Value> = serde_json::from_slice(&std::fs::read(&provider.keys).unwrap()).unwrap();
    keys.retain(|k| k["kid"] != "es-1");
    std::fs::write(&provider.keys, serde_json::to_vec(&keys).unwrap()).unwrap();
    provider.restart(false);
    tokio::time::sleep(cooldown + Duration::from_millis(200)).await;
    let (stranger, _) = attacker_key(authgate::config::MintAlg::ES256);
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("trigger-a-fetch".into());
    let trigger = jsonwebtoken::encode(&h, &claims, &stranger).unwrap();
    assert_eq!(verify(&server, &trigger).await.err().as_deref(), Some("unknown_key"));
    assert_eq!(
        verify(&server, &es1).await.err().as_deref(),
        Some("unknown_key"),
        "removed key still trusted"
    );
    verify(&server, &es2).await.expect("es-2 still verifies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_outage_stale_keys_then_unavailable_then_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let mut provider = Provider::start(0, &dir.path().join("keys.json"), false);
    let proxy = CountingProxy::start(provider.issuer.clone()).await;
    let server = TestServer::start(&issuer_config(
        &provider.issuer,
        &format!("jwks_url = \"{}/jwks\"", proxy.url),
        "min_refresh_interval = \"1s\"\nmax_refresh_interval = \"1s\"\nmax_staleness = \"5s\"\nrefetch_cooldown = \"1s\"",
    ))
    .await;
    wait_until("keys loaded", Duration::from_secs(10), async || {
        server.health("").await == ServingStatus::Serving
    })
    .await;
    let token = provider.token("https://api.test/eddsa").await;
    verify(&server, &token).await.expect("verifies while the provider is up");

    provider.stop();
    let stopped = std::time::Instant::now();
    // Inside max_staleness the last good keys keep verifying.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    verify(&server, &token).await.expect("stale-while-error");
    // Beyond it: UNAVAILABLE keys_unavailable (never UNAUTHENTICATED), and not ready.
    wait_until("keys to go stale", Duration::from_secs(10), async || {
        verify(&server, &token).await.err().as_deref() == Some("keys_unavailable")
    })
    .await;
    assert!(stopped.elapsed() >= Duration::from_secs(2), "stale too early: {:?}", stopped.elapsed());
    let mut client = server.client().await;
    let status = client
        .verify(authgate::pb::VerifyRequest { token: token.clone(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    wait_until("NOT_SERVING", Duration::from_secs(2), async || {
        server.health("").await == ServingStatus::NotServing
    })
    .await;
    let (readyz, _) = http_get(server.http, "/readyz").await;
    assert!(readyz.starts_with("http/1.1 503"), "{readyz}");
    assert_eq!(
        server.health("liveness").await,
        ServingStatus::Serving,
        "an outage must not restart replicas"
    );
    // Operators see it: the key set is stale and old, fetches fail, the
    // denials are counted by reason, and readiness is 0.
    let samples = scrape(server.http).await;
    let oidc = [("issuer", "oidc")];
    assert_eq!(sample(&samples, "authgate_key_set_stale", &oidc), Some(1.0));
    assert!(
        sample(&samples, "authgate_key_set_age_seconds", &oidc).is_some_and(|age| age >= 5.0),
        "{samples:?}"
    );
    let failed = [("kind", "jwks"), ("issuer", "oidc"), ("outcome", "error")];
    assert!(sample(&samples, "authgate_upstream_requests_total", &failed).is_some_and(|n| n >= 1.0));
    let unavailable = [("adapter", "verify"), ("reason", "keys_unavailable")];
    assert!(sample(&samples, "authgate_decisions_total", &unavailable).is_some_and(|n| n >= 1.0));
    assert_eq!(sample(&samples, "authgate_ready", &[]), Some(0.0));

    // The provider comes back: the next refresh recovers.
    provider.restart(false);
    wait_until("recovery", Duration::from_secs(10), async || verify(&server, &token).await.is_ok()).await;
    wait_until("SERVING", Duration::from_secs(2), async || server.health("").await == ServingStatus::Serving)
        .await;
    let samples = scrape(server.http).await;
    assert_eq!(sample(&samples, "authgate_key_set_stale", &oidc), Some(0.0));
    let fetched = [("kind", "jwks"), ("issuer", "oidc"), ("outcome", "ok")];
    assert!(sample(&samples, "authgate_upstream_requests_total", &fetched).is_some_and(|n| n >= 2.0));
}

#[tokio::test]
async fn unreachable_provider_at_start_serves_health_but_is_not_ready() {
    let server = TestServer::start(&issuer_config(
        "https://issuer.invalid/",
        &format!("jwks_url = \"{}/jwks\"", closed_port_url()),
        "",
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.health("").await, ServingStatus::NotServing);
    assert_eq!(server.health("liveness").await, ServingStatus::Serving);
    let (attacker, _) = attacker_key(authgate::config::MintAlg::ES256);
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("k".into());
    let token =
        jsonwebtoken::encode(&h, &claims_for("https://issuer.invalid/", "https://api.test/es256"), &attacker)
            .unwrap();
    assert_eq!(verify(&server, &token).await.err().as_deref(), Some("keys_unavailable"));
}

/// Static keys: a JWKS file holding a self-hosted Supabase's `oct` secret
/// next to its EC key, Supabase-shaped and Auth0-shaped claims.
#[tokio::test]
async fn supabase_and_auth0_shaped_tokens_with_static_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (key, mut jwk) = attacker_key(authgate::config::MintAlg::ES256);
    jwk["kid"] = "sb-1".into();
    let jwks = json!({"keys": [{"kty": "oct", "k": "c3VwZXItc2VjcmV0LWp3dC10b2tlbg", "kid": "legacy"}, jwk]});
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(&jwks_path, jwks.to_string()).unwrap();
    let sb_iss = "https://abcd.supabase.co/auth/v1";
    let server = TestServer::start(&format!(
        "[server]\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n\
         [[issuers]]\nname = \"supabase\"\nkind = \"jwks\"\niss = \"{sb_iss}\"\naudiences = [\"authenticated\"]\n\
         jwks_file = \"{}\"\nrequire_claims = {{ role = \"authenticated\" }}\nallow_anonymous = false\nrole_claims = [\"app_metadata.roles\"]\n",
        jwks_path.display()
    ))
    .await;
    assert_eq!(server.health("").await, ServingStatus::Serving, "static keys are ready at once");
    let user = json!({"iss": sb_iss, "aud": "authenticated", "sub": "8d1c5e8e-6f0b-4a8b-9f57-2f1b9c2d7a10",
        "exp": now() + 600, "iat": now(), "role": "authenticated", "aal": "aal2",
        "session_id": "4f6c1d2e-aaaa-4bbb-8ccc-123456789abc", "is_anonymous": false,
        "email": "u@example.com", "app_metadata": {"provider": "email", "roles": ["editor"]}});
    let es = |claims: &Value, kid: Option<&str>| {
        let mut h = Header::new(Algorithm::ES256);
        h.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&h, claims, &key).unwrap()
    };
    let id = verify(&server, &es(&user, Some("sb-1"))).await.expect("a Supabase user");
    assert_eq!(
        (id.session_id.as_str(), id.aal.as_str(), id.is_anonymous),
        ("4f6c1d2e-aaaa-4bbb-8ccc-123456789abc", "aal2", false)
    );
    assert_eq!((id.provider.as_str(), id.roles.clone()), ("email", vec!["editor".to_string()]));
    let id = verify(&server, &es(&user, None)).await.expect("no kid: tried against the ES256 keys");
    assert_eq!(id.subject, "8d1c5e8e-6f0b-4a8b-9f57-2f1b9c2d7a10");

    let edit = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut c = user.clone();
        f(c.as_object_mut().unwrap());
        c
    };
    let legacy_anon =
        json!({"iss": "supabase", "ref": "abcd", "role": "anon", "iat": now(), "exp": now() + 600});
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "anonymous sign-in",
            es(
                &edit(&|m| {
                    m.insert("is_anonymous".into(), json!(true));
                }),
                Some("sb-1"),
            ),
            "anonymous_user",
        ),
        (
            "role other than authenticated",
            es(
                &edit(&|m| {
                    m.insert("role".into(), json!("service_role"));
                }),
                Some("sb-1"),
            ),
            "claim_mismatch",
        ),
        (
            "legacy anon key, HS256 with the oct secret",
            sign(Algorithm::HS256, None, &legacy_anon, "super-secret-jwt-token"),
            "unsupported_algorithm",
        ),
        (
            "legacy-shaped key signed by the EC key: iss supabase",
            es(&legacy_anon, Some("sb-1")),
            "wrong_issuer",
        ),
        (
            "right iss but no sub",
            es(
                &edit(&|m| {
                    m.remove("sub");
                }),
                Some("sb-1"),
            ),
            "missing_claim",
        ),
        ("the oct entry's kid", es(&user, Some("legacy")), "unknown_key"),
        (
            "aud of another API",
            es(
                &edit(&|m| {
                    m.insert("aud".into(), json!(["other"]));
                }),
                Some("sb-1"),
            ),
            "wrong_audience",
        ),
        (
            "no exp",
            es(
                &edit(&|m| {
                    m.remove("exp");
                }),
                Some("sb-1"),
            ),
            "missing_claim",
        ),
        (
            "nbf ahead",
            es(
                &edit(&|m| {
                    m.insert("nbf".into(), json!(now() + 600));
                }),
                Some("sb-1"),
            ),
            "token_not_yet_valid",
        ),
    ];
    for (what, token, want) in cases {
        assert_eq!(verify(&server, &token).await.err().as_deref(), Some(want), "{what}");
    }

    // Auth0: `iss` ends with a slash, `sub` is not a UUID, roles arrive as a
    // namespaced claim, `permissions` and `scope`; keys as PEM files.
    let pem_dir = dir.path().join("keys");
    std::fs::create_dir(&pem_dir).unwrap();
    let private = authgate::testing::generate_pkcs8_pem(authgate::config::MintAlg::RS256).unwrap();
    let public = rsa_public_pem(&private);
    std::fs::write(pem_dir.join("tenant-key.pem"), public).unwrap();
    let a0 = TestServer::start(&format!(
        "[server]\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n\
         [[issuers]]\nname = \"auth0\"\nkind = \"jwks\"\niss = \"https://tenant.eu.auth0.com/\"\naudiences = [\"https://orders.example.com\"]\n\
         public_key_files = [\"{}\"]\nrole_claims = [\"https://example.com/roles\", \"permissions\", \"scope\"]\n",
        pem_dir.join("tenant-key.pem").display()
    ))
    .await;
    let claims = json!({"iss": "https://tenant.eu.auth0.com/", "sub": "auth0|65a1b2c3d4", "aud": ["https://orders.example.com", "https://tenant.eu.auth0.com/userinfo"],
        "exp": now() + 600, "iat": now(), "https://example.com/roles": ["admin"], "permissions": ["orders:write"], "scope": "openid orders:read"});
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some("tenant-key".into());
    let token =
        jsonwebtoken::encode(&h, &claims, &EncodingKey::from_rsa_pem(private.as_bytes()).unwrap()).unwrap();
    let id = verify(&a0, &token).await.expect("an Auth0 token");
    assert_eq!(id.subject, "auth0|65a1b2c3d4");
    assert_eq!(id.roles, ["admin", "orders:write", "openid", "orders:read"]);
}

/// The SubjectPublicKeyInfo PEM of a PKCS#8 RSA private key: what
/// `openssl pkey -in key.pem -pubout` gives an operator.
fn rsa_public_pem(private_pem: &str) -> String {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::KeyPair;
    let der = pem::parse(private_pem).unwrap();
    let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(der.contents()).unwrap();
    let spki = pair.public_key().as_der().unwrap();
    pem::encode(&pem::Pem::new("PUBLIC KEY", spki.as_ref().to_vec()))
}
