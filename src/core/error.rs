//! Every way a request can be denied, and its mapping to the wire.
//!
//! Each variant's doc says *when* it happens. [`AuthError::reason`],
//! [`AuthError::grpc_code`] and [`AuthError::http_status`] are the one place
//! that maps a variant to its stable reason, gRPC code and HTTP status; the
//! adapters never decide these themselves. Messages are written for humans
//! and never contain token content, secrets or unverified claims.

use std::fmt;

/// The domain of every `google.rpc.ErrorInfo` authgate returns.
pub const ERROR_DOMAIN: &str = "authgate";

/// A denial, with enough detail to tell the caller what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// The request carried no token: no `token`, no `Authorization: Bearer`
    /// header and no `nf_jwt` cookie.
    MissingCredential,
    /// The credential is not a well-formed compact JWS, or its header or
    /// payload is not the JSON it must be. The detail names the part, never
    /// its content.
    MalformedToken(&'static str),
    /// The token is longer than `max_token_bytes`; checked before any parsing.
    TokenTooLarge {
        /// The configured `max_token_bytes`.
        limit: usize,
    },
    /// The header's `alg` is not one the chosen issuer accepts (for GoTrue:
    /// anything but `HS256`, including `none` in any casing). Checked before
    /// any key is touched.
    UnsupportedAlgorithm,
    /// No configured key produced the token's signature.
    BadSignature,
    /// `exp` is in the past by more than the issuer's leeway.
    TokenExpired,
    /// `nbf` is in the future by more than the issuer's leeway.
    TokenNotYetValid,
    /// A claim the issuer requires is absent (`exp`, `sub`, or `iss` when an
    /// issuer is expected).
    MissingClaim(&'static str),
    /// The issuer expects audiences and the token's `aud` has none of them.
    WrongAudience,
    /// The token's `iss` is not the one the issuer expects, or no configured
    /// issuer accepts tokens without a matching `iss`.
    WrongIssuer,
    /// The token is Netlify's operator/admin token (`sub` of `"0"` or the nil
    /// UUID), which is not an end user, and the issuer does not allow it.
    SystemPrincipal,
    /// The token is valid but holds none of the roles the request requires.
    InsufficientRole,
    /// The request names an issuer that is not configured.
    UnknownIssuer,
    /// The request itself is malformed: e.g. both `token` and a credential in
    /// `headers`, or two different credentials of the same kind.
    InvalidRequest(&'static str),
    /// The identity provider rejected the token for a reason other than
    /// expiry or signature (GoTrue 401 "Invalid token: ...", 400 "Could not
    /// read User ID claim").
    InvalidToken,
    /// The identity provider says the token's user no longer exists (GoTrue
    /// 404: the user was deleted).
    UserNotFound,
    /// The identity provider could not answer: 5xx, timeout, connection
    /// error, or a response that is not the documented JSON. Never a verdict
    /// on the token; never cached.
    UpstreamUnavailable(&'static str),
    /// The identity provider answered 429.
    UpstreamRateLimited {
        /// Its `Retry-After`, in seconds, when it sent one.
        retry_after_secs: Option<u64>,
    },
    /// Every upstream slot (`max_concurrent_requests`) stayed taken for
    /// `queue_timeout`.
    UpstreamBusy,
    /// A signed-proxy attestation (`x-nf-sign`) is required, by the request
    /// or the issuer, and the request has none.
    ProxySignatureMissing,
    /// An `x-nf-sign` header is present and does not verify (signature,
    /// `alg`, `iss`, expiry, lifetime, site, deploy context, add-on shape,
    /// duplicates). Denied whether required or not: a forged attestation is
    /// an attack signal.
    ProxySignatureInvalid(&'static str),
    /// Replay protection is on and this exact `x-nf-sign` value was already
    /// accepted within its lifetime.
    ProxySignatureReplayed,
    /// Exchange names an audience that is not configured (RFC 8693
    /// `invalid_target`).
    InvalidTarget,
    /// Exchange asks for a scope the audience does not allow this user
    /// (RFC 8693 `invalid_scope`); never silently dropped.
    InvalidScope,
    /// The user's issuer may not get tokens for this audience.
    IssuerNotAllowed,
    /// Exchange is called but no `[exchange]` is configured.
    ExchangeDisabled,
    /// A JWKS issuer's token names a `kid` (or, without one, an algorithm)
    /// that no key in a freshly checked key set has.
    UnknownKey,
    /// A JWKS issuer's keys cannot be used: never loaded, older than the
    /// configured maximum staleness, or the refetch for an unknown `kid`
    /// failed (the kid may be a new key we cannot see yet).
    KeysUnavailable,
    /// The token is valid but belongs to an anonymous user (Supabase
    /// `is_anonymous`) and the issuer does not admit them.
    AnonymousUser,
    /// A claim the issuer's `require_claims` names is absent or differs.
    ClaimMismatch,
    /// An edge allow would have to pass on a verified identity value
    /// (subject, e-mail, issuer) that holds a control character (CR, LF,
    /// NUL, ...), or an empty subject: no header can carry it faithfully, so
    /// the request is refused instead of passed on mangled.
    UnsafeIdentityValue(&'static str),
    /// This client already has `max_concurrent_per_client` identity-provider
    /// checks in flight (hosted Identity); other clients are still served.
    ClientBusy,
    /// The route requires an authenticated caller (a client certificate,
    /// `tls.http_client_auth = "required"`) and the connection has none.
    CallerUnauthenticated,
    /// The caller is authenticated but `[access]` or the Exchange
    /// audience's `callers` does not name it for this request.
    CallerNotAllowed,
    /// The issuer reads roles or claims from the user store, and the store
    /// could not be read: the row is not cached and the database does not
    /// answer, or this replica has not read the change feed for
    /// `store.max_staleness` (so what it cached may be outdated).
    StoreUnavailable,
    /// The token is revoked: its user is deleted, or a revocation entry
    /// (subject before a time, `jti`, the token's hash, issuer-wide before a
    /// time) refuses it.
    TokenRevoked,
    /// Revocations are on and this replica has not read them (at start), or
    /// not read the change feed for `store.max_staleness`: it cannot tell
    /// whether the token was revoked.
    RevocationUnavailable,
    /// A bug or an impossible state (e.g. signing failed); details are logged.
    Internal(&'static str),
}

impl AuthError {
    /// The stable snake_case reason: ErrorInfo `reason`, log field, metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingCredential => "missing_credential",
            Self::MalformedToken(_) => "malformed_token",
            Self::TokenTooLarge { .. } => "token_too_large",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::BadSignature => "bad_signature",
            Self::TokenExpired => "token_expired",
            Self::TokenNotYetValid => "token_not_yet_valid",
            Self::MissingClaim(_) => "missing_claim",
            Self::WrongAudience => "wrong_audience",
            Self::WrongIssuer => "wrong_issuer",
            Self::SystemPrincipal => "system_principal",
            Self::InsufficientRole => "insufficient_role",
            Self::UnknownIssuer => "unknown_issuer",
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidToken => "invalid_token",
            Self::UserNotFound => "user_not_found",
            Self::UpstreamUnavailable(_) => "upstream_unavailable",
            Self::UpstreamRateLimited { .. } => "upstream_rate_limited",
            Self::UpstreamBusy => "upstream_busy",
            Self::ProxySignatureMissing => "proxy_signature_missing",
            Self::ProxySignatureInvalid(_) => "proxy_signature_invalid",
            Self::ProxySignatureReplayed => "proxy_signature_replayed",
            Self::InvalidTarget => "invalid_target",
            Self::InvalidScope => "invalid_scope",
            Self::IssuerNotAllowed => "issuer_not_allowed",
            Self::ExchangeDisabled => "exchange_disabled",
            Self::UnknownKey => "unknown_key",
            Self::KeysUnavailable => "keys_unavailable",
            Self::AnonymousUser => "anonymous_user",
            Self::ClaimMismatch => "claim_mismatch",
            Self::UnsafeIdentityValue(_) => "unsafe_identity_value",
            Self::ClientBusy => "client_busy",
            Self::CallerUnauthenticated => "caller_unauthenticated",
            Self::CallerNotAllowed => "caller_not_allowed",
            Self::StoreUnavailable => "store_unavailable",
            Self::TokenRevoked => "token_revoked",
            Self::RevocationUnavailable => "revocation_unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// The gRPC status code of this denial.
    pub fn grpc_code(&self) -> tonic::Code {
        match self {
            Self::InsufficientRole
            | Self::InvalidScope
            | Self::IssuerNotAllowed
            | Self::AnonymousUser
            | Self::ClaimMismatch
            | Self::UnsafeIdentityValue(_)
            | Self::CallerNotAllowed => tonic::Code::PermissionDenied,
            Self::ClientBusy => tonic::Code::ResourceExhausted,
            Self::UnknownIssuer | Self::InvalidRequest(_) | Self::InvalidTarget => {
                tonic::Code::InvalidArgument
            }
            Self::ExchangeDisabled => tonic::Code::Unimplemented,
            Self::Internal(_) => tonic::Code::Internal,
            Self::UpstreamUnavailable(_)
            | Self::UpstreamRateLimited { .. }
            | Self::UpstreamBusy
            | Self::KeysUnavailable
            | Self::StoreUnavailable
            | Self::RevocationUnavailable => tonic::Code::Unavailable,
            Self::MissingCredential
            | Self::MalformedToken(_)
            | Self::TokenTooLarge { .. }
            | Self::UnsupportedAlgorithm
            | Self::BadSignature
            | Self::TokenExpired
            | Self::TokenNotYetValid
            | Self::MissingClaim(_)
            | Self::WrongAudience
            | Self::WrongIssuer
            | Self::SystemPrincipal
            | Self::InvalidToken
            | Self::UserNotFound
            | Self::ProxySignatureMissing
            | Self::ProxySignatureInvalid(_)
            | Self::ProxySignatureReplayed
            | Self::UnknownKey
            | Self::TokenRevoked
            | Self::CallerUnauthenticated => tonic::Code::Unauthenticated,
        }
    }

    /// The HTTP status of this denial (forward-auth and ext_authz adapters).
    pub fn http_status(&self) -> u16 {
        match self.grpc_code() {
            tonic::Code::PermissionDenied => 403,
            tonic::Code::InvalidArgument => 400,
            tonic::Code::Unavailable => 503,
            tonic::Code::Unauthenticated => 401,
            tonic::Code::Unimplemented => 501,
            tonic::Code::ResourceExhausted => 429,
            _ => 500,
        }
    }

    /// Every variant, one of each, for tables and exhaustive tests.
    pub fn examples() -> Vec<AuthError> {
        vec![
            Self::MissingCredential,
            Self::MalformedToken("header"),
            Self::TokenTooLarge { limit: 16384 },
            Self::UnsupportedAlgorithm,
            Self::BadSignature,
            Self::TokenExpired,
            Self::TokenNotYetValid,
            Self::MissingClaim("exp"),
            Self::WrongAudience,
            Self::WrongIssuer,
            Self::SystemPrincipal,
            Self::InsufficientRole,
            Self::UnknownIssuer,
            Self::InvalidRequest("token and headers"),
            Self::InvalidToken,
            Self::UserNotFound,
            Self::UpstreamUnavailable("timeout"),
            Self::UpstreamRateLimited { retry_after_secs: Some(7) },
            Self::UpstreamBusy,
            Self::ProxySignatureMissing,
            Self::ProxySignatureInvalid("expired"),
            Self::ProxySignatureReplayed,
            Self::InvalidTarget,
            Self::InvalidScope,
            Self::IssuerNotAllowed,
            Self::ExchangeDisabled,
            Self::UnknownKey,
            Self::KeysUnavailable,
            Self::AnonymousUser,
            Self::ClaimMismatch,
            Self::UnsafeIdentityValue("subject"),
            Self::ClientBusy,
            Self::CallerUnauthenticated,
            Self::CallerNotAllowed,
            Self::StoreUnavailable,
            Self::TokenRevoked,
            Self::RevocationUnavailable,
            Self::Internal("signing failed"),
        ]
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingCredential => f.write_str(
                "no credential: send a token, an Authorization: Bearer header or an nf_jwt cookie",
            ),
            Self::MalformedToken(part) => write!(f, "malformed token: {part}"),
            Self::TokenTooLarge { limit } => write!(f, "token is larger than {limit} bytes"),
            Self::UnsupportedAlgorithm => f.write_str("token algorithm is not accepted by this issuer"),
            Self::BadSignature => f.write_str("token signature does not verify"),
            Self::TokenExpired => f.write_str("token has expired"),
            Self::TokenNotYetValid => f.write_str("token is not valid yet (nbf)"),
            Self::MissingClaim(claim) => write!(f, "token lacks the required claim `{claim}`"),
            Self::WrongAudience => f.write_str("token audience is not accepted by this issuer"),
            Self::WrongIssuer => f.write_str("token issuer is not accepted"),
            Self::SystemPrincipal => {
                f.write_str("token belongs to Netlify's operator/system principal, not a user")
            }
            Self::InsufficientRole => f.write_str("user holds none of the required roles"),
            Self::UnknownIssuer => f.write_str("the requested issuer is not configured"),
            Self::InvalidRequest(why) => write!(f, "invalid request: {why}"),
            Self::InvalidToken => f.write_str("the identity provider rejected the token"),
            Self::UserNotFound => f.write_str("the token's user no longer exists at the identity provider"),
            Self::UpstreamUnavailable(why) => write!(f, "identity provider unavailable: {why}"),
            Self::UpstreamRateLimited { retry_after_secs: Some(s) } => {
                write!(f, "identity provider is rate limiting; retry after {s}s")
            }
            Self::UpstreamRateLimited { retry_after_secs: None } => {
                f.write_str("identity provider is rate limiting")
            }
            Self::UpstreamBusy => f.write_str("too many identity provider calls in flight; try again"),
            Self::ProxySignatureMissing => {
                f.write_str("a Netlify signed-proxy header (x-nf-sign) is required and missing")
            }
            Self::ProxySignatureInvalid(why) => write!(f, "invalid Netlify signed-proxy header: {why}"),
            Self::ProxySignatureReplayed => f.write_str("this x-nf-sign value was already used"),
            Self::InvalidTarget => f.write_str("the audience is not a configured downstream service"),
            Self::InvalidScope => f.write_str("a requested scope is not allowed for this user and audience"),
            Self::IssuerNotAllowed => {
                f.write_str("users of this issuer may not get tokens for this audience")
            }
            Self::ExchangeDisabled => f.write_str("token exchange is not configured"),
            Self::UnknownKey => f.write_str("no key of this issuer matches the token's key id"),
            Self::KeysUnavailable => {
                f.write_str("this issuer's signing keys are unavailable; retry later with the same token")
            }
            Self::AnonymousUser => f.write_str("anonymous users are not admitted by this issuer"),
            Self::ClaimMismatch => f.write_str("a claim this issuer requires is absent or has another value"),
            Self::UnsafeIdentityValue(what) => {
                write!(f, "the verified identity's {what} cannot be passed on in a header")
            }
            Self::ClientBusy => {
                f.write_str("this client has too many identity provider checks in flight; try again")
            }
            Self::CallerUnauthenticated => {
                f.write_str("this request needs a caller with a client certificate from tls.client_ca_file")
            }
            Self::CallerNotAllowed => f.write_str("this caller may not make this request"),
            Self::StoreUnavailable => {
                f.write_str("the user store holding this issuer's roles cannot be read; retry later")
            }
            Self::TokenRevoked => f.write_str("the token has been revoked"),
            Self::RevocationUnavailable => {
                f.write_str("revocations cannot be checked now (the store is not current); retry later")
            }
            Self::Internal(what) => write!(f, "internal error: {what}"),
        }
    }
}

impl std::error::Error for AuthError {}

impl From<AuthError> for tonic::Status {
    fn from(err: AuthError) -> Self {
        use tonic_types::{ErrorDetails, StatusExt};
        let mut metadata = std::collections::HashMap::<String, String>::new();
        let mut details = ErrorDetails::new();
        if let AuthError::UpstreamRateLimited { retry_after_secs: Some(s) } = &err {
            metadata.insert("retry_after_seconds".into(), s.to_string());
            details.set_retry_info(Some(std::time::Duration::from_secs(*s)));
        }
        details.set_error_info(err.reason(), ERROR_DOMAIN, metadata);
        tonic::Status::with_error_details(err.grpc_code(), err.to_string(), details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_unique_snake_case() {
        let all = AuthError::examples();
        let mut seen = std::collections::HashSet::new();
        for e in &all {
            let r = e.reason();
            assert!(r.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{r}");
            assert!(seen.insert(r), "duplicate reason {r}");
        }
    }

    /// The README's error table is the contract operators read: every
    /// reason has a row with its gRPC code and HTTP status.
    #[test]
    fn readme_error_table_lists_every_reason() {
        let readme = include_str!("../../README.md");
        for e in AuthError::examples() {
            let row = format!("| `{}` | {:?} | {} |", e.reason(), e.grpc_code(), e.http_status());
            let row = row
                .replace("PermissionDenied", "PERMISSION_DENIED")
                .replace("InvalidArgument", "INVALID_ARGUMENT")
                .replace("Unauthenticated", "UNAUTHENTICATED")
                .replace("Unavailable", "UNAVAILABLE")
                .replace("Unimplemented", "UNIMPLEMENTED")
                .replace("ResourceExhausted", "RESOURCE_EXHAUSTED")
                .replace("Internal", "INTERNAL");
            assert!(readme.contains(&row), "README error table lacks: {row}");
        }
    }

    /// The proto's `enum Reason` names exactly the reasons the server
    /// returns: clients generate their constants from it.
    #[test]
    fn the_proto_reason_enum_is_the_error_table() {
        let reasons: Vec<&str> = AuthError::examples().iter().map(AuthError::reason).collect();
        for r in &reasons {
            let name = format!("REASON_{}", r.to_uppercase());
            assert!(
                crate::pb::Reason::from_str_name(&name).is_some(),
                "auth.proto's enum Reason lacks {name}"
            );
        }
        let mut n = 1;
        while let Ok(value) = crate::pb::Reason::try_from(n) {
            let name = value.as_str_name().trim_start_matches("REASON_").to_lowercase();
            assert!(
                reasons.contains(&name.as_str()),
                "enum Reason value {n} ({name}) is not a reason the server returns"
            );
            n += 1;
        }
        assert_eq!(n as usize - 1, reasons.len(), "every reason has a number, none twice");
    }

    #[test]
    fn codes_follow_the_contract() {
        for e in AuthError::examples() {
            let want = match e.reason() {
                "insufficient_role"
                | "invalid_scope"
                | "issuer_not_allowed"
                | "anonymous_user"
                | "claim_mismatch"
                | "unsafe_identity_value"
                | "caller_not_allowed" => (tonic::Code::PermissionDenied, 403),
                "client_busy" => (tonic::Code::ResourceExhausted, 429),
                "unknown_issuer" | "invalid_request" | "invalid_target" => {
                    (tonic::Code::InvalidArgument, 400)
                }
                "exchange_disabled" => (tonic::Code::Unimplemented, 501),
                "internal" => (tonic::Code::Internal, 500),
                "upstream_unavailable"
                | "upstream_rate_limited"
                | "upstream_busy"
                | "keys_unavailable"
                | "store_unavailable"
                | "revocation_unavailable" => (tonic::Code::Unavailable, 503),
                _ => (tonic::Code::Unauthenticated, 401),
            };
            assert_eq!((e.grpc_code(), e.http_status()), want, "{}", e.reason());
        }
    }

    #[test]
    fn status_carries_error_info() {
        use tonic_types::StatusExt;
        let status: tonic::Status = AuthError::TokenExpired.into();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.reason, "token_expired");
        assert_eq!(info.domain, ERROR_DOMAIN);
    }

    #[test]
    fn rate_limit_carries_the_retry_delay() {
        use tonic_types::StatusExt;
        let status: tonic::Status = AuthError::UpstreamRateLimited { retry_after_secs: Some(7) }.into();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.metadata.get("retry_after_seconds").map(String::as_str), Some("7"));
        let retry = status.get_details_retry_info().expect("retry info");
        assert_eq!(retry.retry_delay, Some(std::time::Duration::from_secs(7)));
    }
}
