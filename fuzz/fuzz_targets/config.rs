//! The config loader on arbitrary text: TOML, then after a NUL byte `NAME=VALUE` environment
//! lines. Never panics; every error names a key or a line; a loaded config builds an engine.
#![no_main]

#[path = "../src/checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((text, env)) = checks::split_config_input(data) else {
        return;
    };
    if let Err(broken) = checks::check_config(text, &env) {
        panic!("{broken}");
    }
});
