//! `authgate.v1.VerifyResponse`, written by hand rather than generated, so
//! that the server can answer with an identity encoded once.
//!
//! A cached identity is answered by many Verify calls; converting it to
//! `pb::Identity` (two `Struct`s) and encoding it on every call was ~7,000
//! instructions, most of a cache hit's own cost. [`VerifyResponse::encoded_identity`] (and `ExchangeResponse`'s, in
//! `exchange_response.rs`)
//! carries those bytes instead. On the wire nothing changes: an embedded
//! message is a length-delimited field, so the bytes of field 1 are the same
//! whichever way they were made, and decoding (clients, tests) fills
//! `identity` as the generated code would. `build.rs` points the proto's
//! `VerifyResponse` here (`extern_path`).

use super::{Identity, ProxyAttestation};
use prost::bytes::{Buf, BufMut, Bytes};
use prost::encoding::{DecodeContext, WireType};

/// The verified user and, when the request carried a valid `x-nf-sign`, the
/// signed-proxy attestation (see the proto for each field).
#[derive(Clone, PartialEq, Default, Debug)]
pub struct VerifyResponse {
    /// Field 1: the verified user.
    pub identity: Option<Identity>,
    /// Field 2: set when `headers` carried a valid `x-nf-sign`.
    pub proxy: Option<ProxyAttestation>,
    /// Field 1 already encoded (an `Identity` message's bytes); when set it
    /// is written instead of `identity`. Never set by decoding.
    pub encoded_identity: Option<Bytes>,
}

const IDENTITY: u32 = 1;
const PROXY: u32 = 2;

impl prost::Message for VerifyResponse {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        encode_identity(IDENTITY, &self.encoded_identity, &self.identity, buf);
        if let Some(proxy) = &self.proxy {
            prost::encoding::message::encode(PROXY, proxy, buf);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        match tag {
            IDENTITY => prost::encoding::message::merge(
                wire_type,
                self.identity.get_or_insert_with(Default::default),
                buf,
                ctx,
            ),
            PROXY => prost::encoding::message::merge(
                wire_type,
                self.proxy.get_or_insert_with(Default::default),
                buf,
                ctx,
            ),
            _ => prost::encoding::skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        identity_len(IDENTITY, &self.encoded_identity, &self.identity)
            + self.proxy.as_ref().map_or(0, |p| prost::encoding::message::encoded_len(PROXY, p))
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

/// Writes an `Identity` field: the bytes already encoded when there are,
/// else the message.
pub(super) fn encode_identity(
    tag: u32,
    encoded: &Option<Bytes>,
    identity: &Option<Identity>,
    buf: &mut impl BufMut,
) {
    if let Some(bytes) = encoded {
        prost::encoding::encode_key(tag, WireType::LengthDelimited, buf);
        prost::encoding::encode_varint(bytes.len() as u64, buf);
        buf.put_slice(bytes);
    } else if let Some(identity) = identity {
        prost::encoding::message::encode(tag, identity, buf);
    }
}

/// The encoded length of what [`encode_identity`] writes.
pub(super) fn identity_len(tag: u32, encoded: &Option<Bytes>, identity: &Option<Identity>) -> usize {
    match (encoded, identity) {
        (Some(bytes), _) => {
            prost::encoding::key_len(tag)
                + prost::encoding::encoded_len_varint(bytes.len() as u64)
                + bytes.len()
        }
        (None, Some(identity)) => prost::encoding::message::encoded_len(tag, identity),
        (None, None) => 0,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use prost::Message;

    pub(crate) fn identity() -> Identity {
        Identity {
            subject: "u-1".into(),
            email: "a@example.com".into(),
            roles: vec!["admin".into(), "editor".into()],
            issuer: "netlify".into(),
            expires_at: Some(prost_types::Timestamp { seconds: 1_900_000_000, nanos: 0 }),
            ..Default::default()
        }
    }

    #[test]
    fn preencoded_identity_is_the_same_wire_bytes() {
        let proxy = ProxyAttestation { site_id: "s".into(), ..Default::default() };
        let cases = [
            ("identity only", Some(identity()), None),
            ("identity and proxy", Some(identity()), Some(proxy.clone())),
            ("proxy only", None, Some(proxy)),
            ("empty", None, None),
        ];
        for (description, id, proxy) in cases {
            let plain = VerifyResponse { identity: id.clone(), proxy: proxy.clone(), encoded_identity: None };
            let pre = VerifyResponse {
                identity: None,
                proxy: proxy.clone(),
                encoded_identity: id.as_ref().map(|i| Bytes::from(i.encode_to_vec())),
            };
            assert_eq!(plain.encode_to_vec(), pre.encode_to_vec(), "{description}");
            assert_eq!(pre.encoded_len(), pre.encode_to_vec().len(), "{description}");
            let decoded = VerifyResponse::decode(&pre.encode_to_vec()[..]).unwrap();
            assert_eq!(decoded, plain, "{description}: decodes as the generated type would");
        }
    }

    #[test]
    fn unknown_fields_are_skipped_and_garbage_is_an_error() {
        let mut bytes = VerifyResponse { identity: Some(identity()), ..Default::default() }.encode_to_vec();
        bytes.extend_from_slice(&[0x18, 0x07]); // field 3, varint 7: from a newer server
        assert_eq!(VerifyResponse::decode(&bytes[..]).unwrap().identity, Some(identity()));
        assert!(VerifyResponse::decode(&[0x0a, 0x05, 0x01][..]).is_err(), "truncated field 1");
        assert!(VerifyResponse::decode(&[0x08, 0x01][..]).is_err(), "field 1 with the wrong wire type");
    }
}
