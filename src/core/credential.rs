//! Finding the credential in a request.
//!
//! Sources, in order: the explicit `token` field; else `Authorization:
//! Bearer <jwt>` (GoTrue's rule: one space, first letter `B` or `b`); else
//! the `nf_jwt` cookie. Never the query string. Never `x-nf-identity-info`
//! or a forwarded `clientContext`: those are unsigned base64 JSON that anyone
//! can forge, and they carry the site's admin token. `nf_refresh` (the
//! opaque refresh token beside `nf_jwt`) is skipped without being copied.

use crate::core::error::AuthError;
use crate::core::headers::Headers;

/// Where the credential was found (safe to log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `VerifyRequest.token`.
    TokenField,
    /// `Authorization: Bearer`.
    AuthorizationHeader,
    /// Cookie `nf_jwt`.
    Cookie,
}

impl Source {
    /// Stable label for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TokenField => "token_field",
            Self::AuthorizationHeader => "authorization_header",
            Self::Cookie => "nf_jwt_cookie",
        }
    }
}

/// A bearer token and where it came from. Borrowed from the request; the
/// token is never copied into logs or errors.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Credential<'a> {
    /// The compact JWT.
    pub token: &'a str,
    /// Where it was found.
    pub source: Source,
}

impl std::fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential").field("source", &self.source).field("len", &self.token.len()).finish()
    }
}

/// The cookie GoTrue and Netlify set with the access token.
pub const COOKIE_NAME: &str = "nf_jwt";

/// Finds the one credential of a request. `token` wins but must not be
/// combined with a credential in `headers` (which one did the caller mean?).
pub fn extract<'a>(token: Option<&'a str>, headers: &'a Headers) -> Result<Credential<'a>, AuthError> {
    match (token, from_headers(headers)?) {
        (Some(_), Some(_)) => {
            Err(AuthError::InvalidRequest("send either token or a credential in headers, not both"))
        }
        (Some(token), None) => Ok(Credential { token, source: Source::TokenField }),
        (None, Some(c)) => Ok(c),
        (None, None) => Err(AuthError::MissingCredential),
    }
}

/// The credential in HTTP headers (names case-insensitive), if any.
pub fn from_headers(headers: &Headers) -> Result<Option<Credential<'_>>, AuthError> {
    let authorization = headers
        .one("authorization")
        .map_err(|()| AuthError::InvalidRequest("more than one authorization header"))?;
    let mut cookie: Option<&str> = None;
    for value in headers.values("cookie") {
        for v in cookie_values(value, COOKIE_NAME) {
            if cookie.is_some_and(|c| c != v) {
                return Err(AuthError::InvalidRequest("more than one distinct nf_jwt cookie"));
            }
            cookie = Some(v);
        }
    }
    if let Some(value) = authorization
        && let Some(token) = bearer(value)?
    {
        return Ok(Some(Credential { token, source: Source::AuthorizationHeader }));
    }
    Ok(cookie.filter(|c| !c.is_empty()).map(|token| Credential { token, source: Source::Cookie }))
}

/// Parses an Authorization value. `Ok(None)` for another scheme (e.g.
/// Basic: not ours); an error for a Bearer value that is not `Bearer <token>`.
fn bearer(value: &str) -> Result<Option<&str>, AuthError> {
    let value = value.trim_end_matches([' ', '\t']);
    let Some(rest) = value.strip_prefix("Bearer").or_else(|| value.strip_prefix("bearer")) else {
        return Ok(None);
    };
    // GoTrue: `^(?:B|b)earer (\S+$)`: exactly one space, one non-space run.
    match rest.strip_prefix(' ') {
        // Bytes, not chars: no byte of a multi-byte character is ASCII.
        Some(token) if !token.is_empty() && !token.bytes().any(|b| b.is_ascii_whitespace()) => {
            Ok(Some(token))
        }
        _ if rest.is_empty() || rest.starts_with(' ') => {
            Err(AuthError::MalformedToken("authorization header is not `Bearer <token>`"))
        }
        // `Bearerx ...`: another scheme that merely starts with the word.
        _ => Ok(None),
    }
}

