//! The MQTT command parser on arbitrary bytes: never panics, every rejection is well formed.
#![no_main]

#[path = "../src/checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The daemon's limit, and one the input straddles, so the size check is crossed too.
    for max in [
        checks::MAX_PAYLOAD,
        data.len().saturating_sub(1),
        usize::MAX,
    ] {
        if let Err(broken) = checks::check_command(data, max) {
            panic!("{broken}");
        }
    }
});
