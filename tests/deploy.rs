//! The deployment examples stay valid: the example config passes the same
//! validation the server runs, and the Kubernetes manifest passes
//! kubernetes-validate --strict (offline schemas).

mod common;

use common::repo_root;
use std::process::Command;

#[test]
fn example_config_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let netlify = dir.path().join("n");
    let functions = dir.path().join("f");
    std::fs::write(&netlify, "netlify-jwt-secret-0123456789\n").unwrap();
    std::fs::write(&functions, "functions-secret-0123456789\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(["check-config", "--config"])
        .arg(repo_root().join("deploy/authgate.example.toml"))
        .env("AUTHGATE_ISSUER_NETLIFY_SECRET_FILE", &netlify)
        .env("AUTHGATE_ISSUER_FUNCTIONS_SECRET_FILE", &functions)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("name = \"functions\"") && !stdout.contains("0123456789"), "{stdout}");
    assert!(stdout.contains("name = \"supabase\"") && stdout.contains("kind = \"jwks\""), "{stdout}");
}

#[test]
fn kubernetes_manifest_is_valid() {
    let bin = repo_root().join(".venv/bin/kubernetes-validate");
    assert!(bin.exists(), "{} missing: run scripts/test.sh", bin.display());
    let out =
        Command::new(bin).arg("--strict").arg(repo_root().join("deploy/kubernetes.yaml")).output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
