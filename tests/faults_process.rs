//! The daemon process stopped or killed mid-session, and heat with a real process: outputs
//! zero, availability, saved settings and counters, no session resumed after a restart.

#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};
use support::daemon::{DaemonProcess, START_WITH_HEAT};
use support::watch::wait_saved;
use support::{TIMEOUT, TestBroker, TestClient, is_state, json};

/// Slot of the heater in the default channel map.
const HEAT_SLOT: usize = 10;

fn any_motor_on(levels: &[u16]) -> bool {
    levels[..HEAT_SLOT].iter().any(|&l| l > 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_zeroes_outputs_within_one_frame_publishes_offline_and_saves_counters() {
    // 5 frames per second: one frame is 200 ms, long enough to tell "at once" from "at the
    // next frame" on a loaded machine.
    const FRAME_HZ: u64 = 5;
    const FRAME_MS: u64 = 1000 / FRAME_HZ;
    let broker = TestBroker::start();
    let (mut daemon, mut client) = DaemonProcess::spawn_online(
        &broker,
        "[engine]\nframe_hz = 5\nramp_ms = 0\n",
        "term-watch",
    )
    .await;
    daemon
        .command(
            &mut client,
            r#"{"action":"start","routine":"temple-circles"}"#,
        )
        .await;
    // Running for over a second, so the session adds to massage_seconds_total.
    assert!(
        daemon.wait_frames(TIMEOUT, |f| {
            let start = f.iter().find(|(_, l)| any_motor_on(l)).map(|(t, _)| *t);
            start.is_some_and(|s| {
                f.last()
                    .is_some_and(|(t, l)| *t >= s + 1200 && any_motor_on(l))
            })
        }),
        "{}",
        daemon.log()
    );
    // Signal right after a frame was recorded: that frame's time bounds the signal's from below.
    let rows = daemon.frames().len();
    assert!(
        daemon.wait_frames(TIMEOUT, |f| f.len() > rows),
        "{}",
        daemon.log()
    );
    let before_signal = daemon.frames();
    daemon.signal("TERM");
    let status = daemon.wait_exit(TIMEOUT).expect("exits");
    assert!(status.success(), "{status:?}: {}", daemon.log());

    let (last_on_ms, levels) = before_signal.last().cloned().expect("frames");
    assert!(any_motor_on(&levels), "on before the signal: {levels:?}");
    let frames = daemon.frames();
    let after: Vec<&(u64, Vec<u16>)> = frames[before_signal.len()..].iter().collect();
    let (zero_ms, _) = after
        .iter()
        .find(|(_, l)| l.iter().all(|&v| v == 0))
        .unwrap_or_else(|| panic!("a zero frame after the signal: {after:?}"));
    // No frame with a motor on after the signal, and the recording ends at zero.
    assert!(
        after.iter().all(|(_, l)| !any_motor_on(l)),
        "frames after SIGTERM: {after:?}"
    );
    assert!(frames.last().unwrap().1.iter().all(|&v| v == 0));
    // signal -> zero <= zero - last frame before the signal. One frame period plus 50 ms for
    // reading the recording, sending the signal and scheduling on a shared machine; a
    // shutdown that waited for the next frame tick or for the broker would exceed it.
    let delay = zero_ms - last_on_ms;
    eprintln!("zero row {delay} ms after the last frame recorded before SIGTERM");
    assert!(
        delay <= FRAME_MS + 50,
        "zero {delay} ms after the last frame"
    );

    daemon.expect_offline(&mut client).await;
    let saved = wait_saved(&daemon, Duration::ZERO, |_| true).expect("state.json written");
    assert_eq!(saved["sessions_total"], 1, "{saved}");
    assert!(
        saved["massage_seconds_total"]
            .as_u64()
            .is_some_and(|s| s >= 1),
        "the stopped session counts: {saved}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_leaves_last_will_offline_and_a_restart_starts_idle_with_saved_settings() {
    let broker = TestBroker::start();
    let (mut daemon, mut client) = DaemonProcess::spawn_online(&broker, "", "kill-watch").await;
    daemon
        .command(&mut client, r#"{"routine":"neck-and-ears","intensity":37}"#)
        .await;
    daemon.command(&mut client, r#"{"action":"start"}"#).await;
    client
        .expect(&daemon.topic("state"), |m| is_state(m, "running"), TIMEOUT)
        .await;
    assert!(
        daemon.wait_frames(TIMEOUT, |f| f.last().is_some_and(|(_, l)| any_motor_on(l))),
        "{}",
        daemon.log()
    );
    let saved = wait_saved(&daemon, TIMEOUT, |v| v["sessions_total"] == 1)
        .unwrap_or_else(|| panic!("session counted on disk: {}", daemon.log()));
    assert_eq!(saved["intensity"], 37, "{saved}");

    daemon.kill();
    daemon.expect_offline(&mut client).await;
    let mut late = TestClient::connect(&broker, "kill-late").await;
    assert_eq!(
        late.retained(&daemon.topic("availability"), TIMEOUT)
            .await
            .as_deref(),
        Some(&b"offline"[..]),
        "the last will is retained"
    );

    let daemon = DaemonProcess::respawn(daemon, &broker, "");
    // Published on connecting, in this order: availability, discovery, state.
    client
        .expect_text(&daemon.topic("availability"), "online")
        .await;
    let state = client
        .expect(
            &daemon.topic("state"),
            |m| !m.retain && json(m)["state"].is_string(),
            TIMEOUT,
        )
        .await;
    let state = json(&state);
    assert_eq!(state["state"], "idle", "no session resumes: {state}");
    assert_eq!(state["routine"], "neck-and-ears", "{state}");
    assert_eq!(state["intensity"], 37, "{state}");
    assert_eq!(state["sessions_total"], 1, "{state}");
    let frames = daemon.frames();
    let first = frames.first().expect("a frame at start-up");
    assert!(first.1.iter().all(|&l| l == 0), "first frame {first:?}");
    assert!(
        frames.iter().all(|(_, l)| l.iter().all(|&v| v == 0)),
        "nothing turned on after the restart: {frames:?}"
    );
    // The file on disk still holds what was saved before the kill.
    let saved = wait_saved(&daemon, Duration::ZERO, |_| true).expect("state.json");
    assert_eq!(saved["routine"], "neck-and-ears", "{saved}");
    assert_eq!(saved["sessions_total"], 1, "{saved}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heat_alone_turns_the_heater_on_and_a_heated_session_ends_with_it_off() {
    let broker = TestBroker::start();
    let (daemon, mut client) =
        DaemonProcess::spawn_online(&broker, "[engine]\nramp_ms = 0\n", "heat-watch").await;
    let heater = |f: &[(u64, Vec<u16>)]| f.last().map(|(_, l)| l[HEAT_SLOT]);

    daemon.command(&mut client, r#"{"heat":true}"#).await;
    let state = client
        .expect(&daemon.topic("state"), |m| json(m)["heat"] == true, TIMEOUT)
        .await;
    assert_eq!(json(&state)["state"], "idle");
    assert!(
        daemon.wait_frames(TIMEOUT, |f| heater(f).is_some_and(|h| h > 0)),
        "heater on alone: {:?}",
        daemon.last_frame()
    );
    assert!(
        !any_motor_on(&daemon.last_frame().unwrap()),
        "heat alone moves no motor"
    );
    daemon.command(&mut client, r#"{"heat":false}"#).await;
    assert!(daemon.wait_frames(TIMEOUT, |f| heater(f) == Some(0)));

    let started = Instant::now();
    daemon.command(&mut client, START_WITH_HEAT).await;
    assert!(
        daemon.wait_frames(TIMEOUT, |f| f
            .last()
            .is_some_and(|(_, l)| l[HEAT_SLOT] > 0 && any_motor_on(l))),
        "heater and motors on in the session: {:?}",
        daemon.last_frame()
    );
    daemon.command(&mut client, r#"{"action":"stop"}"#).await;
    let state = client
        .expect(&daemon.topic("state"), |m| is_state(m, "idle"), TIMEOUT)
        .await;
    assert_eq!(json(&state)["heat"], false, "{}", state.text());
    assert!(
        daemon.wait_frames(TIMEOUT, |f| f
            .last()
            .is_some_and(|(_, l)| l.iter().all(|&v| v == 0))),
        "everything off when the session ends: {:?}",
        daemon.last_frame()
    );
    eprintln!("heated session checked in {:?}", started.elapsed());
}
