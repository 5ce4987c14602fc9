//! Waiting on a daemon's log and saved state, with a timeout (files have no change events).

use super::daemon::DaemonProcess;
use std::time::{Duration, Instant};

/// Polls `probe` every few milliseconds until it returns `Some`, at most `timeout`.
pub fn poll<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        // Polling a file for a condition; there is no notification to wait on.
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until the daemon's log contains `needle` at least `count` times.
pub fn wait_log(daemon: &DaemonProcess, needle: &str, count: usize, timeout: Duration) -> bool {
    poll(timeout, || {
        (daemon.log().matches(needle).count() >= count).then_some(())
    })
    .is_some()
}

/// Waits until `state.json` parses and satisfies `predicate`; returns it.
pub fn wait_saved(
    daemon: &DaemonProcess,
    timeout: Duration,
    predicate: impl Fn(&serde_json::Value) -> bool,
) -> Option<serde_json::Value> {
    poll(timeout, || {
        let text = std::fs::read_to_string(daemon.state_path()).ok()?;
        let value: serde_json::Value = serde_json::from_str(&text).ok()?;
        predicate(&value).then_some(value)
    })
}
