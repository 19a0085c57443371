//! Compact JWS parsing, without any key.
//!
//! Everything here is *unverified*: it is used to reject what cannot be valid
//! before a key is touched (size, shape, `alg`) and to route a token to its
//! issuer. Nothing read here may grant access; only a verifier can.

use crate::core::error::AuthError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The longest signature we decode (HS512 / ES512 / RS4096 all fit).
const MAX_SIGNATURE_BYTES: usize = 512;

/// The JOSE header fields authgate looks at. Others are ignored: in
/// particular `jku`, `x5u`, `jwk` and `x5c` are never fetched or trusted.
/// The header must be a JSON object without repeated names; `crit` (RFC
/// 7515 §4.1.11: we understand no extension) is refused in any form, `null`
/// included.
#[derive(Debug)]
pub struct JoseHeader {
    /// The algorithm, exactly as written (case matters: `none`, `None` and
    /// `NONE` are all refused by every verifier).
    pub alg: String,
    /// Key id, when present (GoTrue writes `nf-ident` since Feb 2026).
    pub kid: Option<String>,
}

impl JoseHeader {
    /// Reads a decoded header.
    pub fn from_slice(json: &[u8]) -> Result<Self, AuthError> {
        let mut header =
            strict_object(json).map_err(|_| AuthError::MalformedToken("header is not a JOSE header"))?;
        if header.contains_key("crit") {
            return Err(AuthError::MalformedToken("critical header extensions are not supported"));
        }
        let alg = match header.remove("alg") {
            Some(serde_json::Value::String(alg)) => alg,
            _ => return Err(AuthError::MalformedToken("header is not a JOSE header")),
        };
        let kid = match header.remove("kid") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(kid)) => Some(kid),
            Some(_) => return Err(AuthError::MalformedToken("header is not a JOSE header")),
        };
        Ok(Self { alg, kid })
    }
}

/// A token split into its three parts, with the header decoded.
#[derive(Debug)]
pub struct CompactJws<'a> {
    token: &'a str,
    /// `BASE64URL(header) "." BASE64URL(payload)`: what the signature covers.
    pub signing_input: &'a str,
    payload_b64: &'a str,
    signature_b64: &'a str,
    /// The decoded header.
    pub header: JoseHeader,
}

impl<'a> CompactJws<'a> {
    /// Splits and decodes the header. `max_bytes` is checked first, so an
    /// oversize token costs nothing but its length.
    pub fn parse(token: &'a str, max_bytes: usize) -> Result<Self, AuthError> {
        if token.len() > max_bytes {
            return Err(AuthError::TokenTooLarge { limit: max_bytes });
        }
        if token.is_empty() {
            return Err(AuthError::MissingCredential);
        }
        let mut parts = token.splitn(4, '.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::MalformedToken("not three dot-separated parts"));
        };
        // An empty signature is left for the verifier to refuse: `alg: none`
        // tokens look like that, and must be reported as what they are.
        if header_b64.is_empty() || payload_b64.is_empty() {
            return Err(AuthError::MalformedToken("empty header or payload"));
        }
        let header_json = URL_SAFE_NO_PAD
            .decode(header_b64)
            .map_err(|_| AuthError::MalformedToken("header is not base64url"))?;
        let header = JoseHeader::from_slice(&header_json)?;
        let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
        Ok(Self { token, signing_input, payload_b64, signature_b64, header })
    }

    /// The whole token, as given (to forward it to a remote verifier).
    pub fn compact(&self) -> &'a str {
        self.token
    }

    /// Decodes the signature into `buf`, returning the used prefix.
    pub fn signature<'b>(&self, buf: &'b mut [u8; MAX_SIGNATURE_BYTES]) -> Result<&'b [u8], AuthError> {
        // Checked first: decode_slice would otherwise report a short buffer
        // as an error we could not tell apart from bad base64.
        if self.signature_b64.len() > MAX_SIGNATURE_BYTES * 4 / 3 {
            return Err(AuthError::MalformedToken("signature is too long"));
        }
        let n = URL_SAFE_NO_PAD
            .decode_slice(self.signature_b64, buf)
            .map_err(|_| AuthError::MalformedToken("signature is not base64url"))?;
        Ok(&buf[..n])
    }

    /// Decodes the payload bytes. Only meaningful after the signature has
    /// verified, or for [`CompactJws::peek_issuer_unverified`].
    pub fn payload_bytes(&self) -> Result<Vec<u8>, AuthError> {
        URL_SAFE_NO_PAD
            .decode(self.payload_b64)
            .map_err(|_| AuthError::MalformedToken("payload is not base64url"))
    }

    /// The payload's `iss`, read WITHOUT verification, used only to pick
    /// which issuer verifies the token; `None` when absent or not a string.
    /// A payload that is not one JSON object without repeated names is
    /// malformed here already: what routes a token must be what its
    /// verifier will read.
    pub fn peek_issuer_unverified(&self) -> Result<Option<String>, AuthError> {
        let mut claims = strict_object(&self.payload_bytes()?)?;
        Ok(match claims.remove("iss") {
            Some(serde_json::Value::String(iss)) => Some(iss),
            _ => None,
        })
    }
}

