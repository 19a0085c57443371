//! Health, readiness and shutdown: honest status, drain, in-flight calls
//! completing, and the real binary on SIGTERM.

mod common;

use authgate::pb::VerifyRequest;
use bytes::Bytes;
use common::*;
use prost::Message;
use std::net::SocketAddr;
use std::time::Duration;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const SERVICE: &str = "authgate.v1.AuthService";

async fn health(server: &TestServer, service: &str) -> ServingStatus {
    server.health(service).await
}

async fn http_status(addr: SocketAddr, path: &str) -> u16 {
    let (head, _) = http_get(addr, path).await;
    head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("status line")
}

fn config_with(extra_server: &str) -> String {
    standard_config().replacen("[server]\n", &format!("[server]\n{extra_server}\n"), 1)
}

#[tokio::test]
async fn serving_after_start_and_probes_answer() {
    let server = TestServer::start(&standard_config()).await;
    assert_eq!(health(&server, "").await, ServingStatus::Serving);
    assert_eq!(health(&server, SERVICE).await, ServingStatus::Serving);
    let mut h = HealthClient::new(server.channel().await);
    let unknown = h.check(HealthCheckRequest { service: "no.such.Service".into() }).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    assert_eq!(http_status(server.http, "/healthz").await, 200);
    assert_eq!(http_status(server.http, "/readyz").await, 200);
    assert_eq!(http_status(server.http, "/nope").await, 404);
    server.stop().await;
}

