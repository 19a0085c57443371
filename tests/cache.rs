//! The verified-identity cache never changes an answer: hits give the same
//! result as a full verification, roles are checked per request, entries
//! die with their token, and issuers never share entries.

mod common;

use authgate::AuthError;
use authgate::pipeline::{Authenticator, VerifyInput};
use common::*;
use serde_json::json;
use std::collections::HashMap;

fn core(extra: &str) -> Authenticator {
    Authenticator::from_config(&load_config(&format!("{extra}\n{}", standard_config())).unwrap())
}

async fn check(
    core: &Authenticator,
    token: &str,
    issuer: &str,
    roles: &[&str],
) -> Result<String, &'static str> {
    let headers = HashMap::new();
    let required: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
    let input = VerifyInput { token, headers: &headers, required_roles: &required, issuer };
    core.verify(input)
        .await
        .map(|id| format!("{}|{}|{:?}", id.subject, id.issuer, id.roles))
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
    let zero_leeway = Authenticator::from_config(&config);
    let token = gotrue_token(&json!({"sub": "short-lived", "exp": now() + 1}), SECRET);
    assert_eq!(check(&zero_leeway, &token, "", &[]).await.map(|_| ()), Ok(()));
    assert_eq!(zero_leeway.cached_identities(), 1);
    assert_eq!(check(&zero_leeway, &token, "", &[]).await.map(|_| ()), Ok(()), "served while valid");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(check(&zero_leeway, &token, "", &[]).await, Err(AuthError::TokenExpired.reason()));
    // Expired tokens are never stored in the first place.
    let expired = gotrue_token(&json!({"sub": "old", "exp": now() - 3600}), SECRET);
    assert_eq!(check(&core, &expired, "", &[]).await, Err("token_expired"));
    assert_eq!(core.cached_identities(), 0);
}
