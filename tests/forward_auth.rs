//! HTTP forward-auth: directly, behind a real nginx (`auth_request`)
//! running deploy/nginx/nginx.conf, and behind a real Caddy (`forward_auth`)
//! running deploy/caddy/Caddyfile, each in front of an upstream that echoes
//! the headers it receives.

mod common;

use common::*;
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Certificates in `<dir>/tls` for a proxy (`nginx`, `caddy`) reaching
/// authgate over mutual TLS: `ca.crt`, authgate's own, `<proxy>.crt/.key`;
/// and the authgate config that serves TLS, requires a caller on
/// forward-auth and admits only that proxy.
fn proxy_tls(dir: &std::path::Path, proxy: &str) -> String {
    let tls = dir.join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    let ca = common::pki::Ca::new("edge CA");
    let ca_file = ca.write(&tls, "ca.crt");
    let (cert, key) = ca.server(&tls, "authgate");
    let identity = format!("spiffe://cluster.local/ns/edge/sa/{proxy}");
    let (c, k) = ca.client(&tls, &format!("{proxy}-client"), &identity, false);
    std::fs::rename(c, tls.join(format!("{proxy}.crt"))).unwrap();
    std::fs::rename(k, tls.join(format!("{proxy}.key"))).unwrap();
    format!(
        "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\nclient_ca_file = \"{}\"\nhttp_client_auth = \"required\"\n\
         [[callers]]\nname = \"{proxy}\"\nmatch = \"{identity}\"\n[access]\nforward_auth = [\"{proxy}\"]\n",
        cert.display(),
        key.display(),
        ca_file.display()
    )
}

/// The standard issuers, every page needing the `member` role, plus the
/// routes the deploy/ proxy configs name: `admin` needs the `admin` role,
/// `owners` the `owner` role.
fn proxy_config() -> String {
    format!(
        "{}\n[edge]\nroles = [\"member\"]\n[edge.routes.admin]\nroles = [\"admin\"]\n[edge.routes.owners]\nroles = [\"owner\"]\n",
        standard_config()
    )
}

fn member_token() -> String {
    gotrue_token(
        &json!({"exp": now() + 600, "sub": "5b7c2d1e-0000-4000-8000-000000000001", "email": "m@example.com",
                "app_metadata": {"provider": "email", "roles": ["member"]}}),
        SECRET,
    )
}

#[tokio::test]
async fn forward_auth_endpoint_answers_like_a_forward_auth_server() {
    let server = TestServer::start(&proxy_config()).await;
    let good = gotrue_token(&gotrue_claims(), SECRET);
    let bearer = format!("Bearer {good}");
    let (status, head, _) = get(server.http, "/forward-auth", &[("authorization", &bearer)]).await;
    assert_eq!(status, 200);
    assert!(head.contains("x-authgate-subject: 775a5344-0c6d-4dc6-9ac7-d2d646e071ec"), "{head}");
    assert!(head.contains("x-authgate-roles: member,admin"), "{head}");
    let (status, head, body) = get(server.http, "/forward-auth", &[]).await;
    assert_eq!(status, 401);
    assert!(head.contains("www-authenticate: bearer realm=\"authgate\"\r\n"), "{head}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"error": "unauthorized", "reason": "missing_credential"})
    );
    let expired = gotrue_token(&json!({"sub": "x", "exp": now() - 600}), SECRET);
    let (status, head, _) =
        get(server.http, "/forward-auth", &[("authorization", &format!("Bearer {expired}"))]).await;
    assert_eq!(status, 401);
    assert!(
        head.contains("error=\"invalid_token\"") && head.contains("x-authgate-reason: token_expired"),
        "{head}"
    );
    let (status, head, _) = get(server.http, "/forward-auth/owners", &[("authorization", &bearer)]).await;
    assert_eq!((status, head.contains("x-authgate-reason: insufficient_role")), (403, true), "{head}");
    // The token is never read from the query string: a query is refused.
    let (status, _, _) =
        get(server.http, &format!("/forward-auth?token={good}&access_token={good}"), &[]).await;
    assert_eq!(status, 400);

    // A dependency down is 503 with Retry-After, never 401.
    let hosted = server_with_unreachable_identity().await;
    let (status, head, _) = get(hosted.http, "/forward-auth", &[("authorization", &bearer)]).await;
    assert_eq!(status, 503);
    assert!(
        head.contains("retry-after: 5") && head.contains("x-authgate-reason: upstream_unavailable"),
        "{head}"
    );
}

