//! Public verification keys of a JWKS issuer: an immutable [`KeySet`] built
//! once from a JWKS document (or PEM files) and swapped whole.
//!
//! Every key is parsed by aws-lc-rs into a [`ParsedPublicKey`] when the set
//! is built, so a request never parses key material. A key's usable
//! algorithms are the configured ones intersected with what the JWK itself
//! says (`alg` when present, else its `kty`/`crv`): the token header alone
//! never chooses. `kty: oct` entries (self-hosted Supabase publishes its
//! shared secret in its JWKS) and keys marked `use` other than `sig` are
//! skipped, as is anything unparseable, each with a reason for the log.

use crate::config::JwsAlg;
use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use std::time::Instant;

/// The verification algorithm of an accepted JOSE `alg`.
fn verification(alg: JwsAlg) -> &'static dyn VerificationAlgorithm {
    match alg {
        JwsAlg::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        JwsAlg::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        JwsAlg::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
        JwsAlg::EdDSA => &signature::ED25519,
    }
}

/// One usable (key, algorithm) pair. A JWK without `alg` whose type fits
/// two allowed algorithms (RSA: RS256 and PS256) yields two entries.
pub struct PublicKey {
    /// `kid`, if the JWK had one.
    pub kid: Option<String>,
    /// The one algorithm this entry verifies.
    pub alg: JwsAlg,
    key: ParsedPublicKey,
}

impl PublicKey {
    /// True when `signature` over `message` verifies with this key.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        self.key.verify_sig(message, signature).is_ok()
    }
}

/// What looking a token's key up found.
pub enum Lookup<'k> {
    /// Candidates to try, in order (one when the token has a known `kid`).
    Keys(Vec<&'k PublicKey>),
    /// The `kid` is in the set, but not for the token's algorithm.
    AlgorithmMismatch,
    /// No key with this `kid` (or, without a kid, of this algorithm).
    Unknown,
}

/// Longest list of keys a token without `kid` is tried against.
pub const MAX_KIDLESS_CANDIDATES: usize = 4;

/// An immutable snapshot of one issuer's keys.
pub struct KeySet {
    keys: Vec<PublicKey>,
    /// When the document it was built from was fetched (or read).
    pub loaded_at: Instant,
    /// Identifies the document's content: equal documents, equal values.
    pub fingerprint: u64,
}

fn fingerprint(parts: &[&[u8]]) -> u64 {
    let digest = crate::core::cache::digest(parts);
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(out)
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<String> = self
            .keys
            .iter()
            .map(|k| format!("{}:{}", k.kid.as_deref().unwrap_or("-"), k.alg.as_str()))
            .collect();
        f.debug_struct("KeySet").field("keys", &kids).finish()
    }
}

#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
}

impl KeySet {
    /// Builds a set from a JWKS document. Returns the set and one line per
    /// skipped key; the caller decides whether an empty set is acceptable
    /// (it never replaces a good one).
    pub fn from_jwks(document: &[u8], allowed: &[JwsAlg]) -> Result<(KeySet, Vec<String>), String> {
        let doc: JwksDocument =
            serde_json::from_slice(document).map_err(|e| format!("not a JWKS document: {e}"))?;
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for (i, raw) in doc.keys.into_iter().enumerate() {
            let jwk: Jwk = match serde_json::from_value(raw) {
                Ok(j) => j,
                Err(e) => {
                    skipped.push(format!("keys[{i}]: not a JWK ({e})"));
                    continue;
                }
            };
            let label = format!("keys[{i}] (kid {})", jwk.kid.as_deref().unwrap_or("-"));
            match parse_jwk(&jwk, allowed) {
                Ok(entries) if entries.is_empty() => {
                    skipped.push(format!("{label}: no allowed algorithm fits this key"))
                }
                Ok(entries) => keys.extend(entries),
                Err(why) => skipped.push(format!("{label}: {why}")),
            }
        }
        Ok((KeySet { keys, loaded_at: Instant::now(), fingerprint: fingerprint(&[document]) }, skipped))
    }

    /// Builds a set from SubjectPublicKeyInfo PEM documents, each with the
    /// `kid` it is published under (a file's stem). The algorithm follows
    /// from the key type.
    pub fn from_pems(pems: &[(String, String)], allowed: &[JwsAlg]) -> Result<KeySet, String> {
        let mut keys = Vec::new();
        for (kid, text) in pems {
            let der = pem::parse(text).map_err(|e| format!("{kid}: not PEM: {e}"))?;
            if der.tag() != "PUBLIC KEY" {
                return Err(format!("{kid}: expected a `PUBLIC KEY` PEM block, found `{}`", der.tag()));
            }
            let mut found = false;
            for alg in allowed {
                if let Ok(key) = ParsedPublicKey::new(verification(*alg), der.contents()) {
                    keys.push(PublicKey { kid: Some(kid.clone()), alg: *alg, key });
                    found = true;
                }
            }
            if !found {
                return Err(format!("{kid}: not a public key of an allowed algorithm"));
            }
        }
        let parts: Vec<&[u8]> = pems.iter().flat_map(|(k, t)| [k.as_bytes(), t.as_bytes()]).collect();
        Ok(KeySet { keys, loaded_at: Instant::now(), fingerprint: fingerprint(&parts) })
    }

