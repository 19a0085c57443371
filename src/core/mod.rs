//! What a request is made of, before and after verification: the
//! credential, the compact JWS, verified claims, the normalised identity,
//! the one error type, and the verified-identity cache. Nothing here knows
//! an issuer kind, a key store or a transport.

pub mod cache;
pub mod claims;
pub mod credential;
pub mod error;
pub mod headers;
pub mod identity;
pub mod jws;
