//! Compact JWS parsing before any key: split, header, routing peek, claims.
#![no_main]

use authgate::testing::Claims;
use authgate::testing::CompactJws;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let Ok(jws) = CompactJws::parse(token, 16 * 1024) else { return };
    let _ = jws.peek_issuer_unverified();
    let mut buf = authgate::testing::signature_buffer();
    let _ = jws.signature(&mut buf);
    if let Ok(payload) = jws.payload_bytes()
        && let Ok(claims) = Claims::from_slice(&payload)
    {
        let _ = claims.numeric_date("exp");
        let _ = claims.audiences();
        let _ = claims.subject();
        let _ = claims.session();
    }
});
