//! Protobuf forms of the core's types, for the gRPC and ext_authz adapters.

use crate::core::identity::{Identity, ProxyAttestation};
use crate::pb;
use serde_json::{Map, Value};

impl From<&Identity> for pb::Identity {
    fn from(id: &Identity) -> Self {
        pb::Identity {
            subject: id.subject.to_string(),
            email: id.email.to_string(),
            roles: id.roles.to_vec(),
            provider: id.provider.to_string(),
            issuer: id.issuer.to_string(),
            audiences: id.audiences.to_vec(),
            expires_at: Some(prost_types::Timestamp { seconds: id.expires_at, nanos: 0 }),
            app_metadata: Some(to_struct(&id.app_metadata.to_map())),
            user_metadata: Some(to_struct(&id.user_metadata.to_map())),
            session_id: id.session_id.to_string(),
            aal: id.aal.to_string(),
            is_anonymous: id.is_anonymous,
            claims: (!id.claims.is_empty()).then(|| to_struct(&id.claims)),
        }
    }
}

impl From<ProxyAttestation> for pb::ProxyAttestation {
    fn from(p: ProxyAttestation) -> Self {
        pb::ProxyAttestation {
            site_id: p.site_id,
            site_url: p.site_url,
            deploy_context: p.deploy_context,
            issued_at: Some(prost_types::Timestamp { seconds: p.issued_at, nanos: 0 }),
            expires_at: Some(prost_types::Timestamp { seconds: p.expires_at, nanos: 0 }),
        }
    }
}

pub(crate) fn to_struct(map: &Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct { fields: map.iter().map(|(k, v)| (k.clone(), to_value(v))).collect() }
}

