//! `authgate config schema`: a JSON Schema of the config file, taken from
//! the reader itself (every key it asks for, with the kind it accepts), so
//! the schema cannot drift from what is read. Editors (taplo, VS Code's
//! Even Better TOML) validate against it and flag unknown keys as they are
//! typed.

use super::read::{KeyKind, Reader};
use super::{Config, Inputs, Mode};
use serde_json::{Map, Value, json};
use std::path::PathBuf;
use toml::Table;

/// A document that makes the reader visit every section, every issuer kind
/// and every list entry once. Values are placeholders; errors are ignored.
const EVERY_SECTION: &str = r#"
[server]
[log]
[cache]
[signed_proxy]
[exchange]
[[exchange.keys]]
kid = "k"
[[exchange.audiences]]
name = "a"
[edge.routes.r]
[tracing]
[tls]
[store]
[access]
[[callers]]
name = "c"
[[issuers]]
name = "h"
kind = "hs256"
[[issuers]]
name = "n"
kind = "netlify_identity"
[[issuers]]
name = "j"
kind = "jwks"
[[caller_issuers]]
name = "c"
kind = "jwks"
"#;

/// The JSON Schema (draft 2020-12) of the config file.
pub fn schema() -> Value {
    let no_env = |_: &str| None;
    let inputs = Inputs {
        config_path: None,
        grpc_addr: None,
        http_addr: None,
        env: &no_env,
        workdir: PathBuf::new(),
        offline: true,
    };
    let mut r = Reader::new(&no_env, true);
    r.schema = Some(Vec::new());
    // The constant parses (a unit test pins it); an empty table otherwise.
    let root: Table = EVERY_SECTION.parse().unwrap_or_default();
    let _ = Config::read(&mut r, &root, Mode::File(PathBuf::from("schema")), &inputs);
    let keys = r.schema.unwrap_or_default();
    let mut out = table(&keys, "");
    if let Value::Object(o) = &mut out {
        o.insert("$schema".into(), json!("https://json-schema.org/draft/2020-12/schema"));
        o.insert("title".into(), json!("authgate configuration"));
    }
    out
}

fn table(keys: &[(String, String, KeyKind)], path: &str) -> Value {
    let mut properties = Map::new();
    for (_, key, kind) in keys.iter().filter(|(p, _, _)| p == path) {
        let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
        let value = match kind {
            KeyKind::Scalar => json!({"type": ["string", "integer", "number"]}),
            KeyKind::Boolean => json!({"type": "boolean"}),
            KeyKind::Strings => json!({"type": "array", "items": {"type": "string"}}),
            KeyKind::Map => json!({"type": "object"}),
            KeyKind::ArrayOfTables => json!({"type": "array", "items": table(keys, &format!("{child}[]"))}),
            // `[edge.routes]` holds one table per route name.
            KeyKind::Table if child == "edge.routes" => {
                json!({"type": "object", "additionalProperties": table(keys, "edge.routes.*")})
            }
            KeyKind::Table => table(keys, &child),
        };
        properties.entry(key.clone()).or_insert(value);
    }
    json!({"type": "object", "properties": properties, "additionalProperties": false})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_names_every_section_and_kind() {
        assert!(EVERY_SECTION.parse::<Table>().is_ok());
        let s = schema();
        let at = |pointer: &str| s.pointer(pointer).cloned();
        let cases: &[(&str, &str)] = &[
            ("a server limit", "/properties/server/properties/max_connections/type"),
            ("a log key", "/properties/log/properties/level"),
            ("an hs256 issuer key", "/properties/issuers/items/properties/previous_secret_file"),
            ("a netlify_identity key", "/properties/issuers/items/properties/site_url"),
            ("a jwks key", "/properties/issuers/items/properties/jwks_url"),
            ("a free-form jwks table", "/properties/issuers/items/properties/require_claims"),
            ("a signing key", "/properties/exchange/properties/keys/items/properties/private_key_file"),
            ("an audience", "/properties/exchange/properties/audiences/items/properties/role_scopes"),
            ("a route policy", "/properties/edge/properties/routes/additionalProperties/properties/roles"),
            ("an edge default", "/properties/edge/properties/strip_cookies"),
            ("a tracing key", "/properties/tracing/properties/sample_ratio"),
            ("a signed-proxy key", "/properties/signed_proxy/properties/deploy_contexts"),
        ];
        for (what, pointer) in cases {
            assert!(at(pointer).is_some(), "{what}: {pointer} missing from {s:#}");
        }
        assert_eq!(at("/properties/server/additionalProperties"), Some(json!(false)));
        assert_eq!(at("/properties/server/properties/grpc_adr"), None);
    }
}
