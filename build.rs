//! Generates the gRPC code for `proto/` with protox (pure Rust), so that no
//! system `protoc` is needed, and writes the descriptor sets that server
//! reflection serves: authgate's own, and Envoy's `Authorization` service,
//! compiled from the protos the envoy-types crate ships (its Rust types carry
//! no descriptors).
use prost::Message;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=Cargo.lock");
    let fds = protox::compile(["authgate/v1/auth.proto"], ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("authgate_descriptor.bin"), fds.encode_to_vec())?;
    // VerifyResponse and ExchangeResponse are written by hand (src/pb/) so
    // that the server can send an identity encoded once; same wire format.
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .extern_path(".authgate.v1.VerifyResponse", "crate::pb::VerifyResponse")
        .extern_path(".authgate.v1.ExchangeResponse", "crate::pb::ExchangeResponse")
        .compile_fds(fds)?;
    let envoy = envoy_types_protos()?;
    let includes = ["data-plane-api", "xds", "protoc-gen-validate", "googleapis", "cel-spec/proto"]
        .map(|d| envoy.join(d));
    let fds = protox::compile(["envoy/service/auth/v3/external_auth.proto"], includes)?;
    std::fs::write(out.join("envoy_auth_descriptor.bin"), fds.encode_to_vec())?;
    Ok(())
}

/// The `proto` directory of the envoy-types package this build resolved,
/// found through `cargo metadata` (registry, vendored or git alike).
fn envoy_types_protos() -> Result<PathBuf, Box<dyn std::error::Error>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("Cargo.toml");
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline", "--manifest-path"])
        .arg(&manifest)
        .output()?;
    if !out.status.success() {
        return Err(format!("cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let package = metadata["packages"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "envoy-types"))
        .ok_or("envoy-types is not among the resolved packages")?;
    let manifest_path = package["manifest_path"].as_str().ok_or("envoy-types has no manifest path")?;
    let dir = PathBuf::from(manifest_path).parent().ok_or("bad manifest path")?.join("proto");
    if !dir.is_dir() {
        return Err(format!("{} does not exist", dir.display()).into());
    }
    Ok(dir)
}