fn to_value(v: &Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        // google.protobuf.Value only has doubles; large integers lose
        // precision exactly as they would in any JSON client.
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => {
            Kind::ListValue(prost_types::ListValue { values: items.iter().map(to_value).collect() })
        }
        Value::Object(m) => Kind::StructValue(to_struct(m)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// The `authgate.v1.Identity` message's bytes, written straight from the
/// identity: byte for byte what prost writes for `pb::Identity::from(id)`
/// (fields in tag order, proto3 defaults left out, map entries in key order
/// with an empty key left out, as prost does), without first building that
/// message, its two `Struct` trees and a copy of every string. That copy
/// was half the cost of answering a freshly verified token (~9,500
/// instructions of a ~110,000-instruction uncached Verify).
pub(crate) fn encode_identity(id: &Identity) -> bytes::Bytes {
    use prost::encoding::{bool as pbool, string};
    let (app, user) = (id.app_metadata.to_map(), id.user_metadata.to_map());
    let claims = (!id.claims.is_empty()).then_some(&*id.claims);
    let timestamp = timestamp_len(id.expires_at);
    let (app_len, user_len) = (struct_len(&app), struct_len(&user));
    let claims_len = claims.map(struct_len);
    let len = [(1, &*id.subject), (2, &*id.email), (4, &*id.provider), (5, &*id.issuer)]
        .into_iter()
        .chain([(10, &*id.session_id), (11, &*id.aal)])
        .filter(|(_, s)| !s.is_empty())
        .map(|(tag, s)| prost::encoding::key_len(tag) + text_len(s))
        .sum::<usize>()
        + string::encoded_len_repeated(3, &id.roles)
        + string::encoded_len_repeated(6, &id.audiences)
        + nested_len(7, timestamp)
        + nested_len(8, app_len)
        + nested_len(9, user_len)
        + if id.is_anonymous { pbool::encoded_len(12, &true) } else { 0 }
        + claims_len.map_or(0, |len| nested_len(13, len));
    let mut buf = Vec::with_capacity(len);
    let text = |tag: u32, s: &str, buf: &mut Vec<u8>| {
        if !s.is_empty() {
            write_text(tag, s, buf)
        }
    };
    text(1, &id.subject, &mut buf);
    text(2, &id.email, &mut buf);
    string::encode_repeated(3, &id.roles, &mut buf);
    text(4, &id.provider, &mut buf);
    text(5, &id.issuer, &mut buf);
    string::encode_repeated(6, &id.audiences, &mut buf);
    nested_key(7, timestamp, &mut buf);
    if id.expires_at != 0 {
        prost::encoding::int64::encode(1, &id.expires_at, &mut buf);
    }
    nested_key(8, app_len, &mut buf);
    encode_struct(&app, &mut buf);
    nested_key(9, user_len, &mut buf);
    encode_struct(&user, &mut buf);
    text(10, &id.session_id, &mut buf);
    text(11, &id.aal, &mut buf);
    if id.is_anonymous {
        pbool::encode(12, &true, &mut buf);
    }
    if let (Some(c), Some(len)) = (claims, claims_len) {
        nested_key(13, len, &mut buf);
        encode_struct(c, &mut buf);
    }
    buf.into()
}

fn nested_key(tag: u32, len: usize, buf: &mut Vec<u8>) {
    prost::encoding::encode_key(tag, prost::encoding::WireType::LengthDelimited, buf);
    prost::encoding::encode_varint(len as u64, buf);
}

fn nested_len(tag: u32, len: usize) -> usize {
    prost::encoding::key_len(tag) + prost::encoding::encoded_len_varint(len as u64) + len
}

fn timestamp_len(seconds: i64) -> usize {
    if seconds == 0 { 0 } else { prost::encoding::int64::encoded_len(1, &seconds) }
}

/// A `google.protobuf.Struct`: one map entry (field 1) per member. Nested
/// lengths are computed again at each level they are written; the depth is
/// bounded by serde_json's recursion limit (128), and metadata is small.
fn struct_len(map: &Map<String, Value>) -> usize {
    map.iter().map(|(k, v)| nested_len(1, entry_len(k, v))).sum()
}

fn entry_len(key: &str, value: &Value) -> usize {
    let key = if key.is_empty() { 0 } else { prost::encoding::key_len(1) + text_len(key) };
    key + nested_len(2, value_len(value))
}

/// A string field (prost's `string::encode` takes a `&String`).
fn write_text(tag: u32, s: &str, buf: &mut Vec<u8>) {
    nested_key(tag, s.len(), buf);
    buf.extend_from_slice(s.as_bytes());
}

fn text_len(s: &str) -> usize {
    prost::encoding::encoded_len_varint(s.len() as u64) + s.len()
}

/// A `google.protobuf.Value`: its one `kind`, always written (a oneof).
fn value_len(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(_) => 2,
        Value::Number(_) => 9,
        Value::String(s) => 1 + text_len(s),
        Value::Array(items) => nested_len(6, list_len(items)),
        Value::Object(m) => nested_len(5, struct_len(m)),
    }
}

/// A `google.protobuf.ListValue`: one `Value` (field 1) per item.
fn list_len(items: &[Value]) -> usize {
    items.iter().map(|i| nested_len(1, value_len(i))).sum()
}

fn encode_struct(map: &Map<String, Value>, buf: &mut Vec<u8>) {
    for (k, v) in map {
        nested_key(1, entry_len(k, v), buf);
        if !k.is_empty() {
            write_text(1, k, buf);
        }
        nested_key(2, value_len(v), buf);
        encode_value(v, buf);
    }
}

fn encode_value(v: &Value, buf: &mut Vec<u8>) {
    use prost::encoding::{WireType, encode_key, encode_varint};
    match v {
        Value::Null => {
            encode_key(1, WireType::Varint, buf);
            encode_varint(0, buf);
        }
        // google.protobuf.Value only has doubles (see `to_value`).
        Value::Number(n) => prost::encoding::double::encode(2, &n.as_f64().unwrap_or(0.0), buf),
        Value::String(s) => write_text(3, s, buf),
        Value::Bool(b) => prost::encoding::bool::encode(4, b, buf),
        Value::Object(m) => {
            nested_key(5, struct_len(m), buf);
            encode_struct(m, buf);
        }
        Value::Array(items) => {
            nested_key(6, list_len(items), buf);
            for item in items {
                nested_key(1, value_len(item), buf);
                encode_value(item, buf);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_nested_metadata() {
        let meta: Map<String, Value> =
            serde_json::from_str(r#"{"a":[1,"x",null,{"b":true}],"n":2.5}"#).unwrap();
        let s = to_struct(&meta);
        let json = format!("{s:?}");
        assert!(json.contains("NumberValue(2.5)") && json.contains("BoolValue(true)"), "{json}");
    }

    #[test]
    fn identity_bytes_are_what_prost_writes() {
        let meta = |json: &str| {
            crate::core::identity::Metadata::from_map(
                &serde_json::from_str::<Map<String, Value>>(json).unwrap(),
            )
        };
        let base = Identity {
            subject: "0d2e6f3c-9a1b-4c5d-8e7f-1a2b3c4d5e6f".into(),
            email: "ada@example.com".into(),
            roles: vec!["editor".into(), "member".into()].into(),
            provider: "email".into(),
            issuer: "site".into(),
            audiences: vec!["authenticated".into()].into(),
            expires_at: 1_900_000_000,
            app_metadata: meta(r#"{"provider":"email","roles":["editor","member"]}"#),
            ..Identity::default()
        };
        let claims: Map<String, Value> =
            serde_json::from_str(r#"{"plan":"pro","seats":12,"flags":{"beta":true}}"#).unwrap();
        let cases = [
            ("a GoTrue user", base.clone()),
            ("every field empty or default", Identity::default()),
            ("a negative expiry", Identity { expires_at: -5, ..base.clone() }),
            (
                "session fields, anonymous, claims",
                Identity {
                    session_id: "s-1".into(),
                    aal: "aal2".into(),
                    is_anonymous: true,
                    claims: claims.into(),
                    ..base.clone()
                },
            ),
            (
                "nested metadata: null, numbers, lists, an empty key, unicode",
                Identity {
                    user_metadata: meta(
                        r#"{"":1,"a":{"b":[1,2.5,-3,null,true,"é",[],{}]},"n":18446744073709551615,"z":null,"long":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
                    ),
                    ..base.clone()
                },
            ),
        ];
        for (what, id) in cases {
            let want = prost::Message::encode_to_vec(&pb::Identity::from(&id));
            assert_eq!(encode_identity(&id).as_ref(), want.as_slice(), "{what}");
        }
    }
}
