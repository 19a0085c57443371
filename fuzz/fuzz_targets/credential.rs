//! Credential extraction from a header map: `name: value` lines, merged as
//! the adapters merge received headers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut view = HashMap::new();
    let mut token = "";
    for (i, line) in text.split('\n').enumerate() {
        if i == 0 {
            token = line;
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            authgate::credential::add_header(&mut view, name, value.trim_start().to_string());
        }
    }
    let _ = authgate::credential::extract((!token.is_empty()).then_some(token), &view);
    let _ = authgate::verify::nf_sign::find_header(&view);
    let _ = authgate::edge::client_address(&view, 1, Some("192.0.2.1"));
});
