//! `[[callers]]` and `[access]`: the services that call authgate, named by
//! what their client certificate says, and which of them may call what.

use super::read::{Reader, Section};
use std::collections::BTreeSet;
use toml::Table;

/// One `[[callers]]` entry: a calling service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerConfig {
    /// `name`: required, unique, `[a-z0-9_-]+`; what policy, logs and
    /// minted tokens (`client_id`, `azp`) call it.
    pub name: String,
    /// `match`: the certificate identity exactly (a SPIFFE ID such as
    /// `spiffe://cluster.local/ns/shop/sa/orders`, a DNS name, a CN), or
    /// `match_prefix`: every identity that starts with it. One is required.
    pub pattern: CallerPattern,
}

/// How a caller's certificate identity is matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerPattern {
    /// `match`.
    Exact(String),
    /// `match_prefix`.
    Prefix(String),
}

impl CallerConfig {
    /// True when `identity` is this caller.
    pub fn matches(&self, identity: &str) -> bool {
        match &self.pattern {
            CallerPattern::Exact(e) => e == identity,
            CallerPattern::Prefix(p) => identity.starts_with(p.as_str()),
        }
    }
}

/// `[access]`: for each entry point, the callers allowed to use it. An
/// absent key leaves that entry point open to every connection the TLS
/// settings admit; a list (even empty) admits only the named callers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessConfig {
    /// `verify`: `authgate.v1.AuthService/Verify`.
    pub verify: Option<Vec<String>>,
    /// `exchange`: `authgate.v1.AuthService/Exchange`.
    pub exchange: Option<Vec<String>>,
    /// `ext_authz`: Envoy's `Authorization/Check` (e.g. only `envoy`).
    pub ext_authz: Option<Vec<String>>,
    /// `forward_auth`: `/forward-auth` on the HTTP port.
    pub forward_auth: Option<Vec<String>>,
    /// `admin`: `authgate.v1.AdminService` (revocations). Unlike the
    /// others, absent means nobody.
    pub admin: Option<Vec<String>>,
}

pub(super) fn read_callers(r: &mut Reader<'_>, tables: &[&Table]) -> Vec<CallerConfig> {
    let mut out: Vec<CallerConfig> = Vec::new();
    for (index, table) in tables.iter().enumerate() {
        let mut s = Section::new(&format!("callers[{index}]"), Some(table));
        let name = s.parsed(r, "name", None, None, |v| {
            if !v.is_empty()
                && v.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_".contains(c))
            {
                Ok(v.to_string())
            } else {
                Err("must match [a-z0-9_-]+".to_string())
            }
        });
        let non_empty = |v: &str| if v.is_empty() { Err("is empty".to_string()) } else { Ok(v.to_string()) };
        let exact = s.parsed(r, "match", None, None, non_empty);
        let prefix = s.parsed(r, "match_prefix", None, None, non_empty);
        let label = s.label.clone();
        s.finish(r);
        let pattern = match (exact, prefix) {
            (Some(e), None) => CallerPattern::Exact(e),
            (None, Some(p)) => CallerPattern::Prefix(p),
            _ => {
                r.errors.push(format!("{label}: set one of match or match_prefix"));
                continue;
            }
        };
        let Some(name) = name else {
            r.errors.push(format!("{label}.name is required"));
            continue;
        };
        if out.iter().any(|c| c.name == name) {
            r.errors.push(format!("caller name `{name}` is used twice"));
        }
        out.push(CallerConfig { name, pattern });
    }
    out
}

pub(super) fn read_access(
    r: &mut Reader<'_>,
    table: Option<&Table>,
    callers: &[CallerConfig],
) -> AccessConfig {
    let mut s = Section::new("access", table);
    let known: BTreeSet<&str> = callers.iter().map(|c| c.name.as_str()).collect();
    let mut list = |r: &mut Reader<'_>, key: &str| {
        let names = s.strings(r, key)?;
        for n in names.iter().filter(|n| !known.contains(n.as_str())) {
            r.errors.push(format!("access.{key} names caller `{n}`, which no [[callers]] entry defines"));
        }
        Some(names)
    };
    let access = AccessConfig {
        verify: list(r, "verify"),
        exchange: list(r, "exchange"),
        ext_authz: list(r, "ext_authz"),
        forward_auth: list(r, "forward_auth"),
        admin: list(r, "admin"),
    };
    s.finish(r);
    access
}
