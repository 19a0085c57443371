//! Test harness: the real server in-process on 127.0.0.1:0, a real tonic
//! client, and token builders with expiry relative to now.
#![allow(dead_code)]

pub mod db;
pub mod gotrue;
pub mod oidc;
pub mod pki;
pub mod postgres;
pub mod webhook;

use authgate::config::{Config, Inputs};
use authgate::pb::auth_service_client::AuthServiceClient;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// The current secret of the test issuers.
pub const SECRET: &str = "test-secret-current-0123456789abcdef";
/// The previous secret (rotation).
pub const PREVIOUS: &str = "test-secret-previous-0123456789abcdef";
/// Secret of the `functions` issuer.
pub const FN_SECRET: &str = "functions-shared-secret-0123456789";
/// `iss` of the `functions` issuer.
pub const FN_ISS: &str = "https://example.netlify.app/.netlify/functions/sign";

/// A config with several issuers, covering the routing rules.
pub fn standard_config() -> String {
    format!(
        r#"
[server]
grpc_addr = "127.0.0.1:0"
http_addr = "127.0.0.1:0"

[[issuers]]
name = "netlify"
secret = "{SECRET}"
previous_secret = "{PREVIOUS}"
default = true

[[issuers]]
name = "netlify-aud"
secret = "{SECRET}"
audiences = ["api.netlify.com"]

[[issuers]]
name = "functions"
secret = "{FN_SECRET}"
iss = "{FN_ISS}"
audiences = ["backend"]

[[issuers]]
name = "ops"
secret = "{SECRET}"
allow_system_principal = true
"#
    )
}

/// Loads a config from TOML text with an empty environment.
pub fn load_config(toml: &str) -> Result<Config, authgate::config::ConfigErrors> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("authgate.toml");
    std::fs::write(&path, toml).expect("write config");
    let no_env = |_: &str| None;
    Config::load(&Inputs {
        config_path: Some(path),
        grpc_addr: None,
        http_addr: None,
        env: &no_env,
        workdir: dir.path().to_path_buf(),
        offline: false,
    })
}

/// A running in-process server.
pub struct TestServer {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    /// The webhook port, when `server.webhook_addr` is set.
    pub webhook: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    pub task: Option<JoinHandle<Result<(), authgate::app::RunError>>>,
}

impl TestServer {
    pub async fn start(toml: &str) -> TestServer {
        Self::start_config(load_config(toml).expect("valid test config")).await
    }

    pub async fn start_config(config: Config) -> TestServer {
        let listeners = authgate::Listeners::bind(&config).await.expect("bind");
        let grpc = listeners.grpc_addr().unwrap();
        let http = listeners.http_addr().unwrap();
        let webhook = listeners.webhook_addr();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(authgate::run(listeners, config, async move {
            let _ = rx.await;
        }));
        TestServer { grpc, http, webhook, stop: Some(tx), task: Some(task) }
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.grpc)).unwrap().connect().await.expect("connect")
    }

    /// The gRPC health status of `service` ("" for the server as a whole).
    pub async fn health(&self, service: &str) -> tonic_health::pb::health_check_response::ServingStatus {
        let mut h = tonic_health::pb::health_client::HealthClient::new(self.channel().await);
        let req = tonic_health::pb::HealthCheckRequest { service: service.into() };
        let resp = h.check(req).await.expect("health check");
        tonic_health::pb::health_check_response::ServingStatus::try_from(resp.into_inner().status).unwrap()
    }

    pub async fn client(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.channel().await)
    }

    /// Begins shutdown (like SIGTERM) without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    /// Shuts down and waits for `run` to return.
    pub async fn stop(mut self) {
        self.begin_shutdown();
        if let Some(task) = self.task.take() {
            task.await.expect("join").expect("run returned an error");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.begin_shutdown();
    }
}

