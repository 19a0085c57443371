//! Exchange: a verified credential in, a short-lived token for one named
//! downstream service out (semantics after RFC 8693 token exchange).
//!
//! Policy narrows, never widens: the audience must be configured
//! (`invalid_target`), the user's issuer allowed (`issuer_not_allowed`), a
//! required role held (`insufficient_role`), and every requested scope
//! allowed for this user (`invalid_scope`, never silently dropped); no scopes
//! requested means the audience's defaults. TTL = min(requested, audience
//! max, the subject token's remaining life unless the audience allows
//! longer). An actor token (a token authgate minted, or one a configured
//! issuer accepts) makes the result delegated: `act: {sub: actor}`, `azp`.
//!
//! Identical requests within a token's first part of life get the same
//! token back (keyed by the identity, audience, scopes, actor, requested TTL
//! **and the active key id**, so a key change never serves a token signed by
//! the old key).

use crate::config::{AudienceConfig, ExchangeConfig};
use crate::core::claims::unix_now;
use crate::core::error::AuthError;
use crate::core::headers::Headers;
use crate::core::identity::Identity;
use crate::gate::decision::Decision;
use crate::gate::{Gate, VerifyInput};
use crate::keys::ring::{Actor, KeyRing, MintedClaims, new_jti};
use opentelemetry::Context;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// RFC 8693 token type of an access token (the default subject type).
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// RFC 8693 token type of a JWT (also accepted; the type authgate issues).
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// One Exchange request, borrowed from the transport.
#[derive(Debug, Clone, Copy)]
pub struct ExchangeInput<'a> {
    /// The user's token; `None` reads `headers`.
    pub subject_token: Option<&'a str>,
    /// The incoming request's headers.
    pub headers: &'a Headers,
    /// RFC 8693 URI; `None` for the default.
    pub subject_token_type: Option<&'a str>,
    /// The downstream service.
    pub audience: &'a str,
    /// Requested scopes.
    pub scopes: &'a [String],
    /// The caller's own token, for delegation.
    pub actor_token: Option<&'a str>,
    /// Requested lifetime.
    pub requested_ttl: Option<Duration>,
    /// Configured issuer of the subject token; `None` routes by the rules.
    pub issuer: Option<&'a str>,
    /// The end user's address ([`crate::gate::edge::client_address`]), when known.
    pub client: Option<&'a str>,
    /// The calling service (`[[callers]]`), when its certificate names one.
    pub caller: Option<&'a str>,
}

/// What to mint for an already verified identity.
#[derive(Debug, Clone, Copy)]
pub struct MintRequest<'a> {
    /// The downstream service.
    pub audience: &'a str,
    /// Requested scopes (none: the audience's defaults).
    pub scopes: &'a [String],
    /// The caller's own token, for delegation.
    pub actor_token: Option<&'a str>,
    /// Requested lifetime.
    pub requested_ttl: Option<Duration>,
    /// The calling service, when known: the audience's `callers` rule, and
    /// the minted `client_id` and `azp`.
    pub caller: Option<&'a str>,
}

/// A minted token and what it was minted for.
#[derive(Debug, Clone)]
pub struct Minted {
    /// The compact JWT.
    pub token: String,
    /// The `kid` that signed it.
    pub key_id: String,
    /// `iat`.
    pub issued_at: i64,
    /// `exp`.
    pub expires_at: i64,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The user.
    pub identity: Arc<Identity>,
}

struct Expiry;

impl moka::Expiry<crate::core::cache::Key, Arc<Minted>> for Expiry {
    fn expire_after_create(
        &self,
        _: &crate::core::cache::Key,
        m: &Arc<Minted>,
        _: Instant,
    ) -> Option<Duration> {
        Some(Duration::from_secs(m.expires_at.saturating_sub(unix_now()).max(0) as u64))
    }
}

/// The Exchange service core. Built once from config.
pub struct Exchanger {
    gate: Arc<Gate>,
    ring: KeyRing,
    issuer_url: String,
    audiences: HashMap<String, AudienceConfig>,
    cache: Option<moka::sync::Cache<crate::core::cache::Key, Arc<Minted>>>,
    min_remaining: f64,
    /// `exchange.claims_namespace`.
    claims_namespace: Option<String>,
    max_token_bytes: usize,
}

