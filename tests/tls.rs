//! TLS on both ports, client certificates, certificate rotation and the
//! plaintext rule, against the real binary with real clients (Python
//! grpcio, reqwest/rustls). Certificates are made here with rcgen: a CA, a
//! server certificate for 127.0.0.1, client certificates with SPIFFE URI
//! SANs, an expired one and one from another CA.

mod common;

use common::pki::Ca;
use common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ORDERS: &str = "spiffe://cluster.local/ns/shop/sa/orders";

/// A config with TLS on both ports and the standard issuers; `extra` goes
/// into `[tls]`.
fn tls_config(dir: &Path, cert: &Path, key: &Path, extra: &str) -> PathBuf {
    let cfg = dir.join("authgate.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\n\
             [tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n{extra}\n{}",
            cert.display(),
            key.display(),
            standard_config()
                .replace("[server]\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n", "")
        ),
    )
    .unwrap();
    cfg
}

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

/// A tonic channel over TLS (rustls) trusting `ca`, presenting `identity`
/// when given.
async fn tls_channel(
    addr: std::net::SocketAddr,
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> tonic::transport::Channel {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert).unwrap().map(Result::unwrap).collect();
            builder.with_client_auth_cert(chain, PrivateKeyDer::from_pem_file(key).unwrap()).unwrap()
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: http::Uri| {
            let connector = connector.clone();
            async move {
                let tcp = tokio::net::TcpStream::connect(addr).await?;
                let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
                let tls = connector.connect(name, tcp).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
            }
        }))
        .await
        .unwrap()
}

/// Who may call what: `[access]` per entry point, an audience's `callers`,
/// and the caller named in the tokens minted for it (`client_id`, `azp`;
/// the actor stays in `act`).
#[tokio::test]
async fn callers_are_named_by_certificate_and_held_to_their_access() {
    use authgate::pb::auth_service_client::AuthServiceClient;
    use authgate::pb::{ExchangeRequest, VerifyRequest};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::new("authgate test CA");
    let ca_file = ca.write(d, "ca.pem");
    let (cert, key) = ca.server(d, "server");
    let orders = ca.client(d, "orders", ORDERS, false);
    let checkout = ca.client(d, "checkout", "spiffe://cluster.local/ns/shop/sa/checkout", false);
    let intruder = ca.client(d, "intruder", "spiffe://cluster.local/ns/tools/sa/debug", false);
    let policy = format!(
        "client_ca_file = \"{}\"\n\n{}\n[[exchange.audiences]]\nname = \"payments\"\ncallers = [\"checkout\"]\n\
         [[callers]]\nname = \"orders\"\nmatch = \"{ORDERS}\"\n[[callers]]\nname = \"checkout\"\nmatch_prefix = \"spiffe://cluster.local/ns/shop/sa/checkout\"\n\
         [access]\nexchange = [\"orders\", \"checkout\"]\next_authz = []\n",
        ca_file.display(),
        exchange_section(d)
    );
    let cfg = tls_config(d, &cert, &key, &policy);
    let check = authgate_command().arg("check-config").arg("--config").arg(&cfg).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let server = Binary::start(&cfg, &[]);
    let token = gotrue_token(&gotrue_claims(), SECRET);
    let exchange = |audience: &str| ExchangeRequest {
        subject_token: token.clone(),
        audience: audience.into(),
        ..Default::default()
    };
    let reason = |s: &tonic::Status| {
        use tonic_types::StatusExt;
        s.get_details_error_info().map(|i| i.reason).unwrap_or_default()
    };
    let claims = |jwt: &str| -> serde_json::Value {
        let payload = jwt.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap(),
        )
        .unwrap()
    };
    let mut as_orders =
        AuthServiceClient::new(tls_channel(server.grpc, &ca_file, Some((&orders.0, &orders.1))).await);
    let mut as_checkout =
        AuthServiceClient::new(tls_channel(server.grpc, &ca_file, Some((&checkout.0, &checkout.1))).await);
    let mut as_intruder =
        AuthServiceClient::new(tls_channel(server.grpc, &ca_file, Some((&intruder.0, &intruder.1))).await);
    let mut anonymous = AuthServiceClient::new(tls_channel(server.grpc, &ca_file, None).await);

    // orders, by an exact match, is named in the token.
    let minted = as_orders.exchange(exchange("orders")).await.unwrap().into_inner();
    let c = claims(&minted.access_token);
    assert_eq!((c["client_id"].as_str(), c["azp"].as_str()), (Some("orders"), Some("orders")), "{c}");
    // payments is for checkout only.
    let denied = as_orders.exchange(exchange("payments")).await.unwrap_err();
    assert_eq!(
        (denied.code(), reason(&denied).as_str()),
        (tonic::Code::PermissionDenied, "caller_not_allowed")
    );
    // checkout, by a prefix match, may.
    let minted = as_checkout.exchange(exchange("payments")).await.unwrap().into_inner();
    assert_eq!(claims(&minted.access_token)["client_id"], "checkout");
    // Exchange is open to named callers only.
    let denied = as_intruder.exchange(exchange("orders")).await.unwrap_err();
    assert_eq!(
        (denied.code(), reason(&denied).as_str()),
        (tonic::Code::PermissionDenied, "caller_not_allowed")
    );
    let denied = anonymous.exchange(exchange("orders")).await.unwrap_err();
    assert_eq!(
        (denied.code(), reason(&denied).as_str()),
        (tonic::Code::Unauthenticated, "caller_unauthenticated")
    );
    // Verify has no [access] entry: open to every caller TLS admits.
    let verify = || VerifyRequest { token: token.clone(), ..Default::default() };
    assert!(anonymous.verify(verify()).await.is_ok());
    assert!(as_intruder.verify(verify()).await.is_ok());
    // Open channels would hold the shutdown for its whole grace period.
    drop((as_orders, as_checkout, as_intruder, anonymous));
    let logs = server.logs_handle();
    // Stopped off the runtime, which must go on closing the dropped channels.
    assert!(tokio::task::spawn_blocking(move || server.stop()).await.unwrap().success());
    let decisions: Vec<serde_json::Value> = logs
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "decision")
        .collect();
    let callers: Vec<&str> = decisions.iter().map(|d| d["caller"].as_str().unwrap_or("-")).collect();
    assert_eq!(
        callers,
        [
            "orders",
            "orders",
            "checkout",
            "spiffe://cluster.local/ns/tools/sa/debug",
            "-",
            "-",
            "spiffe://cluster.local/ns/tools/sa/debug"
        ],
        "named callers by name, unnamed ones by identity, anonymous ones not at all"
    );
}

