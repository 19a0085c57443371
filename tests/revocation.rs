//! Revocation across replicas: three authgate replicas on one PostgreSQL,
//! one on SQLite. Each source (the CLI, the app's own SQL, the
//! `userdeleted` webhook) revokes on one replica and the others refuse
//! within a bound, cache hits included; "before T", `jti` and token-hash
//! entries refuse exactly what they name; Exchange mints nothing for a
//! revoked subject; a lost notification only delays; an outage fails
//! closed after `store.max_staleness` and recovers; expired entries go.

mod common;

use authgate::pb::{ExchangeRequest, VerifyRequest};
use common::db::{Db, postgres, sqlite};
use common::{SECRET, TestServer, authgate_command, gotrue_claims, gotrue_token, now, reason};
use std::time::{Duration, Instant};

fn token(sub: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut c = gotrue_claims();
    c["sub"] = sub.into();
    edit(&mut c);
    gotrue_token(&c, SECRET)
}

fn config(db: &Db, dir: &std::path::Path, server_extra: &str, store_extra: &str) -> String {
    format!(
        r#"
[server]
grpc_addr = "127.0.0.1:0"
http_addr = "127.0.0.1:0"
webhook_addr = "127.0.0.1:0"
{server_extra}

[store]
url = "{url}"
{store_extra}

[[issuers]]
name = "site"
secret = "{SECRET}"
webhook_secret = "{hook}"
default = true

[[issuers]]
name = "lenient"
secret = "{SECRET}"
on_stale_revocations = "allow"

{exchange}
"#,
        url = db.url(),
        hook = common::webhook::HOOK_SECRET,
        exchange = common::exchange_section(dir),
    )
}

/// The verdict of one Verify: `Ok(())` granted, else the reason.
async fn verdict(server: &TestServer, token: &str, issuer: &str) -> Result<(), String> {
    let req = VerifyRequest { token: token.into(), issuer: issuer.into(), ..Default::default() };
    match server.client().await.verify(req).await {
        Ok(_) => Ok(()),
        Err(s) => Err(reason(&s).unwrap_or_else(|| s.message().to_string())),
    }
}

async fn wait_ready(server: &TestServer) {
    let ok = common::within(Duration::from_secs(15), || async {
        server.health("").await == tonic_health::pb::health_check_response::ServingStatus::Serving
    })
    .await;
    assert!(ok.is_some(), "never ready");
}

