//! The Identity webhook before the store: the signature over arbitrary
//! bytes (first line: the header; the rest: the body), and, with the first
//! byte 0, arbitrary bodies under a valid signature, so the event parser
//! sees them.
#![no_main]

use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"webhook-fuzz-secret-0123456789";
const NOW: i64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    if let Some((&0, body)) = data.split_first() {
        let signature = authgate::testing::sign_webhook(SECRET, "instance", body, NOW);
        let _ = authgate::testing::inspect_webhook(SECRET, Some("instance"), &signature, body, NOW);
        return;
    }
    let (head, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let signature = String::from_utf8_lossy(head);
    let _ = authgate::testing::inspect_webhook(SECRET, None, &signature, body, NOW);
});