/// The ErrorInfo reason of a denial.
pub fn reason(status: &tonic::Status) -> Option<String> {
    use tonic_types::StatusExt;
    status.get_details_error_info().map(|i| i.reason)
}

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A GoTrue-shaped claims object for a fresh user, valid for an hour.
pub fn gotrue_claims() -> Value {
    json!({
        "exp": now() + 3600,
        "sub": "775a5344-0c6d-4dc6-9ac7-d2d646e071ec",
        "email": "test@test.com",
        "app_metadata": {"provider": "email", "roles": ["member", "admin"]},
        "user_metadata": {"full_name": "Test User"}
    })
}

/// Signs with jsonwebtoken (an implementation independent of authgate's).
pub fn sign(alg: jsonwebtoken::Algorithm, kid: Option<&str>, claims: &Value, secret: &str) -> String {
    let mut header = jsonwebtoken::Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

/// GoTrue's exact header: HS256 with `kid: nf-ident`.
pub fn gotrue_token(claims: &Value, secret: &str) -> String {
    sign(jsonwebtoken::Algorithm::HS256, Some("nf-ident"), claims, secret)
}

/// A token with an arbitrary header JSON and signature bytes, for headers
/// no library will produce (`alg: none`, RS256 without a key).
pub fn raw_token(header: &str, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// The `authgate` binary as a command that inherits none of the
/// developer's `AUTHGATE_*`, `OTEL_*` or `RUST_LOG` variables: what a test
/// means to set, it sets itself.
pub fn authgate_command() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_authgate"));
    hermetic(&mut cmd);
    cmd
}

/// Removes the developer's `AUTHGATE_*`, `OTEL_*` and `RUST_LOG` from what
/// `cmd` (and every process it starts) inherits, and gives it a home of
/// its own (one per test binary), so that the dev secret under the
/// developer's `~/.config/authgate` is never read or written by a test.
pub fn hermetic(cmd: &mut std::process::Command) {
    for (name, _) in std::env::vars_os() {
        let n = name.to_string_lossy();
        if n.starts_with("AUTHGATE_") || n.starts_with("OTEL_") || n == "RUST_LOG" {
            cmd.env_remove(&name);
        }
    }
    cmd.env("HOME", test_home()).env_remove("XDG_CONFIG_HOME");
}

/// A home directory for every process this test binary starts, removed
/// with nothing else: it lives under the system's temporary directory.
pub fn test_home() -> &'static std::path::Path {
    static HOME: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    HOME.get_or_init(|| tempfile::Builder::new().prefix("authgate-test-home").tempdir().unwrap()).path()
}

/// Path of the repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Opens a raw HTTP/2 connection and starts a gRPC call to `path`, leaving
/// the body to the caller (who may send it in pieces, or send garbage).
pub async fn open_grpc_stream(
    addr: SocketAddr,
    path: &str,
) -> Result<(h2::client::ResponseFuture, h2::SendStream<bytes::Bytes>), String> {
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let (client, conn) = h2::client::handshake(tcp).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut client = client.ready().await.map_err(|e| e.to_string())?;
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    client.send_request(req, false).map_err(|e| e.to_string())
}

/// Reads a raw gRPC response: (`grpc-status`, body bytes). The status comes
/// from the trailers, or from the headers of a trailers-only response.
pub async fn read_grpc_response(response: h2::client::ResponseFuture) -> Result<(String, Vec<u8>), String> {
    let resp = response.await.map_err(|e| e.to_string())?;
    if let Some(s) = resp.headers().get("grpc-status") {
        return Ok((s.to_str().unwrap().to_string(), Vec::new()));
    }
    let mut body = resp.into_body();
    let mut data = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    let trailers = body.trailers().await.map_err(|e| e.to_string())?.unwrap_or_default();
    let status = trailers.get("grpc-status").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    Ok((status, data))
}

/// One gRPC call with an arbitrary body, for inputs no well-behaved client
/// sends. Returns the `grpc-status`, or the HTTP/2 error.
pub async fn raw_grpc_call(addr: SocketAddr, path: &str, body: bytes::Bytes) -> Result<String, String> {
    let (response, mut send) = open_grpc_stream(addr, path).await?;
    send.send_data(body, true).map_err(|e| e.to_string())?;
    read_grpc_response(response).await.map(|(status, _)| status)
}