fn cli(config: &std::path::Path, args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut cmd = authgate_command();
    cmd.arg("--config").arg(config).args(args);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = stdin {
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "authgate {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Waits until every server refuses `token` as revoked; the time it took.
async fn refused_everywhere(servers: &[&TestServer], token: &str) -> Duration {
    let started = Instant::now();
    for s in servers {
        let took = common::within(Duration::from_secs(5), || async {
            verdict(s, token, "").await == Err("token_revoked".into())
        })
        .await;
        assert!(took.is_some(), "a replica still grants after 5 s: {:?}", verdict(s, token, "").await);
    }
    started.elapsed()
}

fn percentile(mut d: Vec<Duration>, p: f64) -> Duration {
    d.sort();
    d[((d.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::test]
async fn revocations_reach_every_replica_on_postgres() {
    let db = postgres().await;
    let dir = tempfile::tempdir().unwrap();
    let toml = config(&db, dir.path(), "", "");
    // Replica A takes webhooks, and admin calls from the `ops` caller its
    // mesh sidecar names.
    let with_hook = toml
        .replace("[server]\n", "[server]\nplaintext = \"mesh\"\ntrust_forwarded_client_cert = true\n")
        + "\n[[callers]]\nname = \"ops\"\nmatch = \"spiffe://test/ops\"\n\n[access]\nadmin = [\"ops\"]\n";
    let a = TestServer::start(&with_hook).await;
    let b = TestServer::start(&toml).await;
    let c = TestServer::start(&toml).await;
    for s in [&a, &b, &c] {
        wait_ready(s).await;
    }
    let cfg = dir.path().join("cli.toml");
    std::fs::write(&cfg, &toml).unwrap();
    let others = [&b, &c];
    let mut latencies = Vec::new();

    // Each user's token passes everywhere first: the refusals below are
    // refusals of cache hits.
    let users = ["alice", "bob", "carol", "dave", "eve", "frank", "gina", "harry"];
    let tokens: Vec<String> = users.iter().map(|u| token(u, |_| {})).collect();
    for t in &tokens {
        for s in [&a, &b, &c] {
            assert_eq!(verdict(s, t, "").await, Ok(()));
        }
    }

    // 1. The CLI.
    cli(&cfg, &["revoke", "--subject", "alice", "--reason", "compromised laptop"], None);
    latencies.push(refused_everywhere(&others, &tokens[0]).await);

    // 2. The app's own SQL: "ban this user" is one statement.
    db.exec("INSERT INTO authgate_revocations (kind, subject, reason, created_by) VALUES ('subject', 'bob', 'banned', 'admin-page')")
        .await;
    latencies.push(refused_everywhere(&others, &tokens[1]).await);

    // 3. The userdeleted webhook, on replica A.
    let u = common::webhook::user("carol", "carol@example.com", "2026-05-01T00:00:00Z", &[]);
    assert_eq!(common::webhook::send(a.webhook.unwrap(), "site", "userdeleted", &u).await.0, 200);
    latencies.push(refused_everywhere(&[&a, &b, &c], &tokens[2]).await);
    // Deleting every revocation entry does not un-delete her.
    db.exec("DELETE FROM authgate_revocations").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(verdict(&b, &tokens[2], "").await, Err("token_revoked".into()), "deletion is final");
    assert_eq!(verdict(&b, &tokens[0], "").await, Ok(()), "a deleted entry no longer refuses");

    // 4. "Before T": a token issued after T passes. GoTrue tokens carry no
    // iat: issued = exp − access_token_ttl (1h).
    cli(&cfg, &["revoke", "--subject", "dave", "--before", &(now() + 1).to_string()], None);
    latencies.push(refused_everywhere(&others, &tokens[3]).await);
    let fresh = token("dave", |c| c["exp"] = (now() + 3600 + 5).into());
    assert_eq!(verdict(&b, &fresh, "").await, Ok(()), "a token issued after T passes");

    // 5. jti: exactly that token.
    let (j1, j2) = (token("eve", |c| c["jti"] = "j-1".into()), token("eve", |c| c["jti"] = "j-2".into()));
    cli(&cfg, &["revoke", "--jti", "j-1"], None);
    latencies.push(refused_everywhere(&others, &j1).await);
    assert_eq!(verdict(&c, &j2, "").await, Ok(()), "another jti passes");

    // 6. A stolen token without jti: by its hash, read from stdin.
    let other = token("frank", |c| c["exp"] = (now() + 1800).into());
    let listed = cli(&cfg, &["revoke", "--token", "-"], Some(&tokens[5]));
    assert!(!listed.contains(&tokens[5]), "the token itself is never stored or echoed");
    latencies.push(refused_everywhere(&others, &tokens[5]).await);
    assert_eq!(verdict(&b, &other, "").await, Ok(()), "frank's other token passes");

    // 7. Exchange: a minted token is cached on B; after revocation B mints nothing.
    async fn exchange(
        s: &TestServer,
        token: &str,
    ) -> Result<tonic::Response<authgate::pb::ExchangeResponse>, tonic::Status> {
        let req =
            ExchangeRequest { subject_token: token.into(), audience: "orders".into(), ..Default::default() };
        s.client().await.exchange(req).await
    }
    let first = exchange(&b, &tokens[6]).await.expect("minted").into_inner().access_token;
    assert_eq!(exchange(&b, &tokens[6]).await.unwrap().into_inner().access_token, first, "cached");
    cli(&cfg, &["revoke", "--subject", "gina"], None);
    latencies.push(refused_everywhere(&others, &tokens[6]).await);
    let err = exchange(&b, &tokens[6]).await.expect_err("no token for a revoked subject");
    assert_eq!(reason(&err).as_deref(), Some("token_revoked"));

    // 8. The admin RPC, only for the caller [access] admin names.
    let admin = |caller: Option<&str>| {
        let mut req = tonic::Request::new(authgate::pb::RevokeRequest {
            subject: "kate".into(),
            reason: "admin rpc".into(),
            ..Default::default()
        });
        if let Some(c) = caller {
            req.metadata_mut().insert("x-forwarded-client-cert", format!("URI={c}").parse().unwrap());
        }
        let channel = a.channel();
        async move { authgate::pb::admin_service_client::AdminServiceClient::new(channel.await).revoke(req).await }
    };
    let kate = token("kate", |_| {});
    assert_eq!(verdict(&b, &kate, "").await, Ok(()));
    let anonymous = admin(None).await.expect_err("no caller");
    assert_eq!(reason(&anonymous).as_deref(), Some("caller_unauthenticated"));
    let stranger = admin(Some("spiffe://test/someone-else")).await.expect_err("not named");
    assert_eq!(reason(&stranger).as_deref(), Some("caller_not_allowed"));
    let created =
        admin(Some("spiffe://test/ops")).await.expect("ops may revoke").into_inner().revocation.unwrap();
    assert_eq!((created.kind.as_str(), created.created_by.as_str()), ("subject", "ops"));
    latencies.push(refused_everywhere(&others, &kate).await);

    let (p50, p99) = (percentile(latencies.clone(), 0.5), percentile(latencies.clone(), 0.99));
    println!(
        "revocation to refusal on the other replicas: p50 {p50:?}, p99 {p99:?} ({} revocations)",
        latencies.len()
    );

    // 9. The listening connections killed: the poll still applies it.
    let killed = db
        .query_i64("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'authgate-listen'")
        .await;
    assert_eq!(killed, 3);
    db.exec("INSERT INTO authgate_revocations (kind, subject) VALUES ('subject', 'harry')").await;
    let took = refused_everywhere(&[&a, &b, &c], &tokens[7]).await;
    println!("with the listeners killed: {took:?}");

    // The entries are listed; the metrics count them.
    let listed = cli(&cfg, &["revocations", "list"], None);
    assert!(listed.lines().count() >= 4, "{listed}");
    let samples = common::scrape(b.http).await;
    let active = common::sample(&samples, "authgate_revocations", &[("kind", "subject")]).unwrap_or(0.0);
    assert!(active >= 3.0, "active subject entries: {active}");
    assert_eq!(common::sample(&samples, "authgate_revocations", &[("kind", "deleted_user")]), Some(1.0));
    for s in [a, b, c] {
        s.stop().await;
    }
}

#[tokio::test]
async fn a_postgres_outage_fails_closed_then_recovers() {
    let db = postgres().await;
    let dir = tempfile::tempdir().unwrap();
    let toml = config(&db, dir.path(), "", "poll_interval = \"200ms\"\nmax_staleness = \"2s\"\n");
    let server = TestServer::start(&toml).await;
    wait_ready(&server).await;
    let t = token("ivy", |_| {});
    assert_eq!(verdict(&server, &t, "").await, Ok(()));
    let Db::Postgres(pg) = &db else { unreachable!() };
    // Taken before the stop: the last successful sync is at most a poll
    // interval (200ms) earlier, and pg_ctl's stop itself takes a while.
    let stopped = Instant::now();
    pg.stop_server();
    assert_eq!(verdict(&server, &t, "").await, Ok(()), "serving on while the feed is fresh");
    let failed = common::within(Duration::from_secs(5), || async {
        verdict(&server, &t, "").await == Err("revocation_unavailable".into())
    })
    .await;
    assert!(failed.is_some(), "fails closed");
    // 2s of staleness counted from a sync up to one poll interval before the
    // stop, with room for a poll delayed on a loaded machine.
    assert!(stopped.elapsed() >= Duration::from_millis(1500), "not before max_staleness");
    assert_eq!(
        verdict(&server, &t, "lenient").await,
        Ok(()),
        "an issuer with on_stale_revocations = allow goes on"
    );
    let unready = common::within(Duration::from_secs(2), || async {
        server.health("").await == tonic_health::pb::health_check_response::ServingStatus::NotServing
    })
    .await;
    assert!(unready.is_some(), "not ready");
    pg.start_server();
    assert!(
        common::within(Duration::from_secs(10), || async { verdict(&server, &t, "").await.is_ok() })
            .await
            .is_some()
    );
    wait_ready(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn one_replica_on_sqlite_and_expired_entries_go() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(&dir).await;
    let toml = config(&db, dir.path(), "", "poll_interval = \"200ms\"\nmax_staleness = \"1s\"\n");
    let server = TestServer::start(&toml).await;
    wait_ready(&server).await;
    let cfg = dir.path().join("cli.toml");
    std::fs::write(&cfg, &toml).unwrap();
    let t = token("jack", |_| {});
    assert_eq!(verdict(&server, &t, "").await, Ok(()));
    cli(&cfg, &["revoke", "--subject", "jack", "--issuer", "site"], None);
    refused_everywhere(&[&server], &t).await;
    assert_eq!(verdict(&server, &t, "lenient").await, Ok(()), "scoped to its issuer");
    // `authgate verify` checks the same revocations.
    let out = authgate_command().arg("--config").arg(&cfg).args(["verify", &t]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("token_revoked"));
    let other = token("kim", |_| {});
    let out = authgate_command().arg("--config").arg(&cfg).args(["verify", &other]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));

    // An entry past its expires_at is collected (and refuses nothing then).
    db.exec("INSERT INTO authgate_revocations (kind, subject, expires_at) VALUES ('subject', 'old', '2020-01-01T00:00:00.000000Z')")
        .await;
    let Db::Sqlite(path) = &db else { unreachable!() };
    let count = || {
        rusqlite::Connection::open(path)
            .unwrap()
            .query_row("SELECT count(*) FROM authgate_revocations WHERE subject = 'old'", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap()
    };
    assert_eq!(count(), 1);
    let gone = common::within(Duration::from_secs(5), || async { count() == 0 }).await;
    assert!(gone.is_some(), "expired entries are collected");
    server.stop().await;
}