/// A route that names an Exchange audience answers allow with the minted
/// token in `authorization` (Traefik `authResponseHeaders`, nginx
/// `auth_request_set` forward it); a user the audience's policy refuses is
/// denied, not passed with their own token.
#[tokio::test]
async fn a_route_that_mints_returns_the_internal_token() {
    let dir = tempfile::tempdir().unwrap();
    let routes = "[edge.routes.internal]\nexchange_audience = \"orders\"\n[edge.routes.payments]\nexchange_audience = \"payments\"\n";
    let payments = "[[exchange.audiences]]\nname = \"payments\"\nrequired_roles = [\"finance\"]\n";
    let server = TestServer::start(&format!(
        "{}{payments}{routes}{}",
        exchange_section(dir.path()),
        standard_config()
    ))
    .await;
    let user = gotrue_token(&gotrue_claims(), SECRET);
    let bearer = format!("Bearer {user}");
    // Read with reqwest: the `get` helper lower-cases the head.
    let answer = reqwest::Client::new()
        .get(format!("http://{}/forward-auth/internal", server.http))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let minted = answer
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .expect("a minted token in the answer")
        .to_string();
    assert_ne!(minted, user, "the user's own token came back");
    let payload = minted.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap(),
    )
    .unwrap();
    let issued = (claims["aud"].as_str(), claims["iss"].as_str());
    assert_eq!(issued, (Some("orders"), Some("https://authgate.test")));
    let (status, head, _) = get(server.http, "/forward-auth/payments", &[("authorization", &bearer)]).await;
    assert_eq!((status, head.contains("x-authgate-reason: insufficient_role")), (403, true), "{head}");
    let (status, head, _) = get(server.http, "/forward-auth", &[("authorization", &bearer)]).await;
    assert_eq!(status, 200);
    assert!(!head.contains("authorization:"), "a route without an audience mints nothing: {head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_real_nginx() {
    let prefix = tempfile::tempdir().unwrap();
    let tls = proxy_tls(prefix.path(), "nginx");
    let server = TestServer::start(&format!("{tls}{}", proxy_config())).await;
    let upstream = echo_upstream().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    std::fs::create_dir_all(prefix.path().join("tmp")).unwrap();
    let conf = std::fs::read_to_string(repo_root().join("deploy/nginx/nginx.conf"))
        .unwrap()
        .replace("127.0.0.1:8080", &server.http.to_string())
        .replace("127.0.0.1:9000", &upstream.to_string())
        .replace("127.0.0.1:8000", &port.to_string());
    std::fs::write(prefix.path().join("nginx.conf"), conf).unwrap();
    std::fs::copy(
        repo_root().join("deploy/nginx/authgate_identity.conf"),
        prefix.path().join("authgate_identity.conf"),
    )
    .unwrap();
    let nginx = which("nginx").expect("nginx is not installed: run scripts/test.sh (scripts/nginx-env.sh)");
    let test = Command::new(&nginx)
        .arg("-t")
        .arg("-p")
        .arg(prefix.path())
        .arg("-c")
        .arg("nginx.conf")
        .output()
        .unwrap();
    assert!(test.status.success(), "nginx -t: {}", String::from_utf8_lossy(&test.stderr));
    let mut child = Command::new("timeout")
        .arg("60")
        .arg(&nginx)
        .arg("-p")
        .arg(prefix.path())
        .arg("-c")
        .arg("nginx.conf")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(port_opens(port, Duration::from_secs(5)).await, "nginx did not start");

    let outcome = drive_through_proxy(port).await;
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    outcome.assert_contract();
}

