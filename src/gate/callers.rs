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
}

impl Callers {
    /// From `[[callers]]` and `[access]`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            callers: config.callers.iter().map(|c| (Arc::from(c.name.as_str()), c.clone())).collect(),
            access: config.access.clone(),
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
            .then(|| Issuers::build(&config.caller_issuers, static_sets, metrics));
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
            Ok(identity) => Ok(Arc::from(identity.subject.as_str())),
            Err(e) => {
                tracing::debug!(reason = e.reason(), "caller token refused");
                Err(AuthError::CallerUnauthenticated)
            }
        }
    }
}
