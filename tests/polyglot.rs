//! Real clients in other languages against the in-process server.
//!
//! The Python interpreter is `AUTHGATE_TEST_PYTHON`, else `.venv/bin/python`
//! (created by `scripts/test.sh` from tests/python/requirements.txt). A
//! missing interpreter fails the test: it is never skipped silently.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;

fn python() -> PathBuf {
    let p = std::env::var_os("AUTHGATE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    assert!(p.exists(), "{} not found: run scripts/test.sh, which creates the venv", p.display());
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpcio_client() {
    let server = TestServer::start(&standard_config()).await;
    let python = python();
    let script = repo_root().join("tests/python/test_polyglot.py");
    let addr = server.grpc.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python).arg(script).args(["--addr", &addr, "--secret", SECRET]).output()
    })
    .await
    .unwrap()
    .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python client failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("14 passed, 0 failed"), "{stdout}");
}

/// The Python package (`pip install ./clients/python`, done by
/// scripts/python-env.sh): stubs built with the package, sync and asyncio
/// clients, typed denials, ASGI and WSGI middleware.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_package() {
    let server = TestServer::start(&standard_config()).await;
    let python = python();
    let script = repo_root().join("tests/python/test_client_package.py");
    let addr = server.grpc.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args(["--addr", &addr, "--secret", SECRET])
            .current_dir(std::env::temp_dir())
            .output()
    })
    .await
    .unwrap()
    .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python package failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("7 passed, 0 failed"), "{stdout}");
}

/// Runs an example client CLI (`program prefix... [role-flag role] token`)
/// against a server: a granted token prints the identity as JSON; denials
/// exit 1 and print the gRPC code and authgate's reason.
async fn assert_example_client(server: &TestServer, program: PathBuf, prefix: Vec<String>, role_flag: &str) {
    let good = gotrue_token(&gotrue_claims(), SECRET);
    let expired = gotrue_token(&serde_json::json!({"sub": "u", "exp": now() - 600}), SECRET);
    let addr = server.grpc.to_string();
    let run = |args: Vec<String>| {
        let (program, prefix) = (program.clone(), prefix.clone());
        let args: Vec<String> = prefix.into_iter().chain([addr.clone()]).chain(args).collect();
        async move {
            tokio::task::spawn_blocking(move || Command::new(program).args(args).output())
                .await
                .unwrap()
                .expect("run the example client")
        }
    };
    let out = run(vec![role_flag.into(), "admin".into(), good.clone()]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id: serde_json::Value = serde_json::from_slice(&out.stdout).expect("identity JSON");
    assert_eq!(id["subject"], "775a5344-0c6d-4dc6-9ac7-d2d646e071ec");
    assert_eq!(id["roles"], serde_json::json!(["member", "admin"]));
    assert_eq!(id["provider"], "email");
    assert_eq!(id["issuer"], "netlify");
    let cases = [
        (vec![expired], "UNAUTHENTICATED token_expired"),
        (vec![role_flag.into(), "owner".into(), good.clone()], "PERMISSION_DENIED insufficient_role"),
        (vec!["not.a.jwt".into()], "UNAUTHENTICATED malformed_token"),
    ];
    for (args, want) in cases {
        let out = run(args).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{want}: {stderr}");
        assert!(stderr.contains(want), "want {want}, got {stderr}");
    }
}

/// The README's Node example (clients/node/verify.js) against the server,
/// in plaintext and over mutual TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_grpc_js_client() {
    assert!(
        repo_root().join("clients/node/node_modules/@grpc/grpc-js").exists(),
        "clients/node/node_modules missing: run scripts/test.sh"
    );
    let server = TestServer::start(&standard_config()).await;
    let script = repo_root().join("clients/node/verify.js").display().to_string();
    assert_example_client(&server, "node".into(), vec![script.clone(), "--addr".into()], "--role").await;
    let dir = tempfile::tempdir().unwrap();
    let (tls, flags) = mutual_tls(dir.path(), "--");
    let server = TestServer::start(&format!("{tls}{}", standard_config())).await;
    let prefix = [script].into_iter().chain(flags).chain(["--addr".to_string()]).collect();
    assert_example_client(&server, "node".into(), prefix, "--role").await;
}

/// The Node package (clients/node: index.js, index.d.ts): promise API,
/// typed Denied with the generated Reason, Express and Fastify middleware.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_client_package() {
    let server = TestServer::start(&standard_config()).await;
    let mut claims = common::gotrue_claims();
    claims["exp"] = (common::now() + 600).into();
    let good = common::gotrue_token(&claims, SECRET);
    let forged = common::gotrue_token(&claims, "another-secret-0123456789abcdef");
    let script = repo_root().join("tests/node/client_package.cjs");
    let addr = server.grpc.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .args(["--addr", &addr, "--good", &good, "--forged", &forged])
            .output()
    })
    .await
    .unwrap()
    .expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "node package failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("6 passed, 0 failed"), "{stdout}");
}