/// Serves `jwks` over HTTPS (certificate from `ca`) at `/jwks`, only to
/// requests that carry `Authorization: Bearer <bearer>`, as a Kubernetes
/// API server serves its service-account JWKS. Returns the port and the
/// process.
fn jwks_server(dir: &Path, ca: &Ca, jwks: &serde_json::Value, bearer: &str) -> (u16, std::process::Child) {
    let (cert, key) = ca.server(dir, "apiserver");
    std::fs::write(dir.join("jwks.json"), jwks.to_string()).unwrap();
    let script = r#"
import http.server, ssl, sys
cert, key, jwks, bearer = sys.argv[1:5]
body = open(jwks, "rb").read()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.headers.get("Authorization") != "Bearer " + bearer:
            self.send_response(401); self.end_headers(); return
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;
    let python = std::env::var("AUTHGATE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .arg(&cert)
        .arg(&key)
        .arg(dir.join("jwks.json"))
        .arg(bearer)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line)
        .unwrap();
    (line.trim().parse().unwrap(), child)
}

/// Caller tokens: a service without a certificate sends its Kubernetes
/// service-account token in gRPC metadata; authgate verifies it against
/// the cluster's JWKS (fetched over TLS with the cluster CA and a bearer
/// token) and names the caller by its subject. A caller token never passes
/// as a user's token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_tokens_name_callers() {
    use authgate::pb::ExchangeRequest;
    use authgate::pb::auth_service_client::AuthServiceClient;
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::new("cluster CA");
    let ca_file = ca.write(d, "cluster-ca.crt");
    // The cluster's service-account signing key and its JWKS.
    let signing = rcgen::KeyPair::generate().unwrap();
    let point = signing.public_key_raw();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "sa", "alg": "ES256", "use": "sig",
                                            "x": b64(&point[1..33]), "y": b64(&point[33..65])}]});
    let reader_token = "authgate-reads-the-jwks";
    let (port, mut apiserver) = jwks_server(d, &ca, &jwks, reader_token);
    std::fs::write(d.join("reader-token"), format!("{reader_token}\n")).unwrap();
    let server = TestServer::start(&format!(
        "{}\n[[caller_issuers]]\nname = \"kubernetes\"\nkind = \"jwks\"\niss = \"https://kubernetes.default.svc\"\n\
         audiences = [\"authgate\"]\njwks_url = \"https://127.0.0.1:{port}/jwks\"\nca_file = \"{}\"\n\
         bearer_token_file = \"{}\"\n[[callers]]\nname = \"orders\"\nmatch = \"system:serviceaccount:shop:orders\"\n\
         [access]\nexchange = [\"orders\"]\n{}",
        exchange_section(d),
        ca_file.display(),
        d.join("reader-token").display(),
        standard_config()
    ))
    .await;
    let key = jsonwebtoken::EncodingKey::from_ec_pem(signing.serialize_pem().as_bytes()).unwrap();
    let sa_token = |sub: &str, aud: &str, exp: i64| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some("sa".into());
        let claims = serde_json::json!({"iss": "https://kubernetes.default.svc", "aud": [aud], "sub": sub,
                                        "iat": now() - 60, "nbf": now() - 60, "exp": exp});
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    };
    let user = gotrue_token(&gotrue_claims(), SECRET);
    let mut client = AuthServiceClient::new(
        tonic::transport::Endpoint::from_shared(format!("http://{}", server.grpc))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let exchange = |caller: Option<String>| {
        let mut request = tonic::Request::new(ExchangeRequest {
            subject_token: user.clone(),
            audience: "orders".into(),
            ..Default::default()
        });
        if let Some(t) = caller {
            request.metadata_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        request
    };
    let reason = |s: &tonic::Status| {
        use tonic_types::StatusExt;
        s.get_details_error_info().map(|i| i.reason).unwrap_or_default()
    };
    let orders = "system:serviceaccount:shop:orders";
    let minted = client
        .exchange(exchange(Some(sa_token(orders, "authgate", now() + 600))))
        .await
        .unwrap()
        .into_inner();
    let payload = minted.access_token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&b64_decode(payload)).unwrap();
    assert_eq!(claims["client_id"], "orders", "{claims}");
    type Case = (&'static str, Option<String>, tonic::Code, &'static str);
    let cases: Vec<Case> = vec![
        (
            "expired",
            Some(sa_token(orders, "authgate", now() - 600)),
            tonic::Code::Unauthenticated,
            "caller_unauthenticated",
        ),
        (
            "another audience",
            Some(sa_token(orders, "vault", now() + 600)),
            tonic::Code::Unauthenticated,
            "caller_unauthenticated",
        ),
        ("no caller token", None, tonic::Code::Unauthenticated, "caller_unauthenticated"),
        ("not a JWT", Some("garbage".into()), tonic::Code::Unauthenticated, "caller_unauthenticated"),
        (
            "a service [access] does not name",
            Some(sa_token("system:serviceaccount:tools:debug", "authgate", now() + 600)),
            tonic::Code::PermissionDenied,
            "caller_not_allowed",
        ),
    ];
    for (description, token, code, want) in cases {
        let denied = client.exchange(exchange(token)).await.unwrap_err();
        assert_eq!((denied.code(), reason(&denied).as_str()), (code, want), "{description}");
    }
    // The caller's token is no user token: Verify refuses it.
    let verify = authgate::pb::VerifyRequest {
        token: sa_token(orders, "authgate", now() + 600),
        ..Default::default()
    };
    assert!(client.verify(verify).await.is_err(), "a service-account token passed as a user's");
    let _ = apiserver.kill();
    let _ = apiserver.wait();
}

