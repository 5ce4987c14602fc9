//! A panic in the daemon's shell unwinds and the drivers' `Drop` turns the outputs off.
//!
//! The daemon panics on purpose only in debug builds (which `cargo test` builds), when a
//! command equals `MASSAGED_DEBUG_PANIC_ON`. Release builds keep `panic = "unwind"`, checked
//! here in Cargo.toml, so the same `Drop` runs there.

#[allow(dead_code)]
mod support;

use support::daemon::{DaemonProcess, START_WITH_HEAT};
use support::{TIMEOUT, TestBroker};

const TRIGGER: &str = "deliberate-panic-for-test";

#[test]
fn release_profile_unwinds_on_panic() {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .expect("Cargo.toml");
    let manifest: toml::Table = toml::from_str(&manifest).expect("Cargo.toml parses");
    let panic = manifest
        .get("profile")
        .and_then(|p| p.get("release"))
        .and_then(|r| r.get("panic"))
        .and_then(|p| p.as_str());
    // "abort" would skip every Drop, and with it the outputs-off of the drivers.
    assert!(
        matches!(panic, None | Some("unwind")),
        "profile.release.panic = {panic:?}"
    );
}

#[test]
fn panic_mid_session_zeroes_outputs_and_leaves_the_will() {
    // SAFETY: set before this test starts any thread of its own, and this binary's other test
    // reads no environment; the daemon child inherits the variable.
    unsafe { std::env::set_var("MASSAGED_DEBUG_PANIC_ON", TRIGGER) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let broker = TestBroker::start();
        let (mut daemon, mut client) =
            DaemonProcess::spawn_online(&broker, "[engine]\nramp_ms = 0\n", "panic-watch").await;
        daemon.command(&mut client, START_WITH_HEAT).await;
        assert!(
            daemon.wait_frames(TIMEOUT, |f| f.last().is_some_and(|(_, l)| l
                .iter()
                .filter(|&&v| v > 0)
                .count()
                >= 2)),
            "motors and heater on: {}",
            daemon.log()
        );
        daemon.command(&mut client, TRIGGER).await;
        let status = daemon
            .wait_exit(TIMEOUT)
            .expect("the panic ends the process");
        assert!(!status.success(), "{status:?}");
        assert!(
            daemon.log().contains("deliberate panic"),
            "{}",
            daemon.log()
        );
        let last = daemon.last_frame().expect("frames");
        assert!(
            last.iter().all(|&v| v == 0),
            "unwinding zeroed the outputs: {last:?}"
        );
        daemon.expect_offline(&mut client).await;
    });
}
