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

/// Builds the README's Go example (clients/go/examples/verify) and returns
/// the binary.
fn build_go_client(dir: &std::path::Path) -> PathBuf {
    go_build(dir, "clients/go", "./examples/verify", "verify-go")
}

/// The go command of an offline workspace under `dir` (scripts/go-work.sh:
/// the client module and tests/go, their dependencies replaced by Debian's
/// packaged sources, no module downloads), run in `module_dir`.
fn go_command(dir: &std::path::Path, module_dir: &str) -> Command {
    if !dir.join("go.work").exists() {
        let work =
            Command::new(repo_root().join("scripts/go-work.sh")).arg(dir).output().expect("go-work.sh");
        assert!(work.status.success(), "go-work.sh: {}", String::from_utf8_lossy(&work.stderr));
    }
    let mut go = Command::new("go");
    go.current_dir(repo_root().join(module_dir))
        .env("GOWORK", dir.join("go.work"))
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .env("GOPATH", dir.join("gopath"))
        .env("GOCACHE", dir.join("gocache"));
    go
}

/// `go build` of `package` in the module at `module_dir` into `dir/<bin>`.
fn go_build(dir: &std::path::Path, module_dir: &str, package: &str, bin: &str) -> PathBuf {
    let bin = dir.join(bin);
    let build = go_command(dir, module_dir)
        .args(["build", "-o"])
        .arg(&bin)
        .arg(package)
        .output()
        .expect("go (scripts/go-env.sh installs it)");
    assert!(build.status.success(), "go build: {}", String::from_utf8_lossy(&build.stderr));
    bin
}

/// The Go module as a user gets it: its committed stubs (clients/go/authgatev1)
/// are what protoc makes of the proto today, the code is gofmt-clean, and
/// `go vet` passes on every package.
#[test]
fn go_module_is_current_and_clean() {
    let dir = tempfile::tempdir().unwrap();
    let protoc = Command::new("protoc")
        .current_dir(repo_root().join("proto"))
        .arg(format!("--go_out={}", dir.path().display()))
        .arg(format!("--go-grpc_out={}", dir.path().display()))
        .arg("authgate/v1/auth.proto")
        .output()
        .expect("protoc (scripts/go-env.sh installs it)");
    assert!(protoc.status.success(), "protoc: {}", String::from_utf8_lossy(&protoc.stderr));
    let generated = dir.path().join("github.com/authgate/authgate/clients/go/authgatev1");
    for file in ["auth.pb.go", "auth_grpc.pb.go"] {
        let fresh = std::fs::read_to_string(generated.join(file)).unwrap();
        let committed =
            std::fs::read_to_string(repo_root().join("clients/go/authgatev1").join(file)).unwrap();
        assert!(
            fresh == committed,
            "clients/go/authgatev1/{file} is stale: regenerate with\n  cd proto && protoc --go_out=. \
             --go-grpc_out=. authgate/v1/auth.proto, then move the files"
        );
    }
    let gofmt =
        Command::new("gofmt").arg("-l").arg("clients/go").arg("tests/go").current_dir(repo_root()).output();
    let gofmt = gofmt.expect("gofmt");
    assert!(
        gofmt.status.success() && gofmt.stdout.is_empty(),
        "gofmt: {}",
        String::from_utf8_lossy(&gofmt.stdout)
    );
    let vet = go_command(dir.path(), "clients/go").args(["vet", "./..."]).output().unwrap();
    assert!(vet.status.success(), "go vet: {}", String::from_utf8_lossy(&vet.stderr));
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
        let bin = go_build(&dir_path, "tests/go", "./package_check", "package-check");
        Command::new(bin).args(["-addr", &addr, "-good", &good, "-forged", &forged]).output()
    })
    .await
    .unwrap()
    .expect("run the Go check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "go package failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("5 passed, 0 failed"), "{stdout}");
}

/// The README's Go example (clients/go/examples/verify) against the server, in
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
