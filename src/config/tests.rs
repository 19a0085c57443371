//! The config reader, against inputs a user writes.

use super::*;
use std::collections::HashMap;
use toml::Table;

fn load(toml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("authgate.toml");
    std::fs::write(&path, toml).unwrap();
    let env: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let lookup = move |k: &str| env.get(k).cloned();
    Config::load(&Inputs {
        config_path: Some(path),
        grpc_addr: None,
        http_addr: None,
        env: &lookup,
        workdir: dir.path().to_path_buf(),
        offline: false,
    })
}

const GOOD: &str = r#"
    [[issuers]]
    name = "netlify"
    secret = "0123456789abcdef0123"
"#;

#[test]
fn defaults() {
    let c = load(GOOD, &[]).unwrap();
    assert_eq!(c.grpc_addr.to_string(), "127.0.0.1:50051");
    assert_eq!(c.http_addr.to_string(), "127.0.0.1:8080");
    assert_eq!(c.max_token_bytes, 16384);
    let i = &c.issuers[0];
    assert_eq!(i.leeway, Duration::from_secs(30));
    assert_eq!(i.role_claims.len(), 2);
    assert!(matches!(&i.kind, IssuerKind::Hs256(h) if !h.allow_system_principal));
}

#[test]
fn env_overrides_file_and_secret_from_file() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("s");
    std::fs::write(&secret, "from-a-mounted-secret-file\n").unwrap();
    let c = load(
        GOOD,
        &[
            ("AUTHGATE_GRPC_ADDR", "127.0.0.1:6000"),
            ("AUTHGATE_ISSUER_NETLIFY_SECRET_FILE", secret.to_str().unwrap()),
        ],
    )
    .unwrap();
    assert_eq!(c.grpc_addr.port(), 6000);
    assert_eq!(c.issuers[0].signing_secret().unwrap().expose(), b"from-a-mounted-secret-file");
}

