//! Micro-benchmark of the transport-free core: ns per `Gate::verify`
//! on a valid GoTrue token, and of its conversion to the protobuf Identity.
//! Not a test; run with `cargo run --release --example pipeline_cost [CACHE_ENTRIES]`
//! (default 10000; 0 measures every call doing the full verification).

use authgate::cli::gotrue_token::{TokenSpec, sign};
use authgate::config::{Config, Inputs};
use authgate::testing::{Gate, VerifyInput};

use std::time::{Duration, Instant};

fn main() {
    let dir = std::env::temp_dir().join(format!("authgate-pipeline-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("c.toml");
    let cache_entries = std::env::args().nth(1).unwrap_or_else(|| "10000".into());
    std::fs::write(
        &path,
        format!(
            "[cache]\nmax_entries = {cache_entries}\n[[issuers]]\nname = \"netlify\"\nsecret = \"bench-secret-0123456789abcdef0123\"\n"
        ),
    )
    .expect("write config");
    let env = |_: &str| None;
    let config = Config::load(&Inputs {
        config_path: Some(path),
        grpc_addr: None,
        http_addr: None,
        env: &env,
        workdir: dir.clone(),
        offline: false,
    })
    .expect("config");
    let spec = TokenSpec {
        subject: None,
        email: "bench@example.com".into(),
        roles: vec!["editor".into(), "member".into()],
        provider: "email".into(),
        audience: None,
        ttl: Duration::from_secs(3600),
    };
    let token =
        sign(&spec, config.issuers[0].signing_secret().expect("hs256 issuer"), authgate::testing::unix_now())
            .expect("sign");
    let core = Gate::from_config(&config).expect("the example config is valid");
    let headers = authgate::testing::Headers::new();
    let input = VerifyInput {
        token: Some(&token),
        headers: &headers,
        required_roles: &[],
        issuer: None,
        require_signed_proxy: false,
        client: None,
        identity_in_headers: false,
    };
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let n = 200_000;
    for round in 0..3 {
        let t = Instant::now();
        for _ in 0..n {
            let id = rt.block_on(core.verify(authgate::testing::Adapter::Verify, input)).expect("valid");
            std::hint::black_box(id);
        }
        let verify_ns = t.elapsed().as_nanos() / n;
        let t = Instant::now();
        for _ in 0..n {
            let id = rt.block_on(core.verify(authgate::testing::Adapter::Verify, input)).expect("valid");
            let pb: authgate::pb::Identity = id.identity.as_ref().into();
            std::hint::black_box(prost::Message::encode_to_vec(&pb));
        }
        let full_ns = t.elapsed().as_nanos() / n;
        println!("round {round}: verify {verify_ns} ns/op, verify+to_proto+encode {full_ns} ns/op");
    }
    let _ = std::fs::remove_dir_all(dir);
}
