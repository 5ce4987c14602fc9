//! The daemon process under signals: outputs to zero, `offline` published, clean exit.

#[allow(dead_code)]
mod support;

use std::time::Duration;
use support::daemon::{DaemonProcess, START_WITH_HEAT};
use support::{TIMEOUT, TestBroker};

/// Waits for a recorded frame with an output on; fails with the daemon's log.
fn assert_outputs_come_on(daemon: &DaemonProcess) {
    assert!(
        daemon.wait_frames(TIMEOUT, |frames| frames
            .last()
            .is_some_and(|(_, l)| l.iter().any(|&v| v > 0))),
        "outputs come on: {}",
        daemon.log()
    );
}

/// The last recorded frame has every output at zero.
fn assert_last_frame_zero(daemon: &DaemonProcess, signal: &str) {
    let last = daemon.last_frame().expect("frames recorded");
    assert!(
        last.iter().all(|&l| l == 0),
        "{signal}: last frame is all zero: {last:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_session_zeroes_outputs_publishes_offline_and_exits_cleanly() {
    let broker = TestBroker::start();
    let (mut daemon, mut client) = DaemonProcess::spawn_online(&broker, "", "sigterm-test").await;
    daemon.command(&mut client, START_WITH_HEAT).await;
    client
        .expect(
            &daemon.topic("state"),
            |m| m.text().contains(r#""state":"running""#),
            TIMEOUT,
        )
        .await;
    assert_outputs_come_on(&daemon);

    daemon.signal("TERM");
    let status = daemon
        .wait_exit(Duration::from_secs(1))
        .expect("exits within a second");
    assert!(status.success(), "exit status {status:?}\n{}", daemon.log());
    daemon.expect_offline(&mut client).await;
    assert_last_frame_zero(&daemon, "SIGTERM");
    let saved = std::fs::read_to_string(daemon.state_path()).expect("state saved on exit");
    assert!(
        saved.contains(r#""sessions_total": 1"#) || saved.contains(r#""sessions_total":1"#),
        "{saved}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_and_sigquit_stop_the_session_like_sigterm() {
    for name in ["HUP", "QUIT"] {
        let broker = TestBroker::start();
        let (mut daemon, mut client) =
            DaemonProcess::spawn_online(&broker, "", &format!("sig-{name}")).await;
        daemon
            .command(
                &mut client,
                r#"{"action":"start","routine":"temple-circles"}"#,
            )
            .await;
        assert_outputs_come_on(&daemon);
        daemon.signal(name);
        let status = daemon.wait_exit(TIMEOUT).expect("exits");
        assert!(status.success(), "SIG{name}: {status:?}\n{}", daemon.log());
        daemon.expect_offline(&mut client).await;
        assert_last_frame_zero(&daemon, &format!("SIG{name}"));
        assert!(
            daemon.log().contains(&format!("signal=\"SIG{name}\""))
                || daemon.log().contains(&format!("signal=SIG{name}")),
            "{}",
            daemon.log()
        );
    }
}