/// What a client saw through a proxy doing forward-auth against authgate.
struct ProxyOutcome {
    no_token: (u16, String),
    granted: (u16, Value),
    member_on_admin: (u16, String),
    admin_on_admin: u16,
    forged: (u16, String),
    /// A member on an admin page, adding policy-looking query strings and
    /// path suffixes of its own.
    member_with_query: Vec<(String, u16, String)>,
    /// A user whose e-mail claim carries CR LF and a header of its own.
    crlf_email: (u16, String),
    /// A user with a Unicode e-mail and a role holding a comma.
    unicode: (u16, Value),
}

/// The same requests through any proxy running one of the deploy/ examples
/// (`/api/` needs a user, `/admin/` needs `admin`).
async fn drive_through_proxy(port: std::net::SocketAddr) -> ProxyOutcome {
    let admin = format!("Bearer {}", gotrue_token(&gotrue_claims(), SECRET));
    let member = format!("Bearer {}", member_token());
    let (status, head, _) = get(port, "/api/orders", &[]).await;
    let no_token = (status, head);
    let spoofed = [
        ("authorization", admin.as_str()),
        ("x-authgate-subject", "attacker"),
        ("x-authgate-roles", "owner"),
    ];
    let (status, _, body) = get(port, "/api/orders", &spoofed).await;
    let granted = (status, serde_json::from_str::<Value>(&body).unwrap_or(Value::Null));
    let (status, head, _) = get(port, "/admin/panel", &[("authorization", &member)]).await;
    let member_on_admin = (status, head);
    let (admin_on_admin, _, _) = get(port, "/admin/panel", &[("authorization", &admin)]).await;
    let (status, head, _) = get(port, "/api/orders", &[("authorization", "Bearer a.b.c")]).await;
    let forged = (status, head);
    let mut member_with_query = Vec::new();
    for path in [
        "/admin/panel?role=member",
        "/admin/panel?role=&signed_proxy=optional&issuer=ops",
        "/admin/panel/forward-auth?role=",
        "/admin/panel/forward-auth/anyone",
        "/admin/x?route=anyone",
    ] {
        let (status, head, _) = get(port, path, &[("authorization", &member)]).await;
        member_with_query.push((path.to_string(), status, head));
    }
    // A user with no role on a members' page, trying to clear the policy.
    let nobody = format!(
        "Bearer {}",
        gotrue_token(&json!({"exp": now() + 600, "sub": "5b7c2d1e-0000-4000-8000-000000000005"}), SECRET)
    );
    for path in
        ["/api/orders?role=", "/api/orders?role=&signed_proxy=optional", "/api/orders/forward-auth/anyone"]
    {
        let (status, head, _) = get(port, path, &[("authorization", &nobody)]).await;
        member_with_query.push((path.to_string(), status, head));
    }
    let crlf = gotrue_token(
        &json!({"exp": now() + 600, "sub": "5b7c2d1e-0000-4000-8000-000000000003",
                "email": "m@example.com\r\nx-authgate-roles: admin", "app_metadata": {"roles": ["member"]}}),
        SECRET,
    );
    let (status, head, _) = get(port, "/api/orders", &[("authorization", &format!("Bearer {crlf}"))]).await;
    let crlf_email = (status, head);
    let unicode = gotrue_token(
        &json!({"exp": now() + 600, "sub": "5b7c2d1e-0000-4000-8000-000000000004",
                "email": "jürgen@example.com", "app_metadata": {"roles": ["member,admin", "member"]}}),
        SECRET,
    );
    let (status, _, body) =
        get(port, "/api/orders", &[("authorization", &format!("Bearer {unicode}"))]).await;
    let unicode = (status, serde_json::from_str::<Value>(&body).unwrap_or(Value::Null));
    ProxyOutcome {
        no_token,
        granted,
        member_on_admin,
        admin_on_admin,
        forged,
        member_with_query,
        crlf_email,
        unicode,
    }
}

