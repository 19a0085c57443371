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
}
