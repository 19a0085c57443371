//! `[tls]`: TLS on both ports, client certificates, and the rule that a
//! port reachable beyond loopback is not plaintext unless the operator says
//! why (`server.plaintext = "mesh"`).

use super::read::{Reader, Section, parse_duration};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use toml::Table;

/// `cert_file` from the environment (the container image sets it).
pub const ENV_TLS_CERT_FILE: &str = "AUTHGATE_TLS_CERT_FILE";
/// `key_file` from the environment.
pub const ENV_TLS_KEY_FILE: &str = "AUTHGATE_TLS_KEY_FILE";
/// `client_ca_file` from the environment.
pub const ENV_TLS_CLIENT_CA_FILE: &str = "AUTHGATE_TLS_CLIENT_CA_FILE";
/// `server.plaintext` from the environment.
pub const ENV_PLAINTEXT: &str = "AUTHGATE_PLAINTEXT";

/// Whether a port asks callers for a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No certificate is asked for.
    None,
    /// A certificate is asked for and, when sent, must chain to
    /// `client_ca_file`; a caller without one is anonymous.
    Optional,
    /// A caller without a valid certificate is refused: at the handshake
    /// on the gRPC port; on the HTTP port, on forward-auth (health, JWKS and
    /// discovery stay open to probes and verifiers that have none).
    Required,
}

impl ClientAuth {
    fn parse(v: &str) -> Result<Self, String> {
        match v {
            "none" => Ok(Self::None),
            "optional" => Ok(Self::Optional),
            "required" => Ok(Self::Required),
            _ => Err("must be none, optional or required".into()),
        }
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Optional => "optional",
            Self::Required => "required",
        }
    }
}

/// Why a port reachable beyond loopback may be plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plaintext {
    /// Default: plaintext only on loopback addresses.
    Loopback,
    /// A service mesh sidecar encrypts and authenticates the traffic.
    Mesh,
}

impl Plaintext {
    pub(super) fn parse(v: &str) -> Result<Self, String> {
        match v {
            "loopback" => Ok(Self::Loopback),
            "mesh" => Ok(Self::Mesh),
            _ => Err("must be loopback or mesh".into()),
        }
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Loopback => "loopback",
            Self::Mesh => "mesh",
        }
    }
}

/// `[tls]`, present when the section or `AUTHGATE_TLS_CERT_FILE` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// `cert_file` / `AUTHGATE_TLS_CERT_FILE`: PEM certificate chain, leaf
    /// first. Required.
    pub cert_file: PathBuf,
    /// `key_file` / `AUTHGATE_TLS_KEY_FILE`: PEM private key (PKCS#8,
    /// PKCS#1 or SEC1). Required.
    pub key_file: PathBuf,
    /// `client_ca_file` / `AUTHGATE_TLS_CLIENT_CA_FILE`: PEM bundle of the
    /// CAs whose client certificates identify callers. Default none.
    pub client_ca_file: Option<PathBuf>,
    /// `grpc_client_auth`: `none` | `optional` | `required`. Default
    /// `optional` with `client_ca_file`, else `none`.
    pub grpc_client_auth: ClientAuth,
    /// `http_client_auth`: as `grpc_client_auth`, for forward-auth; health,
    /// JWKS and discovery never require a certificate.
    pub http_client_auth: ClientAuth,
    /// `reload_interval`: default 10s. The three files are checked this
    /// often and a changed, valid set is served to new connections
    /// (cert-manager and Kubernetes replace mounted Secrets in place); 0
    /// checks only on SIGHUP. A broken new set is refused and logged; the
    /// served one stays.
    pub reload_interval: Duration,
}

pub(super) fn read_tls(r: &mut Reader<'_>, table: Option<&Table>) -> Option<TlsConfig> {
    let mut s = Section::new("tls", table);
    let path = |v: &str| if v.is_empty() { Err("is empty".to_string()) } else { Ok(PathBuf::from(v)) };
    let cert_file = s.parsed(r, "cert_file", Some(ENV_TLS_CERT_FILE), None, path);
    let key_file = s.parsed(r, "key_file", Some(ENV_TLS_KEY_FILE), None, path);
    let client_ca_file = s.parsed(r, "client_ca_file", Some(ENV_TLS_CLIENT_CA_FILE), None, path);
    let default_auth = if client_ca_file.is_some() { ClientAuth::Optional } else { ClientAuth::None };
    let grpc_client_auth =
        s.parsed(r, "grpc_client_auth", None, None, ClientAuth::parse).unwrap_or(default_auth);
    let http_client_auth =
        s.parsed(r, "http_client_auth", None, None, ClientAuth::parse).unwrap_or(default_auth);
    let reload_interval =
        s.parsed(r, "reload_interval", None, None, parse_duration).unwrap_or(Duration::from_secs(10));
    s.finish(r);
    if table.is_none() && cert_file.is_none() && key_file.is_none() {
        return None;
    }
    if !reload_interval.is_zero() && reload_interval < Duration::from_millis(100) {
        r.errors.push("tls.reload_interval must be 0 (SIGHUP only) or at least 100ms".into());
    }
    for (port, auth) in [("grpc", grpc_client_auth), ("http", http_client_auth)] {
        if auth != ClientAuth::None && client_ca_file.is_none() {
            r.errors.push(format!("tls.{port}_client_auth = \"{}\" needs tls.client_ca_file", auth.as_str()));
        }
    }
    let (Some(cert_file), Some(key_file)) = (cert_file, key_file) else {
        r.errors.push(format!(
            "tls needs both cert_file and key_file (or {ENV_TLS_CERT_FILE} and {ENV_TLS_KEY_FILE})"
        ));
        return None;
    };
    r.files.extend([cert_file.clone(), key_file.clone()]);
    r.files.extend(client_ca_file.clone());
    Some(TlsConfig {
        cert_file,
        key_file,
        client_ca_file,
        grpc_client_auth,
        http_client_auth,
        reload_interval,
    })
}

/// A listening address beyond loopback carries users' tokens in the clear
/// unless TLS is on or the operator names the mesh that protects it.
pub(super) fn check_plaintext(
    r: &mut Reader<'_>,
    tls: Option<&TlsConfig>,
    plaintext: Plaintext,
    addrs: &[(&str, Option<SocketAddr>)],
) {
    if tls.is_some() || plaintext == Plaintext::Mesh {
        return;
    }
    for (key, addr) in addrs.iter().filter_map(|(k, a)| a.map(|a| (k, a))) {
        if !addr.ip().is_loopback() {
            r.errors.push(format!(
                "{key} = {addr} is reachable beyond loopback without TLS: configure [tls] (cert_file, key_file), \
                 or set server.plaintext = \"mesh\" ({ENV_PLAINTEXT}=mesh) when a service mesh encrypts and \
                 authenticates this traffic"
            ));
        }
    }
}
