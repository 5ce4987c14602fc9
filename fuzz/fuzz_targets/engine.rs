//! Parse, then apply to an engine: a script of command payloads, `@N` (advance N seconds) and
//! `!fault` lines. A rejected command changes nothing and outputs nothing; stop zeroes at once.
#![no_main]

#[path = "../src/checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(broken) = checks::EngineRun::script(data) {
        panic!("{broken}");
    }
});
