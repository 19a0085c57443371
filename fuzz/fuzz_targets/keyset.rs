//! Public keys from a JWKS document and from PEM text.
#![no_main]

use authgate::config::JwsAlg;
use authgate::testing::KeySet;
use libfuzzer_sys::fuzz_target;

const ALL: [JwsAlg; 4] = [JwsAlg::RS256, JwsAlg::PS256, JwsAlg::ES256, JwsAlg::EdDSA];

fuzz_target!(|data: &[u8]| {
    if let Ok((set, _skipped)) = KeySet::from_jwks(data, &ALL) {
        for alg in ALL {
            let _ = set.lookup(None, alg);
            let _ = set.lookup(Some("k"), alg);
        }
    }
    let text = String::from_utf8_lossy(data).into_owned();
    let _ = KeySet::from_pems(&[("k".to_string(), text)], &ALL);
});
