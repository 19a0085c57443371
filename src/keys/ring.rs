//! authgate's own signing keys and the tokens it mints for Exchange.
//!
//! A [`KeyRing`] is built once from config: every key parsed, its public JWK
//! derived, exactly one *active* key signing. *Next* keys are published
//! before they sign (verifiers learn them first); *retired* keys stay
//! published so the tokens they signed keep verifying until they expire.
//! The JWKS document is rendered once; it never holds private material.

use crate::config::{ExchangeConfig, KeyState, MintAlg, Secret, SigningKeyConfig};
use crate::core::error::AuthError;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde::Serialize;

fn jwt_alg(alg: MintAlg) -> Algorithm {
    match alg {
        MintAlg::EdDSA => Algorithm::EdDSA,
        MintAlg::ES256 => Algorithm::ES256,
        MintAlg::RS256 => Algorithm::RS256,
    }
}

fn encoding_key(pem: &Secret, alg: MintAlg) -> Result<EncodingKey, String> {
    let pem = pem.expose();
    match alg {
        MintAlg::EdDSA => EncodingKey::from_ed_pem(pem),
        MintAlg::ES256 => EncodingKey::from_ec_pem(pem),
        MintAlg::RS256 => EncodingKey::from_rsa_pem(pem),
    }
    .map_err(|_| format!("private key is not a PKCS#8 PEM {} key", alg.as_str()))
}

/// The public JWK of a private key, as JSON, with `kid`, `alg` and `use`.
/// Ed25519 and P-256 public keys are derived with aws-lc-rs from the PKCS#8
/// document; RSA with jsonwebtoken. Only public members are ever written.
fn public_jwk(pem: &Secret, key: &EncodingKey, alg: MintAlg, kid: &str) -> Result<serde_json::Value, String> {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let der = || {
        pem::parse(pem.expose()).map(|p| p.into_contents()).map_err(|_| "private key is not PEM".to_string())
    };
    let mut jwk = match alg {
        MintAlg::EdDSA => {
            let pair = Ed25519KeyPair::from_pkcs8(&der()?).map_err(|_| "not a PKCS#8 Ed25519 key")?;
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())})
        }
        MintAlg::ES256 => {
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der()?)
                .map_err(|_| "not a PKCS#8 P-256 key")?;
            // Uncompressed point: 0x04 || x (32) || y (32).
            let point = pair.public_key().as_ref();
            if point.len() != 65 || point[0] != 4 {
                return Err("unexpected P-256 public key encoding".into());
            }
            serde_json::json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])})
        }
        MintAlg::RS256 => {
            let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(key, jwt_alg(alg))
                .map_err(|_| "cannot derive the public key of the RSA key")?;
            let jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) = jwk.algorithm else {
                return Err("not an RSA key".into());
            };
            serde_json::json!({"kty": "RSA", "n": rsa.n, "e": rsa.e})
        }
    };
    jwk["kid"] = kid.into();
    jwk["alg"] = alg.as_str().into();
    jwk["use"] = "sig".into();
    Ok(jwk)
}

/// A new private key as PKCS#8 PEM (`authgate keys generate`).
pub fn generate_pkcs8_pem(alg: MintAlg) -> Result<String, String> {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
    let rng = SystemRandom::new();
    let der: Vec<u8> = match alg {
        // v1 (RFC 5208): OpenSSL 3 and Python's cryptography refuse the v2
        // document aws-lc-rs writes by default; authgate reads either.
        MintAlg::EdDSA => {
            Ed25519KeyPair::generate_pkcs8v1(&rng).map_err(|e| e.to_string())?.as_ref().to_vec()
        }
        MintAlg::ES256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|e| e.to_string())?
            .as_ref()
            .to_vec(),
        MintAlg::RS256 => {
            use aws_lc_rs::encoding::AsDer;
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|e| e.to_string())?;
            pair.as_der().map_err(|e| e.to_string())?.as_ref().to_vec()
        }
    };
    Ok(pem::encode(&pem::Pem::new("PRIVATE KEY", der)))
}

