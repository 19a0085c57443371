//! Which calling service a connection is, and whether it may make the
//! request: `[[callers]]` name certificate identities, `[access]` lists who
//! may use each entry point. Policy comes from config only; what a client
//! can write never names a caller.

use crate::config::{AccessConfig, CallerConfig, Config};
use crate::core::error::AuthError;
use crate::gate::decision::Decision;
use crate::obs::metrics::Adapter;
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
