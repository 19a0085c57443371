//! `authgate store migrate` and `authgate users …` against both real
//! backends, checked through the database's own client.

mod common;

use common::authgate_command;
use common::db::{Db, postgres, sqlite};
use serde_json::Value;
use std::process::Output;

fn run(config: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut cmd = authgate_command();
    cmd.arg("--config").arg(config).args(args);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("authgate");
    if let Some(text) = stdin {
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

async fn cli_manages_users(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("authgate.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = \"{}\"\n\n[[issuers]]\nname = \"site\"\nsecret = \"{}\"\n",
            db.url(),
            common::SECRET
        ),
    )
    .unwrap();
    let code = |o: &Output| o.status.code().unwrap_or(-1);

    let migrated = run(&config, &["store", "migrate"], None);
    assert_eq!(code(&migrated), 0, "{}", String::from_utf8_lossy(&migrated.stderr));
    assert!(String::from_utf8_lossy(&migrated.stderr).contains("version 0 -> 2"));
    let again = run(&config, &["store", "migrate"], None);
    assert!(String::from_utf8_lossy(&again.stderr).contains("version 2 -> 2"), "idempotent");

    // A user the store knows (as a webhook or a granted request would write it).
    db.exec("INSERT INTO authgate_users (issuer, subject, email) VALUES ('site', 'u1', 'a@example.com')")
        .await;

    let cases: Vec<(&str, Vec<&str>, Option<&str>, i32)> = vec![
        ("set roles", vec!["users", "set-roles", "site", "u1", "admin", "editor"], None, 0),
        (
            "set claims from stdin",
            vec!["users", "set-claims", "site", "u1", "-"],
            Some(r#"{"plan": "pro"}"#),
            0,
        ),
        (
            "a reserved claim is refused up front",
            vec!["users", "set-claims", "site", "u1", r#"{"sub": "x"}"#],
            None,
            2,
        ),
        (
            "a deep claim is refused",
            vec!["users", "set-claims", "site", "u1", r#"{"d": [[[[["x"]]]]]}"#],
            None,
            2,
        ),
        ("not an object", vec!["users", "set-claims", "site", "u1", "[1]"], None, 2),
        ("unknown user", vec!["users", "set-roles", "site", "nobody", "admin"], None, 1),
        ("show unknown", vec!["users", "show", "site", "nobody"], None, 1),
    ];
    for (what, args, stdin, want) in cases {
        let out = run(&config, &args, stdin);
        assert_eq!(code(&out), want, "{what}: {}", String::from_utf8_lossy(&out.stderr));
    }

    let shown = run(&config, &["users", "show", "site", "u1"], None);
    let row: Value = serde_json::from_slice(&shown.stdout).expect("JSON row");
    assert_eq!(row["roles"], serde_json::json!(["admin", "editor"]));
    assert_eq!(
        row["claims"],
        serde_json::json!({"plan": "pro"}),
        "refused claims left the stored ones alone"
    );
    assert_eq!(row["email"], "a@example.com");

    let listed = run(&config, &["users", "list", "--issuer", "site"], None);
    assert_eq!(String::from_utf8_lossy(&listed.stdout).lines().count(), 1);

    assert_eq!(code(&run(&config, &["users", "set-roles", "site", "u1", "--clear"], None)), 0);
    assert_eq!(code(&run(&config, &["users", "delete", "site", "u1"], None)), 0);
    let row: Value =
        serde_json::from_slice(&run(&config, &["users", "show", "site", "u1"], None).stdout).unwrap();
    assert_eq!(row["roles"], Value::Null);
    assert!(row["deleted_at"].is_string(), "marked deleted");
    assert_eq!(db.row("u1").await, Some(("a@example.com".into(), true)));
}

#[tokio::test]
async fn cli_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    cli_manages_users(sqlite(&dir).await).await;
}

#[tokio::test]
async fn cli_on_postgres() {
    cli_manages_users(postgres().await).await;
}

#[test]
fn store_config_errors_are_reported() {
    let base = format!("[[issuers]]\nname = \"site\"\nsecret = \"{}\"\n", common::SECRET);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "roles from a store that is not configured",
            format!("{base}roles_source = \"store\"\n"),
            "no [store] is configured",
        ),
        (
            "an unknown roles source",
            format!("[store]\n{base}roles_source = \"db\"\n"),
            "must be `token`, `store` or `both`",
        ),
        (
            "a webhook without its listener",
            format!("[store]\n{base}webhook_secret = \"webhook-secret-0123456789\"\n"),
            "server.webhook_addr is not set",
        ),
        (
            "a listener without a webhook",
            format!("[server]\nwebhook_addr = \"127.0.0.1:0\"\n[store]\n{base}"),
            "no issuer has a webhook_secret",
        ),
        (
            "a short webhook secret",
            format!("[store]\n{base}webhook_secret = \"short\"\n"),
            "shorter than 16 bytes",
        ),
        (
            "an unknown database",
            format!("[store]\nurl = \"mysql://x\"\n{base}"),
            "must start with postgres://",
        ),
        (
            "TLS to PostgreSQL is not there yet",
            format!("[store]\nurl = \"postgres://u:pw@db/app?sslmode=require\"\n{base}"),
            "sslmode=require is not supported",
        ),
        ("a schema for SQLite", format!("[store]\nschema = \"auth\"\n{base}"), "PostgreSQL only"),
        (
            "a bad schema name",
            format!("[store]\nurl = \"postgres://db/app\"\nschema = \"a;drop\"\n{base}"),
            "[a-z0-9_]",
        ),
        (
            "webhook on a public address without TLS",
            format!(
                "[server]\nwebhook_addr = \"0.0.0.0:8443\"\n[store]\n{base}webhook_secret = \"webhook-secret-0123456789\"\n"
            ),
            "server.webhook_addr = 0.0.0.0:8443 is reachable beyond loopback",
        ),
    ];
    for (what, toml, want) in cases {
        let errors = common::load_config(&toml).expect_err(what).to_string();
        assert!(errors.contains(want), "{what}: {errors}");
        assert!(!errors.contains("pw@"), "{what}: the URL's password is never echoed");
    }
}

#[tokio::test]
async fn a_postgres_schema_holds_the_tables() {
    let db = postgres().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("authgate.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = \"{}\"\nschema = \"identity\"\n\n[[issuers]]\nname = \"site\"\nsecret = \"{}\"\n",
            db.url(),
            common::SECRET
        ),
    )
    .unwrap();
    let out = run(&config, &["store", "migrate"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tables = db
        .query_i64("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'identity' AND table_name LIKE 'authgate_%'")
        .await;
    assert_eq!(tables, 5, "users, signup allow-list, changes, revocations, migrations in the schema");
    let public = db.query_i64("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name LIKE 'authgate_%'").await;
    assert_eq!(public, 0, "nothing in public");
}