/// One key of the ring.
struct RingKey {
    kid: String,
    alg: MintAlg,
    state: KeyState,
    signer: Signer,
    /// `BASE64URL({"alg":…,"typ":"JWT","kid":…}) "."`, rendered once.
    header_prefix: String,
    decoding: jsonwebtoken::DecodingKey,
    /// How a token this key signed is checked when it comes back as an
    /// Exchange actor token: this alg, our `iss`, `exp`/`iss`/`sub` required.
    validation: jsonwebtoken::Validation,
}

impl RingKey {
    /// Parses one configured key (generating it when it has no PEM) and
    /// returns it with its public JWK.
    fn build(k: &SigningKeyConfig, config: &ExchangeConfig) -> Result<(Self, serde_json::Value), String> {
        let generated;
        let pem = match &k.private_key {
            Some(pem) => pem,
            None => {
                generated = Secret::new(generate_pkcs8_pem(k.alg)?.into_bytes());
                &generated
            }
        };
        let encoding = encoding_key(pem, k.alg)?;
        let jwk = public_jwk(pem, &encoding, k.alg, &k.kid)?;
        let signer = Signer::new(pem, k.alg)?;
        let header = serde_json::json!({"alg": k.alg.as_str(), "typ": "JWT", "kid": k.kid});
        let header_prefix = format!("{}.", b64url(header.to_string().as_bytes()));
        let decoding = serde_json::from_value::<jsonwebtoken::jwk::Jwk>(jwk.clone())
            .ok()
            .and_then(|j| jsonwebtoken::DecodingKey::from_jwk(&j).ok())
            .ok_or("cannot build a verification key from the public JWK")?;
        // An actor token is one authgate minted for one of its audiences,
        // checked with authgate's own leeway (the library's default is 60 s).
        let mut validation = jsonwebtoken::Validation::new(jwt_alg(k.alg));
        validation.set_issuer(&[&config.issuer_url]);
        let audiences: Vec<&str> = config.audiences.iter().map(|a| a.name.as_str()).collect();
        validation.set_audience(&audiences);
        validation.leeway = config.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        let key = Self {
            kid: k.kid.clone(),
            alg: k.alg,
            state: k.state,
            signer,
            header_prefix,
            decoding,
            validation,
        };
        Ok((key, jwk))
    }
}

/// A private key parsed once at load time. (jsonwebtoken would re-parse
/// the PKCS#8 document on every `encode`.)
enum Signer {
    Ed25519(aws_lc_rs::signature::Ed25519KeyPair),
    Ecdsa(aws_lc_rs::signature::EcdsaKeyPair),
    Rsa(aws_lc_rs::rsa::KeyPair),
}

impl Signer {
    fn new(pem: &Secret, alg: MintAlg) -> Result<Self, String> {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
        let der = pem::parse(pem.expose()).map_err(|_| "private key is not PEM")?.into_contents();
        let bad = |_| format!("private key is not a PKCS#8 {} key", alg.as_str());
        Ok(match alg {
            MintAlg::EdDSA => Self::Ed25519(Ed25519KeyPair::from_pkcs8(&der).map_err(bad)?),
            MintAlg::ES256 => {
                Self::Ecdsa(EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der).map_err(bad)?)
            }
            MintAlg::RS256 => Self::Rsa(aws_lc_rs::rsa::KeyPair::from_pkcs8(&der).map_err(bad)?),
        })
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, AuthError> {
        let failed = |_| AuthError::Internal("signing failed");
        match self {
            Self::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
            Self::Ecdsa(k) => {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                Ok(k.sign(&rng, message).map_err(failed)?.as_ref().to_vec())
            }
            Self::Rsa(k) => {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&aws_lc_rs::signature::RSA_PKCS1_SHA256, &rng, message, &mut sig).map_err(failed)?;
                Ok(sig)
            }
        }
    }
}

