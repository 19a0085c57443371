//! The TLS certificate, key and client CAs of both ports: parsed into one
//! immutable snapshot per port (rustls `ServerConfig`), swapped whole when
//! the files change, and the caller identity a client certificate carries.
//!
//! A new set of files is used only if all of it parses and the key matches
//! the certificate; otherwise the served snapshot stays and the error is
//! returned for the log. Connections already open keep the snapshot they
//! were accepted with.

use crate::config::{ClientAuth, TlsConfig};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::{Arc, RwLock};

/// The served snapshot of both ports, and the digest of the files it was
/// built from.
struct Snapshot {
    grpc: Arc<ServerConfig>,
    http: Arc<ServerConfig>,
    webhook: Arc<ServerConfig>,
    files_digest: [u8; 32],
}

/// Both ports' TLS configuration, reloadable.
pub struct TlsStore {
    config: TlsConfig,
    current: RwLock<Arc<Snapshot>>,
}

impl TlsStore {
    /// Reads and parses the files named in `config`.
    pub fn load(config: &TlsConfig) -> Result<Self, String> {
        let (bytes, digest) = read_files(config)?;
        let snapshot = build(config, &bytes, digest)?;
        Ok(Self { config: config.clone(), current: RwLock::new(Arc::new(snapshot)) })
    }

    /// The gRPC port's configuration (ALPN `h2`).
    pub fn grpc(&self) -> Arc<ServerConfig> {
        self.snapshot().grpc.clone()
    }

    /// The HTTP port's configuration (ALPN `http/1.1`).
    pub fn http(&self) -> Arc<ServerConfig> {
        self.snapshot().http.clone()
    }

    /// The webhook port's configuration: no client certificate is asked
    /// for (Netlify sends none; the body's signature authenticates it).
    pub fn webhook(&self) -> Arc<ServerConfig> {
        self.snapshot().webhook.clone()
    }

    /// `tls.reload_interval`.
    pub fn reload_interval(&self) -> std::time::Duration {
        self.config.reload_interval
    }

    /// Re-reads the files; `Ok(true)` when a changed, valid set is now
    /// served, `Ok(false)` when nothing changed, `Err` (and the old set
    /// stays) when the new set is broken.
    pub fn reload(&self) -> Result<bool, String> {
        let (bytes, digest) = read_files(&self.config)?;
        if digest == self.snapshot().files_digest {
            return Ok(false);
        }
        let next = build(&self.config, &bytes, digest)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
        Ok(true)
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        // A poisoned lock still holds a whole Arc (the swap cannot panic halfway).
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The files' contents: certificate chain, key, client CAs.
struct Files {
    chain: Vec<u8>,
    key: Vec<u8>,
    client_cas: Option<Vec<u8>>,
}

fn read_files(config: &TlsConfig) -> Result<(Files, [u8; 32]), String> {
    let read = |p: &std::path::Path, what: &str| {
        std::fs::read(p).map_err(|e| format!("tls.{what} {}: cannot read: {e}", p.display()))
    };
    let files = Files {
        chain: read(&config.cert_file, "cert_file")?,
        key: read(&config.key_file, "key_file")?,
        client_cas: config.client_ca_file.as_deref().map(|p| read(p, "client_ca_file")).transpose()?,
    };
    let digest = crate::core::cache::digest(&[
        &files.chain,
        &files.key,
        files.client_cas.as_deref().unwrap_or_default(),
    ]);
    Ok((files, digest))
}

fn build(config: &TlsConfig, files: &Files, files_digest: [u8; 32]) -> Result<Snapshot, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&files.chain)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls.cert_file {}: {e}", config.cert_file.display()))?;
    if chain.is_empty() {
        return Err(format!("tls.cert_file {}: no certificate", config.cert_file.display()));
    }
    let key = PrivateKeyDer::from_pem_slice(&files.key)
        .map_err(|e| format!("tls.key_file {}: {e}", config.key_file.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let roots = match &files.client_cas {
        None => None,
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| format!("tls.client_ca_file: {e}"))?;
                roots.add(cert).map_err(|e| format!("tls.client_ca_file: {e}"))?;
            }
            if roots.is_empty() {
                return Err("tls.client_ca_file: no certificate".into());
            }
            Some(Arc::new(roots))
        }
    };
    // What the handshake demands: `Required` refuses a client without a
    // valid certificate, `Optional` asks and verifies what is sent.
    let port = |handshake: ClientAuth, alpn: &[u8]| -> Result<Arc<ServerConfig>, String> {
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("tls: {e}"))?;
        let builder = match (handshake, &roots) {
            (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
            (ClientAuth::Optional | ClientAuth::Required, Some(roots)) => {
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    roots.clone(),
                    provider.clone(),
                );
                let verifier = if handshake == ClientAuth::Required {
                    verifier.build()
                } else {
                    verifier.allow_unauthenticated().build()
                };
                builder.with_client_cert_verifier(verifier.map_err(|e| format!("tls.client_ca_file: {e}"))?)
            }
        };
        let mut server = builder
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| format!("tls: the key does not fit the certificate, or is unusable: {e}"))?;
        server.alpn_protocols = vec![alpn.to_vec()];
        Ok(Arc::new(server))
    };
    Ok(Snapshot {
        grpc: port(config.grpc_client_auth, b"h2")?,
        // On the HTTP port "required" is enforced per route (health and
        // JWKS stay open), so its handshake only asks.
        http: port(
            match config.http_client_auth {
                ClientAuth::Required => ClientAuth::Optional,
                other => other,
            },
            b"http/1.1",
        )?,
        webhook: port(ClientAuth::None, b"http/1.1")?,
        files_digest,
    })
}

/// The caller a verified client certificate names: its first URI SAN (a
/// SPIFFE ID such as `spiffe://cluster.local/ns/shop/sa/orders`), else its
/// first DNS SAN, else its subject CN. `None` when it names nothing usable.
pub fn certificate_identity(der: &[u8]) -> Option<String> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let names: Vec<GeneralName<'_>> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| san.value.general_names.clone())
        .unwrap_or_default();
    let uri = names.iter().find_map(|n| match n {
        GeneralName::URI(u) => Some(u.to_string()),
        _ => None,
    });
    let dns = || {
        names.iter().find_map(|n| match n {
            GeneralName::DNSName(d) => Some(d.to_string()),
            _ => None,
        })
    };
    let cn = || cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_string);
    uri.or_else(dns).or_else(cn).filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(sans: Vec<rcgen::SanType>, cn: &str) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = sans;
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn identity_prefers_uri_then_dns_then_cn() {
        use rcgen::SanType;
        let spiffe = "spiffe://cluster.local/ns/shop/sa/orders";
        type Case = (&'static str, Vec<SanType>, &'static str, Option<&'static str>);
        let cases: Vec<Case> = vec![
            (
                "URI SAN first",
                vec![
                    SanType::DnsName("orders.shop".try_into().unwrap()),
                    SanType::URI(spiffe.try_into().unwrap()),
                ],
                "cn",
                Some(spiffe),
            ),
            (
                "DNS SAN without a URI",
                vec![SanType::DnsName("envoy.edge".try_into().unwrap())],
                "cn",
                Some("envoy.edge"),
            ),
            ("subject CN without SANs", vec![], "nginx", Some("nginx")),
            ("nothing usable", vec![], "", None),
        ];
        for (description, sans, cn, want) in cases {
            assert_eq!(certificate_identity(&cert(sans, cn)).as_deref(), want, "{description}");
        }
        assert_eq!(certificate_identity(b"not a certificate"), None);
    }
}
