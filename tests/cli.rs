//! The binary's subcommands: check-config, token, and config errors.

mod common;

use authgate::pb::VerifyRequest;
use common::*;
use std::process::Command;

fn authgate(dir: &std::path::Path) -> Command {
    let mut c = authgate_command();
    c.current_dir(dir);
    c
}

/// `authgate` run in `dir` by a user whose home is `dir/home`: the tests
/// that look at the dev secret own it alone.
fn authgate_at_home(dir: &std::path::Path) -> Command {
    let mut c = authgate(dir);
    c.env("HOME", dir.join("home"));
    c
}

#[test]
fn check_config_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, standard_config()).unwrap();
    let out = authgate(dir.path())
        .args(["check-config", "--config"])
        .arg(&cfg)
        .env("AUTHGATE_ISSUER_FUNCTIONS_PREVIOUS_SECRET", "env-previous-secret-0123456789")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for s in [SECRET, PREVIOUS, FN_SECRET, "env-previous-secret-0123456789"] {
        assert!(!stdout.contains(s) && !stderr.contains(s), "secret printed:\n{stdout}{stderr}");
    }
    assert!(stdout.contains("name = \"functions\"") && stdout.contains("[redacted: 30 bytes]"), "{stdout}");
}

#[test]
fn invalid_config_reports_every_error_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[server]\ngrpc_addr = \"x\"\nhttp_addr = \"y\"\n[[issuers]]\nname = \"a\"\nsecret = \"tiny-secret\"\nleeway = \"1h\"\nbogus = 1\n",
    )
    .unwrap();
    let out = authgate(dir.path()).arg("--config").arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "server.grpc_addr",
        "server.http_addr",
        "shorter than 16 bytes",
        "leeway",
        "unknown key `issuers[0] (a).bogus`",
    ] {
        assert!(stderr.contains(needle), "missing {needle}:\n{stderr}");
    }
    assert!(stderr.contains("invalid configuration (5 error(s))"), "{stderr}");
    assert!(!stderr.contains("tiny-secret"), "{stderr}");
}

