//! TLS on both ports, client certificates, certificate rotation and the
//! plaintext rule, against the real binary with real clients (Python
//! grpcio, reqwest/rustls). Certificates are made here with rcgen: a CA, a
//! server certificate for 127.0.0.1, client certificates with SPIFFE URI
//! SANs, an expired one and one from another CA.

mod common;

use common::pki::{Ca, tls_config};
use common::*;
use std::path::Path;
use std::time::Duration;

const ORDERS: &str = "spiffe://cluster.local/ns/shop/sa/orders";

/// Python grpcio's Verify through `clients/python/verify.py`: exit code and
/// output.
fn python_verify(addr: std::net::SocketAddr, token: &str, tls: &[&Path]) -> (i32, String) {
    let python = std::env::var("AUTHGATE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut cmd = std::process::Command::new(python);
    cmd.arg(repo_root().join("clients/python/verify.py")).arg("--addr").arg(addr.to_string());
    for (flag, path) in ["--ca", "--cert", "--key"].iter().zip(tls) {
        cmd.arg(flag).arg(path);
    }
    let out = cmd.arg(token).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn grpc_over_tls_with_and_without_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::new("authgate test CA");
    let other = Ca::new("someone else's CA");
    let ca_file = ca.write(d, "ca.pem");
    let (cert, key) = ca.server(d, "server");
    let (orders, orders_key) = ca.client(d, "orders", ORDERS, false);
    let (expired, expired_key) = ca.client(d, "expired", ORDERS, true);
    let (stranger, stranger_key) = other.client(d, "stranger", ORDERS, false);
    let cfg = tls_config(
        d,
        &cert,
        &key,
        &format!("client_ca_file = \"{}\"\ngrpc_client_auth = \"required\"\n", ca_file.display()),
    );
    let server = Binary::start(&cfg, &[]);
    let token = gotrue_token(&gotrue_claims(), SECRET);
    type Case<'a> = (&'a str, Vec<&'a Path>, bool);
    let cases: Vec<Case> = vec![
        ("a client certificate from the CA", vec![&ca_file, &orders, &orders_key], true),
        ("no client certificate", vec![&ca_file], false),
        ("an expired client certificate", vec![&ca_file, &expired, &expired_key], false),
        ("a client certificate from another CA", vec![&ca_file, &stranger, &stranger_key], false),
        ("plaintext to the TLS port", vec![], false),
    ];
    for (description, tls, granted) in &cases {
        let (code, out) = python_verify(server.grpc, &token, tls);
        if *granted {
            assert_eq!(code, 0, "{description}: {out}");
            assert!(out.contains("775a5344-0c6d-4dc6-9ac7-d2d646e071ec"), "{description}: {out}");
        } else {
            assert_eq!(code, 1, "{description}: {out}");
            assert!(out.contains("UNAVAILABLE"), "{description}: refused at the handshake: {out}");
        }
    }
    // The server is still there, and the granted call names its caller.
    let (code, out) = python_verify(server.grpc, &token, &[&ca_file, &orders, &orders_key]);
    assert_eq!(code, 0, "{out}");
    let logs = server.logs_handle();
    assert!(server.stop().success());
    let lines = logs.lock().unwrap().clone();
    let decisions: Vec<serde_json::Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "decision")
        .collect();
    assert_eq!(decisions.len(), 2, "only the two calls with a valid certificate were decided: {lines:#?}");
    assert!(decisions.iter().all(|d| d["caller"] == ORDERS), "{decisions:#?}");
}

/// An HTTPS client (rustls) with `ca` as its only root, optionally with a
/// client certificate; it reports the server certificate it was shown.
fn https(ca: &Path, identity: Option<(&Path, &Path)>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap())
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5));
    if let Some((cert, key)) = identity {
        let mut pem = std::fs::read(cert).unwrap();
        pem.extend(std::fs::read(key).unwrap());
        builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    builder.build().unwrap()
}

#[tokio::test]
async fn http_port_over_tls_asks_callers_only_on_forward_auth() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::new("authgate test CA");
    let ca_file = ca.write(d, "ca.pem");
    let (cert, key) = ca.server(d, "server");
    let (nginx, nginx_key) = ca.client(d, "nginx", "spiffe://cluster.local/ns/edge/sa/nginx", false);
    let cfg = tls_config(
        d,
        &cert,
        &key,
        &format!("client_ca_file = \"{}\"\nhttp_client_auth = \"required\"\n", ca_file.display()),
    );
    let server = Binary::start(&cfg, &[]);
    let bearer = format!("Bearer {}", gotrue_token(&gotrue_claims(), SECRET));
    let anonymous = https(&ca_file, None);
    let caller = https(&ca_file, Some((&nginx, &nginx_key)));
    let url = |path: &str| format!("https://127.0.0.1:{}{path}", server.http.port());
    // Probes and verifiers have no certificate: health and JWKS stay open.
    for path in ["/healthz", "/readyz"] {
        let r = anonymous.get(url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let r = anonymous.get(url("/forward-auth")).header("authorization", &bearer).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["x-authgate-reason"], "caller_unauthenticated");
    let r = caller.get(url("/forward-auth")).header("authorization", &bearer).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-authgate-subject"], "775a5344-0c6d-4dc6-9ac7-d2d646e071ec");
    // Plain HTTP to the TLS port gets no answer, and the port still serves.
    let plain =
        reqwest::Client::new().get(format!("http://127.0.0.1:{}/healthz", server.http.port())).send().await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success(), "plaintext served on a TLS port");
    assert_eq!(anonymous.get(url("/healthz")).send().await.unwrap().status(), 200);
    assert!(server.stop().success());
}

fn served_certificate(response: &reqwest::Response) -> Vec<u8> {
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .expect("the server's certificate")
        .to_vec()
}

