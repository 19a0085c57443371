//! The binary's subcommands: check-config, token, and config errors.

mod common;

use authgate::pb::VerifyRequest;
use common::*;
use std::process::Command;

fn authgate(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_authgate"));
    c.current_dir(dir).env_remove("AUTHGATE_CONFIG").env_remove("AUTHGATE_DEV_SECRET");
    c
}

#[test]
fn check_config_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, standard_config()).unwrap();
    let out = authgate(dir.path())
        .args(["check-config", "--config"])
        .arg(&cfg)
        .env("AUTHGATE_ISSUER_FUNCTIONS_PREVIOUS_SECRET", "env-previous-secret-0123456789")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for s in [SECRET, PREVIOUS, FN_SECRET, "env-previous-secret-0123456789"] {
        assert!(!stdout.contains(s) && !stderr.contains(s), "secret printed:\n{stdout}{stderr}");
    }
    assert!(stdout.contains("name = \"functions\"") && stdout.contains("[redacted: 30 bytes]"), "{stdout}");
}

#[test]
fn invalid_config_reports_every_error_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[server]\ngrpc_addr = \"x\"\nhttp_addr = \"y\"\n[[issuers]]\nname = \"a\"\nsecret = \"tiny-secret\"\nleeway = \"1h\"\nbogus = 1\n",
    )
    .unwrap();
    let out = authgate(dir.path()).arg("--config").arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "server.grpc_addr",
        "server.http_addr",
        "shorter than 16 bytes",
        "leeway",
        "unknown key `issuers[0] (a).bogus`",
    ] {
        assert!(stderr.contains(needle), "missing {needle}:\n{stderr}");
    }
    assert!(stderr.contains("invalid configuration (5 error(s))"), "{stderr}");
    assert!(!stderr.contains("tiny-secret"), "{stderr}");
}

#[test]
fn missing_config_file_is_an_error_not_dev_mode() {
    let dir = tempfile::tempdir().unwrap();
    let out = authgate(dir.path())
        .args(["check-config", "--config", "/nonexistent/authgate.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!dir.path().join(".authgate").exists(), "dev secret created although a config was given");
}

#[tokio::test]
async fn dev_token_verifies_against_dev_mode() {
    let dir = tempfile::tempdir().unwrap();
    let out = authgate(dir.path())
        .args([
            "token", "--sub", "user-1", "--email", "a@b.c", "--role", "admin", "--role", "editor", "--ttl",
            "5m",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    // The token has GoTrue's exact header.
    use base64::Engine;
    let header =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap();
    let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
    assert_eq!(header, serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": "nf-ident"}));

    // The server in dev mode, in the same working directory, accepts it.
    let no_env = |_: &str| None;
    let mut config = authgate::Config::load(&authgate::config::Inputs {
        config_path: None,
        grpc_addr: Some("127.0.0.1:0".into()),
        http_addr: Some("127.0.0.1:0".into()),
        env: &no_env,
        workdir: dir.path().to_path_buf(),
    })
    .unwrap();
    config.log.level = "warn".into();
    let server = TestServer::start_config(config).await;
    let id = server.client().await.verify(VerifyRequest { token, ..Default::default() }).await.unwrap();
    let id = id.into_inner().identity.unwrap();
    assert_eq!((id.subject.as_str(), id.email.as_str(), id.issuer.as_str()), ("user-1", "a@b.c", "dev"));
    assert_eq!(id.roles, ["admin", "editor"]);
    let ttl = id.expires_at.unwrap().seconds - now();
    assert!((290..=300).contains(&ttl), "ttl {ttl}");
}