    /// Number of (key, algorithm) entries.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is usable.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys a token with this `kid` (or none) and `alg` may be checked
    /// against.
    pub fn lookup(&self, kid: Option<&str>, alg: JwsAlg) -> Lookup<'_> {
        match kid {
            Some(kid) => {
                let mut with_kid = self.keys.iter().filter(|k| k.kid.as_deref() == Some(kid)).peekable();
                if with_kid.peek().is_none() {
                    return Lookup::Unknown;
                }
                match with_kid.find(|k| k.alg == alg) {
                    Some(k) => Lookup::Keys(vec![k]),
                    None => Lookup::AlgorithmMismatch,
                }
            }
            None => {
                let candidates: Vec<&PublicKey> =
                    self.keys.iter().filter(|k| k.alg == alg).take(MAX_KIDLESS_CANDIDATES).collect();
                if candidates.is_empty() { Lookup::Unknown } else { Lookup::Keys(candidates) }
            }
        }
    }
}

fn b64(field: &Option<String>, name: &str) -> Result<Vec<u8>, String> {
    let v = field.as_deref().ok_or_else(|| format!("missing `{name}`"))?;
    URL_SAFE_NO_PAD.decode(v).map_err(|_| format!("`{name}` is not base64url"))
}

fn parse_jwk(jwk: &Jwk, allowed: &[JwsAlg]) -> Result<Vec<PublicKey>, String> {
    if let Some(u) = &jwk.use_
        && u != "sig"
    {
        return Err(format!("use `{u}` is not `sig`"));
    }
    let fits: Vec<JwsAlg> = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
        ("RSA", _) => vec![JwsAlg::RS256, JwsAlg::PS256],
        ("EC", Some("P-256")) => vec![JwsAlg::ES256],
        ("OKP", Some("Ed25519")) => vec![JwsAlg::EdDSA],
        ("oct", _) => return Err("symmetric (`oct`) key ignored".into()),
        (kty, crv) => return Err(format!("unsupported key type {kty}/{}", crv.unwrap_or("-"))),
    };
    let algs: Vec<JwsAlg> = match &jwk.alg {
        Some(a) => match JwsAlg::parse(a) {
            Some(a) if fits.contains(&a) => vec![a],
            _ => return Err(format!("alg `{a}` is not usable with this key type")),
        },
        None => fits,
    };
    let bytes = match jwk.kty.as_str() {
        "RSA" => {
            let n = b64(&jwk.n, "n")?;
            let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
            if !(2048..=8192).contains(&bits) {
                return Err(format!("RSA modulus of about {bits} bits (2048 to 8192 accepted)"));
            }
            rsa_public_key_der(&n, &b64(&jwk.e, "e")?)
        }
        "EC" => {
            let (x, y) = (b64(&jwk.x, "x")?, b64(&jwk.y, "y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err("P-256 coordinates must be 32 bytes".into());
            }
            [&[4u8][..], &x, &y].concat()
        }
        _ => b64(&jwk.x, "x")?,
    };
    let mut out = Vec::new();
    for alg in algs.into_iter().filter(|a| allowed.contains(a)) {
        let key =
            ParsedPublicKey::new(verification(alg), &bytes).map_err(|e| format!("key rejected: {e}"))?;
        out.push(PublicKey { kid: jwk.kid.clone(), alg, key });
    }
    Ok(out)
}