/// Values of every cookie called `name` in a Cookie header.
fn cookie_values<'a>(header: &'a str, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    header.split(';').filter_map(move |pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Headers {
        let mut headers = Headers::new();
        for (k, v) in pairs {
            headers.add(k, *v);
        }
        headers
    }

    #[test]
    fn table() {
        type Want = Result<Option<(&'static str, Source)>, &'static str>;
        type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], Want);
        let cases: &[Case] = &[
            ("token field", "t.t.t", &[], Ok(Some(("t.t.t", Source::TokenField)))),
            (
                "Bearer",
                "",
                &[("authorization", "Bearer a.b.c")],
                Ok(Some(("a.b.c", Source::AuthorizationHeader))),
            ),
            (
                "bearer",
                "",
                &[("Authorization", "bearer a.b.c")],
                Ok(Some(("a.b.c", Source::AuthorizationHeader))),
            ),
            ("BEARER is not GoTrue's", "", &[("authorization", "BEARER a.b.c")], Err("missing_credential")),
            ("two spaces", "", &[("authorization", "Bearer  a.b.c")], Err("malformed_token")),
            ("empty bearer", "", &[("authorization", "Bearer")], Err("malformed_token")),
            ("basic ignored", "", &[("authorization", "Basic dXNlcg==")], Err("missing_credential")),
            (
                "cookie",
                "",
                &[("cookie", "a=1; nf_jwt=x.y.z; nf_refresh=r")],
                Ok(Some(("x.y.z", Source::Cookie))),
            ),
            (
                "header beats cookie",
                "",
                &[("authorization", "Bearer a.b.c"), ("Cookie", "nf_jwt=x.y.z")],
                Ok(Some(("a.b.c", Source::AuthorizationHeader))),
            ),
            ("two distinct cookies", "", &[("cookie", "nf_jwt=a; nf_jwt=b")], Err("invalid_request")),
            (
                "two authorization headers",
                "",
                &[("authorization", "Bearer a"), ("Authorization", "Bearer b")],
                Err("invalid_request"),
            ),
            ("token and header", "t.t.t", &[("authorization", "Bearer a.b.c")], Err("invalid_request")),
            (
                "token and unrelated headers",
                "t.t.t",
                &[("x-req", "1")],
                Ok(Some(("t.t.t", Source::TokenField))),
            ),
            ("nothing", "", &[], Err("missing_credential")),
            (
                "identity-info is never a credential",
                "",
                &[("x-nf-identity-info", "eyJ1c2VyIjp7fX0=")],
                Err("missing_credential"),
            ),
            ("refresh cookie alone", "", &[("cookie", "nf_refresh=abc")], Err("missing_credential")),
            ("query string ignored", "", &[(":path", "/api?token=a.b.c")], Err("missing_credential")),
        ];
        for (what, token, headers, want) in cases {
            let headers = h(headers);
            let token = (!token.is_empty()).then_some(*token);
            let got = extract(token, &headers).map(|c| Some((c.token, c.source))).map_err(|e| e.reason());
            assert_eq!(got, *want, "{what}");
        }
    }

    #[test]
    fn repeated_headers_are_read_as_one_request() {
        let mut view = Headers::new();
        view.add_received("Cookie", "a=1");
        view.add_received("cookie", "nf_jwt=x.y.z");
        view.add_received("Authorization", "Bearer a.b.c");
        view.add_received("authorization", "Bearer a.b.c");
        assert_eq!(extract(None, &view).unwrap().token, "a.b.c");
        view.add_received("authorization", "Bearer d.e.f");
        assert_eq!(extract(None, &view).unwrap_err().reason(), "invalid_request");
        let cookies = h(&[("cookie", "a=1"), ("cookie", "nf_jwt=x.y.z")]);
        assert_eq!(extract(None, &cookies).unwrap().source, Source::Cookie);
        let split = h(&[("cookie", "nf_jwt=a"), ("cookie", "nf_jwt=b")]);
        assert_eq!(extract(None, &split).unwrap_err().reason(), "invalid_request");
    }

    #[test]
    fn debug_never_shows_the_token() {
        let c = Credential { token: "secret.token.value", source: Source::Cookie };
        assert!(!format!("{c:?}").contains("secret"));
    }
}