/// Parses a JSON object, refusing a repeated member name at any depth.
/// serde_json keeps the last of two equal names; another reader may keep
/// the first, so a token with `iss` twice could be routed by one value and
/// accepted by another. Every JOSE header and claims set goes through here.
pub fn strict_object(bytes: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, AuthError> {
    match serde_json::from_slice::<StrictValue>(bytes) {
        Ok(StrictValue(serde_json::Value::Object(m))) => Ok(m),
        Ok(_) => Err(AuthError::MalformedToken("not a JSON object")),
        Err(e) if e.to_string().starts_with(DUPLICATE) => {
            Err(AuthError::MalformedToken("a member name appears twice"))
        }
        Err(_) => Err(AuthError::MalformedToken("not a JSON object")),
    }
}

const DUPLICATE: &str = "duplicate member";

/// A JSON value whose objects have no repeated member names.
struct StrictValue(serde_json::Value);

impl<'de> serde::Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<serde_json::Value, E> {
        Ok(serde_json::Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<serde_json::Value, E> {
        Ok(serde_json::Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<serde_json::Value, E> {
        Ok(serde_json::Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<serde_json::Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, serde_json::Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<serde_json::Value, E> {
        Ok(serde_json::Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<serde_json::Value, E> {
        Ok(serde_json::Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<serde_json::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_none<E>(self) -> Result<serde_json::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<serde_json::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(serde_json::Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<serde_json::Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let StrictValue(v) = map.next_value()?;
            if out.insert(key, v).is_some() {
                return Err(serde::de::Error::custom(DUPLICATE));
            }
        }
        Ok(serde_json::Value::Object(out))
    }
}

/// Scratch space for [`CompactJws::signature`].
pub fn signature_buffer() -> [u8; MAX_SIGNATURE_BYTES] {
    [0u8; MAX_SIGNATURE_BYTES]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn rejects_bad_shapes() {
        let h = b64(r#"{"alg":"HS256"}"#);
        let cases: &[(&str, String, &str)] = &[
            ("two parts", format!("{h}.e30"), "malformed_token"),
            ("four parts", format!("{h}.e30.c2ln.x"), "malformed_token"),
            ("empty payload", format!("{h}..c2ln"), "malformed_token"),
            ("header not base64", "!!.e30.c2ln".into(), "malformed_token"),
            ("padded header", format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode("{}") + "="), "malformed_token"),
            ("header not json", format!("{}.e30.c2ln", b64("nope")), "malformed_token"),
            ("header without alg", format!("{}.e30.c2ln", b64("{}")), "malformed_token"),
            (
                "crit header",
                format!("{}.e30.c2ln", b64(r#"{"alg":"HS256","crit":["b64"]}"#)),
                "malformed_token",
            ),
            ("crit null", format!("{}.e30.c2ln", b64(r#"{"alg":"HS256","crit":null}"#)), "malformed_token"),
            ("header as an array", format!("{}.e30.c2ln", b64(r#"["HS256"]"#)), "malformed_token"),
            ("alg twice", format!("{}.e30.c2ln", b64(r#"{"alg":"none","alg":"HS256"}"#)), "malformed_token"),
            (
                "kid twice",
                format!("{}.e30.c2ln", b64(r#"{"alg":"HS256","kid":"a","kid":"b"}"#)),
                "malformed_token",
            ),
            ("alg not a string", format!("{}.e30.c2ln", b64(r#"{"alg":256}"#)), "malformed_token"),
            ("empty", String::new(), "missing_credential"),
        ];
        for (what, token, reason) in cases {
            let err = CompactJws::parse(token, 16384).expect_err(what);
            assert_eq!(err.reason(), *reason, "{what}");
        }
    }

    #[test]
    fn size_is_checked_before_shape() {
        let err = CompactJws::parse(&"x".repeat(20), 10).unwrap_err();
        assert_eq!(err, AuthError::TokenTooLarge { limit: 10 });
    }

    #[test]
    fn peeks_issuer() {
        let t = format!("{}.{}.c2ln", b64(r#"{"alg":"HS256"}"#), b64(r#"{"iss":"https://x"}"#));
        let jws = CompactJws::parse(&t, 16384).unwrap();
        assert_eq!(jws.peek_issuer_unverified().unwrap().as_deref(), Some("https://x"));
        assert_eq!(jws.signing_input, &t[..t.rfind('.').unwrap()]);
    }
}
