//! Envoy `CheckRequest` bytes → decode → the ext_authz adapter's whole
//! decision (request view, route policy, credential, verification).
#![no_main]

use envoy_types::ext_authz::v3::pb::CheckRequest;
use libfuzzer_sys::fuzz_target;
use prost::Message;
use std::sync::{Arc, OnceLock};

mod support;

struct Target {
    runtime: tokio::runtime::Runtime,
    service: authgate::testing::ExtAuthz,
}

fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        let config = support::load_config(
            b"[log]\nlevel = \"off\"\n[signed_proxy]\nsecret = \"fuzz-signed-proxy-secret-0123456789\"\n\
              [edge]\nroles = [\"member\"]\n[edge.routes.admin]\nroles = [\"admin\"]\n\
              [[issuers]]\nname = \"site\"\nsecret = \"fuzz-user-secret-0123456789\"\n",
            "check",
        )
        .expect("valid config");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let metrics = Arc::new(authgate::testing::Metrics::new());
        let live = Arc::new(authgate::testing::Live::start(config, metrics).expect("live"));
        Target { runtime, service: authgate::testing::ExtAuthz::new(live) }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(request) = CheckRequest::decode(data) else { return };
    let t = target();
    let answer = t.runtime.block_on(t.service.check(tonic::Request::new(request)));
    // Check never fails as an RPC: every request gets an HTTP decision.
    assert!(answer.is_ok(), "ext_authz answered a gRPC error");
});