#[test]
fn missing_config_file_is_an_error_not_dev_mode() {
    let dir = tempfile::tempdir().unwrap();
    let out = authgate_at_home(dir.path())
        .args(["check-config", "--config", "/nonexistent/authgate.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!dir.path().join("home").exists(), "dev secret created although a config was given");
}

#[tokio::test]
async fn dev_token_verifies_against_dev_mode() {
    let dir = tempfile::tempdir().unwrap();
    let out = authgate_at_home(dir.path())
        .args([
            "token", "--sub", "user-1", "--email", "a@b.c", "--role", "admin", "--role", "editor", "--ttl",
            "5m",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    // The token has GoTrue's exact header.
    use base64::Engine;
    let header =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap();
    let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
    assert_eq!(header, serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": "nf-ident"}));

    // The server in dev mode, same user, another working directory, accepts it.
    let home = dir.path().join("home").display().to_string();
    let home_env = |k: &str| (k == "HOME").then(|| home.clone());
    let mut config = authgate::Config::load(&authgate::config::Inputs {
        config_path: None,
        grpc_addr: Some("127.0.0.1:0".into()),
        http_addr: Some("127.0.0.1:0".into()),
        env: &home_env,
        workdir: std::env::temp_dir(),
        offline: false,
    })
    .unwrap();
    config.log.level = "warn".into();
    let server = TestServer::start_config(config).await;
    let id = server.client().await.verify(VerifyRequest { token, ..Default::default() }).await.unwrap();
    let id = id.into_inner().identity.unwrap();
    assert_eq!((id.subject.as_str(), id.email.as_str(), id.issuer.as_str()), ("user-1", "a@b.c", "dev"));
    assert_eq!(id.roles, ["admin", "editor"]);
    let ttl = id.expires_at.unwrap().seconds - now();
    assert!((290..=300).contains(&ttl), "ttl {ttl}");
}

/// `authgate verify` decides like the service, with the same config: exit 0
/// and the identity for a good token (argument or stdin), 1 with the reason
/// for a denial, 2 for a caller mistake; `authgate jwks` prints public keys.
#[test]
fn verify_and_jwks_subcommands() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let minted =
        authgate(dir.path()).args(["token", "--role", "admin", "--sub", "cli-user"]).output().unwrap();
    let token = String::from_utf8(minted.stdout).unwrap().trim().to_string();
    let expired =
        gotrue_token(&serde_json::json!({"sub": "x", "exp": now() - 600}), "not-the-dev-secret-0123");
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut child = authgate(dir.path())
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
        drop(input);
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // (description, arguments, stdin, exit code, expected output)
    type Case<'a> = (&'a str, Vec<&'a str>, Option<&'a str>, Option<i32>, &'a str);
    let cases: Vec<Case> = vec![
        ("token as argument", vec!["verify", &token], None, Some(0), "\"subject\": \"cli-user\""),
        ("token on stdin", vec!["verify"], Some(&token), Some(0), "\"roles\": [\n    \"admin\""),
        ("role held", vec!["verify", "--role", "admin", "-"], Some(&token), Some(0), "\"issuer\": \"dev\""),
        (
            "role missing",
            vec!["verify", "--role", "owner", &token],
            None,
            Some(1),
            "denied: insufficient_role",
        ),
        ("bad signature", vec!["verify", &expired], None, Some(1), "denied: bad_signature"),
        (
            "unknown issuer",
            vec!["verify", "--issuer", "nope", &token],
            None,
            Some(2),
            "denied: unknown_issuer",
        ),
    ];
    for (what, args, stdin, code, needle) in cases {
        let (got, out, err) = run(&args, stdin);
        assert_eq!(got, code, "{what}: {out}{err}");
        assert!(out.contains(needle) || err.contains(needle), "{what}: missing {needle:?} in {out}{err}");
        assert!(
            !out.contains(&token[token.len() - 20..]) && !err.contains(&token[token.len() - 20..]),
            "{what}: token echoed"
        );
    }
    // With a config, `jwks` prints the public keys of [exchange] (dev mode
    // asks its running server: dev_mode_banner_token_and_jwks_agree_with_the_server).
    let cfg = dir.path().join("exchange.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[issuers]]\nname = \"n\"\nsecret = \"{}\"\n\n{}",
            common::SECRET,
            common::exchange_section(dir.path())
        ),
    )
    .unwrap();
    let out = authgate(dir.path()).arg("--config").arg(&cfg).arg("jwks").output().unwrap();
    let (code, out, err) = (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(code, Some(0), "{err}");
    let jwks: serde_json::Value = serde_json::from_str(&out).unwrap();
    let key = &jwks["keys"][0];
    assert_eq!((key["kty"].as_str(), key["alg"].as_str()), (Some("OKP"), Some("EdDSA")), "{jwks}");
    assert!(key.get("d").is_none(), "private member printed: {jwks}");
}

/// `keys generate --alg` takes the algorithm in any case; an unknown one is
/// a usage error (exit 2).
#[test]
fn keys_generate_takes_the_algorithm_in_any_case() {
    let dir = tempfile::tempdir().unwrap();
    for (alg, ok) in [("es256", true), ("EdDSA", true), ("rs256", true), ("HS256", false), ("es512", false)] {
        let out = authgate(dir.path()).args(["keys", "generate", "--alg", alg]).output().unwrap();
        let pem = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.success(), ok, "{alg}: {}", String::from_utf8_lossy(&out.stderr));
        if ok {
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{alg}: {pem}");
        } else {
            assert_eq!(out.status.code(), Some(2), "{alg}");
        }
    }
}

/// check-config on the broken inputs a new user writes: each error names
/// its file:line:column (or the variable), the key, what was expected, and
/// a suggestion for a typo.
#[test]
fn config_errors_say_where_and_what() {
    let dir = tempfile::tempdir().unwrap();
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: [Case; 3] = [
        (
            "typo, wrong type, bad URL",
            "[server]\ngrpc_adr = \"127.0.0.1:1\"\n\n[cache]\nmax_entries = true\n\n[[issuers]]\nname = \"hosted\"\nkind = \"netlify_identity\"\nsite_url = \"htps://example.netlify.app\"\n",
            &[],
            &[
                "c.toml:2:1: unknown key `server.grpc_adr` (did you mean `grpc_addr`?)",
                "c.toml:5:1: cache.max_entries has the wrong type: expected a string or a number, found boolean",
                "c.toml:10:1: issuers[0] (hosted).site_url: must be an https URL",
                "(3 error(s))",
            ],
        ),
        (
            "unterminated string",
            "[server]\ngrpc_addr = \"127.0.0.1:1\n",
            &[],
            &["c.toml:2:25: invalid basic string", "(1 error(s))"],
        ),
        (
            "a log level that is no level, from the environment",
            "[[issuers]]\nname = \"a\"\nsecret = \"0123456789abcdef0123\"\n",
            &[("AUTHGATE_LOG_LEVEL", "verbose")],
            &["log.level (from AUTHGATE_LOG_LEVEL): `verbose` is not a level"],
        ),
    ];
    for (description, toml, env, needles) in cases {
        let cfg = dir.path().join("c.toml");
        std::fs::write(&cfg, toml).unwrap();
        let out = authgate(dir.path())
            .arg("check-config")
            .arg("--config")
            .arg(&cfg)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{description}: {stderr}");
        for needle in needles {
            assert!(stderr.contains(needle), "{description}: missing {needle:?} in\n{stderr}");
        }
    }
}

/// `check-config --offline` validates a config whose secret and key files
/// are not on this machine (a config repository's CI), and still reports
/// every structural error; without `--offline` the same config fails on the
/// missing files, and a key file that is not a key fails where its path is.
#[test]
fn check_config_offline_names_files_without_reading_them() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    let valid = "[exchange]\nissuer_url = \"https://authgate.internal\"\n[[exchange.keys]]\nkid = \"k1\"\nprivate_key_file = \"/run/secrets/absent.pem\"\n[[exchange.audiences]]\nname = \"orders\"\n\n[[issuers]]\nname = \"a\"\nsecret_file = \"/run/secrets/absent\"\n";
    type Case<'a> = (&'a str, &'a str, &'a [&'a str], i32, &'a [&'a str]);
    let cases: [Case; 4] = [
        ("offline: files named, not read", valid, &["--offline"], 0, &["configuration is valid"]),
        (
            "online: the missing files are errors",
            valid,
            &[],
            2,
            &["cannot read /run/secrets/absent", "cannot read /run/secrets/absent.pem"],
        ),
        (
            "offline still checks structure",
            "[[issuers]]\nname = \"a\"\nsecret_file = \"/x\"\nleeway = \"forever\"\n",
            &["--offline"],
            2,
            &["c.toml:4:1: issuers[0] (a).leeway: not a duration"],
        ),
        (
            "a key file that is no key fails at check-config, under its path",
            "[exchange]\nissuer_url = \"https://authgate.internal\"\n[[exchange.keys]]\nkid = \"k1\"\nprivate_key = \"this is not a PEM private key at all\"\n[[exchange.audiences]]\nname = \"orders\"\n\n[[issuers]]\nname = \"a\"\nsecret = \"0123456789abcdef0123\"\n",
            &[],
            2,
            &["exchange.keys[0] (k1): private key is not a PKCS#8 PEM EdDSA key"],
        ),
    ];
    for (description, toml, flags, code, needles) in cases {
        std::fs::write(&cfg, toml).unwrap();
        let out = authgate_at_home(dir.path())
            .arg("check-config")
            .args(flags)
            .arg("--config")
            .arg(&cfg)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{description}: {stderr}");
        for needle in needles {
            assert!(stderr.contains(needle), "{description}: missing {needle:?} in\n{stderr}");
        }
    }
    assert!(!dir.path().join("home").exists(), "check-config wrote a dev secret");
}

/// `authgate config schema` prints a JSON Schema that a real validator
/// (Python's jsonschema, in the test venv) accepts the shipped examples
/// against and rejects a typo with.
#[test]
fn config_schema_validates_real_configs() {
    let dir = tempfile::tempdir().unwrap();
    let out = authgate(dir.path()).args(["config", "schema"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).expect("schema is JSON");
    assert_eq!(schema["properties"]["server"]["additionalProperties"], false);
    let python = std::env::var("AUTHGATE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    std::fs::write(dir.path().join("schema.json"), &out.stdout).unwrap();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let script = r#"
import json, sys, tomllib, jsonschema, pathlib
schema = json.load(open(sys.argv[1]))
checked = 0
for path in sorted(pathlib.Path(sys.argv[2]).rglob("authgate*.toml")):
    jsonschema.validate(tomllib.loads(path.read_text()), schema)
    checked += 1
try:
    jsonschema.validate(tomllib.loads('[server]\ngrpc_adr = "x"\n'), schema)
    print("typo accepted"); sys.exit(1)
except jsonschema.ValidationError as e:
    assert "grpc_adr" in e.message, e.message
print(f"validated {checked}")
"#;
    let run = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(dir.path().join("schema.json"))
        .arg(&examples)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}{}", String::from_utf8_lossy(&run.stderr));
    assert!(!stdout.contains("validated 0"), "no example config found under deploy/: {stdout}");
}

/// A reader that goes away (`authgate config schema | head -1`) is not a
/// crash: the command finishes, exit 0, without a panic on stderr.
#[test]
fn a_closed_stdout_is_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = authgate(dir.path())
        .args(["config", "schema"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

/// Dev mode cannot confuse: the dev secret has one place per user, so
/// `authgate token` run in any directory signs with the running dev
/// server's secret; a command that creates it says so; the banner's
/// suggested command, run as printed from an unrelated directory, mints a
/// token that `authgate verify` accepts; `authgate jwks` prints the
/// running dev server's keys (and says when none runs).
#[test]
fn dev_mode_banner_token_and_jwks_agree_with_the_server() {
    use std::io::BufRead;
    // This test's own user: no other test in the binary shares its secret.
    let home = tempfile::tempdir().unwrap();
    let authgate = |dir: &std::path::Path| {
        let mut c = authgate(dir);
        c.env("HOME", home.path());
        c
    };
    let elsewhere = tempfile::tempdir().unwrap();
    let first = authgate(elsewhere.path()).args(["token"]).output().unwrap();
    let secret = home.path().join(".config/authgate/dev-secret");
    assert!(
        String::from_utf8_lossy(&first.stderr)
            .contains(&format!("created a new dev secret at {}", secret.display())),
        "a new secret is announced: {}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(!elsewhere.path().join(".authgate").exists(), "nothing written in the working directory");
    let second = authgate(elsewhere.path()).args(["token"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&second.stderr).contains("created"), "an existing one is used quietly");

    let dir = tempfile::tempdir().unwrap();
    let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let no_server = authgate(dir.path()).args(["--http-addr", &http.to_string(), "jwks"]).output().unwrap();
    assert_eq!(no_server.status.code(), Some(3), "no dev server: says so");
    let mut server = authgate(dir.path())
        .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", &http.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(server.stdout.take().unwrap());
    let (mut suggested, mut grpc) = (None, None);
    for line in stdout.lines().map_while(Result::ok) {
        if let Some(addr) = line.trim_start().strip_prefix("gRPC") {
            grpc = addr.split_whitespace().next().and_then(|a| a.parse::<std::net::SocketAddr>().ok());
        }
        if line.contains(" token ") && line.contains(" verify") {
            suggested = Some(line.trim().to_string());
            break;
        }
    }
    let suggested = suggested.expect("the banner suggests a command");
    // The token minted before the server started, in another directory, is
    // this server's.
    let grpc = grpc.expect("the banner names the gRPC address");
    let minted = String::from_utf8(first.stdout).unwrap().trim().to_string();
    let granted = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut client =
            authgate::pb::auth_service_client::AuthServiceClient::connect(format!("http://{grpc}"))
                .await
                .unwrap();
        client.verify(VerifyRequest { token: minted, ..Default::default() }).await
    });
    // Run exactly as printed, by the same user, from an unrelated directory.
    let mut sh = std::process::Command::new("sh");
    hermetic(&mut sh);
    let unrelated = tempfile::tempdir().unwrap();
    let out =
        sh.arg("-c").arg(&suggested).env("HOME", home.path()).current_dir(unrelated.path()).output().unwrap();
    let jwks_cmd =
        authgate(elsewhere.path()).args(["--http-addr", &http.to_string(), "jwks"]).output().unwrap();
    let served: serde_json::Value = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(http).unwrap();
        s.write_all(b"GET /.well-known/jwks.json HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        serde_json::from_str(raw.split_once("\r\n\r\n").unwrap().1).unwrap()
    };
    let _ = server.kill();
    let _ = server.wait();
    assert!(granted.is_ok(), "the running dev server refused the earlier token: {granted:?}");
    assert!(out.status.success(), "{suggested}: {}", String::from_utf8_lossy(&out.stderr));
    let identity: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(identity["issuer"], "dev");
    assert_eq!(identity["roles"], serde_json::json!(["admin"]));
    assert!(jwks_cmd.status.success(), "{}", String::from_utf8_lossy(&jwks_cmd.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&jwks_cmd.stdout).unwrap();
    assert_eq!(printed, served, "authgate jwks prints what the server serves");
}