#[tokio::test]
async fn not_serving_as_soon_as_shutdown_begins() {
    let mut server = TestServer::start(&config_with("drain_delay = \"2s\"")).await;
    let channel = server.channel().await;
    let mut h = HealthClient::new(channel.clone());
    let mut auth = authgate::pb::auth_service_client::AuthServiceClient::new(channel);
    server.begin_shutdown();
    let mut status = ServingStatus::Serving;
    for _ in 0..100 {
        let r = h.check(HealthCheckRequest { service: "".into() }).await.expect("health during drain");
        status = ServingStatus::try_from(r.into_inner().status).unwrap();
        if status == ServingStatus::NotServing {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(status, ServingStatus::NotServing);
    let r = h.check(HealthCheckRequest { service: SERVICE.into() }).await.unwrap().into_inner();
    assert_eq!(ServingStatus::try_from(r.status).unwrap(), ServingStatus::NotServing);
    assert_eq!(http_status(server.http, "/readyz").await, 503);
    // Still answering during the drain delay.
    let ok = auth
        .verify(VerifyRequest { token: gotrue_token(&gotrue_claims(), SECRET), ..Default::default() })
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    server.stop().await;
}

/// A gRPC call whose request body is sent in two halves, so it is in flight
/// for as long as the test wants.
struct SlowCall {
    send: h2::SendStream<Bytes>,
    response: h2::client::ResponseFuture,
    rest: Bytes,
}

async fn start_slow_verify(addr: SocketAddr, token: String) -> SlowCall {
    let (response, mut send) = open_grpc_stream(addr, "/authgate.v1.AuthService/Verify").await.unwrap();
    let frame = grpc_frame(&VerifyRequest { token, ..Default::default() }.encode_to_vec());
    send.send_data(frame.slice(..10), false).unwrap();
    SlowCall { send, response, rest: frame.slice(10..) }
}

impl SlowCall {
    /// Sends the rest of the body and returns (grpc-status, identity subject).
    async fn finish(mut self) -> (String, String) {
        self.send.send_data(self.rest, true).unwrap();
        let (status, data) = read_grpc_response(self.response).await.expect("response");
        let subject = if data.len() > 5 {
            authgate::pb::VerifyResponse::decode(&data[5..]).unwrap().identity.unwrap().subject
        } else {
            String::new()
        };
        (status, subject)
    }
}

#[tokio::test]
async fn in_flight_call_completes_during_shutdown() {
    let mut server = TestServer::start(&standard_config()).await;
    let call = start_slow_verify(server.grpc, gotrue_token(&gotrue_claims(), SECRET)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // New connections are refused once draining has started...
    assert!(tokio::net::TcpStream::connect(server.grpc).await.is_err(), "listener still accepting");
    // ...but the call already in flight finishes normally.
    let (status, subject) = call.finish().await;
    assert_eq!(status, "0");
    assert_eq!(subject, "775a5344-0c6d-4dc6-9ac7-d2d646e071ec");
    server.stop().await;
}

#[tokio::test]
async fn binary_on_sigterm_completes_in_flight_calls_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let cfg = dir.path().join("authgate.toml");
    std::fs::write(
        &cfg,
        "[server]\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\nlevel = \"debug\"\n[[issuers]]\nname = \"netlify\"\n",
    )
    .unwrap();
    let server = Binary::start(&cfg, &[("AUTHGATE_ISSUER_NETLIFY_SECRET_FILE", secret_file.as_os_str())]);
    let grpc = server.grpc;
    let token = gotrue_token(&gotrue_claims(), SECRET);
    let expired = gotrue_token(&serde_json::json!({"sub": "x", "exp": now() - 999}), SECRET);
    let mut client = authgate::pb::auth_service_client::AuthServiceClient::connect(format!("http://{grpc}"))
        .await
        .unwrap();
    // Tracing export is off: the caller's trace id still reaches the line.
    let mut traced = tonic::Request::new(VerifyRequest { token: token.clone(), ..Default::default() });
    traced
        .metadata_mut()
        .insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap());
    client.verify(traced).await.unwrap();
    client.verify(VerifyRequest { token: expired.clone(), ..Default::default() }).await.unwrap_err();
    let refresh = "QmVhcmVyUmVmcmVzaFRva2Vu";
    let cookie = format!("nf_jwt={token}; nf_refresh={refresh}");
    let headers = [("cookie".to_string(), cookie)].into_iter().collect();
    client.verify(VerifyRequest { headers, ..Default::default() }).await.unwrap();
    // An edge decision logs the client Envoy saw (attributes.source), not
    // the gRPC peer (Envoy itself).
    {
        use envoy_types::pb::envoy::config::core::v3::{Address, SocketAddress, address};
        use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Peer, Request};
        use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};
        let source = Peer {
            address: Some(Address {
                address: Some(address::Address::SocketAddress(SocketAddress {
                    address: "203.0.113.7".into(),
                    ..Default::default()
                })),
            }),
            ..Default::default()
        };
        let http = HttpRequest {
            headers: [("x-forwarded-for".to_string(), "198.51.100.1".to_string())].into_iter().collect(),
            ..Default::default()
        };
        let req = CheckRequest {
            attributes: Some(AttributeContext {
                source: Some(source),
                request: Some(Request { http: Some(http), ..Default::default() }),
                ..Default::default()
            }),
        };
        let mut authz =
            envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient::connect(
                format!("http://{grpc}"),
            )
            .await
            .unwrap();
        authz.check(req).await.unwrap();
    }
    // Exchange is decided and recorded like the rest, even when it is off.
    let exchange = authgate::pb::ExchangeRequest {
        subject_token: token.clone(),
        audience: "orders".into(),
        ..Default::default()
    };
    client.exchange(exchange).await.unwrap_err();
    let call = start_slow_verify(grpc, token.clone()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = call.finish().await;
    assert_eq!(status, "0", "in-flight call did not complete");
    let logs_of = server.logs_handle();
    let exit = tokio::task::spawn_blocking(move || server.wait()).await.unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    let logs = logs_of.lock().unwrap().clone();
    let all = logs.join("\n");
    let decisions: Vec<serde_json::Value> = logs
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "decision")
        .collect();
    assert_eq!(decisions.len(), 6, "one line per decision:\n{all}");
    assert_eq!(decisions[4]["adapter"], "exchange");
    assert_eq!(decisions[4]["reason"], "exchange_disabled");
    assert_eq!(decisions[3]["adapter"], "ext_authz");
    for d in &decisions {
        let adapter = d["adapter"].as_str().unwrap_or_default();
        assert!(["verify", "exchange", "ext_authz", "forward_auth"].contains(&adapter), "no adapter in {d}");
    }
    assert_eq!(decisions[0]["adapter"], "verify");
    assert_eq!(decisions[0]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert!(decisions[1].get("trace_id").is_none(), "a trace id without a traceparent");
    assert_eq!(decisions[3]["reason"], "missing_credential");
    assert_eq!(decisions[3]["client"], "203.0.113.7", "the edge client, not the forwarded-for text");
    assert_eq!(decisions[0]["granted"], true);
    assert_eq!(decisions[0]["subject"], "775a5344-0c6d-4dc6-9ac7-d2d646e071ec");
    assert_eq!(decisions[1]["granted"], false);
    assert_eq!(decisions[1]["reason"], "token_expired");
    assert!(decisions[1].get("subject").is_none(), "subject logged on a denial");
    for needle in
        [SECRET, token.as_str(), expired.as_str(), token.rsplit('.').next().unwrap(), "test@test.com"]
    {
        assert!(!all.contains(needle), "logs leak {needle:?}:\n{all}");
    }
}