impl Exchanger {
    /// The policy of `config`, signing with `ring` (parsed once when the
    /// generation was built).
    pub fn new(gate: Arc<Gate>, config: &ExchangeConfig, ring: KeyRing) -> Self {
        let cache = (config.mint_cache_max_entries > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(config.mint_cache_max_entries)
                .expire_after(Expiry)
                .build()
        });
        Self {
            max_token_bytes: gate.max_token_bytes(),
            gate,
            ring,
            issuer_url: config.issuer_url.clone(),
            audiences: config.audiences.iter().map(|a| (a.name.clone(), a.clone())).collect(),
            cache,
            min_remaining: config.mint_cache_min_remaining,
            claims_namespace: config.claims_namespace.clone(),
        }
    }

    /// Minted tokens held for reuse.
    pub fn cached_tokens(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| {
            c.run_pending_tasks();
            c.entry_count()
        })
    }

    /// The key ring (for the JWKS document).
    pub fn ring(&self) -> &KeyRing {
        &self.ring
    }

    /// Verifies the subject (and actor), applies the audience's policy and
    /// mints, or returns the same token minted for an identical request.
    pub async fn exchange(
        &self,
        input: ExchangeInput<'_>,
        decision: &mut Decision<'_>,
    ) -> Result<Arc<Minted>, AuthError> {
        decision.audience = Some(input.audience.to_string());
        if !matches!(input.subject_token_type, None | Some(ACCESS_TOKEN_TYPE | JWT_TOKEN_TYPE)) {
            return Err(AuthError::InvalidRequest("unsupported subject_token_type"));
        }
        if !self.audiences.contains_key(input.audience) {
            return Err(AuthError::InvalidTarget);
        }
        let verified = self
            .gate
            .decide(
                VerifyInput {
                    token: input.subject_token,
                    headers: input.headers,
                    required_roles: &[],
                    issuer: input.issuer,
                    require_signed_proxy: false,
                    client: input.client,
                    identity_in_headers: false,
                },
                decision,
            )
            .await?;
        let request = MintRequest {
            audience: input.audience,
            scopes: input.scopes,
            actor_token: input.actor_token,
            requested_ttl: input.requested_ttl,
            caller: input.caller,
        };
        self.mint_for(verified.identity, request, decision).await
    }

    /// Applies the audience's policy to an identity the caller has already
    /// verified (the edge, which verified the request once) and mints, or
    /// returns the same token minted for an identical request.
    pub async fn mint_for(
        &self,
        identity: Arc<Identity>,
        input: MintRequest<'_>,
        decision: &mut Decision<'_>,
    ) -> Result<Arc<Minted>, AuthError> {
        decision.audience = Some(input.audience.to_string());
        let shared = decision.identity_is_shared();
        let minted = self.mint(identity, input, shared).await?;
        decision.key_id = Some(minted.key_id.clone());
        Ok(minted)
    }

    async fn mint(
        &self,
        identity: Arc<Identity>,
        input: MintRequest<'_>,
        shared: bool,
    ) -> Result<Arc<Minted>, AuthError> {
        let audience = self.audiences.get(input.audience).ok_or(AuthError::InvalidTarget)?;
        crate::gate::callers::may_mint_for(&audience.callers, input.caller)?;
        if !audience.issuers.is_empty() && !audience.issuers.iter().any(|i| **i == *identity.issuer) {
            return Err(AuthError::IssuerNotAllowed);
        }
        if !identity.has_any_role(&audience.required_roles) {
            return Err(AuthError::InsufficientRole);
        }
        let scopes = grant_scopes(audience, &identity, input.scopes)?;
        let actor = match input.actor_token {
            None => None,
            Some(token) => Some(self.actor(token).await?),
        };
        let now = unix_now();
        let max = audience.max_ttl.as_secs() as i64;
        let mut ttl = input.requested_ttl.map_or(max, |d| (d.as_secs() as i64).min(max));
        if !audience.allow_ttl_beyond_subject {
            ttl = ttl.min(identity.expires_at - now);
        }
        if ttl <= 0 {
            return Err(AuthError::TokenExpired);
        }
        let address = shared.then(|| self.cache_key(&identity, true, input, &scopes, actor.as_deref()));
        let mut content = None;
        if let Some(cache) = &self.cache {
            let fresh = |hit: &Arc<Minted>| {
                let lifetime = (hit.expires_at - hit.issued_at).max(1) as f64;
                (hit.expires_at - now) as f64 > self.min_remaining * lifetime
            };
            let same = address
                .and_then(|k| cache.get(&k))
                .filter(|hit| Arc::ptr_eq(&hit.identity, &identity) && fresh(hit));
            // Else the token minted for an identical request before this
            // identity was cached, held from now on under its address too.
            let hit = same.or_else(|| {
                let key = self.cache_key(&identity, false, input, &scopes, actor.as_deref());
                let hit = cache.get(&key).filter(fresh);
                content = Some(key);
                let hit = hit?;
                let Some(address) = address else { return Some(hit) };
                let held = Arc::new(Minted { identity: identity.clone(), ..(*hit).clone() });
                cache.insert(address, held.clone());
                Some(held)
            });
            self.gate.metrics().cache_lookup(crate::obs::metrics::CacheName::Mint, hit.is_some());
            if let Some(hit) = hit {
                return Ok(hit);
            }
        }
        let claims = MintedClaims {
            iss: self.issuer_url.clone(),
            sub: identity.subject.to_string(),
            aud: input.audience.to_string(),
            iat: now,
            nbf: now,
            exp: now + ttl,
            jti: new_jti(),
            email: identity.email.to_string(),
            roles: identity.roles.to_vec(),
            scope: scopes.join(" "),
            idp: identity.issuer.to_string(),
            act: actor.map(|sub| Actor { sub }),
            client_id: input.caller.map(str::to_owned),
            azp: input.caller.map(str::to_owned),
            app: match &self.claims_namespace {
                Some(ns) if !identity.claims.is_empty() => {
                    [(ns.clone(), serde_json::Value::Object((*identity.claims).clone()))]
                        .into_iter()
                        .collect()
                }
                _ => serde_json::Map::new(),
            },
        };
        let minted = Arc::new(Minted {
            token: self.ring.sign(&claims)?,
            key_id: self.ring.active_kid().to_string(),
            issued_at: now,
            expires_at: now + ttl,
            scopes,
            identity,
        });
        self.gate.metrics().minted(input.audience);
        if let Some(cache) = &self.cache {
            for key in [content, address].into_iter().flatten() {
                cache.insert(key, minted.clone());
            }
        }
        Ok(minted)
    }

    /// The actor's subject: from a token authgate minted (checked against
    /// its own keys and issuer URL), else from a configured issuer.
    async fn actor(&self, token: &str) -> Result<String, AuthError> {
        if let Some(sub) = self.own_token_subject(token)? {
            return Ok(sub);
        }
        let none = Headers::new();
        let input = VerifyInput {
            token: Some(token),
            headers: &none,
            required_roles: &[],
            issuer: None,
            require_signed_proxy: false,
            client: None,
            identity_in_headers: false,
        };
        // Part of the Exchange being decided: recorded with it, not alone.
        let mut unrecorded = Decision::start(crate::obs::metrics::Adapter::Exchange, None, Context::new());
        Ok(self.gate.decide(input, &mut unrecorded).await?.identity.subject.to_string())
    }

    /// `Some(sub)` when `token` was minted by this authgate and is valid;
    /// `None` when its `kid` is not one of ours.
    fn own_token_subject(&self, token: &str) -> Result<Option<String>, AuthError> {
        // The same strict reading as every other token (one header object,
        // no repeated names anywhere) before the library reads it its way.
        let jws = crate::core::jws::CompactJws::parse(token, self.max_token_bytes)?;
        let Some((decoding, validation)) = jws.header.kid.as_deref().and_then(|kid| self.ring.verifier(kid))
        else {
            return Ok(None);
        };
        crate::core::claims::Claims::from_slice(&jws.payload_bytes()?)?;
        #[derive(serde::Deserialize)]
        struct Sub {
            sub: String,
        }
        jsonwebtoken::decode::<Sub>(token, decoding, validation).map(|d| Some(d.claims.sub)).map_err(|e| {
            match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::TokenExpired,
                jsonwebtoken::errors::ErrorKind::ImmatureSignature => AuthError::TokenNotYetValid,
                jsonwebtoken::errors::ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
                jsonwebtoken::errors::ErrorKind::InvalidAudience => AuthError::WrongAudience,
                jsonwebtoken::errors::ErrorKind::MissingRequiredClaim(c) => {
                    AuthError::MissingClaim(match c.as_str() {
                        "exp" => "exp",
                        "iss" => "iss",
                        "sub" => "sub",
                        _ => "aud",
                    })
                }
                _ => AuthError::BadSignature,
            }
        })
    }

    /// The mint cache key. A `shared` identity (one the identity cache
    /// holds) is keyed by its address rather than its content (the entry
    /// holds the identity; a hit is checked to be the same allocation).
    /// Hashing the content again cost ~2,000 instructions a
    /// cached Exchange; an identity built for one request (roles from the
    /// store, the identity cache off) is keyed by content, so that identical
    /// requests still share a token.
    fn cache_key(
        &self,
        id: &Arc<Identity>,
        shared: bool,
        input: MintRequest<'_>,
        scopes: &[String],
        actor: Option<&str>,
    ) -> crate::core::cache::Key {
        let ttl = input.requested_ttl.map_or(u64::MAX, |d| d.as_secs()).to_le_bytes();
        let scope_count = (scopes.len() as u64).to_le_bytes();
        if shared {
            let address = crate::core::cache::address(id);
            // A first part no content key has (those start with 8 bytes).
            let parts: [&[u8]; 8] = [
                b"shared",
                &address,
                &scope_count,
                self.ring.active_kid().as_bytes(),
                input.audience.as_bytes(),
                actor.unwrap_or("").as_bytes(),
                &ttl,
                input.caller.unwrap_or("").as_bytes(),
            ];
            return crate::core::cache::keyed(parts.into_iter().chain(scopes.iter().map(String::as_bytes)));
        }
        let exp = id.expires_at.to_le_bytes();
        // The count keeps scopes and roles apart: scope "x" with no role
        // must not hash like role "x" with no scope.
        // The app's claims travel in the token: a change must mint anew.
        let claims = if self.claims_namespace.is_some() && !id.claims.is_empty() {
            serde_json::Value::Object((*id.claims).clone()).to_string()
        } else {
            String::new()
        };
        let parts: [&[u8]; 11] = [
            &scope_count,
            self.ring.active_kid().as_bytes(),
            id.issuer.as_bytes(),
            id.subject.as_bytes(),
            &exp,
            id.email.as_bytes(),
            input.audience.as_bytes(),
            actor.unwrap_or("").as_bytes(),
            &ttl,
            id.provider.as_bytes(),
            input.caller.unwrap_or("").as_bytes(),
        ];
        crate::core::cache::keyed(
            parts
                .into_iter()
                .chain(scopes.iter().map(String::as_bytes))
                .chain(id.roles.iter().map(String::as_bytes))
                .chain([claims.as_bytes()]),
        )
    }
}

/// The scopes to grant: the requested ones if each is allowed for this
/// user, else an error; the audience's defaults when none are requested.
fn grant_scopes(
    audience: &AudienceConfig,
    identity: &Identity,
    requested: &[String],
) -> Result<Vec<String>, AuthError> {
    if requested.is_empty() {
        return Ok(audience.default_scopes.clone());
    }
    let allowed = |s: &String| {
        audience.scopes.contains(s)
            || audience
                .role_scopes
                .iter()
                .any(|(role, scopes)| identity.roles.contains(role) && scopes.contains(s))
    };
    if !requested.iter().all(allowed) {
        return Err(AuthError::InvalidScope);
    }
    let mut granted: Vec<String> = Vec::new();
    for s in requested {
        if !granted.contains(s) {
            granted.push(s.clone());
        }
    }
    Ok(granted)
}
