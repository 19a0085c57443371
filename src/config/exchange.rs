//! `[exchange]`: authgate's signing keys and the audiences it mints for.

use super::read::{Reader, Section, parse_bounded, parse_duration, read_secret};
use super::{DEFAULT_LEEWAY, KeyState, MAX_LEEWAY, MintAlg, Secret, issuer_env_name};
use std::collections::BTreeSet;
use std::time::Duration;
use toml::{Table, Value};

/// One `[[exchange.keys]]` entry.
#[derive(Debug, Clone)]
pub struct SigningKeyConfig {
    /// `kid`: required, unique; goes into the JWT header and the JWKS.
    pub kid: String,
    /// `alg`: `EdDSA` (default), `ES256` or `RS256`.
    pub alg: MintAlg,
    /// `state`: `next`, `active` (default) or `retired`.
    pub state: KeyState,
    /// `private_key` / `private_key_file` / `AUTHGATE_EXCHANGE_KEY_<KID>[_FILE]`:
    /// PKCS#8 PEM (as `authgate keys generate` writes); required in a file.
    /// `None` only in dev mode: a key generated when the generation is
    /// built, which dies with the process.
    pub private_key: Option<Secret>,
}

/// One `[[exchange.audiences]]` entry: a downstream service.
#[derive(Debug, Clone)]
pub struct AudienceConfig {
    /// `name`: required, unique; the minted token's `aud`.
    pub name: String,
    /// `scopes`: scopes any allowed user may get. Default none.
    pub scopes: Vec<String>,
    /// `default_scopes`: granted when none are requested; must be allowed.
    pub default_scopes: Vec<String>,
    /// `role_scopes`: `{role = [scopes]}`, extra scopes for holders of a role.
    pub role_scopes: Vec<(String, Vec<String>)>,
    /// `max_ttl`: default 5m, at most 24h.
    pub max_ttl: Duration,
    /// `issuers`: configured issuers whose users may get tokens; default all.
    pub issuers: Vec<String>,
    /// `required_roles`: any-of; default none.
    pub required_roles: Vec<String>,
    /// `allow_ttl_beyond_subject`: let the minted token outlive the subject
    /// token (still ≤ `max_ttl`). Default false.
    pub allow_ttl_beyond_subject: bool,
    /// `callers`: the `[[callers]]` that may get tokens for this audience
    /// (Exchange, and edge routes that mint); default any caller.
    pub callers: Vec<String>,
}

/// `[exchange]`: minting internal tokens.
#[derive(Debug, Clone)]
pub struct ExchangeConfig {
    /// `issuer_url`: the minted `iss`; required (dev mode: the HTTP address).
    pub issuer_url: String,
    /// `public_base_url`: where `/.well-known/jwks.json` is reachable;
    /// default `issuer_url`.
    pub public_base_url: String,
    /// `jwks_max_age`: `Cache-Control: max-age` of the JWKS, default 5m.
    pub jwks_max_age: Duration,
    /// `mint_cache_max_entries`: minted tokens reused for identical
    /// requests, default 10000; 0 turns reuse off.
    pub mint_cache_max_entries: u64,
    /// `mint_cache_min_remaining`: reuse a minted token only while more than
    /// this fraction of its lifetime is left, default 0.5.
    pub mint_cache_min_remaining: f64,
    /// `[[exchange.keys]]`.
    pub keys: Vec<SigningKeyConfig>,
    /// `[[exchange.audiences]]`.
    pub audiences: Vec<AudienceConfig>,
    /// `leeway`: clock skew allowed on the `exp` and `nbf` of actor tokens
    /// authgate minted itself; default 30s, at most 300s.
    pub leeway: Duration,
    /// `claims_namespace`: default none. When set, the app's claims from
    /// the user store travel in minted tokens as one claim of this name (a
    /// URL, as OpenID recommends, or a plain name not used by authgate).
    pub claims_namespace: Option<String>,
}

