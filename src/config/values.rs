//! Enumerated and structured values of the config file, parsed strictly:
//! an unknown spelling is an error, never a weaker default.

/// A dotted path into the claims object, e.g. `app_metadata.roles`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath(Vec<String>);

impl ClaimPath {
    /// Parses `a.b.c`. Empty segments are refused, and so is any path under
    /// `user_metadata`, which the user can write themselves.
    pub fn parse(path: &str) -> Result<Self, String> {
        // A namespaced claim (Auth0: `https://example.com/roles`) is one
        // top-level name, dots and all.
        let segments: Vec<String> = if path.contains("://") {
            vec![path.to_owned()]
        } else {
            path.split('.').map(str::to_owned).collect()
        };
        if segments.iter().any(String::is_empty) {
            return Err(format!("role claim path `{path}` has an empty segment"));
        }
        if segments[0] == "user_metadata" {
            return Err(format!(
                "role claim path `{path}` is under user_metadata, which users can write; roles must come from an admin-controlled claim"
            ));
        }
        Ok(Self(segments))
    }

    /// The segments, outermost first.
    pub fn segments(&self) -> &[String] {
        &self.0
    }

    /// The path as written.
    pub fn as_dotted(&self) -> String {
        self.0.join(".")
    }
}

/// Algorithms a JWKS issuer can accept. HS* never: a shared secret is not a
/// public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JwsAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl JwsAlg {
    /// Parses a JOSE `alg` exactly (case-sensitive).
    pub fn parse(alg: &str) -> Option<Self> {
        match alg {
            "RS256" => Some(Self::RS256),
            "PS256" => Some(Self::PS256),
            "ES256" => Some(Self::ES256),
            "EdDSA" => Some(Self::EdDSA),
            _ => None,
        }
    }

    /// The JOSE name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::PS256 => "PS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }
}

/// Signing algorithms for minted tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MintAlg {
    /// Ed25519 (default): fast to sign and verify, small keys.
    EdDSA,
    /// ECDSA P-256.
    ES256,
    /// RSA 2048+: widely supported, but signing costs 25–35× EdDSA.
    RS256,
}

impl MintAlg {
    /// The JOSE name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
        }
    }

    pub(super) fn parse(v: &str) -> Result<Self, String> {
        match v {
            "EdDSA" => Ok(Self::EdDSA),
            "ES256" => Ok(Self::ES256),
            "RS256" => Ok(Self::RS256),
            _ => Err("must be EdDSA, ES256 or RS256".into()),
        }
    }

    /// Parses a name typed on the command line, in any case (`es256`).
    /// The config file keeps JOSE's exact spelling.
    pub fn from_flag(v: &str) -> Result<Self, String> {
        [Self::EdDSA, Self::ES256, Self::RS256]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(v))
            .ok_or_else(|| format!("unknown --alg {v}: use EdDSA, ES256 or RS256"))
    }
}

/// Where a signing key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, not yet signing (so verifiers learn it first).
    Next,
    /// Signs every new token; exactly one.
    Active,
    /// No longer signs; still published until the tokens it signed expire.
    Retired,
}

impl KeyState {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Active => "active",
            Self::Retired => "retired",
        }
    }
}