/// The certificate files are replaced in place, as cert-manager does: new
/// connections get the new certificate within the reload interval, no
/// request fails meanwhile, and a broken replacement is refused while the
/// served certificate stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_rotate_without_a_restart_or_a_failed_call() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::new("authgate test CA");
    let ca_file = ca.write(d, "ca.pem");
    let (cert, key) = ca.server(d, "server");
    let cfg = tls_config(d, &cert, &key, "reload_interval = \"200ms\"\n");
    let server = Binary::start(&cfg, &[]);
    let url = format!("https://127.0.0.1:{}/healthz", server.http.port());
    let client = https(&ca_file, None);
    let first = served_certificate(&client.get(&url).send().await.unwrap());
    // A keep-alive connection opened before the rotation.
    let kept = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca_file).unwrap()).unwrap())
        .tls_info(true)
        .build()
        .unwrap();
    assert_eq!(served_certificate(&kept.get(&url).send().await.unwrap()), first);

    let load = {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0, Vec::new());
            let until = tokio::time::Instant::now() + Duration::from_secs(3);
            while tokio::time::Instant::now() < until {
                match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => ok += 1,
                    other => failed.push(format!("{other:?}")),
                }
            }
            (ok, failed)
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    // cert-manager writes new files and swaps them in: rename is atomic.
    let (new_cert, new_key) = ca.server(d, "server-next");
    std::fs::rename(&new_key, &key).unwrap();
    std::fs::rename(&new_cert, &cert).unwrap();
    server.wait_for_log("TLS certificate reloaded");
    let (ok, failed) = load.await.unwrap();
    assert!(failed.is_empty(), "{} calls failed during the rotation: {failed:?}", failed.len());
    assert!(ok > 20, "only {ok} calls under load");
    let second = served_certificate(&client.get(&url).send().await.unwrap());
    assert_ne!(first, second, "the new certificate is not served");
    // The connection opened before it is still up, on the old certificate.
    let again = kept.get(&url).send().await.expect("the kept connection was dropped");
    assert_eq!((again.status().as_u16(), served_certificate(&again)), (200, first.clone()));

    // A broken replacement: logged, refused, the served certificate stays.
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n").unwrap();
    server.wait_for_log("new TLS files refused");
    let r = client.get(&url).send().await.unwrap();
    assert_eq!((r.status().as_u16(), served_certificate(&r)), (200, second));
    assert!(server.stop().success());
}

/// A port reachable beyond loopback without TLS needs the operator to say
/// why, however the address was given; `plaintext = "mesh"` says it.
#[test]
fn plaintext_beyond_loopback_needs_an_acknowledgement() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[[issuers]]\nname = \"a\"\nsecret = \"0123456789abcdef0123\"\n").unwrap();
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, i32, &'a str);
    let cases: Vec<Case> = vec![
        (
            "address from the environment, as the image sets it",
            vec![("AUTHGATE_GRPC_ADDR", "0.0.0.0:50051")],
            2,
            "server.grpc_addr = 0.0.0.0:50051 is reachable beyond loopback without TLS",
        ),
        (
            "acknowledged: a mesh sidecar does TLS",
            vec![("AUTHGATE_GRPC_ADDR", "0.0.0.0:50051"), ("AUTHGATE_PLAINTEXT", "mesh")],
            0,
            "configuration is valid",
        ),
        ("an unknown value is an error", vec![("AUTHGATE_PLAINTEXT", "yes")], 2, "must be loopback or mesh"),
        ("loopback needs nothing", vec![], 0, "configuration is valid"),
    ];
    for (description, env, code, needle) in cases {
        let out =
            authgate_command().arg("check-config").arg("--config").arg(&cfg).envs(env).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{description}: {stderr}");
        assert!(stderr.contains(needle), "{description}: {stderr}");
    }
    let out =
        authgate_command().arg("--config").arg(&cfg).arg("--http-addr").arg("0.0.0.0:0").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "serve refuses too: {}", String::from_utf8_lossy(&out.stderr));
    // Acknowledged, it serves, and says so at start.
    let (any, loopback, mesh) = ("0.0.0.0:0", "127.0.0.1:0", "mesh");
    let env: [(&str, &std::ffi::OsStr); 3] = [
        ("AUTHGATE_GRPC_ADDR", any.as_ref()),
        ("AUTHGATE_HTTP_ADDR", loopback.as_ref()),
        ("AUTHGATE_PLAINTEXT", mesh.as_ref()),
    ];
    let server = Binary::start(&cfg, &env);
    server.wait_for_log("plaintext beyond loopback");
    assert!(server.stop().success());
}

/// With `reload_interval = "0s"` the files are read again only on SIGHUP.
#[tokio::test]
async fn sighup_reloads_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::new("authgate test CA");
    let ca_file = ca.write(d, "ca.pem");
    let (cert, key) = ca.server(d, "server");
    let cfg = tls_config(d, &cert, &key, "reload_interval = \"0s\"\n");
    let server = Binary::start(&cfg, &[]);
    let url = format!("https://127.0.0.1:{}/healthz", server.http.port());
    let client = https(&ca_file, None);
    let first = served_certificate(&client.get(&url).send().await.unwrap());
    let (new_cert, new_key) = ca.server(d, "server-next");
    std::fs::rename(&new_key, &key).unwrap();
    std::fs::rename(&new_cert, &cert).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let unchanged = served_certificate(&client.get(&url).send().await.unwrap());
    assert_eq!(first, unchanged, "reloaded without a SIGHUP");
    server.signal("HUP");
    server.wait_for_log("TLS certificate reloaded");
    let second = served_certificate(&client.get(&url).send().await.unwrap());
    assert_ne!(first, second, "SIGHUP did not load the new certificate");
    assert!(server.stop().success());
}
