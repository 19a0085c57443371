//! Credential extraction from a header map: `name: value` lines, merged as
//! the adapters merge received headers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut view = authgate::testing::Headers::new();
    let mut token = "";
    for (i, line) in text.split('\n').enumerate() {
        if i == 0 {
            token = line;
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            view.add(name, value.trim_start());
        }
    }
    let _ = authgate::testing::extract((!token.is_empty()).then_some(token), &view);
    let _ = authgate::testing::find_header(&view);
    let _ = authgate::testing::client_address(&view, 1, Some("192.0.2.1"));
});