/// DER `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`
/// (RFC 8017 A.1.1), the form aws-lc-rs parses for RSA verification.
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    fn integer(bytes: &[u8]) -> Vec<u8> {
        let trimmed: &[u8] = {
            let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len().saturating_sub(1));
            &bytes[start..]
        };
        // A leading 1 bit would make the INTEGER negative.
        let pad = trimmed.first().is_some_and(|b| b & 0x80 != 0);
        let mut content = Vec::with_capacity(trimmed.len() + 1);
        if pad {
            content.push(0);
        }
        content.extend_from_slice(trimmed);
        tlv(0x02, &content)
    }
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let be = len.to_be_bytes();
            let skip = be.iter().position(|b| *b != 0).unwrap_or(be.len() - 1);
            out.push(0x80 | (be.len() - skip) as u8);
            out.extend_from_slice(&be[skip..]);
        }
        out.extend_from_slice(content);
        out
    }
    let body = [integer(n), integer(e)].concat();
    tlv(0x30, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};

    const ALL: [JwsAlg; 4] = [JwsAlg::RS256, JwsAlg::PS256, JwsAlg::ES256, JwsAlg::EdDSA];

    fn ed25519() -> (Ed25519KeyPair, String) {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        (pair, x)
    }

    #[test]
    fn skips_what_it_cannot_use_and_keeps_the_rest() {
        let (pair, x) = ed25519();
        let doc = serde_json::json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "legacy"},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "ed", "alg": "EdDSA"},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "enc", "use": "enc"},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "lying", "alg": "RS256"},
            {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA", "kid": "short"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "tiny-rsa"},
            {"kty": "EC", "crv": "P-384", "x": "AAAA", "y": "AAAA", "kid": "p384"},
            "not an object",
        ]});
        let (set, skipped) = KeySet::from_jwks(doc.to_string().as_bytes(), &ALL).unwrap();
        assert_eq!(set.len(), 1, "{skipped:?}");
        assert_eq!(skipped.len(), 7, "{skipped:?}");
        let sig = pair.sign(b"input");
        let Lookup::Keys(keys) = set.lookup(Some("ed"), JwsAlg::EdDSA) else { panic!("ed not found") };
        assert!(keys[0].verifies(b"input", sig.as_ref()));
        assert!(!keys[0].verifies(b"other", sig.as_ref()));
        assert!(matches!(set.lookup(Some("ed"), JwsAlg::ES256), Lookup::AlgorithmMismatch));
        assert!(matches!(set.lookup(Some("nope"), JwsAlg::EdDSA), Lookup::Unknown));
        assert!(matches!(set.lookup(None, JwsAlg::EdDSA), Lookup::Keys(k) if k.len() == 1));
        assert!(matches!(set.lookup(None, JwsAlg::RS256), Lookup::Unknown));
    }

    /// Hostile documents never panic: random bytes, and a valid document
    /// with bytes flipped at random positions; whatever parses is usable.
    #[test]
    fn garbage_documents_are_errors_or_skips() {
        let (_, x) = ed25519();
        let good = serde_json::json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "ed"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
            {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}
        ]})
        .to_string()
        .into_bytes();
        for i in 0..5000 {
            let doc: Vec<u8> = if i % 2 == 0 {
                (0..rand::random_range(0..200)).map(|_| rand::random::<u8>()).collect()
            } else {
                let mut d = good.clone();
                for _ in 0..rand::random_range(1..4) {
                    let at = rand::random_range(0..d.len());
                    d[at] = rand::random::<u8>();
                }
                d
            };
            if let Ok((set, _)) = KeySet::from_jwks(&doc, &ALL) {
                assert!(set.len() <= 1, "only the Ed25519 key can ever be usable");
            }
        }
    }

    #[test]
    fn allowed_algorithms_narrow_what_a_key_may_verify() {
        let (_, x) = ed25519();
        let doc = serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "ed"}]});
        let (set, skipped) = KeySet::from_jwks(doc.to_string().as_bytes(), &[JwsAlg::ES256]).unwrap();
        assert!(set.is_empty());
        assert_eq!(skipped.len(), 1);
        assert!(KeySet::from_jwks(b"{\"nokeys\": 1}", &ALL).is_err());
    }

    #[test]
    fn ec_and_rsa_keys_from_their_jwk_members() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref();
        let doc = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "ec",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])}]});
        let (set, _) = KeySet::from_jwks(doc.to_string().as_bytes(), &ALL).unwrap();
        let sig = pair.sign(&rng, b"m").unwrap();
        let Lookup::Keys(k) = set.lookup(Some("ec"), JwsAlg::ES256) else { panic!() };
        assert!(k[0].verifies(b"m", sig.as_ref()));

        let pem = crate::keys::ring::generate_pkcs8_pem(crate::config::MintAlg::RS256).unwrap();
        let rsa = aws_lc_rs::rsa::KeyPair::from_pkcs8(pem::parse(&pem).unwrap().contents()).unwrap();
        let enc = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
        let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&enc, jsonwebtoken::Algorithm::RS256).unwrap();
        let jsonwebtoken::jwk::AlgorithmParameters::RSA(p) = jwk.algorithm else { panic!() };
        let doc = serde_json::json!({"keys": [{"kty": "RSA", "kid": "r", "n": p.n, "e": p.e}]});
        let (set, _) = KeySet::from_jwks(doc.to_string().as_bytes(), &ALL).unwrap();
        assert_eq!(set.len(), 2, "RS256 and PS256 without a JWK alg");
        let mut sig = vec![0; rsa.public_modulus_len()];
        rsa.sign(&signature::RSA_PKCS1_SHA256, &rng, b"m", &mut sig).unwrap();
        let Lookup::Keys(k) = set.lookup(Some("r"), JwsAlg::RS256) else { panic!() };
        assert!(k[0].verifies(b"m", &sig));
        let Lookup::Keys(k) = set.lookup(Some("r"), JwsAlg::PS256) else { panic!() };
        assert!(!k[0].verifies(b"m", &sig), "a PKCS#1 signature is not a PSS one");
    }
}