impl ProxyOutcome {
    fn assert_contract(&self) {
        let (status, head) = &self.no_token;
        assert_eq!(*status, 401, "no token: {head}");
        assert!(head.contains("www-authenticate: bearer realm=\"authgate\""), "no challenge: {head}");
        let (status, seen) = &self.granted;
        assert_eq!(*status, 200, "{seen:?}");
        assert_eq!(seen["x-authgate-subject"], "775a5344-0c6d-4dc6-9ac7-d2d646e071ec", "{seen}");
        assert_eq!(seen["x-authgate-roles"], "member,admin", "spoofed roles reached the upstream: {seen}");
        assert_eq!(seen["x-authgate-issuer"], "netlify");
        assert!(seen.get("authorization").is_none(), "the user's token reached the upstream: {seen}");
        assert_eq!(self.member_on_admin.0, 403, "member on an admin route: {}", self.member_on_admin.1);
        assert_eq!(self.admin_on_admin, 200, "admin on an admin route");
        assert_eq!(self.forged.0, 401, "{}", self.forged.1);
        for (path, status, head) in &self.member_with_query {
            assert_eq!(*status, 403, "a client's query or path suffix changed the policy: {path}: {head}");
        }
        assert_eq!(self.crlf_email.0, 403, "CR LF in a claim: {}", self.crlf_email.1);
        let (status, seen) = &self.unicode;
        assert_eq!(*status, 200, "{seen}");
        assert_eq!(seen["x-authgate-email"], "j%C3%BCrgen@example.com", "{seen}");
        assert_eq!(
            seen["x-authgate-roles"], "member",
            "a role with a comma must not become two roles: {seen}"
        );
    }
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
        .map(|d| std::path::Path::new(d).join(program))
        .find(|p| p.exists())
}

/// The same contract through a real Caddy (`forward_auth`), running
/// deploy/caddy/Caddyfile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_real_caddy() {
    let dir = tempfile::tempdir().unwrap();
    let tls = proxy_tls(dir.path(), "caddy");
    let server = TestServer::start(&format!("{tls}{}", proxy_config())).await;
    let upstream = echo_upstream().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    // The listener first: the other two addresses could contain ":8001".
    let conf = std::fs::read_to_string(repo_root().join("deploy/caddy/Caddyfile"))
        .unwrap()
        .replace("http://:8001", &format!("http://:{}", port.port()))
        .replace("127.0.0.1:8080", &server.http.to_string())
        .replace("127.0.0.1:9000", &upstream.to_string())
        .replace(" tls/", &format!(" {}/tls/", dir.path().display()));
    let path = dir.path().join("Caddyfile");
    std::fs::write(&path, conf).unwrap();
    let caddy = which("caddy").expect("caddy is not installed: run scripts/test.sh (scripts/caddy-env.sh)");
    let caddy_cmd = |args: &[&str]| {
        let mut c = Command::new("timeout");
        c.arg("60")
            .arg(&caddy)
            .args(args)
            .args(["--adapter", "caddyfile", "--config"])
            .arg(&path)
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env("XDG_CONFIG_HOME", dir.path().join("config"));
        c
    };
    let validate = caddy_cmd(&["validate"]).output().unwrap();
    assert!(validate.status.success(), "caddy validate: {}", String::from_utf8_lossy(&validate.stderr));
    let mut child = caddy_cmd(&["run"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    assert!(port_opens(port, Duration::from_secs(10)).await, "caddy did not start");

    let outcome = drive_through_proxy(port).await;
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    outcome.assert_contract();
    // Caddy passes authgate's denial through whole, reason header included.
    assert!(
        outcome.member_on_admin.1.contains("x-authgate-reason: insufficient_role"),
        "{}",
        outcome.member_on_admin.1
    );
}
