//! The verified-identity cache never changes an answer: hits give the same
//! result as a full verification, roles are checked per request, entries
//! die with their token, and issuers never share entries.

mod common;

use authgate::AuthError;
use authgate::testing::{Gate, VerifyInput};
use common::*;
use serde_json::json;

fn core(extra: &str) -> Gate {
    Gate::from_config(&load_config(&format!("{extra}\n{}", standard_config())).unwrap()).unwrap()
}

async fn check(core: &Gate, token: &str, issuer: &str, roles: &[&str]) -> Result<String, &'static str> {
    let headers = authgate::testing::Headers::new();
    let required: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
    let input = VerifyInput {
        token: (!token.is_empty()).then_some(token),
        headers: &headers,
        required_roles: &required,
        issuer: (!issuer.is_empty()).then_some(issuer),
        require_signed_proxy: false,
        client: None,
        identity_in_headers: false,
    };
    core.verify(authgate::testing::Adapter::Verify, input)
        .await
        .map(|v| format!("{}|{}|{:?}", v.identity.subject, v.identity.issuer, v.identity.roles))
        .map_err(|e| e.reason())
}

#[tokio::test]
async fn hits_answer_exactly_like_full_verification() {
    let cached = core("");
    let uncached = core("[cache]\nmax_entries = 0");
    let good = gotrue_token(&gotrue_claims(), SECRET);
    let requests: Vec<(&str, String, &str, Vec<&str>)> = vec![
        ("valid", good.clone(), "", vec![]),
        ("valid, role held", good.clone(), "", vec!["admin"]),
        ("valid, role not held: enforced on a hit too", good.clone(), "", vec!["owner"]),
        ("same token, another issuer with the same secret", good.clone(), "ops", vec![]),
        ("same token, an issuer with other secret", good.clone(), "functions", vec![]),
        ("same token, issuer expecting an audience", good.clone(), "netlify-aud", vec![]),
        ("wrong secret", gotrue_token(&gotrue_claims(), "wrong-secret-0123456789abcdef"), "", vec![]),
    ];
    for round in 0..3 {
        for (what, token, issuer, roles) in &requests {
            let a = check(&cached, token, issuer, roles).await;
            let b = check(&uncached, token, issuer, roles).await;
            assert_eq!(a, b, "round {round}: {what}");
        }
    }
    assert_eq!(uncached.cached_identities(), 0);
    // One entry per (issuer, token) that verified: netlify and ops.
    assert_eq!(cached.cached_identities(), 2);
}

#[tokio::test]
async fn cached_entries_die_with_the_token() {
    let core = core("");
    let config =
        load_config(&standard_config().replace("default = true", "default = true\nleeway = \"0s\"")).unwrap();
    let zero_leeway = Gate::from_config(&config).unwrap();
    let exp = now() + 2;
    let token = gotrue_token(&json!({"sub": "short-lived", "exp": exp}), SECRET);
    assert_eq!(check(&zero_leeway, &token, "", &[]).await.map(|_| ()), Ok(()));
    assert_eq!(zero_leeway.cached_identities(), 1);
    assert_eq!(check(&zero_leeway, &token, "", &[]).await.map(|_| ()), Ok(()), "served while valid");
    while now() < exp {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(check(&zero_leeway, &token, "", &[]).await, Err(AuthError::TokenExpired.reason()));
    // Expired tokens are never stored in the first place.
    let expired = gotrue_token(&json!({"sub": "old", "exp": now() - 3600}), SECRET);
    assert_eq!(check(&core, &expired, "", &[]).await, Err("token_expired"));
    assert_eq!(core.cached_identities(), 0);
}

/// Random and half-valid inputs: every one gets a typed denial, none panics.
#[tokio::test]
async fn random_input_never_panics() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    let core = core("");
    let alphabet: Vec<char> = "ABCxyz019-_.=+/ \"{}:,\u{e9}\0".chars().collect();
    let headers =
        [r#"{"alg":"HS256"}"#, r#"{"alg":"none"}"#, r#"{"alg":"HS256","crit":[]}"#, r#"{"alg":1}"#, "[]"];
    let payloads = [
        r#"{"exp":1e400}"#,
        r#"{"exp":1,"sub":"x"}"#,
        r#"{"exp":-1,"sub":"x"}"#,
        r#"{"aud":{"a":1}}"#,
        "null",
        r#"{"sub":"0""#,
    ];
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..20_000u32 {
        let token: String = if i % 2 == 0 {
            let len = (rand::random::<u32>() % 200) as usize;
            (0..len).map(|_| alphabet[rand::random::<u32>() as usize % alphabet.len()]).collect()
        } else {
            let h = headers[rand::random::<u32>() as usize % headers.len()];
            let p = payloads[rand::random::<u32>() as usize % payloads.len()];
            // Correctly signed, so the payload is really parsed.
            let input = format!("{}.{}", B64.encode(h), B64.encode(p));
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, SECRET.as_bytes());
            format!("{input}.{}", B64.encode(aws_lc_rs::hmac::sign(&key, input.as_bytes())))
        };
        match check(&core, &token, "", &[]).await {
            Ok(id) => panic!("random input granted: {id}"),
            Err(reason) => {
                seen.insert(reason);
            }
        }
    }
    for reason in ["malformed_token", "unsupported_algorithm", "token_expired", "missing_claim"] {
        assert!(seen.contains(reason), "{reason} never seen: {seen:?}");
    }
}

