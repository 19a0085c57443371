//! Who calls authgate: callers named by client certificate (over real
//! mTLS), by caller token (Kubernetes service-account tokens from a
//! stand-in API server, client-credentials tokens from the pinned OpenID
//! provider) or by a mesh sidecar's header, and held to `[access]` and
//! each Exchange audience's `callers`.

mod common;

use common::oidc::Provider;
use common::pki::{Ca, tls_config};
use common::*;
use std::path::Path;

const ORDERS: &str = "spiffe://cluster.local/ns/shop/sa/orders";

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

/// Caller tokens from a real OpenID provider: a service's client-credentials
/// token in gRPC metadata names it (`sub`), verified through
/// `[[caller_issuers]]` by discovery; a token for another audience is
/// refused, and the same token as a *user's* token is not accepted, since
/// the provider is only a caller issuer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_tokens_from_a_real_openid_provider() {
    use authgate::pb::VerifyRequest;
    let dir = tempfile::tempdir().unwrap();
    let provider = Provider::start(0, &dir.path().join("keys.json"), false);
    let server = TestServer::start(&format!(
        "[[caller_issuers]]\nname = \"oidc\"\nkind = \"jwks\"\niss = \"{}\"\naudiences = [\"https://api.test/es256\"]\n\
         [[callers]]\nname = \"backend\"\nmatch = \"backend\"\n[access]\nverify = [\"backend\"]\n{}",
        provider.issuer,
        standard_config()
    ))
    .await;
    let user = gotrue_token(&gotrue_claims(), SECRET);
    let mut client = server.client().await;
    let reason = |s: &tonic::Status| {
        use tonic_types::StatusExt;
        s.get_details_error_info().map(|i| i.reason).unwrap_or_default()
    };
    let verify = |caller: Option<&str>, token: &str| {
        let mut request =
            tonic::Request::new(VerifyRequest { token: token.to_string(), ..Default::default() });
        if let Some(c) = caller {
            request.metadata_mut().insert("authorization", format!("Bearer {c}").parse().unwrap());
        }
        request
    };
    let caller = provider.token("https://api.test/es256").await;
    let other_audience = provider.token("https://api.test/rs256").await;
    let granted = client.verify(verify(Some(&caller), &user)).await.expect("a backend with its token");
    assert_eq!(granted.into_inner().identity.unwrap().subject, "775a5344-0c6d-4dc6-9ac7-d2d646e071ec");
    let denied = client.verify(verify(Some(&other_audience), &user)).await.unwrap_err();
    assert_eq!(reason(&denied), "caller_unauthenticated", "a token for another audience");
    let denied = client.verify(verify(None, &user)).await.unwrap_err();
    assert_eq!(reason(&denied), "caller_unauthenticated", "no caller token");
    // The caller's token is no user's: the users' issuers do not know it.
    let denied = client.verify(verify(Some(&caller), &caller)).await.unwrap_err();
    assert_ne!(reason(&denied), "", "{denied:?}");
    assert!(!matches!(denied.code(), tonic::Code::Ok));
}
