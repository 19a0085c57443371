//! Certificates for the TLS tests, made with rcgen.

use std::path::{Path, PathBuf};

/// A CA that signs server and client certificates, written as PEM files.
pub struct Ca {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.key_usages =
            vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
        let key = rcgen::KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { issuer: rcgen::Issuer::new(params, key), pem }
    }

    /// Writes `<name>.pem` and `<name>-key.pem` into `dir`.
    pub fn issue(
        &self,
        dir: &Path,
        name: &str,
        sans: Vec<rcgen::SanType>,
        server: bool,
        expired: bool,
    ) -> (PathBuf, PathBuf) {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = sans;
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.extended_key_usages = vec![if server {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        }];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let (c, k) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}-key.pem")));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    pub fn server(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        use rcgen::SanType;
        let sans = vec![
            SanType::IpAddress("127.0.0.1".parse().unwrap()),
            SanType::DnsName("localhost".try_into().unwrap()),
            SanType::DnsName("authgate.default.svc".try_into().unwrap()),
        ];
        self.issue(dir, name, sans, true, false)
    }

    pub fn client(&self, dir: &Path, name: &str, uri: &str, expired: bool) -> (PathBuf, PathBuf) {
        self.issue(dir, name, vec![rcgen::SanType::URI(uri.try_into().unwrap())], false, expired)
    }

    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, &self.pem).unwrap();
        p
    }
}

/// A config with TLS on both ports and the standard issuers; `extra` goes
/// into `[tls]`.
pub fn tls_config(dir: &Path, cert: &Path, key: &Path, extra: &str) -> PathBuf {
    let cfg = dir.join("authgate.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\n\
             [tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n{extra}\n{}",
            cert.display(),
            key.display(),
            super::standard_config()
                .replace("[server]\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n", "")
        ),
    )
    .unwrap();
    cfg
}
