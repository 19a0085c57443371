//! Real clients in other languages against the in-process server.
//!
//! The Python interpreter is `AUTHGATE_TEST_PYTHON`, else `.venv/bin/python`
//! (created by `scripts/test.sh` from tests/python/requirements.txt). A
//! missing interpreter fails the test: it is never skipped silently.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;

fn python() -> PathBuf {
    let p = std::env::var_os("AUTHGATE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    assert!(p.exists(), "{} not found: run scripts/test.sh, which creates the venv", p.display());
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpcio_client() {
    let server = TestServer::start(&standard_config()).await;
    let python = python();
    let script = repo_root().join("tests/python/test_polyglot.py");
    let addr = server.grpc.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python).arg(script).args(["--addr", &addr, "--secret", SECRET]).output()
    })
    .await
    .unwrap()
    .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python client failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("14 passed, 0 failed"), "{stdout}");
}
