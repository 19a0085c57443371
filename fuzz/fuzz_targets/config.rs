//! Config parsing and validation of arbitrary TOML: every error reported,
//! never a panic. (Secrets named by `*_file` keys are read; nothing is
//! written, since a config path is always given.)
#![no_main]

use libfuzzer_sys::fuzz_target;

mod support;

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = support::load_config(data, "config") {
        let _ = config.render_redacted();
    }
});
