//! Which calling service a connection is, and whether it may make the
//! request: `[[callers]]` name certificate identities, `[access]` lists who
//! may use each entry point. Policy comes from config only; what a client
//! can write never names a caller.

use crate::config::{AccessConfig, CallerConfig, Config};
use crate::core::error::AuthError;
use crate::core::jws::CompactJws;
use crate::gate::decision::Decision;
use crate::obs::metrics::Adapter;
use crate::verify::Issuers;
use std::sync::Arc;

/// The configured callers and access lists.
pub struct Callers {
    callers: Vec<(Arc<str>, CallerConfig)>,
    access: AccessConfig,
    /// `tls.http_client_auth = "required"`: forward-auth answers only
    /// callers with a verified client certificate, named or not (the HTTP
    /// handshake only asks, so health and JWKS stay open).
    forward_auth_needs_identity: bool,
}

impl Callers {
    /// From `[[callers]]` and `[access]`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            callers: config.callers.iter().map(|c| (Arc::from(c.name.as_str()), c.clone())).collect(),
            access: config.access.clone(),
            forward_auth_needs_identity: config
                .tls
                .as_ref()
                .is_some_and(|t| t.http_client_auth == crate::config::ClientAuth::Required),
        }
    }

    /// The named caller whose pattern matches `identity`, first in config
    /// order.
    pub fn name_of(&self, identity: &str) -> Option<Arc<str>> {
        self.callers.iter().find(|(_, c)| c.matches(identity)).map(|(name, _)| name.clone())
    }

    /// Admits the request `decision` records, by the certificate identity
    /// it carries: `Ok(caller name)` (`None` for an unnamed caller where
    /// the entry point is open), or the denial. The decision's `caller`
    /// becomes the name when there is one.
    pub fn admit(&self, decision: &mut Decision<'_>) -> Result<Option<Arc<str>>, AuthError> {
        if decision.adapter() == Adapter::ForwardAuth
            && self.forward_auth_needs_identity
            && decision.caller.is_none()
        {
            return Err(AuthError::CallerUnauthenticated);
        }
        let name = decision.caller.as_deref().and_then(|identity| self.name_of(identity));
        if let Some(name) = &name {
            decision.caller = Some(name.clone());
        }
        let allowed = match decision.adapter() {
            Adapter::Verify => &self.access.verify,
            Adapter::Exchange => &self.access.exchange,
            Adapter::ExtAuthz => &self.access.ext_authz,
            Adapter::ForwardAuth => &self.access.forward_auth,
            Adapter::Cli => &None,
            // Closed unless named: revoking is for operators only.
            Adapter::Admin => &Some(self.access.admin.clone().unwrap_or_default()),
        };
        match (allowed, &name, &decision.caller) {
            (None, _, _) => Ok(name),
            (Some(_), _, None) => Err(AuthError::CallerUnauthenticated),
            (Some(list), Some(n), _) if list.iter().any(|a| **a == **n) => Ok(name),
            (Some(_), _, Some(_)) => Err(AuthError::CallerNotAllowed),
        }
    }
}

/// An audience's `callers` rule: empty admits any caller.
pub fn may_mint_for(callers: &[String], caller: Option<&str>) -> Result<(), AuthError> {
    match caller {
        _ if callers.is_empty() => Ok(()),
        None => Err(AuthError::CallerUnauthenticated),
        Some(c) if callers.iter().any(|a| a == c) => Ok(()),
        Some(_) => Err(AuthError::CallerNotAllowed),
    }
}

/// `[[caller_issuers]]`: the issuers of caller tokens (a calling service's
/// own JWT in gRPC metadata `authorization: Bearer`, e.g. a Kubernetes
/// projected service-account token). Kept apart from the users' issuers: a
/// caller token never passes as a user's, nor a user's as a caller's.
pub struct CallerTokens {
    issuers: Option<Issuers>,
    max_token_bytes: usize,
}

impl CallerTokens {
    /// Verifiers for `config.caller_issuers`, with their parsed static keys.
    pub fn new(
        config: &Config,
        static_sets: &[Option<Arc<crate::keys::public::KeySet>>],
        metrics: &Arc<crate::obs::metrics::Metrics>,
    ) -> Self {
        let issuers = (!config.caller_issuers.is_empty())
            .then(|| Issuers::build(&config.caller_issuers, static_sets, metrics, None));
        Self { issuers, max_token_bytes: config.max_token_bytes }
    }

    /// The caller a token names (its verified `sub`), or
    /// `caller_unauthenticated`: a caller credential that does not verify
    /// ends the request, whatever the user's credential is.
    pub async fn verify(&self, token: &str) -> Result<Arc<str>, AuthError> {
        let issuers = self.issuers.as_ref().ok_or(AuthError::CallerUnauthenticated)?;
        let checked = async {
            let jws = CompactJws::parse(token, self.max_token_bytes)?;
            let verifier = match issuers.preselect(None)? {
                Some(v) => v,
                None => issuers.route_by_token(&jws)?,
            };
            verifier.verify(&jws, None).await
        };
        match checked.await {
            Ok(identity) => Ok(Arc::from(&*identity.subject)),
            Err(e) => {
                tracing::debug!(reason = e.reason(), "caller token refused");
                Err(AuthError::CallerUnauthenticated)
            }
        }
    }
}

/// The client identity in an Envoy `x-forwarded-client-cert` value: of its
/// last element (the proxy next to authgate appends last), the `URI`, else
/// the `DNS`, else the `Subject`'s CN. Values may be quoted.
pub fn forwarded_client_cert(value: &str) -> Option<String> {
    let element = split_unquoted(value, ',').into_iter().last()?;
    let mut fields = std::collections::HashMap::new();
    for pair in split_unquoted(element, ';') {
        if let Some((k, v)) = pair.split_once('=') {
            let v = v.trim().trim_matches('"');
            fields.entry(k.trim().to_ascii_lowercase()).or_insert_with(|| v.to_string());
        }
    }
    let cn = || {
        let subject = fields.get("subject")?;
        split_unquoted(subject, ',')
            .into_iter()
            .find_map(|rdn| rdn.trim().strip_prefix("CN=").map(str::to_string))
    };
    fields.get("uri").cloned().or_else(|| fields.get("dns").cloned()).or_else(cn).filter(|id| !id.is_empty())
}

/// `value` split at `separator`, except inside double quotes.
fn split_unquoted(value: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&value[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_client_cert_names_the_nearest_client() {
        type Case = (&'static str, &'static str, Option<&'static str>);
        let cases: [Case; 5] = [
            (
                "URI of Envoy's default format",
                "By=spiffe://cluster.local/ns/auth/sa/authgate;Hash=abc;URI=spiffe://cluster.local/ns/shop/sa/orders",
                Some("spiffe://cluster.local/ns/shop/sa/orders"),
            ),
            (
                "the last element, a client-written one before it ignored",
                "URI=spiffe://forged;Hash=1,By=x;Hash=2;URI=spiffe://cluster.local/ns/shop/sa/orders",
                Some("spiffe://cluster.local/ns/shop/sa/orders"),
            ),
            ("DNS without URI", "Hash=1;DNS=orders.shop.svc", Some("orders.shop.svc")),
            ("quoted subject with commas", "Hash=1;Subject=\"CN=orders,O=Shop, Inc.\"", Some("orders")),
            ("nothing usable", "Hash=1;By=x", None),
        ];
        for (description, value, want) in cases {
            assert_eq!(forwarded_client_cert(value).as_deref(), want, "{description}");
        }
    }
}
