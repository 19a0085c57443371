//! HTTP to identity providers (hosted Identity introspection, OpenID
//! discovery, JWKS): one client configuration and one bounded body reader,
//! so every upstream call has the same timeouts, refuses redirects and never
//! buffers more than its limit.

use std::time::Duration;

/// Why a request to an identity provider gave no usable answer. The
/// messages are fixed words: never a URL, a token or upstream text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamError {
    /// No answer within the timeout.
    Timeout,
    /// Connecting or sending failed.
    Connection,
    /// The body broke off.
    Body,
    /// The body exceeded the configured limit.
    TooLarge,
}

impl UpstreamError {
    /// A short fixed description.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connection => "connection failed",
            Self::Body => "response body failed",
            Self::TooLarge => "response too large",
        }
    }

    fn from_reqwest(e: &reqwest::Error, otherwise: Self) -> Self {
        if e.is_timeout() { Self::Timeout } else { otherwise }
    }
}

/// The client every identity-provider request uses: connect and total
/// timeouts, no redirects (a redirect is an answer we did not ask for),
/// authgate's user agent. Built once per verifier, at load time.
pub fn client(connect_timeout: Duration, timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("authgate/", env!("CARGO_PKG_VERSION")))
        .build()
        // The builder fails only if the TLS backend cannot initialise; the
        // default client then fails every request, which callers report as
        // the provider being unavailable.
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// [`client`] that also trusts the CAs in `ca_pem` (checked at load).
pub fn client_trusting(
    connect_timeout: Duration,
    timeout: Duration,
    ca_pem: Option<&[u8]>,
) -> reqwest::Client {
    let Some(pem) = ca_pem else { return client(connect_timeout, timeout) };
    let mut builder = reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("authgate/", env!("CARGO_PKG_VERSION")));
    for cert in reqwest::Certificate::from_pem_bundle(pem).unwrap_or_default() {
        builder = builder.add_root_certificate(cert);
    }
    // As in `client`: a failing TLS backend fails every request, reported
    // as the provider being unavailable.
    builder.build().unwrap_or_else(|_| reqwest::Client::new())
}

/// Sends `request` (an `Accept: application/json` GET built by the caller).
pub async fn send(request: reqwest::RequestBuilder) -> Result<reqwest::Response, UpstreamError> {
    request
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| UpstreamError::from_reqwest(&e, UpstreamError::Connection))
}

/// Reads the body, refusing more than `max_bytes`.
pub async fn body(mut response: reqwest::Response, max_bytes: usize) -> Result<Vec<u8>, UpstreamError> {
    let mut body = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|e| UpstreamError::from_reqwest(&e, UpstreamError::Body))?
    {
        if body.len() + chunk.len() > max_bytes {
            return Err(UpstreamError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
