//! OpenTelemetry: the real binary exports spans over OTLP/HTTP (JSON) to a
//! receiver in the test; spans continue the caller's W3C trace context from
//! gRPC metadata and from the proxied request's headers (ext_authz), and no
//! attribute carries a token or a subject.

mod common;

use common::*;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An OTLP/HTTP receiver: stores every JSON export request.
async fn otlp_receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                    store.lock().unwrap().push(v);
                }
                "{}"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, received)
}

fn spans(exports: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for e in exports {
        for rs in e["resourceSpans"].as_array().into_iter().flatten() {
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                out.extend(ss["spans"].as_array().into_iter().flatten().cloned());
            }
        }
    }
    out
}

fn attr<'a>(span: &'a Value, key: &str) -> Option<&'a str> {
    span["attributes"].as_array()?.iter().find(|a| a["key"] == key)?["value"]["stringValue"].as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_continue_the_callers_trace() {
    let (collector, received) = otlp_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("authgate.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\n\
             [tracing]\notlp_endpoint = \"{collector}\"\nprotocol = \"http/json\"\nservice_name = \"authgate-test\"\n\
             [[issuers]]\nname = \"netlify\"\nsecret = \"{SECRET}\"\n"
        ),
    )
    .unwrap();
    let server = Binary::start(&cfg, &[("OTEL_BSP_SCHEDULE_DELAY", "100".as_ref())]);
    let grpc = server.grpc;
    let channel =
        tonic::transport::Channel::from_shared(format!("http://{grpc}")).unwrap().connect().await.unwrap();
    let token = gotrue_token(&gotrue_claims(), SECRET);
    let verify_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let verify_parent = "00f067aa0ba902b7";
    let mut req =
        tonic::Request::new(authgate::pb::VerifyRequest { token: token.clone(), ..Default::default() });
    req.metadata_mut()
        .insert("traceparent", format!("00-{verify_trace}-{verify_parent}-01").parse().unwrap());
    let mut client = authgate::pb::auth_service_client::AuthServiceClient::new(channel.clone());
    client.verify(req).await.expect("granted");
    let mut denied =
        tonic::Request::new(authgate::pb::VerifyRequest { token: format!("{token}x"), ..Default::default() });
    denied
        .metadata_mut()
        .insert("traceparent", "00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbb-01".parse().unwrap());
    client.verify(denied).await.expect_err("denied");

    // ext_authz: the context travels in the proxied request's headers.
    let check_trace = "0af7651916cd43dd8448eb211c80319c";
    let bearer = format!("Bearer {token}");
    let headers = [
        ("authorization".to_string(), bearer),
        ("traceparent".to_string(), format!("00-{check_trace}-b7ad6b7169203331-01")),
    ];
    let http = envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest {
        headers: headers.into_iter().collect(),
        ..Default::default()
    };
    let check = envoy_types::pb::envoy::service::auth::v3::CheckRequest {
        attributes: Some(envoy_types::pb::envoy::service::auth::v3::AttributeContext {
            request: Some(envoy_types::pb::envoy::service::auth::v3::attribute_context::Request {
                http: Some(http),
                ..Default::default()
            }),
            ..Default::default()
        }),
    };
    envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient::new(channel)
        .check(check)
        .await
        .unwrap();

    // Exported within the batch delay; SIGTERM flushes whatever is left.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while spans(&received.lock().unwrap()).len() < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(server.stop().success());
    tokio::time::sleep(Duration::from_millis(200)).await;

    let exports = received.lock().unwrap().clone();
    let all = spans(&exports);
    let find = |trace: &str| all.iter().find(|s| s["traceId"] == trace).cloned();
    let verify = find(verify_trace).unwrap_or_else(|| panic!("no span in the caller's trace: {all:#?}"));
    assert_eq!(verify["name"], "authgate.v1.AuthService/Verify");
    assert_eq!(verify["parentSpanId"], verify_parent, "the caller's span is the parent");
    assert_eq!(attr(&verify, "authgate.outcome"), Some("granted"));
    assert_eq!(attr(&verify, "authgate.issuer"), Some("netlify"));
    let denied = find("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").expect("denied Verify span");
    assert_eq!(attr(&denied, "authgate.reason"), Some("bad_signature"));
    let check = find(check_trace).expect("ext_authz span in the proxied request's trace");
    assert_eq!(check["name"], "envoy.service.auth.v3.Authorization/Check");
    let service = exports[0]["resourceSpans"][0]["resource"]["attributes"].to_string();
    assert!(service.contains("authgate-test"), "{service}");
    let text = serde_json::to_string(&exports).unwrap();
    for secret in
        [token.as_str(), token.rsplit('.').next().unwrap(), "775a5344-0c6d-4dc6-9ac7-d2d646e071ec", SECRET]
    {
        assert!(!text.contains(secret), "exported spans contain {secret:?}");
    }
}
