//! Operating authgate: Prometheus metrics parsed by a real parser, and live
//! reload of the real binary on SIGHUP under load.

mod common;

use authgate::pb::VerifyRequest;
use common::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn metrics_count_decisions_by_reason_and_never_label_a_user() {
    let server = TestServer::start(&standard_config()).await;
    let mut client = server.client().await;
    let good = gotrue_token(&gotrue_claims(), SECRET);
    let expired =
        gotrue_token(&json!({"sub": "5b7c2d1e-0000-4000-8000-00000000dead", "exp": now() - 600}), SECRET);
    let forged = gotrue_token(&gotrue_claims(), "an-attacker-secret-0123456789");
    let verify = |token: &str, roles: &[&str]| VerifyRequest {
        token: token.into(),
        required_roles: roles.iter().map(|r| r.to_string()).collect(),
        ..Default::default()
    };
    // (token, required roles, times): 3 granted, 2 expired, 1 forged, 1 missing role, 1 no token.
    for (token, roles, times) in [
        (good.as_str(), &[][..], 3),
        (expired.as_str(), &[][..], 2),
        (forged.as_str(), &[][..], 1),
        (good.as_str(), &["owner"][..], 1),
        ("", &[][..], 1),
    ] {
        for _ in 0..times {
            let _ = client.verify(verify(token, roles)).await;
        }
    }
    let bearer = format!("Bearer {good}");
    assert_eq!(get(server.http, "/forward-auth", &[("authorization", &bearer)]).await.0, 200);
    assert_eq!(get(server.http, "/forward-auth", &[]).await.0, 401);

    let (status, head, body) = get(server.http, "/metrics", &[]).await;
    assert_eq!(status, 200, "{head}");
    let samples = parse_metrics(&body);
    let decisions = |adapter: &str, outcome: &str, reason: &str| {
        sample(
            &samples,
            "authgate_decisions_total",
            &[("adapter", adapter), ("outcome", outcome), ("reason", reason)],
        )
    };
    let cases = [
        ("granted Verify calls", decisions("verify", "granted", "none"), Some(3.0)),
        ("expired", decisions("verify", "denied", "token_expired"), Some(2.0)),
        ("forged", decisions("verify", "denied", "bad_signature"), Some(1.0)),
        ("missing role", decisions("verify", "denied", "insufficient_role"), Some(1.0)),
        ("no token", decisions("verify", "denied", "missing_credential"), Some(1.0)),
        ("forward-auth granted", decisions("forward_auth", "granted", "none"), Some(1.0)),
        ("forward-auth missing", decisions("forward_auth", "denied", "missing_credential"), Some(1.0)),
        (
            "identity cache hits (3 repeats of one token + 1 role check + forward-auth)",
            sample(&samples, "authgate_cache_requests_total", &[("cache", "identity"), ("result", "hit")]),
            Some(4.0),
        ),
        (
            "latency histogram count for Verify",
            sample(&samples, "authgate_decision_duration_seconds_count", &[("adapter", "verify")]),
            Some(8.0),
        ),
        ("ready", sample(&samples, "authgate_ready", &[]), Some(1.0)),
        (
            "build info",
            sample(&samples, "authgate_build_info", &[("version", env!("CARGO_PKG_VERSION"))]),
            Some(1.0),
        ),
    ];
    for (what, got, want) in cases {
        assert_eq!(got, want, "{what}");
    }
    assert!(decisions("verify", "granted", "none").is_some());
    // Bounded labels only: no subject, email, token or token fragment.
    let secrets = [
        "775a5344-0c6d-4dc6-9ac7-d2d646e071ec",
        "5b7c2d1e-0000-4000-8000-00000000dead",
        "test@test.com",
        good.rsplit('.').next().unwrap(),
        expired.split('.').nth(1).unwrap(),
    ];
    for s in &samples {
        for (_, v) in s["labels"].as_object().unwrap() {
            let v = v.as_str().unwrap();
            assert!(!secrets.iter().any(|x| v.contains(x)), "label value {v:?} in {s}");
            assert!(v.len() < 64, "unbounded-looking label value {v:?}");
        }
    }
}