fn b64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).unwrap()
}

/// Mesh mode: a sidecar terminates mutual TLS and tells authgate who the
/// client was in `x-forwarded-client-cert`; authgate believes it only when
/// told to, and only in mesh mode without its own TLS.
#[tokio::test]
async fn mesh_mode_names_callers_from_the_sidecar_header() {
    use authgate::pb::VerifyRequest;
    let mesh = "[server]\nplaintext = \"mesh\"\ntrust_forwarded_client_cert = true\n";
    let config = format!(
        "{}[[callers]]\nname = \"orders\"\nmatch = \"{ORDERS}\"\n[access]\nverify = [\"orders\"]\n",
        standard_config().replacen("[server]\n", mesh, 1)
    );
    let server = TestServer::start(&config).await;
    let token = gotrue_token(&gotrue_claims(), SECRET);
    let mut client = server.client().await;
    let reason = |s: &tonic::Status| {
        use tonic_types::StatusExt;
        s.get_details_error_info().map(|i| i.reason).unwrap_or_default()
    };
    type Case<'a> = (&'a str, Option<String>, Result<(), &'a str>);
    let cases: Vec<Case> = vec![
        (
            "the sidecar names orders",
            Some(format!("By=spiffe://cluster.local/ns/auth/sa/authgate;Hash=1;URI={ORDERS}")),
            Ok(()),
        ),
        ("no header", None, Err("caller_unauthenticated")),
        (
            "another workload",
            Some("Hash=1;URI=spiffe://cluster.local/ns/tools/sa/debug".into()),
            Err("caller_not_allowed"),
        ),
    ];
    for (description, xfcc, want) in cases {
        let mut request = tonic::Request::new(VerifyRequest { token: token.clone(), ..Default::default() });
        if let Some(v) = xfcc {
            request.metadata_mut().insert("x-forwarded-client-cert", v.parse().unwrap());
        }
        let got = client.verify(request).await.map(|_| ()).map_err(|s| reason(&s));
        assert_eq!(got, want.map_err(str::to_string), "{description}");
    }

    // Anywhere but mesh mode the header is a client's to write: refused.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[server]\ntrust_forwarded_client_cert = true\n[[issuers]]\nname = \"a\"\nsecret = \"0123456789abcdef0123\"\n")
        .unwrap();
    let out = authgate_command().arg("check-config").arg("--config").arg(&cfg).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("trust_forwarded_client_cert needs server.plaintext = \"mesh\""), "{stderr}");
}
