//! Forward-auth header flattening (bytes a proxy forwards, names and values
//! of any bytes), then what the edge does with the result.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut headers = http::HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else { continue };
        let (Ok(name), Ok(value)) =
            (http::HeaderName::from_bytes(&line[..colon]), http::HeaderValue::from_bytes(&line[colon + 1..]))
        else {
            continue;
        };
        headers.append(name, value);
    }
    let Ok(view) = authgate::testing::flatten(&headers) else { return };
    let _ = authgate::testing::extract(None, &view);
    let _ = authgate::testing::find_header(&view);
    if let Some(cookie) = view.joined("cookie", "; ") {
        let _ = authgate::testing::strip_cookies(&cookie, &["nf_jwt".to_string(), "nf_refresh".to_string()]);
    }
    for (_, value) in view.iter() {
        if let Some(encoded) = authgate::testing::header_value(value) {
            assert!(http::HeaderValue::from_str(&encoded).is_ok(), "an encoded value is not a header value");
        }
    }
});