/// Builds clients/go (the README's Go example) against stubs generated from
/// proto/ with Debian's protoc, protoc-gen-go and protoc-gen-go-grpc, in
/// GOPATH mode (no module downloads), and returns the binary.
fn build_go_client(dir: &std::path::Path) -> PathBuf {
    go_build(dir, "clients/go/verify", "verify-go")
}

/// A GOPATH under `dir` with the stubs where the proto's go_package says
/// (import paths match what a module user writes), the example
/// (`clients/go/verify`), the package (`clients/go/authgate`) and its check
/// program (`tests/go/package_check`); builds `target` into `dir/<bin>`.
fn go_build(dir: &std::path::Path, target: &str, bin: &str) -> PathBuf {
    let src = dir.join("src");
    let pkg = src.join("github.com/authgate/authgate");
    for (from, to) in [
        ("clients/go/main.go", "clients/go/verify/main.go"),
        ("clients/go/authgate/authgate.go", "clients/go/authgate/authgate.go"),
        ("tests/go/package_check/main.go", "tests/go/package_check/main.go"),
    ] {
        std::fs::create_dir_all(pkg.join(to).parent().unwrap()).unwrap();
        std::fs::copy(repo_root().join(from), pkg.join(to)).unwrap();
    }
    let protoc = Command::new("protoc")
        .current_dir(repo_root().join("proto"))
        .arg(format!("--go_out={}", src.display()))
        .arg(format!("--go-grpc_out={}", src.display()))
        .arg("authgate/v1/auth.proto")
        .output()
        .expect("protoc (scripts/go-env.sh installs it)");
    assert!(protoc.status.success(), "protoc: {}", String::from_utf8_lossy(&protoc.stderr));
    let bin = dir.join(bin);
    let build = Command::new("go")
        .current_dir(pkg.join(target))
        .args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .env("GO111MODULE", "off")
        .env("GOPATH", format!("{}:/usr/share/gocode", dir.display()))
        .env("GOCACHE", dir.join("gocache"))
        .env("GOFLAGS", "")
        .output()
        .expect("go (scripts/go-env.sh installs it)");
    assert!(build.status.success(), "go build: {}", String::from_utf8_lossy(&build.stderr));
    bin
}

/// The Go package (clients/go/authgate): Verify, a typed *Denied with the
/// proto's Reason, and the net/http middleware, through a check program.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_client_package() {
    let server = TestServer::start(&standard_config()).await;
    let mut claims = common::gotrue_claims();
    claims["exp"] = (common::now() + 600).into();
    let good = common::gotrue_token(&claims, SECRET);
    let forged = common::gotrue_token(&claims, "another-secret-0123456789abcdef");
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().to_path_buf();
    let addr = server.grpc.to_string();
    let out = tokio::task::spawn_blocking(move || {
        let bin = go_build(&dir_path, "tests/go/package_check", "package-check");
        Command::new(bin).args(["-addr", &addr, "-good", &good, "-forged", &forged]).output()
    })
    .await
    .unwrap()
    .expect("run the Go check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "go package failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("5 passed, 0 failed"), "{stdout}");
}

/// The README's Go example (clients/go/main.go) against the server, in
/// plaintext and over mutual TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_grpc_client() {
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().to_path_buf();
    let bin = tokio::task::spawn_blocking(move || build_go_client(&dir_path)).await.unwrap();
    let server = TestServer::start(&standard_config()).await;
    assert_example_client(&server, bin.clone(), vec!["-addr".into()], "-role").await;
    let (tls, flags) = mutual_tls(dir.path(), "-");
    let server = TestServer::start(&format!("{tls}{}", standard_config())).await;
    assert_example_client(&server, bin, flags.into_iter().chain(["-addr".to_string()]).collect(), "-role")
        .await;
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate in
/// `dir`: the `[tls]` section requiring client certificates on gRPC, and
/// the client flags (`<dash>ca`, `<dash>cert`, `<dash>key`) that use them.
fn mutual_tls(dir: &std::path::Path, dash: &str) -> (String, Vec<String>) {
    let ca = common::pki::Ca::new("clients CA");
    let ca_file = ca.write(dir, "ca.pem");
    let (cert, key) = ca.server(dir, "authgate");
    let (client, client_key) = ca.client(dir, "orders", "spiffe://cluster.local/ns/shop/sa/orders", false);
    let tls = format!(
        "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\nclient_ca_file = \"{}\"\ngrpc_client_auth = \"required\"\n",
        cert.display(),
        key.display(),
        ca_file.display()
    );
    let flags = [("ca", &ca_file), ("cert", &client), ("key", &client_key)]
        .iter()
        .flat_map(|(flag, path)| [format!("{dash}{flag}"), path.display().to_string()])
        .collect();
    (tls, flags)
}
