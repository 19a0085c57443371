//! The normalised identity every verifier produces and every adapter returns.

use crate::pb;
use serde_json::{Map, Value};
use std::sync::Arc;

/// A verified user. Built only by verifiers, after the signature checked out.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Identity {
    /// `sub`.
    pub subject: String,
    /// `email`, empty when absent.
    pub email: String,
    /// Roles from the issuer's configured claim paths.
    pub roles: Vec<String>,
    /// `app_metadata.provider`, empty when absent.
    pub provider: String,
    /// The configured issuer's name (not the `iss` claim).
    pub issuer: Arc<str>,
    /// `aud`, normalised to a list.
    pub audiences: Vec<String>,
    /// `exp`, seconds since the Unix epoch.
    pub expires_at: i64,
    /// `app_metadata` as issued.
    pub app_metadata: Map<String, Value>,
    /// `user_metadata` as issued: user-writable, never used for decisions.
    pub user_metadata: Map<String, Value>,
    /// `session_id`, empty when absent.
    pub session_id: String,
    /// `aal`, empty when absent.
    pub aal: String,
    /// `is_anonymous`.
    pub is_anonymous: bool,
}

impl Identity {
    /// True when `required` is empty or the identity holds any of its roles.
    pub fn has_any_role(&self, required: &[String]) -> bool {
        required.is_empty() || required.iter().any(|r| self.roles.contains(r))
    }

    /// The identity as JSON (`authgate verify`), field names as in the proto.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "subject": self.subject,
            "email": self.email,
            "roles": self.roles,
            "provider": self.provider,
            "issuer": &*self.issuer,
            "audiences": self.audiences,
            "expires_at": self.expires_at,
            "app_metadata": self.app_metadata,
            "user_metadata": self.user_metadata,
            "session_id": self.session_id,
            "aal": self.aal,
            "is_anonymous": self.is_anonymous,
        })
    }
}

impl From<&Identity> for pb::Identity {
    fn from(id: &Identity) -> Self {
        pb::Identity {
            subject: id.subject.clone(),
            email: id.email.clone(),
            roles: id.roles.clone(),
            provider: id.provider.clone(),
            issuer: id.issuer.to_string(),
            audiences: id.audiences.clone(),
            expires_at: Some(prost_types::Timestamp { seconds: id.expires_at, nanos: 0 }),
            app_metadata: Some(to_struct(&id.app_metadata)),
            user_metadata: Some(to_struct(&id.user_metadata)),
            session_id: id.session_id.clone(),
            aal: id.aal.clone(),
            is_anonymous: id.is_anonymous,
        }
    }
}

impl From<crate::verify::nf_sign::ProxyAttestation> for pb::ProxyAttestation {
    fn from(p: crate::verify::nf_sign::ProxyAttestation) -> Self {
        pb::ProxyAttestation {
            site_id: p.site_id,
            site_url: p.site_url,
            deploy_context: p.deploy_context,
            issued_at: Some(prost_types::Timestamp { seconds: p.issued_at, nanos: 0 }),
            expires_at: Some(prost_types::Timestamp { seconds: p.expires_at, nanos: 0 }),
        }
    }
}

fn to_struct(map: &Map<String, Value>) -> prost_types::Struct {
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

    #[test]
    fn role_check_is_any_of() {
        let id = Identity {
            subject: "u".into(),
            email: String::new(),
            roles: vec!["editor".into()],
            provider: String::new(),
            issuer: Arc::from("dev"),
            audiences: vec![],
            expires_at: 0,
            app_metadata: Map::new(),
            user_metadata: Map::new(),
            ..Identity::default()
        };
        assert!(id.has_any_role(&[]));
        assert!(id.has_any_role(&["admin".into(), "editor".into()]));
        assert!(!id.has_any_role(&["admin".into()]));
    }
}
