//! The user store's part of a decision: roles and claims the app assigned
//! (per issuer, `roles_source` and `claims_from_store`), and the
//! just-in-time row of every granted user.

use crate::config::{Config, RolesSource};
use crate::core::error::AuthError;
use crate::core::identity::Identity;
use crate::gate::decision::Decision;
use crate::store::UserStore;
use crate::store::revocations::TokenFacts;
use std::sync::Arc;

/// Which issuers read the store, and the store.
pub struct StoreUse {
    store: Option<Arc<UserStore>>,
    /// (issuer, roles source, claims from the store), for issuers that
    /// read it.
    readers: Vec<(String, RolesSource, bool)>,
    /// (issuer, access token lifetime in seconds, goes on with stale
    /// revocations), for every issuer.
    revocation: Vec<(String, i64, bool)>,
}

impl StoreUse {
    /// From config; `store` is the process's store when `[store]` is set.
    pub fn new(config: &Config, store: Option<Arc<UserStore>>) -> Self {
        let readers = config
            .issuers
            .iter()
            .filter(|i| i.store.reads_store())
            .map(|i| (i.name.clone(), i.store.roles_source, i.store.claims_from_store))
            .collect();
        let revocation = config
            .issuers
            .iter()
            .map(|i| {
                (i.name.clone(), i.store.access_token_ttl.as_secs() as i64, i.store.allow_stale_revocations)
            })
            .collect();
        Self { store, readers, revocation }
    }

    /// True when some issuer's decisions need the store current: it reads
    /// roles or claims there, or revocations are on and it does not go on
    /// with stale ones (readiness follows the store then).
    pub fn needed(&self) -> bool {
        let revocations = self.store.as_ref().is_some_and(|s| s.checks_revocations());
        !self.readers.is_empty() || (revocations && self.revocation.iter().any(|(_, _, allow)| !allow))
    }

    /// Refuses a revoked token (`token_revoked`), or any token of an issuer
    /// that does not go on with stale revocations while this replica's are
    /// not current (`revocation_unavailable`). An in-memory lookup.
    pub fn check_revoked(
        &self,
        identity: &Identity,
        token: &str,
        decision: &mut Decision<'_>,
    ) -> Result<(), AuthError> {
        let Some(store) = self.store.as_ref().filter(|s| s.checks_revocations()) else { return Ok(()) };
        let (ttl, allow_stale) = self
            .revocation
            .iter()
            .find(|(name, ..)| **name == *identity.issuer)
            .map_or((3600, false), |(_, ttl, allow)| (*ttl, *allow));
        let facts = TokenFacts {
            issuer: &identity.issuer,
            subject: &identity.subject,
            jti: (!identity.jti.is_empty()).then_some(&*identity.jti),
            // GoTrue writes no `iat`: its tokens live access_token_ttl.
            issued_at: identity.issued_at.unwrap_or(identity.expires_at - ttl),
            token,
        };
        let refused = match store.revoked(&facts) {
            Ok(refused) => refused,
            Err(_) if allow_stale => store.revoked_stale(&facts),
            Err(_) => return Err(AuthError::RevocationUnavailable),
        };
        match refused {
            Some(kind) => {
                decision.revoked_by = Some(kind);
                Err(AuthError::TokenRevoked)
            }
            None => Ok(()),
        }
    }

    /// The identity with the app's roles and claims, for issuers that read
    /// them; unchanged for the others. Fails closed
    /// (`store_unavailable`) when the store cannot answer.
    pub async fn apply(
        &self,
        identity: Arc<Identity>,
        decision: &mut Decision<'_>,
    ) -> Result<Arc<Identity>, AuthError> {
        let Some((_, roles_source, claims)) =
            self.readers.iter().find(|(name, ..)| **name == *identity.issuer)
        else {
            return Ok(identity);
        };
        // Config validation refuses a reader without [store]; a Gate built
        // without one (the `verify` command) cannot decide for it.
        let store = self.store.as_ref().ok_or(AuthError::StoreUnavailable)?;
        let (view, hit) = store.view(&identity.issuer, &identity.subject).await.map_err(|error| {
            tracing::debug!(%error, "user store read failed");
            AuthError::StoreUnavailable
        })?;
        decision.store = Some(if hit { "cached" } else { "read" });
        Ok(view.enriched(&identity, || {
            let mut enriched = (*identity).clone();
            let app_roles = view.roles.as_deref().unwrap_or_default();
            match roles_source {
                RolesSource::Token => {}
                RolesSource::Store => enriched.roles = app_roles.into(),
                RolesSource::Both => {
                    let mut roles = enriched.roles.into_vec();
                    for r in app_roles {
                        if !roles.contains(r) {
                            roles.push(r.clone());
                        }
                    }
                    enriched.roles = roles.into();
                }
            }
            if *claims {
                enriched.claims = view.claims.clone().into();
            }
            enriched
        }))
    }

    /// A granted user: queue its just-in-time row (never waits).
    pub fn seen(&self, identity: &Identity) {
        if let Some(store) = &self.store {
            store.seen(identity);
        }
    }
}
