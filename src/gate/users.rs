//! The user store's part of a decision: roles and claims the app assigned
//! (per issuer, `roles_source` and `claims_from_store`), and the
//! just-in-time row of every granted user.

use crate::config::{Config, RolesSource};
use crate::core::error::AuthError;
use crate::core::identity::Identity;
use crate::gate::decision::Decision;
use crate::store::UserStore;
use std::sync::Arc;

/// Which issuers read the store, and the store.
pub struct StoreUse {
    store: Option<Arc<UserStore>>,
    /// (issuer, roles source, claims from the store), for issuers that
    /// read it.
    readers: Vec<(String, RolesSource, bool)>,
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
        Self { store, readers }
    }

    /// True when some issuer's decisions read the store (readiness
    /// follows it then).
    pub fn needed(&self) -> bool {
        !self.readers.is_empty()
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
                RolesSource::Store => enriched.roles = app_roles.to_vec(),
                RolesSource::Both => {
                    for r in app_roles {
                        if !enriched.roles.contains(r) {
                            enriched.roles.push(r.clone());
                        }
                    }
                }
            }
            if *claims {
                enriched.claims = view.claims.clone();
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
