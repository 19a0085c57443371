//! Logging never blocks a decision: with stderr not read at all (a stuck
//! log shipper), requests go on, lines are dropped (granted decisions
//! first), every drop is counted, and one summary line follows once stderr
//! is read again.

mod common;

use authgate::pb::VerifyRequest;
use common::*;
use serde_json::{Value, json};
use std::time::Duration;

fn config(dir: &std::path::Path) -> std::path::PathBuf {
    let cfg = dir.join("authgate.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n\
             [log]\nformat = \"json\"\nqueue_lines = 1024\n\
             [[issuers]]\nname = \"site\"\nsecret = \"{SECRET}\"\n"
        ),
    )
    .unwrap();
    cfg
}

/// Shutdown waits a bounded time for queued lines, not for a reader that
/// never comes (it held a benchmark's server for minutes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_stderr_does_not_hold_the_exit() {
    let dir = tempfile::tempdir().unwrap();
    let server = Binary::start(&config(dir.path()), &[]);
    let mut client = server.client().await;
    let token = gotrue_token(&json!({"exp": now() + 600, "sub": "u1"}), SECRET);
    server.pause_stderr(true);
    for _ in 0..2_000 {
        client.verify(VerifyRequest { token: token.clone(), ..Default::default() }).await.unwrap();
    }
    drop(client);
    let exited = tokio::task::spawn_blocking(move || server.stop());
    let status = tokio::time::timeout(Duration::from_secs(60), exited).await;
    assert!(matches!(status, Ok(Ok(s)) if s.success()), "the process exits with stderr unread: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_stderr_drops_granted_lines_first_and_never_blocks_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = Binary::start(&config(dir.path()), &[]);
    let client = server.client().await;
    let token = gotrue_token(&json!({"exp": now() + 600, "sub": "u1"}), SECRET);
    server.pause_stderr(true);
    // A lossless writer blocks once the pipe (64 KiB) and the queue (1,024
    // lines) are full, after ~1,300 decisions; 6,096 requests (8 workers ×
    // 762, every 61st denied) must all be answered.
    let total = 6_096;
    let answered = tokio::time::timeout(Duration::from_secs(120), async {
        let mut tasks = Vec::new();
        for worker in 0..8 {
            let mut client = client.clone();
            let token = token.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..total / 8 {
                    let denial = (i * 8 + worker) % 61 == 0;
                    let request = VerifyRequest {
                        token: if denial { "not-a-token".into() } else { token.clone() },
                        ..Default::default()
                    };
                    let answer = client.verify(request).await;
                    assert_eq!(answer.is_ok(), !denial);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    })
    .await;
    assert!(answered.is_ok(), "requests blocked behind a stuck stderr");
    let samples = scrape(server.http).await;
    let dropped =
        |kind| sample(&samples, "authgate_log_lines_dropped_total", &[("kind", kind)]).unwrap_or(0.0);
    assert!(dropped("granted") > 0.0, "granted lines were dropped and counted");
    assert_eq!(dropped("other"), 0.0, "denials are kept while the queue has room for them");
    server.pause_stderr(false);
    let summary: Value = serde_json::from_str(&server.wait_for_log("log lines dropped")).unwrap();
    assert_eq!(summary["level"], "WARN");
    assert_eq!(summary["granted"].as_f64(), Some(dropped("granted")), "{summary}");
    let logs = server.logs_handle();
    assert!(server.stop().success());
    let decisions: Vec<Value> = logs
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "decision")
        .collect();
    let refused = decisions.iter().filter(|d| d["granted"] == false).count();
    let allowed = decisions.iter().filter(|d| d["granted"] == true).count();
    let expected_denials = (0..total).filter(|n| n % 61 == 0).count();
    assert_eq!(refused, expected_denials, "every denial line was written");
    assert_eq!(
        allowed as f64 + dropped("granted"),
        (total - expected_denials) as f64,
        "each granted line written or counted"
    );
}