/// The real binary under a steady Verify load: SIGHUP with a new secret and
/// a new issuer → tokens with the new secret and from the new issuer verify,
/// the old secret is refused, and not one request failed for any other
/// reason; then a broken config → rejected, the running one keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reload_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("authgate.toml");
    let secret_file = dir.path().join("secret");
    let old = "old-secret-0123456789abcdef";
    let new = "new-secret-0123456789abcdef";
    std::fs::write(&secret_file, old).unwrap();
    let base = format!(
        "[server]\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\n\
         [[issuers]]\nname = \"netlify\"\nsecret_file = \"{}\"\ndefault = true\n",
        secret_file.display()
    );
    std::fs::write(&cfg, &base).unwrap();
    let server = Binary::start(&cfg, &[]);
    let grpc = server.grpc;
    let hangup = || server.signal("HUP");
    let wait_for_log = |needle: &str| server.wait_for_log(needle);

    let claims = gotrue_claims();
    let old_token = gotrue_token(&claims, old);
    let new_token = gotrue_token(&claims, new);
    let fn_token = sign(
        jsonwebtoken::Algorithm::HS256,
        None,
        &json!({"sub": "svc", "exp": now() + 600, "iss": FN_ISS, "aud": "orders-api"}),
        FN_SECRET,
    );
    let channel =
        tonic::transport::Channel::from_shared(format!("http://{grpc}")).unwrap().connect().await.unwrap();
    let client = authgate::pb::auth_service_client::AuthServiceClient::new(channel);

    // Load: 4 workers, each Verify alternating the old and the new token.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (mut c, stop) = (client.clone(), stop.clone());
        let tokens = [old_token.clone(), new_token.clone()];
        workers.push(tokio::spawn(async move {
            let mut outcomes: std::collections::BTreeMap<String, u64> = Default::default();
            let mut i = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = c.verify(VerifyRequest { token: tokens[i % 2].clone(), ..Default::default() }).await;
                let key = match r {
                    Ok(_) => "granted".to_string(),
                    Err(s) => reason(&s).unwrap_or_else(|| format!("{:?}", s.code())),
                };
                *outcomes.entry(key).or_default() += 1;
                i += 1;
            }
            outcomes
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut c = client.clone();
    let v = |t: &str| VerifyRequest { token: t.into(), ..Default::default() };
    assert!(c.verify(v(&old_token)).await.is_ok(), "old secret before reload");
    assert_eq!(reason(&c.verify(v(&new_token)).await.unwrap_err()).as_deref(), Some("bad_signature"));

    // A new secret and a second issuer, then SIGHUP.
    std::fs::write(&secret_file, new).unwrap();
    std::fs::write(
        &cfg,
        format!("{base}[[issuers]]\nname = \"functions\"\nsecret = \"{FN_SECRET}\"\niss = \"{FN_ISS}\"\naudiences = [\"orders-api\"]\n"),
    )
    .unwrap();
    hangup();
    wait_for_log("configuration reloaded");
    assert!(c.verify(v(&new_token)).await.is_ok(), "new secret after reload");
    assert_eq!(reason(&c.verify(v(&old_token)).await.unwrap_err()).as_deref(), Some("bad_signature"));
    let id = c.verify(v(&fn_token)).await.expect("the new issuer").into_inner().identity.unwrap();
    assert_eq!(id.issuer, "functions");

    // A broken config: every error logged, the running config keeps serving.
    std::fs::write(&cfg, format!("{base}[[issuers]]\nname = \"Bad Name\"\nsecret = \"short\"\n")).unwrap();
    hangup();
    let rejected = wait_for_log("reload rejected");
    assert!(!rejected.contains("short\""), "a secret value in the log: {rejected}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(c.verify(v(&new_token)).await.is_ok(), "still serving after a rejected reload");
    assert!(c.verify(v(&fn_token)).await.is_ok(), "still serving the reloaded issuers");

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total: std::collections::BTreeMap<String, u64> = Default::default();
    for w in workers {
        for (k, n) in w.await.unwrap() {
            *total.entry(k).or_default() += n;
        }
    }
    // Every answer under load was a grant or the expected bad_signature of
    // whichever token the current secret does not sign: no failed request.
    let other: Vec<_> = total.iter().filter(|(k, _)| *k != "granted" && *k != "bad_signature").collect();
    assert!(other.is_empty(), "failed requests during reload: {total:?}");
    assert!(total.get("granted").copied().unwrap_or(0) > 100, "too little load: {total:?}");
    let all = server.logs().join("\n");
    let errors = all.lines().filter(|l| l.contains("reload rejected: invalid configuration")).count();
    assert!(errors >= 2, "every config error is logged:\n{all}");
    assert!(server.stop().success());
}

/// `server.watch_interval`: a Secret file updated in place (as Kubernetes
/// does) is picked up without a signal; the old secret is then refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_secret_file_reloads_without_a_signal() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("authgate.toml");
    let secret_file = dir.path().join("secret");
    let (old, new) = ("watched-old-secret-0123456789", "watched-new-secret-0123456789");
    std::fs::write(&secret_file, old).unwrap();
    std::fs::write(
        &cfg,
        format!(
            "[server]\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\nwatch_interval = \"200ms\"\n\
             [log]\nformat = \"json\"\n[[issuers]]\nname = \"netlify\"\nsecret_file = \"{}\"\n",
            secret_file.display()
        ),
    )
    .unwrap();
    let server = Binary::start(&cfg, &[]);
    let grpc = server.grpc;
    let mut client = authgate::pb::auth_service_client::AuthServiceClient::connect(format!("http://{grpc}"))
        .await
        .unwrap();
    let v = |t: &str| VerifyRequest { token: t.into(), ..Default::default() };
    let (old_token, new_token) = (gotrue_token(&gotrue_claims(), old), gotrue_token(&gotrue_claims(), new));
    assert!(client.verify(v(&old_token)).await.is_ok());
    std::fs::write(&secret_file, format!("{new}\n")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while client.verify(v(&new_token)).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "the changed secret file was not picked up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(reason(&client.verify(v(&old_token)).await.unwrap_err()).as_deref(), Some("bad_signature"));
    assert!(server.stop().success());
}

/// A reload whose new issuers cannot get keys is refused after the wait:
/// the running generation (and its readiness) stays; a good one swaps in,
/// while a request holding the old generation finishes on it.
#[tokio::test]
async fn reload_keeps_the_running_generation_until_the_new_one_is_ready() {
    use authgate::testing::{Generation, Live};
    let first = load_config(&standard_config()).unwrap();
    let metrics = std::sync::Arc::new(authgate::testing::Metrics::new());
    let live = Live::start(first, metrics).unwrap();
    let in_flight = live.get();
    let names = |g: &Generation| g.gate.issuers().names().iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let configured = names(&in_flight);

    let unreachable = load_config(&format!(
        "{}\n[[issuers]]\nname = \"idp\"\nkind = \"jwks\"\niss = \"https://idp.invalid/\"\naudiences = [\"api\"]\njwks_url = \"{}/jwks\"\n",
        standard_config(),
        closed_port_url()
    ))
    .unwrap();
    let err = live.reload(unreachable, Duration::from_millis(500)).await.unwrap_err();
    assert!(err.contains("idp"), "{err}");
    assert_eq!(names(&live.get()), configured, "the running issuers stay");
    assert!(live.get().gate.issuers().ready(), "readiness unchanged by a refused reload");

    let mut fewer = load_config(&standard_config()).unwrap();
    fewer.issuers.retain(|i| i.name == "netlify");
    fewer.grpc_addr = "127.0.0.1:1".parse().unwrap();
    let restart_only = live.reload(fewer, Duration::from_secs(1)).await.unwrap();
    assert_eq!(restart_only, ["server.grpc_addr"], "settings bound at start are reported");
    assert_eq!(live.get().gate.issuers().names(), ["netlify"]);
    // The request that started before the swap still has its generation.
    assert_eq!(names(&in_flight), configured);
}
