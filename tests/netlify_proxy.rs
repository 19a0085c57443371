//! Netlify signed proxy redirects with genuine `x-nf-sign` headers from the
//! real Netlify CLI (`netlify-cli@26.2.0`, `netlify dev --offline`), run in a
//! private network namespace by tests/netlify/run.sh. If the CLI cannot run
//! here, this test fails and says why: it is never skipped.

mod common;

use authgate::pb::{VerifyRequest, VerifyResponse};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use tonic::Code;
use tonic_types::StatusExt;

const PROXY_SECRET: &str = "netlify-signed-proxy-secret-0123456789";
const SITE_ID: &str = "11111111-2222-3333-4444-555555555555";

fn claims_of(jws: &str) -> Value {
    let payload = jws.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Runs the CLI scenario; returns the output directory.
fn run_netlify_scenario(good: &str, forged_user: &str, forged_sign: &str) -> tempfile::TempDir {
    let root = repo_root();
    let cli = root.join("tests/netlify/node_modules/netlify-cli/bin/run.js");
    assert!(
        cli.exists(),
        "netlify-cli is not installed ({}): run scripts/test.sh (scripts/netlify-env.sh)",
        cli.display()
    );
    let python = std::env::var_os("AUTHGATE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".venv/bin/python"));
    assert!(python.exists(), "{} not found: run scripts/test.sh", python.display());
    let out = tempfile::tempdir().unwrap();
    let mut command = Command::new("timeout");
    hermetic(&mut command);
    let status = command
        .args(["200", "unshare", "-rn", "bash"])
        .arg(root.join("tests/netlify/run.sh"))
        .env("AUTHGATE_BIN", env!("CARGO_BIN_EXE_authgate"))
        .env("PYTHON", &python)
        .env("OUT_DIR", out.path())
        .env("PROXY_SECRET", PROXY_SECRET)
        .env("USER_SECRET", SECRET)
        .env("GOOD_TOKEN", good)
        .env("FORGED_TOKEN", forged_user)
        .env("FORGED_SIGN", forged_sign)
        .env("SITE_ID", SITE_ID)
        .status()
        .expect("run unshare (util-linux)");
    let log = |name: &str| std::fs::read_to_string(out.path().join(name)).unwrap_or_default();
    assert!(
        status.success() && out.path().join("finished").exists(),
        "the real Netlify CLI scenario did not complete ({status}); this test needs netlify-cli, unshare and ip.\n\
         --- netlify.log\n{}\n--- upstream.log\n{}\n--- authgate.log\n{}",
        log("netlify.log"),
        log("upstream.log"),
        log("authgate.log")
    );
    out
}

fn answer(dir: &std::path::Path, name: &str) -> (u16, Value) {
    let status = std::fs::read_to_string(dir.join(format!("{name}.status"))).unwrap().trim().parse().unwrap();
    let body = serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap())
        .unwrap_or_else(|e| panic!("{name}: body is not JSON: {e}"));
    (status, body)
}

/// A header shaped like the CLI's (`jsonwebtoken` HS256), with chosen claims.
fn sign_header(claims: &Value, secret: &str) -> String {
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    jsonwebtoken::encode(&header, claims, &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

fn proxy_config(extra: &str) -> String {
    format!(
        "[signed_proxy]\nsecret = \"{PROXY_SECRET}\"\n{extra}\n{}",
        standard_config().replace("default = true", "default = true\n")
    )
}

async fn verify(
    server: &TestServer,
    headers: &[(&str, &str)],
    require_signed_proxy: bool,
) -> Result<VerifyResponse, (Code, String)> {
    let headers: HashMap<String, String> =
        headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    server
        .client()
        .await
        .verify(VerifyRequest { headers, require_signed_proxy, ..Default::default() })
        .await
        .map(|r| r.into_inner())
        .map_err(|s| (s.code(), s.get_details_error_info().map(|i| i.reason).unwrap_or_default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn genuine_netlify_cli_headers() {
    let good = gotrue_token(&gotrue_claims(), SECRET);
    let forged_user = gotrue_token(&gotrue_claims(), "not-the-site-secret-0123456789");
    let now = now();
    let forged_sign = sign_header(
        &json!({"deploy_context": "production", "iat": now, "exp": now + 300, "iss": "netlify"}),
        "wrong-proxy-secret-0123456789",
    );
    let (g, f, s) = (good.clone(), forged_user.clone(), forged_sign.clone());
    let dir = tokio::task::spawn_blocking(move || run_netlify_scenario(&g, &f, &s)).await.unwrap();
    let dir = dir.path();

    // Through the real proxy: the user and the attestation, both verified.
    let (status, body) = answer(dir, "through_proxy_valid_user");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["subject"], "775a5344-0c6d-4dc6-9ac7-d2d646e071ec");
    assert_eq!(body["proxy"], json!({"site_id": SITE_ID, "deploy_context": "dev", "lifetime": 300}));
    assert_eq!(answer(dir, "through_proxy_cookie").0, 200);
    // An attestation never stands in for a user.
    let (status, body) = answer(dir, "through_proxy_forged_user");
    assert_eq!((status, body["reason"].as_str()), (401, Some("bad_signature")), "{body}");
    let (status, body) = answer(dir, "through_proxy_no_user");
    assert_eq!((status, body["reason"].as_str()), (401, Some("missing_credential")), "{body}");
    // Around the proxy: no attestation, or a forged one.
    let (status, body) = answer(dir, "around_proxy_valid_user");
    assert_eq!((status, body["reason"].as_str()), (401, Some("proxy_signature_missing")), "{body}");
    let (status, body) = answer(dir, "around_proxy_forged_sign");
    assert_eq!((status, body["reason"].as_str()), (401, Some("proxy_signature_invalid")), "{body}");

    // The genuine header, as the CLI signs it.
    let captured = std::fs::read_to_string(dir.join("captured.txt")).unwrap();
    let genuine = captured.lines().next().expect("a captured x-nf-sign").to_string();
    let c = claims_of(&genuine);
    assert_eq!(
        (c["iss"].as_str(), c["deploy_context"].as_str(), c["netlify_id"].as_str()),
        (Some("netlify"), Some("dev"), Some(SITE_ID))
    );
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 300);

    // The same genuine header against more policies, in-process.
    let plain = TestServer::start(&proxy_config("")).await;
    let other_secret =
        TestServer::start(&proxy_config("").replace(PROXY_SECRET, "a-different-proxy-secret-0123")).await;
    let replay = TestServer::start(&proxy_config("replay_protection = true")).await;
    let production_only = TestServer::start(&proxy_config("deploy_contexts = [\"production\"]")).await;
    let pinned_site =
        TestServer::start(&proxy_config("site_ids = [\"99999999-0000-0000-0000-000000000000\"]")).await;
    let bearer = format!("Bearer {good}");
    let t = now;
    let invalid = Err((Code::Unauthenticated, "proxy_signature_invalid".to_string()));
    type Case<'a> = (&'a str, &'a TestServer, Vec<(&'a str, String)>, bool, Result<&'a str, (Code, String)>);
    let cases: Vec<Case> = vec![
        (
            "genuine header, claims surfaced",
            &plain,
            vec![("authorization", bearer.clone()), ("x-nf-sign", genuine.clone())],
            true,
            Ok("dev"),
        ),
        (
            "genuine header, not required",
            &plain,
            vec![("authorization", bearer.clone()), ("X-NF-Sign", genuine.clone())],
            false,
            Ok("dev"),
        ),
        (
            "wrong secret",
            &other_secret,
            vec![("authorization", bearer.clone()), ("x-nf-sign", genuine.clone())],
            false,
            invalid.clone(),
        ),
        (
            "deploy context not allowed",
            &production_only,
            vec![("authorization", bearer.clone()), ("x-nf-sign", genuine.clone())],
            false,
            invalid.clone(),
        ),
        (
            "site id not allowed",
            &pinned_site,
            vec![("authorization", bearer.clone()), ("x-nf-sign", genuine.clone())],
            false,
            invalid.clone(),
        ),
        (
            "expired",
            &plain,
            vec![
                ("authorization", bearer.clone()),
                (
                    "x-nf-sign",
                    sign_header(
                        &json!({"deploy_context": "dev", "iat": t - 900, "exp": t - 600, "iss": "netlify"}),
                        PROXY_SECRET,
                    ),
                ),
            ],
            false,
            invalid.clone(),
        ),
        (
            "iss other than netlify",
            &plain,
            vec![
                ("authorization", bearer.clone()),
                (
                    "x-nf-sign",
                    sign_header(
                        &json!({"deploy_context": "dev", "iat": t, "exp": t + 300, "iss": "gotrue"}),
                        PROXY_SECRET,
                    ),
                ),
            ],
            false,
            invalid.clone(),
        ),
        (
            "lifetime too long",
            &plain,
            vec![
                ("authorization", bearer.clone()),
                (
                    "x-nf-sign",
                    sign_header(
                        &json!({"deploy_context": "dev", "iat": t, "exp": t + 3600, "iss": "netlify"}),
                        PROXY_SECRET,
                    ),
                ),
            ],
            false,
            invalid.clone(),
        ),
        (
            "add-on shaped claims",
            &plain,
            vec![
                ("authorization", bearer.clone()),
                (
                    "x-nf-sign",
                    sign_header(
                        &json!({"exp": t + 300, "iat": t, "iss": "netlify", "site_url": "https://x.netlify.app", "id": "instance", "netlify_id": SITE_ID}),
                        PROXY_SECRET,
                    ),
                ),
            ],
            false,
            invalid.clone(),
        ),
        (
            "two x-nf-sign headers",
            &plain,
            vec![
                ("authorization", bearer.clone()),
                ("x-nf-sign", genuine.clone()),
                ("X-Nf-Sign", genuine.clone()),
            ],
            false,
            invalid.clone(),
        ),
        (
            "user valid, header required and missing",
            &plain,
            vec![("authorization", bearer.clone())],
            true,
            Err((Code::Unauthenticated, "proxy_signature_missing".into())),
        ),
        (
            "header valid, user forged",
            &plain,
            vec![("authorization", format!("Bearer {forged_user}")), ("x-nf-sign", genuine.clone())],
            true,
            Err((Code::Unauthenticated, "bad_signature".into())),
        ),
        (
            "replay mode: first use",
            &replay,
            vec![("authorization", bearer.clone()), ("x-nf-sign", genuine.clone())],
            true,
            Ok("dev"),
        ),
        (
            "replay mode: second use",
            &replay,
            vec![("authorization", bearer.clone()), ("x-nf-sign", genuine.clone())],
            true,
            Err((Code::Unauthenticated, "proxy_signature_replayed".into())),
        ),
    ];
    let mut failures = Vec::new();
    for (what, server, headers, required, want) in cases {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let got = verify(server, &h, required).await;
        let got = got.map(|r| r.proxy.map(|p| p.deploy_context).unwrap_or_default());
        let want = want.map(str::to_string);
        if got != want {
            failures.push(format!("{what}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