/// The signing keys, built once at load time.
pub struct KeyRing {
    keys: Vec<RingKey>,
    active: usize,
    jwks: String,
}

impl KeyRing {
    /// Parses every key once and renders the JWKS; a key without a PEM
    /// (dev mode) is generated now and dies with the process. Every bad key
    /// is reported, each under its config path.
    pub fn new(config: &ExchangeConfig) -> Result<Self, Vec<String>> {
        let mut keys = Vec::new();
        let mut published = Vec::new();
        let mut errors = Vec::new();
        for (index, k) in config.keys.iter().enumerate() {
            match RingKey::build(k, config) {
                Ok((key, jwk)) => {
                    keys.push(key);
                    published.push(jwk);
                }
                Err(e) => errors.push(format!("exchange.keys[{index}] ({}): {e}", k.kid)),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let active = keys
            .iter()
            .position(|k| k.state == KeyState::Active)
            .ok_or_else(|| vec!["exchange.keys: no active key".to_string()])?;
        let jwks = serde_json::json!({ "keys": published }).to_string();
        Ok(Self { keys, active, jwks })
    }
    /// The `kid` of the key that signs now.
    pub fn active_kid(&self) -> &str {
        &self.keys[self.active].kid
    }

    /// The algorithms of every published key.
    pub fn algorithms(&self) -> Vec<&'static str> {
        let mut algs: Vec<&'static str> = self.keys.iter().map(|k| k.alg.as_str()).collect();
        algs.sort_unstable();
        algs.dedup();
        algs
    }

    /// `{"keys": [...]}` with the public keys of next, active and retired keys.
    pub fn jwks_json(&self) -> &str {
        &self.jwks
    }

    /// The verification key and rules of a published key, built at load.
    pub fn verifier(&self, kid: &str) -> Option<(&jsonwebtoken::DecodingKey, &jsonwebtoken::Validation)> {
        self.keys.iter().find(|k| k.kid == kid).map(|k| (&k.decoding, &k.validation))
    }

    /// Signs `claims` with the active key: a compact JWS with the header
    /// `{"alg", "typ": "JWT", "kid"}`.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, AuthError> {
        let key = &self.keys[self.active];
        let payload =
            serde_json::to_vec(claims).map_err(|_| AuthError::Internal("claims do not serialise"))?;
        let mut jws = String::with_capacity(key.header_prefix.len() + payload.len() * 4 / 3 + 400);
        jws.push_str(&key.header_prefix);
        jws.push_str(&b64url(&payload));
        let signature = key.signer.sign(jws.as_bytes())?;
        jws.push('.');
        jws.push_str(&b64url(&signature));
        Ok(jws)
    }
}

/// The `act` claim of a delegated token (RFC 8693 §4.1).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Actor {
    /// The acting party's subject.
    pub sub: String,
}