/// A reload keeps what unchanged issuers learned: their verified identities
/// and hosted Identity's answers go on hitting (no re-verification, no
/// burst of calls to GoTrue), while an issuer whose entry changed starts
/// afresh — and a secret removed by the reload refuses at once a token
/// that was cached under it.
#[tokio::test]
async fn a_reload_keeps_the_caches_of_unchanged_issuers_only() {
    use authgate::testing::{Live, Metrics};
    const HOSTED: &str = "hosted-identity-secret-nobody-has-0123";
    const NEW_SECRET: &str = "rotated-netlify-secret-0123456789";
    let fake = common::gotrue::FakeGoTrue::start(HOSTED, None).await;
    fake.add_user("5b0e6b44-6f1d-4d55-9c5a-8a3f8e0d7c21", "h@example.com", &["editor"]);
    let hosted = format!(
        "[[issuers]]\nname = \"hosted\"\nkind = \"netlify_identity\"\nidentity_url = \"{}\"\n",
        fake.url()
    );
    let config = |netlify_secret: &str, previous: &str, functions_audience: &str| {
        let text = standard_config()
            .replacen(
                &format!("secret = \"{SECRET}\"\nprevious_secret = \"{PREVIOUS}\""),
                &format!("secret = \"{netlify_secret}\"\nprevious_secret = \"{previous}\""),
                1,
            )
            .replace("audiences = [\"backend\"]", &format!("audiences = [\"{functions_audience}\"]"));
        load_config(&format!("{text}\n{hosted}")).unwrap()
    };
    let metrics = std::sync::Arc::new(Metrics::new());
    let live = Live::start(config(SECRET, PREVIOUS, "backend"), metrics.clone()).unwrap();
    let hits = || {
        let text = metrics.encode();
        let line = text
            .lines()
            .find(|l| l.starts_with("authgate_cache_requests_total{cache=\"identity\",result=\"hit\"}"));
        line.and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) as u64
    };
    let netlify = gotrue_token(&gotrue_claims(), SECRET);
    let mut hosted_claims = gotrue_claims();
    hosted_claims["sub"] = "5b0e6b44-6f1d-4d55-9c5a-8a3f8e0d7c21".into();
    let hosted_token = gotrue_token(&hosted_claims, HOSTED);
    let gate = || live.get().gate.clone();
    assert_eq!(check(&gate(), &netlify, "", &[]).await.map(|_| ()), Ok(()));
    let first = check(&gate(), &hosted_token, "hosted", &[]).await;
    assert!(first.is_ok(), "{first:?}");
    let (mut want_hits, upstream) = (hits(), fake.hits());
    assert_eq!(upstream, 1);

    // (what the reload changes, whether netlify's cached token still hits, its answer)
    let cases = [
        ("nothing", config(SECRET, PREVIOUS, "backend"), true, Ok(())),
        ("another issuer's audiences", config(SECRET, PREVIOUS, "backend-v2"), true, Ok(())),
        (
            "netlify's previous secret",
            config(SECRET, "another-previous-0123456789", "backend-v2"),
            false,
            Ok(()),
        ),
        (
            "netlify's secret, the old one gone",
            config(NEW_SECRET, "another-previous-0123456789", "backend-v2"),
            false,
            Err("bad_signature"),
        ),
    ];
    for (what, next, hit, answer) in cases {
        live.reload(next, std::time::Duration::from_secs(2)).await.unwrap();
        assert_eq!(check(&gate(), &netlify, "", &[]).await.map(|_| ()), answer, "reload of {what}");
        if hit {
            want_hits += 1;
        }
        assert_eq!(hits(), want_hits, "reload of {what}: netlify's entry hit = {hit}");
        assert!(check(&gate(), &hosted_token, "hosted", &[]).await.is_ok(), "reload of {what}");
        assert_eq!(fake.hits(), upstream, "reload of {what}: hosted Identity's answer stays cached");
    }
}
