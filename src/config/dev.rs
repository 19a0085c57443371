//! The zero-config dev mode: one GoTrue-shaped `dev` issuer and a `dev`
//! Exchange audience.

use super::read::read_secret_file;
use super::{
    AudienceConfig, ClaimPath, DEFAULT_LEEWAY, DEFAULT_ROLE_CLAIMS, DEV_ISSUER, DEV_SECRET_PATH,
    ENV_DEV_SECRET, ExchangeConfig, Hs256Settings, Inputs, IssuerConfig, IssuerKind, KeyState,
    MIN_SECRET_BYTES, MintAlg, Secret, SigningKeyConfig,
};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The dev-mode exchange: a fresh Ed25519 key per start (tokens die with the
/// process) and one audience, `dev`, with scopes `read` (default) and `write`.
pub(super) fn dev_exchange(http_addr: SocketAddr) -> Option<ExchangeConfig> {
    let url = format!("http://{http_addr}");
    Some(ExchangeConfig {
        issuer_url: url.clone(),
        public_base_url: url,
        jwks_max_age: Duration::from_secs(300),
        mint_cache_max_entries: 10_000,
        mint_cache_min_remaining: 0.5,
        keys: vec![SigningKeyConfig {
            kid: "dev-ephemeral".into(),
            alg: MintAlg::EdDSA,
            state: KeyState::Active,
            private_key: None,
        }],
        audiences: vec![AudienceConfig {
            name: "dev".into(),
            scopes: vec!["read".into(), "write".into()],
            default_scopes: vec!["read".into()],
            role_scopes: Vec::new(),
            max_ttl: Duration::from_secs(300),
            issuers: Vec::new(),
            required_roles: Vec::new(),
            allow_ttl_beyond_subject: false,
            callers: Vec::new(),
        }],
        leeway: DEFAULT_LEEWAY,
        claims_namespace: None,
    })
}

/// The zero-config issuer: GoTrue-shaped HS256, secret from
/// `AUTHGATE_DEV_SECRET`, else the per-user file of [`dev_secret_path`]
/// (created once).
pub(super) fn dev_issuer(inputs: &Inputs<'_>) -> Result<(IssuerConfig, String), String> {
    let (secret, origin) = dev_secret(inputs)?;
    let issuer = IssuerConfig {
        name: DEV_ISSUER.to_string(),
        kind: IssuerKind::Hs256(Hs256Settings {
            secret,
            previous_secret: None,
            allow_system_principal: false,
        }),
        leeway: DEFAULT_LEEWAY,
        audiences: Vec::new(),
        expected_iss: None,
        // infallible: the default paths are valid (tested in claims).
        role_claims: DEFAULT_ROLE_CLAIMS.iter().filter_map(|p| ClaimPath::parse(p).ok()).collect(),
        default: true,
        require_signed_proxy: false,
        store: super::IssuerStoreConfig::default(),
    };
    Ok((issuer, origin))
}

/// The dev secret and where it came from: `AUTHGATE_DEV_SECRET`, else the
/// file [`create_dev_secret`] wrote. Reading only: loading config has no
/// side effects.
fn dev_secret(inputs: &Inputs<'_>) -> Result<(Secret, String), String> {
    if let Some(v) = (inputs.env)(ENV_DEV_SECRET) {
        if v.len() < MIN_SECRET_BYTES {
            return Err(format!("{ENV_DEV_SECRET} is shorter than {MIN_SECRET_BYTES} bytes"));
        }
        return Ok((Secret::new(v.into_bytes()), ENV_DEV_SECRET.to_string()));
    }
    let path = dev_secret_path(inputs.env, &inputs.workdir);
    let origin = path.display().to_string();
    if !path.exists() && inputs.offline {
        return Ok((Secret::new(b"[offline: no dev secret read]".to_vec()), origin));
    }
    if !path.exists() {
        return Err(format!(
            "zero-config mode needs a dev secret: set {ENV_DEV_SECRET}, or let `authgate serve` or `authgate token` create {origin}"
        ));
    }
    let bytes = read_secret_file(&path)?;
    if bytes.len() < MIN_SECRET_BYTES {
        return Err(format!("{origin} is shorter than {MIN_SECRET_BYTES} bytes"));
    }
    Ok((Secret::new(bytes), origin))
}

/// The one place a user's dev secret lives, whatever directory a command
/// runs in, so that `authgate token` in one terminal and the dev server in
/// another agree: `$XDG_CONFIG_HOME/authgate/dev-secret`, else
/// `$HOME/.config/authgate/dev-secret`; only a process without a home
/// (some containers) falls back to `<workdir>/.authgate/dev-secret`.
/// Relative values are ignored, as the XDG specification says.
pub fn dev_secret_path(env: &dyn Fn(&str) -> Option<String>, workdir: &Path) -> PathBuf {
    let absolute = |name: &str| env(name).map(PathBuf::from).filter(|p| p.is_absolute());
    match (absolute("XDG_CONFIG_HOME"), absolute("HOME")) {
        (Some(config), _) => config.join(DEV_SECRET_PATH),
        (None, Some(home)) => home.join(".config").join(DEV_SECRET_PATH),
        (None, None) => workdir.join(".authgate/dev-secret"),
    }
}

/// Creates the file at `path` (mode 0600 in a 0700 directory, 32 random
/// bytes) unless it exists, so that `authgate token` and the server agree
/// on the dev issuer's secret. The command line calls it before loading a
/// zero-config setup without `AUTHGATE_DEV_SECRET`.
/// `Ok(true)` when it was created now.
pub fn create_dev_secret(path: &Path) -> Result<bool, String> {
    if path.exists() {
        return Ok(false);
    }
    use base64::Engine;
    let raw: [u8; 32] = rand::random();
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    match write_private(path, text.as_bytes()) {
        // Another process created it first: theirs is the secret.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        other => other.map(|()| true).map_err(|e| format!("cannot create {}: {e}", path.display())),
    }
}
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::DirBuilderExt;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        // Only directories created now get 0700; an existing ~/.config keeps its mode.
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(bytes)
}
