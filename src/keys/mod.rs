//! Key material, parsed once when a generation is built: HMAC keys of
//! shared-secret issuers, public key sets (JWKS or PEM), and authgate's own
//! signing key ring for Exchange.

pub mod hmac;
pub mod public;
pub mod ring;
pub mod tls;

use crate::config::{Config, ConfigErrors, IssuerConfig, IssuerKind, KeySource};
use public::KeySet;
use ring::KeyRing;
use std::sync::Arc;

/// The key material of one config, parsed once when a generation is built
/// (and by `check-config`): what the config holds as text becomes keys
/// here, and every key that does not parse is reported under its config
/// path.
pub struct Material {
    /// The static key set of each issuer, in config order: `Some` for a
    /// `jwks` issuer with `jwks_file` or `public_key_files`.
    pub static_sets: Vec<Option<Arc<KeySet>>>,
    /// The same for `[[caller_issuers]]`.
    pub caller_static_sets: Vec<Option<Arc<KeySet>>>,
    /// Exchange's signing keys, when `[exchange]` is configured.
    pub ring: Option<KeyRing>,
}

impl Material {
    /// Parses every key in `config`; all errors at once.
    pub fn build(config: &Config) -> Result<Self, ConfigErrors> {
        let mut errors = Vec::new();
        let static_sets = parse_static_sets("issuers", &config.issuers, &mut errors);
        let caller_static_sets = parse_static_sets("caller_issuers", &config.caller_issuers, &mut errors);
        let ring = match config.exchange.as_ref().map(KeyRing::new) {
            None => None,
            Some(Ok(ring)) => Some(ring),
            Some(Err(e)) => {
                errors.extend(e);
                None
            }
        };
        if errors.is_empty() {
            Ok(Self { static_sets, caller_static_sets, ring })
        } else {
            Err(ConfigErrors(errors))
        }
    }
}

/// The static key set of each issuer in `issuers` (`list` names them in
/// errors).
fn parse_static_sets(
    list: &str,
    issuers: &[IssuerConfig],
    errors: &mut Vec<String>,
) -> Vec<Option<Arc<KeySet>>> {
    let mut static_sets = Vec::with_capacity(issuers.len());
    for (index, issuer) in issuers.iter().enumerate() {
        let label = format!("{list}[{index}] ({})", issuer.name);
        let set = match &issuer.kind {
            IssuerKind::Jwks(j) => match &j.source {
                KeySource::JwksDocument(doc) => match KeySet::from_jwks(doc.as_bytes(), &j.algorithms) {
                    Ok((set, _)) if !set.is_empty() => Some(Arc::new(set)),
                    Ok(_) => {
                        errors.push(format!("{label}.jwks_file: no usable key"));
                        None
                    }
                    Err(e) => {
                        errors.push(format!("{label}.jwks_file: {e}"));
                        None
                    }
                },
                KeySource::Pems(pems) => match KeySet::from_pems(pems, &j.algorithms) {
                    Ok(set) => Some(Arc::new(set)),
                    Err(e) => {
                        errors.push(format!("{label}.public_key_files: {e}"));
                        None
                    }
                },
                KeySource::Discovery(_) | KeySource::Url(_) => None,
            },
            IssuerKind::Hs256(_) | IssuerKind::NetlifyIdentity(_) => None,
        };
        static_sets.push(set);
    }
    static_sets
}
