//! The memory budget (docs/operations.md, "Memory budget"): the binary on
//! its default limits, its identity cache filled past its default maximum
//! (10,000) by distinct tokens from 16 concurrent callers, stays within the
//! budget's parts that this load exercises, and far inside the 128 MiB the
//! Kubernetes manifest gives it.

mod common;

use authgate::pb::VerifyRequest;
use common::*;
use serde_json::json;

const MIB: u64 = 1 << 20;

/// Above idle (the runtime and code, measured at start: a debug build here,
/// 13.5 MB for release): the identity cache at its default maximum (10,000
/// × 1 KiB = 10; 793 B measured by `bench/capacity.py`, plus the encoded
/// answer of those answered twice) + the log queue (8,192 lines, ≤ 3) + 16
/// requests in flight and their connections (≤ 4), in MiB.
const LOAD_BUDGET_MIB: u64 = 17;
/// The Kubernetes manifest's limit (deploy/k8s/base).
const POD_LIMIT_MIB: u64 = 128;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_under_load_stay_within_the_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("authgate.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\n\
             [[issuers]]\nname = \"site\"\nsecret = \"{SECRET}\"\n"
        ),
    )
    .unwrap();
    let server = Binary::start(&cfg, &[]);
    let idle = server.rss_bytes();
    let client = server.client().await;
    let (workers, per_worker) = (16, 750);
    let mut tasks = Vec::new();
    for w in 0..workers {
        let mut client = client.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_worker {
                let token = gotrue_token(
                    &json!({"exp": now() + 600, "sub": format!("user-{w}-{i}"), "email": "a@example.com",
                            "app_metadata": {"provider": "email", "roles": ["member"]}}),
                    SECRET,
                );
                client.verify(VerifyRequest { token, ..Default::default() }).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let samples = scrape(server.http).await;
    let entries = sample(&samples, "authgate_cache_entries", &[("cache", "identity")]).unwrap_or(0.0);
    let peak = server.peak_rss_bytes();
    println!(
        "idle {:.1} MiB, peak {:.1} MiB after {} distinct tokens ({entries} cached)",
        idle as f64 / MIB as f64,
        peak as f64 / MIB as f64,
        workers * per_worker
    );
    assert!(entries >= 9_000.0, "the cache filled to its maximum: {entries}");
    assert!(
        peak <= idle + LOAD_BUDGET_MIB * MIB,
        "peak RSS {peak} over idle {idle} + the budget's {LOAD_BUDGET_MIB} MiB"
    );
    assert!(peak <= POD_LIMIT_MIB * MIB);
    assert!(server.stop().success());
}
