//! `envoy.service.auth.v3.CheckResponse` as the ext_authz adapter sends it:
//! built, or already encoded.
//!
//! An allow for a cached identity is the same bytes on every Check (its
//! identity headers, dynamic metadata and the route's removals); building
//! and encoding it again was ~6,000 instructions of a ~113,000-instruction
//! Check. On the wire nothing changes, and decoding fills `response` as the
//! generated code would.

use envoy_types::ext_authz::v3::pb::CheckResponse;
use prost::bytes::{Buf, BufMut, Bytes};
use prost::encoding::{DecodeContext, WireType};

/// A Check's answer.
#[derive(Clone, PartialEq, Default, Debug)]
pub struct CheckAnswer {
    /// The answer, when built for this Check (and after decoding).
    pub response: CheckResponse,
    /// The whole answer already encoded; when set it is written instead of
    /// `response`. Never set by decoding.
    pub encoded: Option<Bytes>,
}

impl CheckAnswer {
    /// An answer already encoded.
    pub fn encoded(bytes: Bytes) -> Self {
        Self { response: CheckResponse::default(), encoded: Some(bytes) }
    }
}

impl From<CheckResponse> for CheckAnswer {
    fn from(response: CheckResponse) -> Self {
        Self { response, encoded: None }
    }
}

impl prost::Message for CheckAnswer {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        match &self.encoded {
            Some(bytes) => buf.put_slice(bytes),
            None => self.response.encode_raw(buf),
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        self.response.merge_field(tag, wire_type, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.encoded.as_ref().map_or_else(|| self.response.encoded_len(), Bytes::len)
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::ext_authz::v3::{CheckResponseExt, OkHttpResponseBuilder};
    use prost::Message;

    #[test]
    fn encoded_and_built_are_the_same_answer() {
        let mut ok = OkHttpResponseBuilder::new();
        ok.add_header("x-authgate-subject", "u1", None, true);
        ok.remove_header("authorization".to_string());
        let mut built = CheckResponse::with_status(tonic::Status::ok(""));
        built.set_http_response(ok);
        let bytes = Bytes::from(built.encode_to_vec());
        let cases =
            [("built", CheckAnswer::from(built.clone())), ("encoded", CheckAnswer::encoded(bytes.clone()))];
        for (what, answer) in cases {
            assert_eq!(answer.encoded_len(), bytes.len(), "{what}");
            let wire = answer.encode_to_vec();
            assert_eq!(wire, bytes.as_ref(), "{what}");
            let decoded = CheckAnswer::decode(wire.as_slice()).unwrap();
            assert_eq!(decoded, CheckAnswer::from(built.clone()), "{what}: decodes as the response");
        }
    }
}