#[test]
fn every_error_is_reported_at_once() {
    let errs = load(
        r#"
        [server]
        grpc_addr = "nowhere"
        max_token_bytes = 5
        shutdown_grace = "soon"
        typo = 1
        [log]
        format = "xml"
        [[issuers]]
        name = "A B"
        secret = "short"
        leeway = "10m"
        role_claims = ["user_metadata.roles"]
        [[issuers]]
        secret = "0123456789abcdef0123"
        "#,
        &[],
    )
    .unwrap_err();
    let text = errs.to_string();
    for needle in [
        "server.grpc_addr",
        "server.max_token_bytes",
        "server.shutdown_grace",
        "unknown key `server.typo`",
        "log.format",
        "name must match",
        "shorter than 16 bytes",
        "leeway must be at most 300s",
        "user_metadata",
        "issuers[1].name is required",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert!(errs.0.len() >= 10, "{text}");
    assert!(!text.contains("short\""), "a secret value leaked into errors:\n{text}");
}

#[test]
fn jwks_issuer_rules() {
    let errs = load(
        r#"
        [[issuers]]
        name = "a"
        kind = "jwks"
        algorithms = ["HS256", "none"]
        jwks_url = "https://idp.example.com/jwks"
        jwks_file = "/nonexistent"
        [[issuers]]
        name = "c"
        kind = "jwks"
        iss = "https://idp.example.com/"
        audiences = ["api"]
        jwks_url = "http://idp.example.com/jwks"
        [[issuers]]
        name = "b"
        kind = "jwks"
        iss = "http://idp.example.com/"
        audiences = ["api"]
        min_refresh_interval = "2h"
        require_claims = { role = 1 }
        "#,
        &[],
    )
    .unwrap_err()
    .to_string();
    for needle in [
        "issuers[0] (a).iss is required",
        "issuers[0] (a).audiences is required",
        "`HS256` is not accepted",
        "`none` is not accepted",
        "issuers[1] (c).jwks_url: must be https",
        "set one of jwks_url, jwks_file, public_key_files",
        "issuers[2] (b).iss (used for discovery): must be https",
        "min_refresh_interval <= max_refresh_interval",
        "require_claims must be a table of strings",
    ] {
        assert!(errs.contains(needle), "missing {needle:?} in:\n{errs}");
    }
    let ok = load(
        "[[issuers]]\nname = \"auth0\"\nkind = \"jwks\"\niss = \"https://t.auth0.com/\"\naudiences = [\"api\"]\n",
        &[],
    )
    .unwrap();
    let IssuerKind::Jwks(j) = &ok.issuers[0].kind else { panic!("not jwks") };
    assert_eq!(j.source, KeySource::Discovery("https://t.auth0.com/".into()));
    assert_eq!(j.refetch_cooldown, Duration::from_secs(30));
    assert_eq!(
        ok.issuers[0].role_claims.iter().map(ClaimPath::as_dotted).collect::<Vec<_>>(),
        ["roles", "permissions", "scope"]
    );
    assert!(ok.render_redacted().contains("kind = \"jwks\""));
}

#[test]
fn tracing_section_and_standard_variables() {
    let off = load(GOOD, &[]).unwrap();
    assert!(!off.tracing.enabled, "tracing is off by default");
    let by_env = load(GOOD, &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")]).unwrap();
    assert!(by_env.tracing.enabled && by_env.tracing.otlp_endpoint.is_none(), "the SDK reads the variable");
    let json =
        load(GOOD, &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"), ("OTEL_SERVICE_NAME", "edge-auth")])
            .unwrap();
    assert_eq!(
        (json.tracing.protocol, json.tracing.service_name.as_str()),
        (OtlpProtocol::HttpJson, "edge-auth")
    );
    let errs = load(
        &format!("[tracing]\notlp_endpoint = \"ftp://x\"\nprotocol = \"grpc\"\nsample_ratio = 2.5\n{GOOD}"),
        &[],
    )
    .unwrap_err()
    .to_string();
    for needle in ["tracing.otlp_endpoint", "gRPC export is not built in", "tracing.sample_ratio"] {
        assert!(errs.contains(needle), "missing {needle:?} in:\n{errs}");
    }
    let on =
        load(&format!("[tracing]\notlp_endpoint = \"http://c:4318/\"\nsample_ratio = 0.25\n{GOOD}"), &[])
            .unwrap();
    assert_eq!(on.tracing.otlp_endpoint.as_deref(), Some("http://c:4318"));
    assert_eq!(on.tracing.sample_ratio, 0.25);
}

#[test]
fn edge_section_errors() {
    let base = "[[issuers]]\nname = \"a\"\nsecret = \"0123456789abcdef0123\"\n";
    let errs = load(
        &format!(
            "[edge]\nissuer = \"nope\"\nsigned_proxy = \"required\"\nexchange_audience = \"x\"\n\
             subject_header = \"authorization\"\nemail_header = \"bad header\"\n\
             roles_header = \"x-authgate-issuer\"\ncolour = 1\n\
             [edge.routes.Admin]\nroles = [\"admin\"]\n[edge.routes.ok]\nsigned_proxy = \"Required\"\nrole = \"x\"\n{base}"
        ),
        &[],
    )
    .unwrap_err()
    .to_string();
    for needle in [
        "edge.issuer `nope`",
        "no [signed_proxy] secret",
        "edge.exchange_audience `x`",
        "edge.subject_header `authorization`",
        "edge.email_header `bad header`",
        "must differ",
        "unknown key `edge.colour`",
        "edge.routes.Admin: a route name",
        "edge.routes.ok.signed_proxy: must be `required` or `optional`",
        "unknown key `edge.routes.ok.role`",
    ] {
        assert!(errs.contains(needle), "missing {needle:?} in:\n{errs}");
    }
    let ok = load(
        &format!("[edge]\nissuer = \"a\"\nroles = [\"admin\"]\nsubject_header = \"X-User\"\n{base}"),
        &[],
    )
    .unwrap();
    assert_eq!((ok.edge.default.issuer.as_deref(), ok.edge.headers.subject.as_str()), (Some("a"), "x-user"));
    assert_eq!(ok.edge.default.remove_headers, ["authorization"]);
    let routed = load(
        &format!(
            "[edge]\nroles = [\"member\"]\nissuer = \"a\"\n[edge.routes.admin]\nroles = [\"admin\"]\n{base}"
        ),
        &[],
    )
    .unwrap();
    let admin = &routed.edge.routes["admin"];
    assert_eq!((admin.roles.as_slice(), admin.issuer.as_deref()), (&["admin".to_string()][..], Some("a")));
}

#[test]
fn log_filters() {
    for (description, level, ok) in [
        ("a level", "debug", true),
        ("a level in capitals", "WARN", true),
        ("directives", "warn,authgate::app=info", true),
        ("a word that is no level", "verbose", false),
        ("a misspelt level among directives", "warn,inf", false),
    ] {
        let got = load(&format!("[log]\nlevel = \"{level}\"\n{GOOD}"), &[]);
        assert_eq!(got.is_ok(), ok, "{description}: {got:?}");
    }
    let env = load(GOOD, &[("AUTHGATE_LOG_LEVEL", "verbose")]).unwrap_err().to_string();
    assert!(env.contains("AUTHGATE_LOG_LEVEL") && env.contains("`verbose` is not a level"), "{env}");
}

#[test]
fn signed_proxy_section() {
    let needs = GOOD.replace("secret = ", "require_signed_proxy = true\nsecret = ");
    let errs = load(&needs, &[]).unwrap_err().to_string();
    assert!(errs.contains("no [signed_proxy] secret"), "{errs}");
    let c = load(&needs, &[("AUTHGATE_SIGNED_PROXY_SECRET", "proxy-secret-from-env-0123")]).unwrap();
    let p = c.signed_proxy.expect("configured by the env variable alone");
    assert_eq!(p.max_lifetime, Duration::from_secs(330));
    assert!(!p.replay_protection);
    let errs =
        load(&format!("[signed_proxy]\nmax_lifetime = \"2h\"\nsite_idz = []\n{GOOD}"), &[]).unwrap_err();
    let text = errs.to_string();
    for needle in ["max_lifetime", "unknown key `signed_proxy.site_idz`", "needs a secret"] {
        assert!(text.contains(needle), "missing {needle}: {text}");
    }
}

#[test]
fn no_issuer_is_invented_with_a_file() {
    let errs = load("", &[]).unwrap_err();
    assert!(errs.to_string().contains("no [[issuers]]"));
}

#[test]
fn redacted_render_has_no_secret() {
    let c = load(GOOD, &[("AUTHGATE_ISSUER_NETLIFY_PREVIOUS_SECRET", "previous-secret-value-xyz")]).unwrap();
    let out = c.render_redacted();
    assert!(!out.contains("0123456789abcdef0123") && !out.contains("previous-secret-value-xyz"), "{out}");
    assert!(out.contains("[redacted: 20 bytes]"), "{out}");
    assert!(!format!("{c:?}").contains("0123456789abcdef0123"));
    out.parse::<Table>().expect("rendered config is TOML");
}

#[test]
fn dev_mode_creates_and_reuses_its_secret() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let home_env = |k: &str| (k == "HOME").then(|| home.display().to_string());
    let inputs = Inputs {
        config_path: None,
        grpc_addr: None,
        http_addr: None,
        env: &home_env,
        workdir: dir.path().join("work"),
        offline: false,
    };
    let path = dev_secret_path(inputs.env, &inputs.workdir);
    assert_eq!(path, home.join(".config/authgate/dev-secret"));
    // Loading has no side effects: without the file, it says how to get one.
    let missing = Config::load(&inputs).unwrap_err().to_string();
    assert!(missing.contains("AUTHGATE_DEV_SECRET") && missing.contains("dev-secret"), "{missing}");
    assert!(!home.exists());
    assert!(create_dev_secret(&path).unwrap(), "created now");
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!((mode(&path), mode(path.parent().unwrap())), (0o600, 0o700));
    let a = Config::load(&inputs).unwrap();
    assert!(!create_dev_secret(&path).unwrap(), "an existing secret is kept");
    let b = Config::load(&inputs).unwrap();
    assert_eq!(a.issuers[0].name, "dev");
    assert_eq!(a.issuers[0].signing_secret(), b.issuers[0].signing_secret());
    assert!(!inputs.workdir.exists(), "nothing written under the working directory");
}

#[test]
fn the_dev_secret_has_one_place_per_user() {
    let work = std::path::Path::new("/srv/app");
    type Vars = &'static [(&'static str, &'static str)];
    let cases: [(&str, Vars, &str); 5] = [
        (
            "XDG_CONFIG_HOME wins",
            &[("XDG_CONFIG_HOME", "/x/cfg"), ("HOME", "/home/u")],
            "/x/cfg/authgate/dev-secret",
        ),
        ("else HOME/.config", &[("HOME", "/home/u")], "/home/u/.config/authgate/dev-secret"),
        (
            "a relative XDG_CONFIG_HOME is ignored",
            &[("XDG_CONFIG_HOME", "cfg"), ("HOME", "/home/u")],
            "/home/u/.config/authgate/dev-secret",
        ),
        ("an empty HOME is no home", &[("HOME", "")], "/srv/app/.authgate/dev-secret"),
        ("no home at all: the working directory", &[], "/srv/app/.authgate/dev-secret"),
    ];
    for (what, vars, want) in cases {
        let env = |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
        assert_eq!(dev_secret_path(&env, work), std::path::PathBuf::from(want), "{what}");
    }
}
