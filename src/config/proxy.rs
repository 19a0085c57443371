//! `[signed_proxy]`: Netlify's `x-nf-sign` verification.

use super::read::{Reader, Section, parse_bounded, parse_duration, read_secret};
use super::{DEFAULT_LEEWAY, ENV_SIGNED_PROXY_SECRET, MAX_LEEWAY, Secret};
use std::time::Duration;
use toml::Table;

/// Netlify signed-proxy verification (`[signed_proxy]`).
#[derive(Debug, Clone)]
pub struct SignedProxyConfig {
    /// `secret` / `secret_file` / `AUTHGATE_SIGNED_PROXY_SECRET[_FILE]`: the
    /// value of the environment variable named in `signed = "..."` at Netlify.
    pub secret: Secret,
    /// `previous_secret` / `previous_secret_file` /
    /// `AUTHGATE_SIGNED_PROXY_PREVIOUS_SECRET[_FILE]`: accepted during a rotation.
    pub previous_secret: Option<Secret>,
    /// `site_ids`: if set, `netlify_id` must be one of them. Default any.
    pub site_ids: Vec<String>,
    /// `site_urls`: if set, `site_url` must be one of them. Default any.
    pub site_urls: Vec<String>,
    /// `deploy_contexts`: if set, `deploy_context` must be one of them
    /// (e.g. `["production"]`). Default any.
    pub deploy_contexts: Vec<String>,
    /// `leeway`: clock skew on `exp`/`iat`/`nbf`, default 30s, at most 300s.
    pub leeway: Duration,
    /// `max_lifetime`: largest accepted `exp − iat`, default 330s (Netlify
    /// signs for 300 s), so a long-lived forgery fails even with the secret.
    pub max_lifetime: Duration,
    /// `replay_protection`: accept each header value once within its
    /// lifetime. Default false: it breaks client retries.
    pub replay_protection: bool,
    /// `replay_cache_max_entries`: default 100000.
    pub replay_cache_max_entries: u64,
}

pub(super) fn read_signed_proxy(r: &mut Reader<'_>, table: Option<&Table>) -> Option<SignedProxyConfig> {
    let env_given = [ENV_SIGNED_PROXY_SECRET, &format!("{ENV_SIGNED_PROXY_SECRET}_FILE")]
        .iter()
        .any(|v| (r.env)(v).is_some());
    if table.is_none() && !env_given {
        return None;
    }
    let mut s = Section::new("signed_proxy", table);
    let secret = read_secret(r, &mut s, "secret", ENV_SIGNED_PROXY_SECRET);
    let previous = read_secret(r, &mut s, "previous_secret", "AUTHGATE_SIGNED_PROXY_PREVIOUS_SECRET");
    let site_ids = s.strings(r, "site_ids").unwrap_or_default();
    let site_urls = s.strings(r, "site_urls").unwrap_or_default();
    let deploy_contexts = s.strings(r, "deploy_contexts").unwrap_or_default();
    let leeway = s.parsed(r, "leeway", None, None, parse_duration).unwrap_or(DEFAULT_LEEWAY);
    if leeway > MAX_LEEWAY {
        r.errors.push("signed_proxy.leeway must be at most 300s".into());
    }
    let max_lifetime =
        s.parsed(r, "max_lifetime", None, None, parse_duration).unwrap_or(Duration::from_secs(330));
    if max_lifetime.is_zero() || max_lifetime > Duration::from_secs(3600) {
        r.errors.push("signed_proxy.max_lifetime must be between 1s and 1h".into());
    }
    let replay_protection = s.boolean(r, "replay_protection").unwrap_or(false);
    let replay_cache_max_entries = s
        .parsed(r, "replay_cache_max_entries", None, None, |v| {
            parse_bounded(v, 1, 10_000_000).map(|n| n as u64)
        })
        .unwrap_or(100_000);
    s.finish(r);
    let previous_secret = previous.ok()?;
    let Some(secret) = secret.ok()? else {
        r.errors.push(format!(
            "[signed_proxy] needs a secret (secret, secret_file or {ENV_SIGNED_PROXY_SECRET}[_FILE])"
        ));
        return None;
    };
    Some(SignedProxyConfig {
        secret,
        previous_secret,
        site_ids,
        site_urls,
        deploy_contexts,
        leeway,
        max_lifetime,
        replay_protection,
        replay_cache_max_entries,
    })
}
