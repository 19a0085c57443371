//! What several targets share: a validated config from TOML text.

/// Loads `toml` as authgate would from a file in a fresh temporary folder
/// (empty environment).
pub fn load_config(
    toml: &[u8],
    tag: &str,
) -> Result<authgate::config::Config, authgate::config::ConfigErrors> {
    let dir = std::env::temp_dir().join(format!("authgate-fuzz-{tag}-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("authgate.toml");
    if let Err(e) = std::fs::write(&path, toml) {
        return Err(authgate::config::ConfigErrors(vec![e.to_string()]));
    }
    let env = |_: &str| None;
    authgate::config::Config::load(&authgate::config::Inputs {
        config_path: Some(path),
        grpc_addr: None,
        http_addr: None,
        env: &env,
        workdir: dir,
        offline: false,
    })
}
