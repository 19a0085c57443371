//! Reading verified JWT claims: numeric dates, audiences, role paths.
//!
//! A [`Claims`] only exists after a signature has verified, so its values
//! may be used for decisions (except `user_metadata`, which users write).

use crate::config::ClaimPath;
use crate::core::error::AuthError;
use serde_json::{Map, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// `sub` values of Netlify's operator/admin token, which GoTrue turns into
/// its in-memory super admin (`NewSystemUser`): never an end user.
pub const SYSTEM_SUBJECTS: [&str; 2] = ["0", "00000000-0000-0000-0000-000000000000"];

/// Seconds since the Unix epoch: the clock every `exp`/`nbf` check uses.
/// 0 if the clock is before 1970, which then fails every `exp` check
/// (closed, not open).
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// The verified payload of a token.
#[derive(Debug)]
pub struct Claims(Map<String, Value>);

/// The latest NumericDate accepted: 9999-12-31T23:59:59Z. Later dates (and
/// dates before 1970) cannot be a real token's and do not fit a protobuf
/// `Timestamp`; they are a malformed token.
pub const MAX_NUMERIC_DATE: i64 = 253_402_300_799;

impl Claims {
    /// Parses a payload; it must be a JSON object without repeated names.
    pub fn from_slice(payload: &[u8]) -> Result<Self, AuthError> {
        crate::core::jws::strict_object(payload).map(Self)
    }

    /// True when the claim is present (with any value but null).
    pub fn has(&self, name: &str) -> bool {
        self.0.get(name).is_some_and(|v| !v.is_null())
    }

    /// A NumericDate claim (RFC 7519 §2) in whole seconds. Fractions are
    /// truncated; a non-number, or a date before 1970 or after
    /// [`MAX_NUMERIC_DATE`], is a malformed token.
    pub fn numeric_date(&self, name: &'static str) -> Result<Option<i64>, AuthError> {
        let in_range = |f: f64| (0.0..=MAX_NUMERIC_DATE as f64).contains(&f);
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .filter(|i| (0..=MAX_NUMERIC_DATE).contains(i))
                .or_else(|| n.as_f64().filter(|f| in_range(*f)).map(|f| f as i64))
                .map(Some)
                .ok_or(AuthError::MalformedToken("a date claim is out of range")),
            Some(_) => Err(AuthError::MalformedToken("a date claim is not a number")),
        }
    }

    /// A string claim; a non-string value is a malformed token.
    pub fn string(&self, name: &'static str) -> Result<Option<&str>, AuthError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(AuthError::MalformedToken("a string claim has another type")),
        }
    }

    /// The registered-claim checks every JWT verifier makes: `exp` (required)
    /// and `nbf` with `leeway`, `iss` when one is expected, `aud` any-of when
    /// audiences are listed. Returns `exp` and `aud` as a list.
    pub fn check_registered(
        &self,
        now: i64,
        leeway: i64,
        iss: Option<&str>,
        audiences: &[String],
    ) -> Result<(i64, Vec<String>), AuthError> {
        let exp = self.numeric_date("exp")?.ok_or(AuthError::MissingClaim("exp"))?;
        if now >= exp.saturating_add(leeway) {
            return Err(AuthError::TokenExpired);
        }
        if let Some(nbf) = self.numeric_date("nbf")?
            && nbf > now.saturating_add(leeway)
        {
            return Err(AuthError::TokenNotYetValid);
        }
        if let Some(expected) = iss {
            match self.string("iss")? {
                None => return Err(AuthError::MissingClaim("iss")),
                Some(iss) if iss != expected => return Err(AuthError::WrongIssuer),
                Some(_) => {}
            }
        }
        let aud = self.audiences()?;
        if !audiences.is_empty() && !aud.iter().any(|a| audiences.contains(a)) {
            return Err(AuthError::WrongAudience);
        }
        Ok((exp, aud))
    }

    /// `sub`, required and non-empty.
    pub fn subject(&self) -> Result<&str, AuthError> {
        match self.string("sub")? {
            None | Some("") => Err(AuthError::MissingClaim("sub")),
            Some(s) => Ok(s),
        }
    }

    /// The identity from verified claims whose registered claims were
    /// checked: email, roles from `role_claims`, provider and metadata,
    /// session fields.
    pub fn into_identity(
        mut self,
        issuer: std::sync::Arc<str>,
        subject: String,
        (expires_at, audiences): (i64, Vec<String>),
        role_claims: &[ClaimPath],
    ) -> Result<crate::core::identity::Identity, AuthError> {
        let (session_id, aal, is_anonymous) = self.session()?;
        let jti = self.string("jti")?.unwrap_or_default().to_owned();
        let issued_at = self.numeric_date("iat")?;
        let email = self.string("email")?.unwrap_or_default().to_owned();
        let roles = self.roles(role_claims);
        let app_metadata = self.take_object("app_metadata")?;
        let provider = app_metadata.get("provider").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        Ok(crate::core::identity::Identity {
            subject: subject.into(),
            email: email.into(),
            roles: roles.into(),
            provider: provider.into(),
            issuer,
            audiences: audiences.into(),
            expires_at,
            app_metadata: crate::core::identity::Metadata::from_map(&app_metadata),
            user_metadata: crate::core::identity::Metadata::from_map(&self.take_object("user_metadata")?),
            session_id: session_id.into(),
            aal: aal.into(),
            is_anonymous,
            jti: jti.into(),
            issued_at,
            claims: Default::default(),
            encoded: Default::default(),
        })
    }

    /// A top-level claim as a string, whatever its name (for configured
    /// `require_claims`); `None` when absent or not a string.
    pub fn string_any(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }

    /// `session_id`, `aal` and `is_anonymous` (Supabase and GoTrue forks),
    /// empty/false when absent.
    pub fn session(&self) -> Result<(String, String, bool), AuthError> {
        let session_id = self.string("session_id")?.unwrap_or_default().to_owned();
        let aal = self.string("aal")?.unwrap_or_default().to_owned();
        let anonymous = match self.0.get("is_anonymous") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(AuthError::MalformedToken("is_anonymous is not a boolean")),
        };
        Ok((session_id, aal, anonymous))
    }

    /// `aud` normalised to a list: absent → empty, a string → one, an array
    /// of strings → all of them.
    pub fn audiences(&self) -> Result<Vec<String>, AuthError> {
        match self.0.get("aud") {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or(AuthError::MalformedToken("aud holds a non-string")),
            Some(_) => Err(AuthError::MalformedToken("aud is neither a string nor an array")),
        }
    }

    /// Moves out a claim that must be an object when present
    /// (`app_metadata`, ...); read roles first, they may live inside it.
    pub fn take_object(&mut self, name: &'static str) -> Result<Map<String, Value>, AuthError> {
        match self.0.remove(name) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(m)) => Ok(m),
            Some(_) => Err(AuthError::MalformedToken("a metadata claim is not an object")),
        }
    }

    /// Roles found at any of `paths`, deduplicated in order of first
    /// appearance. A path that leads to a non-array, and array items that
    /// are not strings, are ignored (never an error: roles only ever add).
    pub fn roles(&self, paths: &[ClaimPath]) -> Vec<String> {
        let mut roles: Vec<String> = Vec::new();
        for path in paths {
            let mut node = self.0.get(&path.segments()[0]);
            for seg in &path.segments()[1..] {
                node = node.and_then(|v| v.get(seg));
            }
            // The OAuth `scope` claim is one space-separated string.
            if path.segments().len() == 1
                && path.segments()[0] == "scope"
                && let Some(Value::String(scope)) = node
            {
                for role in scope.split_ascii_whitespace() {
                    if !roles.iter().any(|r| r == role) {
                        roles.push(role.to_owned());
                    }
                }
                continue;
            }
            let Some(Value::Array(items)) = node else {
                continue;
            };
            for role in items.iter().filter_map(Value::as_str) {
                if !role.is_empty() && !roles.iter().any(|r| r == role) {
                    roles.push(role.to_owned());
                }
            }
        }
        roles
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(json: &str) -> Claims {
        Claims::from_slice(json.as_bytes()).unwrap()
    }

    #[test]
    fn audiences_normalise() {
        let cases = [
            ("absent", r#"{}"#, Ok(vec![])),
            ("string", r#"{"aud":"a"}"#, Ok(vec!["a".to_string()])),
            ("array", r#"{"aud":["a","b"]}"#, Ok(vec!["a".into(), "b".into()])),
            ("number", r#"{"aud":1}"#, Err("malformed_token")),
            ("mixed array", r#"{"aud":["a",1]}"#, Err("malformed_token")),
        ];
        for (what, json, want) in cases {
            let got = claims(json).audiences().map_err(|e| e.reason());
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn roles_from_paths_ignore_junk() {
        let c = claims(
            r#"{"app_metadata":{"roles":["admin",3,"editor","admin"],"authorization":{"roles":["editor","ops"]}},
                "user_metadata":{"roles":["god"]}}"#,
        );
        let paths = [
            ClaimPath::parse("app_metadata.roles").unwrap(),
            ClaimPath::parse("app_metadata.authorization.roles").unwrap(),
        ];
        assert_eq!(c.roles(&paths), ["admin", "editor", "ops"]);
        let c = claims(r#"{"app_metadata":{"roles":"admin"}}"#);
        assert!(c.roles(&paths).is_empty(), "a string is not a role list");
    }

    #[test]
    fn paths_under_user_metadata_are_refused() {
        assert!(ClaimPath::parse("user_metadata.roles").is_err());
        assert!(ClaimPath::parse("app_metadata..roles").is_err());
        assert!(ClaimPath::parse("").is_err());
    }

    #[test]
    fn numeric_dates() {
        assert_eq!(claims(r#"{"exp":10}"#).numeric_date("exp"), Ok(Some(10)));
        assert_eq!(claims(r#"{"exp":10.9}"#).numeric_date("exp"), Ok(Some(10)));
        assert_eq!(claims(r#"{}"#).numeric_date("exp"), Ok(None));
        assert!(claims(r#"{"exp":"10"}"#).numeric_date("exp").is_err());
        assert_eq!(claims(r#"{"exp":253402300799}"#).numeric_date("exp"), Ok(Some(MAX_NUMERIC_DATE)));
        for out_of_range in ["253402300800", "1e308", "18446744073709551616", "-1", "1.7976931348623157e308"]
        {
            let c = claims(&format!(r#"{{"exp":{out_of_range}}}"#));
            assert_eq!(
                c.numeric_date("exp").map_err(|e| e.reason()),
                Err("malformed_token"),
                "{out_of_range}"
            );
        }
    }

    #[test]
    fn repeated_member_names_are_refused_at_any_depth() {
        let cases = [
            ("top level", r#"{"iss":"a","iss":"b"}"#, Err("malformed_token")),
            ("nested", r#"{"app_metadata":{"roles":["a"],"roles":["admin"]}}"#, Err("malformed_token")),
            ("inside an array", r#"{"x":[{"a":1,"a":2}]}"#, Err("malformed_token")),
            ("an array, not an object", r#"["HS256"]"#, Err("malformed_token")),
            ("distinct names", r#"{"a":1,"b":{"a":2},"c":[1,"x",null,true,1.5]}"#, Ok(())),
        ];
        for (description, json, want) in cases {
            let got = Claims::from_slice(json.as_bytes()).map(|_| ()).map_err(|e| e.reason());
            assert_eq!(got, want, "{description}");
        }
    }
}
