//! `authgate.v1.ExchangeResponse`, written by hand for the reason and in the
//! way of `VerifyResponse` (see `verify_response.rs`): a token reused from
//! the mint cache carries an identity encoded once. Same wire format;
//! decoding fills `identity` as the generated code would.

use super::Identity;
use super::verify_response::{encode_identity, identity_len};
use prost::bytes::{Buf, BufMut, Bytes};
use prost::encoding::{DecodeContext, WireType, int64, message, string};

/// The minted token and what it grants (see the proto for each field).
#[derive(Clone, PartialEq, Default, Debug)]
pub struct ExchangeResponse {
    /// Field 1: the JWT for the downstream service.
    pub access_token: String,
    /// Field 2: `urn:ietf:params:oauth:token-type:jwt`.
    pub issued_token_type: String,
    /// Field 3: `Bearer`.
    pub token_type: String,
    /// Field 4: the token's `exp`.
    pub expires_at: Option<prost_types::Timestamp>,
    /// Field 5: seconds from now until `expires_at`.
    pub expires_in: i64,
    /// Field 6: the scopes granted.
    pub scopes: Vec<String>,
    /// Field 7: the `kid` that signed it.
    pub key_id: String,
    /// Field 8: the user it was issued for.
    pub identity: Option<Identity>,
    /// Field 8 already encoded; when set it is written instead of
    /// `identity`. Never set by decoding.
    pub encoded_identity: Option<Bytes>,
}

impl prost::Message for ExchangeResponse {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        for (tag, s) in [(1, &self.access_token), (2, &self.issued_token_type), (3, &self.token_type)] {
            if !s.is_empty() {
                string::encode(tag, s, buf);
            }
        }
        if let Some(t) = &self.expires_at {
            message::encode(4, t, buf);
        }
        if self.expires_in != 0 {
            int64::encode(5, &self.expires_in, buf);
        }
        string::encode_repeated(6, &self.scopes, buf);
        if !self.key_id.is_empty() {
            string::encode(7, &self.key_id, buf);
        }
        encode_identity(8, &self.encoded_identity, &self.identity, buf);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        match tag {
            1 => string::merge(wire_type, &mut self.access_token, buf, ctx),
            2 => string::merge(wire_type, &mut self.issued_token_type, buf, ctx),
            3 => string::merge(wire_type, &mut self.token_type, buf, ctx),
            4 => message::merge(wire_type, self.expires_at.get_or_insert_with(Default::default), buf, ctx),
            5 => int64::merge(wire_type, &mut self.expires_in, buf, ctx),
            6 => string::merge_repeated(wire_type, &mut self.scopes, buf, ctx),
            7 => string::merge(wire_type, &mut self.key_id, buf, ctx),
            8 => message::merge(wire_type, self.identity.get_or_insert_with(Default::default), buf, ctx),
            _ => prost::encoding::skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        let strings: usize =
            [(1, &self.access_token), (2, &self.issued_token_type), (3, &self.token_type), (7, &self.key_id)]
                .into_iter()
                .filter(|(_, s)| !s.is_empty())
                .map(|(tag, s)| string::encoded_len(tag, s))
                .sum();
        strings
            + self.expires_at.as_ref().map_or(0, |t| message::encoded_len(4, t))
            + if self.expires_in != 0 { int64::encoded_len(5, &self.expires_in) } else { 0 }
            + string::encoded_len_repeated(6, &self.scopes)
            + identity_len(8, &self.encoded_identity, &self.identity)
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// The proto's message as prost's derive writes it: the reference the
    /// hand-written encoding must match byte for byte.
    #[derive(Clone, PartialEq, prost::Message)]
    struct Derived {
        #[prost(string, tag = "1")]
        access_token: String,
        #[prost(string, tag = "2")]
        issued_token_type: String,
        #[prost(string, tag = "3")]
        token_type: String,
        #[prost(message, optional, tag = "4")]
        expires_at: Option<prost_types::Timestamp>,
        #[prost(int64, tag = "5")]
        expires_in: i64,
        #[prost(string, repeated, tag = "6")]
        scopes: Vec<String>,
        #[prost(string, tag = "7")]
        key_id: String,
        #[prost(message, optional, tag = "8")]
        identity: Option<Identity>,
    }

    #[test]
    fn same_bytes_as_the_derived_message_with_or_without_a_preencoded_identity() {
        let full = Derived {
            access_token: "eyJ.x.y".into(),
            issued_token_type: "urn:ietf:params:oauth:token-type:jwt".into(),
            token_type: "Bearer".into(),
            expires_at: Some(prost_types::Timestamp { seconds: 1_900_000_000, nanos: 0 }),
            expires_in: 300,
            scopes: vec!["read".into(), "write".into()],
            key_id: "k1".into(),
            identity: Some(super::super::verify_response::tests::identity()),
        };
        let cases = [
            ("every field", full.clone()),
            (
                "defaults left out",
                Derived { expires_in: 0, scopes: vec![], key_id: String::new(), ..full.clone() },
            ),
            ("no identity", Derived { identity: None, ..full.clone() }),
            ("empty", Derived::default()),
        ];
        for (description, d) in cases {
            let plain = ExchangeResponse {
                access_token: d.access_token.clone(),
                issued_token_type: d.issued_token_type.clone(),
                token_type: d.token_type.clone(),
                expires_at: d.expires_at,
                expires_in: d.expires_in,
                scopes: d.scopes.clone(),
                key_id: d.key_id.clone(),
                identity: d.identity.clone(),
                encoded_identity: None,
            };
            let pre = ExchangeResponse {
                identity: None,
                encoded_identity: d.identity.as_ref().map(|i| Bytes::from(i.encode_to_vec())),
                ..plain.clone()
            };
            let want = d.encode_to_vec();
            assert_eq!(plain.encode_to_vec(), want, "{description}");
            assert_eq!(pre.encode_to_vec(), want, "{description}: pre-encoded");
            assert_eq!(pre.encoded_len(), want.len(), "{description}");
            assert_eq!(ExchangeResponse::decode(&want[..]).unwrap(), plain, "{description}: decodes");
        }
        assert!(ExchangeResponse::decode(&[0x2a, 0x09, 0x01][..]).is_err(), "truncated");
    }
}
