//! What a decision reads from a user's row: the app's roles and claims,
//! bounded and cleaned once, when the row is read.

use super::row::UserRow;
use crate::core::identity::Identity;
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex};

pub use crate::config::RESERVED_CLAIM_NAMES as RESERVED_CLAIMS;
/// Most claims kept per user.
pub const MAX_CLAIMS: usize = 32;
/// Largest claim name, in bytes.
pub const MAX_CLAIM_NAME_BYTES: usize = 64;
/// Largest claim value, as compact JSON.
pub const MAX_CLAIM_VALUE_BYTES: usize = 1024;
/// Deepest nesting of a claim value (a scalar is 0).
pub const MAX_CLAIM_DEPTH: usize = 4;

/// The app's part of a user, as a decision sees it.
#[derive(Debug, Default)]
pub struct StoreView {
    /// `roles`; `None` when the app has set none (or there is no row).
    pub roles: Option<Vec<String>>,
    /// `claims`, cleaned: an empty map when none.
    pub claims: Map<String, Value>,
    /// The last identity built from this view, and the verified identity
    /// it was built from: a repeated token (the verified-identity cache
    /// returns the same `Arc`) reuses it instead of copying the identity on
    /// every request. A changed row is a new view, so this never outlives
    /// the data it was built from.
    built: Mutex<Option<(Arc<Identity>, Arc<Identity>)>>,
}

impl StoreView {
    /// The view of a row (`None`: no row). Claims that break a rule are
    /// left out and returned with the reason, for the log.
    pub fn from_row(row: Option<&UserRow>) -> (Self, Vec<(String, &'static str)>) {
        let Some(row) = row else { return (Self::default(), Vec::new()) };
        let (claims, omitted) = clean_claims(row.claims.as_ref());
        (Self { roles: row.roles.clone(), claims, built: Mutex::default() }, omitted)
    }

    /// The identity `build` makes from `base` and this view, built once per
    /// `base`.
    pub fn enriched(&self, base: &Arc<Identity>, build: impl FnOnce() -> Identity) -> Arc<Identity> {
        // A poisoned lock only held a finished pair; reuse it.
        let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((from, made)) = built.as_ref()
            && Arc::ptr_eq(from, base)
        {
            return made.clone();
        }
        let made = Arc::new(build());
        *built = Some((base.clone(), made.clone()));
        made
    }
}

/// Why a claim cannot be used, if it cannot.
pub fn claim_problem(name: &str, value: &Value) -> Option<&'static str> {
    if RESERVED_CLAIMS.contains(&name) {
        return Some("reserved name");
    }
    if name.is_empty()
        || name.len() > MAX_CLAIM_NAME_BYTES
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
    {
        return Some("name must match [A-Za-z0-9_.:-]{1,64}");
    }
    if depth(value) > MAX_CLAIM_DEPTH {
        return Some("nested too deep");
    }
    if value.to_string().len() > MAX_CLAIM_VALUE_BYTES {
        return Some("value too large");
    }
    None
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn clean_claims(claims: Option<&Map<String, Value>>) -> (Map<String, Value>, Vec<(String, &'static str)>) {
    let mut kept = Map::new();
    let mut omitted = Vec::new();
    for (name, value) in claims.into_iter().flatten() {
        match claim_problem(name, value) {
            Some(why) => omitted.push((name.clone(), why)),
            None if kept.len() >= MAX_CLAIMS => omitted.push((name.clone(), "more than 32 claims")),
            None => {
                kept.insert(name.clone(), value.clone());
            }
        }
    }
    (kept, omitted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_cleaned() {
        let deep = serde_json::json!([[[[["x"]]]]]);
        let cases: Vec<(&str, &str, Value, Option<&str>)> = vec![
            ("a plain claim", "plan", "pro".into(), None),
            ("a nested object", "org", serde_json::json!({"id": 7, "tags": ["a"]}), None),
            ("registered name", "sub", "x".into(), Some("reserved name")),
            ("authgate's own", "roles", serde_json::json!(["admin"]), Some("reserved name")),
            ("header-unsafe name", "a b", 1.into(), Some("name must match [A-Za-z0-9_.:-]{1,64}")),
            ("too deep", "d", deep, Some("nested too deep")),
            ("too large", "big", "x".repeat(2000).into(), Some("value too large")),
        ];
        for (what, name, value, want) in cases {
            assert_eq!(claim_problem(name, &value), want, "{what}");
        }
    }
}