/// Frames a protobuf message for gRPC (uncompressed).
pub fn grpc_frame(message: &[u8]) -> bytes::Bytes {
    let mut out = vec![0u8];
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out.into()
}

/// A plain HTTP/1.1 GET on the side port: (lower-cased head, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect http");
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw.as_str(), ""));
    (head.to_lowercase(), body.to_string())
}

/// GET with extra headers over plain HTTP/1.1: (status, lower-cased head, body).
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("GET {path} HTTP/1.1\r\nhost: app.test\r\nconnection: close\r\n");
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    req += "\r\n";
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw.as_str(), ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, head.to_lowercase(), body.to_string())
}

/// An upstream that answers every request with the headers it received.
pub async fn echo_upstream() -> SocketAddr {
    async fn echo(headers: axum::http::HeaderMap) -> axum::Json<serde_json::Value> {
        let map: serde_json::Map<String, serde_json::Value> = headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), serde_json::Value::from(v.to_str().unwrap_or(""))))
            .collect();
        axum::Json(serde_json::Value::Object(map))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(echo);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// Polls until something accepts connections on `addr`, up to `within`.
pub async fn port_opens(addr: SocketAddr, within: std::time::Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

/// An `[exchange]` section with one EdDSA key (kid `edge`, generated into
/// `dir` with the code of `authgate keys generate`) and an `orders`
/// audience allowing `orders:read` by default.
pub fn exchange_section(dir: &std::path::Path) -> String {
    let key = dir.join("k.pem");
    std::fs::write(&key, authgate::testing::generate_pkcs8_pem(authgate::config::MintAlg::EdDSA).unwrap())
        .unwrap();
    format!(
        "[exchange]\nissuer_url = \"https://authgate.test\"\n[[exchange.keys]]\nkid = \"edge\"\nprivate_key_file = \"{}\"\n[[exchange.audiences]]\nname = \"orders\"\nscopes = [\"orders:read\"]\ndefault_scopes = [\"orders:read\"]\n",
        key.display()
    )
}

/// An http URL on loopback where nothing listens (connection refused).
pub fn closed_port_url() -> String {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    url
}

/// A server whose only issuer is hosted Netlify Identity at an address that
/// refuses connections: every decision meets a dependency that is down.
pub async fn server_with_unreachable_identity() -> TestServer {
    TestServer::start(&format!(
        "[server]\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n[[issuers]]\nname = \"h\"\nkind = \"netlify_identity\"\nidentity_url = \"{}\"\n",
        closed_port_url()
    ))
    .await
}

/// The real `authgate` binary, started with `--config` (JSON logs) and
/// extra environment; [`Binary::start`] returns once it logs "serving".
pub struct Binary {
    pub child: std::process::Child,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    /// Every stderr line so far is also kept in `seen`.
    lines: std::sync::mpsc::Receiver<String>,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// While set, stderr is not read: the pipe fills and the server's
    /// writes to it block, as with a stuck log shipper.
    stderr_paused: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Binary {
    pub fn start(config: &std::path::Path, env: &[(&str, &std::ffi::OsStr)]) -> Binary {
        Self::start_with_fd_limit(config, env, None)
    }

    /// [`Binary::start`] with `RLIMIT_NOFILE` set to `nofile` (soft and
    /// hard) in the child.
    pub fn start_with_fd_limit(
        config: &std::path::Path,
        env: &[(&str, &std::ffi::OsStr)],
        nofile: Option<u64>,
    ) -> Binary {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        let mut cmd = authgate_command();
        if let Some(n) = nofile {
            // SAFETY: setrlimit is async-signal-safe; nothing else runs
            // between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let limit = libc::rlimit { rlim_cur: n, rlim_max: n };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        cmd.arg("--config").arg(config);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child =
            cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel::<String>();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = seen.clone();
        let stderr_paused = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let paused = stderr_paused.clone();
        // Drains stderr for the whole run (unless paused), so the server
        // never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in std::io::BufReader::with_capacity(512, stderr).lines().map_while(Result::ok) {
                while paused.load(std::sync::atomic::Ordering::Acquire) {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                keep.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        // JSON lines, or the human format's `... serving grpc_addr=...`.
        let (grpc, http) = loop {
            let line = lines.recv_timeout(std::time::Duration::from_secs(20)).expect("server did not start");
            let addr = |v: &Value, k: &str| v[k].as_str().unwrap().parse::<SocketAddr>().unwrap();
            match serde_json::from_str::<Value>(&line) {
                Ok(v) if v["message"] == "serving" => break (addr(&v, "grpc_addr"), addr(&v, "http_addr")),
                Ok(_) => {}
                Err(_) if line.contains(" serving ") => {
                    let field = |k: &str| {
                        let addr = line.split_whitespace().find_map(|w| w.strip_prefix(k));
                        addr.expect("addresses in the serving line").parse::<SocketAddr>().unwrap()
                    };
                    break (field("grpc_addr="), field("http_addr="));
                }
                Err(_) => {}
            }
        };
        Binary { child, grpc, http, lines, seen, stderr_paused }
    }

    /// Stops (or resumes) reading the process's stderr.
    pub fn pause_stderr(&self, paused: bool) {
        self.stderr_paused.store(paused, std::sync::atomic::Ordering::Release);
    }

    /// Waits (20 s at most) for a log line containing `needle`.
    pub fn wait_for_log(&self, needle: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(std::time::Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no log line with {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// An AuthService client on a new connection to the process.
    pub async fn client(&self) -> AuthServiceClient<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.grpc)).unwrap().connect().await.unwrap();
        AuthServiceClient::new(channel)
    }

    /// Resident memory of the process, in bytes.
    pub fn rss_bytes(&self) -> u64 {
        self.status_bytes("VmRSS:")
    }

    /// The most resident memory the process has had, in bytes.
    pub fn peak_rss_bytes(&self) -> u64 {
        self.status_bytes("VmHWM:")
    }

    fn status_bytes(&self, key: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kb * 1024
    }

    /// CPU time (user + system) the process has used, in clock ticks
    /// (1/100 s on Linux).
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the parenthesised name; utime and stime are the
        // 14th and 15th of the whole line.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    /// Every log line so far.
    pub fn logs(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// Sends a signal (`HUP`, `TERM`) to the process.
    pub fn signal(&self, name: &str) {
        let ok = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// The log lines, shared (to read after the process is gone).
    pub fn logs_handle(&self) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
        self.seen.clone()
    }

    /// Waits for the process to exit.
    pub fn wait(mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }

    /// SIGTERM, then waits for the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        self.child.wait().unwrap()
    }
}

/// Parses an exposition with Python's prometheus_client (OpenMetrics).
pub fn parse_metrics(text: &str) -> Vec<Value> {
    let python = std::env::var("AUTHGATE_TEST_PYTHON")
        .unwrap_or_else(|_| repo_root().join(".venv/bin/python").display().to_string());
    let mut child = std::process::Command::new(python)
        .arg(repo_root().join("tests/python/parse_metrics.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python (run scripts/test.sh)");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "not parseable: {}\n{text}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn sample(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| s["name"] == name && labels.iter().all(|(k, v)| s["labels"][*k] == *v))
        .and_then(|s| s["value"].as_f64())
}

/// Scrapes `/metrics` and parses it.
pub async fn scrape(http: SocketAddr) -> Vec<Value> {
    let (status, head, body) = get(http, "/metrics", &[]).await;
    assert_eq!(status, 200, "{head}");
    parse_metrics(&body)
}

/// Polls `check` every 5 ms until it holds (how long it took) or `limit`
/// passes (`None`).
pub async fn within<F: std::future::Future<Output = bool>>(
    limit: std::time::Duration,
    mut check: impl FnMut() -> F,
) -> Option<std::time::Duration> {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    None
}
