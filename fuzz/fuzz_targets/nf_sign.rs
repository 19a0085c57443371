//! `x-nf-sign` verification with a configured secret, replay protection on.
#![no_main]

use authgate::testing::{ProxyVerifier, ReplayCache};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

mod support;

fn verifier() -> &'static ProxyVerifier {
    static VERIFIER: OnceLock<ProxyVerifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let config = support::load_config(
            b"[signed_proxy]\nsecret = \"fuzz-signed-proxy-secret-0123456789\"\nreplay_protection = true\n\
              [[issuers]]\nname = \"site\"\nsecret = \"fuzz-user-secret-0123456789\"\n",
            "nf-sign",
        )
        .expect("valid config");
        let proxy = config.signed_proxy.as_ref().expect("signed_proxy");
        ProxyVerifier::new(proxy, &ReplayCache::new(1000))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else { return };
    let _ = verifier().verify(header, 1_800_000_000);
});