/// The claims of a minted token. Typed: nothing is templated.
#[derive(Debug, Clone, Serialize)]
pub struct MintedClaims {
    /// authgate's configured issuer URL.
    pub iss: String,
    /// The user's subject.
    pub sub: String,
    /// The downstream service.
    pub aud: String,
    /// Issued at.
    pub iat: i64,
    /// Not before (= `iat`).
    pub nbf: i64,
    /// Expiry.
    pub exp: i64,
    /// Random, unique.
    pub jti: String,
    /// The user's email, when known.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub email: String,
    /// The user's roles.
    pub roles: Vec<String>,
    /// Granted scopes, space-delimited.
    pub scope: String,
    /// The configured issuer that verified the user.
    pub idp: String,
    /// The acting party, when delegated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    /// The calling service, when its certificate names a `[[callers]]`
    /// entry (RFC 9068 `client_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The same calling service (the party the token was issued to).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    /// The app's claims (user store) under `exchange.claims_namespace`:
    /// one member, or none.
    #[serde(flatten)]
    pub app: serde_json::Map<String, serde_json::Value>,
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A random `jti`: 128 bits, base64url.
pub fn new_jti() -> String {
    let raw: [u8; 16] = rand::random();
    b64url(&raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(keys: Vec<(MintAlg, Option<Secret>)>) -> crate::config::ExchangeConfig {
        crate::config::ExchangeConfig {
            issuer_url: "https://a".into(),
            public_base_url: "https://a".into(),
            jwks_max_age: std::time::Duration::from_secs(1),
            mint_cache_max_entries: 0,
            mint_cache_min_remaining: 0.5,
            keys: keys
                .into_iter()
                .enumerate()
                .map(|(i, (alg, private_key))| crate::config::SigningKeyConfig {
                    kid: format!("k{}", i + 1),
                    alg,
                    state: if i == 0 { KeyState::Active } else { KeyState::Next },
                    private_key,
                })
                .collect(),
            audiences: vec![],
            leeway: std::time::Duration::from_secs(30),
            claims_namespace: None,
        }
    }

    #[test]
    fn generated_keys_parse_and_publish_no_private_material() {
        for alg in [MintAlg::EdDSA, MintAlg::ES256, MintAlg::RS256] {
            let text = generate_pkcs8_pem(alg).unwrap();
            // PrivateKeyInfo version 0 (PKCS#8 v1), which every tool reads.
            let der = pem::parse(&text).unwrap().into_contents();
            let header = 2 + (der[1] & 0x80 != 0) as usize * (der[1] & 0x7f) as usize;
            assert!(der[header..].starts_with(&[0x02, 0x01, 0x00]), "{alg:?}");
            let pem = Secret::new(text.into_bytes());
            let jwk = public_jwk(&pem, &encoding_key(&pem, alg).unwrap(), alg, "k1").unwrap();
            assert_eq!(jwk["kid"], "k1");
            assert_eq!(jwk["use"], "sig");
            assert_eq!(jwk["alg"], alg.as_str());
            for private in ["d", "p", "q", "dp", "dq", "qi", "k", "oth"] {
                assert!(jwk.get(private).is_none(), "{jwk}");
            }
            // The published key verifies what the private key signs.
            let ring = KeyRing::new(&exchange(vec![(alg, Some(pem.clone()))])).unwrap();
            let token = ring
                .sign(&serde_json::json!({"sub": "x", "iss": "https://a", "exp": 4_102_444_799_i64}))
                .unwrap();
            let (key, validation) = ring.verifier("k1").unwrap();
            let mut validation = validation.clone();
            validation.validate_aud = false;
            validation.set_required_spec_claims(&["exp"]);
            jsonwebtoken::decode::<serde_json::Value>(&token, key, &validation).unwrap();
        }
    }

    #[test]
    fn every_bad_key_is_reported_under_its_path() {
        let pem = Secret::new(generate_pkcs8_pem(MintAlg::EdDSA).unwrap().into_bytes());
        let Err(errors) = KeyRing::new(&exchange(vec![
            (MintAlg::ES256, Some(pem.clone())),
            (MintAlg::EdDSA, Some(Secret::new(b"not a pem at all, really".to_vec()))),
            (MintAlg::EdDSA, Some(pem)),
        ])) else {
            panic!("bad keys accepted")
        };
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with("exchange.keys[0] (k1): private key is not a PKCS#8 PEM ES256 key"),
            "{errors:?}"
        );
        assert!(
            errors[1].starts_with("exchange.keys[1] (k2): private key is not a PKCS#8 PEM EdDSA key"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_key_without_pem_is_generated_once_per_ring() {
        let ring = KeyRing::new(&exchange(vec![(MintAlg::EdDSA, None)])).unwrap();
        let again = KeyRing::new(&exchange(vec![(MintAlg::EdDSA, None)])).unwrap();
        assert_eq!(ring.active_kid(), "k1");
        assert_ne!(ring.jwks_json(), again.jwks_json());
    }
}