pub(super) fn read_exchange(r: &mut Reader<'_>, table: &Table) -> Option<ExchangeConfig> {
    let mut s = Section::new("exchange", Some(table));
    let issuer_url = s.parsed(r, "issuer_url", None, None, |v| {
        reqwest::Url::parse(v)
            .map(|u| u.as_str().trim_end_matches('/').to_string())
            .map_err(|e| e.to_string())
    });
    let public_base_url = s.parsed(r, "public_base_url", None, None, |v| {
        reqwest::Url::parse(v)
            .map(|u| u.as_str().trim_end_matches('/').to_string())
            .map_err(|e| e.to_string())
    });
    let jwks_max_age =
        s.parsed(r, "jwks_max_age", None, None, parse_duration).unwrap_or(Duration::from_secs(300));
    let leeway = s.parsed(r, "leeway", None, None, parse_duration).unwrap_or(DEFAULT_LEEWAY);
    if leeway > MAX_LEEWAY {
        r.errors.push("exchange.leeway must be at most 300s".into());
    }
    let mint_cache_max_entries = s
        .parsed(r, "mint_cache_max_entries", None, None, |v| {
            parse_bounded(v, 0, 10_000_000).map(|n| n as u64)
        })
        .unwrap_or(10_000);
    let mint_cache_min_remaining = s
        .parsed(r, "mint_cache_min_remaining", None, None, |v| match v.parse::<f64>() {
            Ok(f) if (0.0..1.0).contains(&f) => Ok(f),
            _ => Err("must be a fraction from 0 up to (not including) 1".into()),
        })
        .unwrap_or(0.5);
    let claims_namespace = s.parsed(r, "claims_namespace", None, None, |v| {
        if crate::config::RESERVED_CLAIM_NAMES.contains(&v) || v.is_empty() || v.len() > 200 {
            Err("must be a URL or a name authgate does not set itself".to_string())
        } else {
            Ok(v.to_string())
        }
    });
    let key_tables = s.array_of_tables(r, "keys");
    let audience_tables = s.array_of_tables(r, "audiences");
    s.finish(r);
    let keys: Vec<SigningKeyConfig> =
        key_tables.iter().enumerate().filter_map(|(i, t)| read_signing_key(r, i, t)).collect();
    let audiences: Vec<AudienceConfig> =
        audience_tables.iter().enumerate().filter_map(|(i, t)| read_audience(r, i, t)).collect();
    if keys.iter().filter(|k| k.state == KeyState::Active).count() != 1 {
        r.errors.push("[exchange] needs exactly one key with state = \"active\"".into());
    }
    let mut kids = BTreeSet::new();
    for k in &keys {
        if !kids.insert(k.kid.as_str()) {
            r.errors.push(format!("exchange key kid `{}` is used twice", k.kid));
        }
    }
    let mut names = BTreeSet::new();
    for a in &audiences {
        if !names.insert(a.name.as_str()) {
            r.errors.push(format!("exchange audience `{}` is configured twice", a.name));
        }
    }
    let Some(issuer_url) = issuer_url else {
        r.errors.push("exchange.issuer_url is required (the minted tokens' iss)".into());
        return None;
    };
    Some(ExchangeConfig {
        public_base_url: public_base_url.unwrap_or_else(|| issuer_url.clone()),
        issuer_url,
        jwks_max_age,
        mint_cache_max_entries,
        mint_cache_min_remaining,
        keys,
        audiences,
        leeway,
        claims_namespace,
    })
}

pub(super) fn read_signing_key(r: &mut Reader<'_>, index: usize, table: &Table) -> Option<SigningKeyConfig> {
    let mut s = Section::new(&format!("exchange.keys[{index}]"), Some(table));
    let kid = s.parsed(r, "kid", None, None, |v| {
        if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            Err("must match [A-Za-z0-9._-]+".to_string())
        } else {
            Ok(v.to_string())
        }
    });
    let alg = s.parsed(r, "alg", None, None, MintAlg::parse).unwrap_or(MintAlg::EdDSA);
    let state = s
        .parsed(r, "state", None, None, |v| match v {
            "next" => Ok(KeyState::Next),
            "active" => Ok(KeyState::Active),
            "retired" => Ok(KeyState::Retired),
            _ => Err("must be next, active or retired".to_string()),
        })
        .unwrap_or(KeyState::Active);
    let env = format!("AUTHGATE_EXCHANGE_KEY_{}", issuer_env_name(kid.as_deref().unwrap_or("")));
    let key = read_secret(r, &mut s, "private_key", &env);
    s.finish(r);
    let kid = kid.or_else(|| {
        r.errors.push(format!("exchange.keys[{index}].kid is required"));
        None
    })?;
    let private_key = key.ok()?.or_else(|| {
        r.errors
            .push(format!("exchange.keys[{index}] ({kid}): private_key_file (or {env}_FILE) is required"));
        None
    })?;
    Some(SigningKeyConfig { kid, alg, state, private_key: Some(private_key) })
}

pub(super) fn read_audience(r: &mut Reader<'_>, index: usize, table: &Table) -> Option<AudienceConfig> {
    let mut s = Section::new(&format!("exchange.audiences[{index}]"), Some(table));
    let name = s.parsed(r, "name", None, None, |v| Ok(v.to_string()));
    let scopes = s.strings(r, "scopes").unwrap_or_default();
    let default_scopes = s.strings(r, "default_scopes").unwrap_or_default();
    let mut role_scopes = Vec::new();
    match s.map(r, "role_scopes") {
        None => {}
        Some(Value::Table(t)) => {
            for (role, v) in t {
                match v
                    .as_array()
                    .map(|a| a.iter().map(|x| x.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>())
                {
                    Some(Some(list)) => role_scopes.push((role.clone(), list)),
                    _ => r.errors.push(format!("{}.role_scopes.{role} must be an array of strings", s.label)),
                }
            }
        }
        Some(_) => r.errors.push(format!("{}.role_scopes must be a table of role = [scopes]", s.label)),
    }
    let max_ttl = s.parsed(r, "max_ttl", None, None, parse_duration).unwrap_or(Duration::from_secs(300));
    if max_ttl.is_zero() || max_ttl > Duration::from_secs(86_400) {
        r.errors.push(format!("{}.max_ttl must be between 1s and 24h", s.label));
    }
    let issuers = s.strings(r, "issuers").unwrap_or_default();
    let required_roles = s.strings(r, "required_roles").unwrap_or_default();
    let allow_ttl_beyond_subject = s.boolean(r, "allow_ttl_beyond_subject").unwrap_or(false);
    let callers = s.strings(r, "callers").unwrap_or_default();
    let label = s.label.clone();
    s.finish(r);
    for d in &default_scopes {
        if !scopes.contains(d) {
            r.errors.push(format!("{label}: default scope `{d}` is not in scopes"));
        }
    }
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        r.errors.push(format!("{label}.name is required"));
        return None;
    };
    Some(AudienceConfig {
        name,
        scopes,
        default_scopes,
        role_scopes,
        max_ttl,
        issuers,
        required_roles,
        allow_ttl_beyond_subject,
        callers,
    })
}
