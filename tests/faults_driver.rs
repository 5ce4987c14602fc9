//! The daemon with `driver.kind = "pwm"` on an emulated sysfs tree: duty cycles end to end,
//! and a channel failing mid-session (fault published, other outputs zero, commands refused
//! until the tree is repaired, then sessions run again).

#[allow(dead_code)]
mod support;

use support::daemon::DaemonProcess;
use support::sysfs::FakePwm;
use support::{Received, TIMEOUT, TestBroker, TestClient, is_state, json};

/// Slots in the default channel map: ten motors and the heater.
const CHANNELS: u32 = 11;
/// `frequency_hz = 1000`: a period of 1 ms.
const PERIOD_NS: u64 = 1_000_000;

fn wait_duties(pwm: &FakePwm, what: &str, predicate: impl Fn(&[u64]) -> bool) {
    let found = support::watch::poll(TIMEOUT, || predicate(&pwm.duties(CHANNELS)).then_some(()));
    assert!(found.is_some(), "{what}: duties {:?}", pwm.duties(CHANNELS));
}

/// A predicate on a received message.
type Want<'a> = (String, Box<dyn Fn(&Received) -> bool + 'a>);

/// One message matching each of `wants`, in any order: the daemon's outbox lets a waiting
/// state keep its place (latest wins), so a state may go out before or after the event or
/// response it belongs with.
async fn expect_all(client: &mut TestClient, wants: Vec<Want<'_>>) -> Vec<Received> {
    let mut found: Vec<Option<Received>> = wants.iter().map(|_| None).collect();
    while found.iter().any(Option::is_none) {
        let message = client.expect_any("#", TIMEOUT).await;
        for (slot, (topic, predicate)) in found.iter_mut().zip(&wants) {
            if slot.is_none() && message.topic == *topic && predicate(&message) {
                *slot = Some(message.clone());
                break;
            }
        }
    }
    found.into_iter().flatten().collect()
}

fn state_is<'a>(daemon: &DaemonProcess, state: &'a str) -> Want<'a> {
    (daemon.topic("state"), Box::new(move |m| is_state(m, state)))
}

fn response_to<'a>(daemon: &DaemonProcess, id: &'a str) -> Want<'a> {
    (
        daemon.topic("response"),
        Box::new(move |m| json(m)["id"] == id),
    )
}

/// Sends a command with an id and returns the daemon's response.
async fn command(
    client: &mut TestClient,
    daemon: &DaemonProcess,
    id: &str,
    body: &str,
) -> serde_json::Value {
    let payload = format!(r#"{{"id":"{id}",{body}}}"#);
    client.publish(&daemon.topic("set"), payload, false).await;
    let reply = client
        .expect(&daemon.topic("response"), |m| json(m)["id"] == id, TIMEOUT)
        .await;
    json(&reply)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pwm_channel_failing_mid_session_faults_and_recovers_after_repair() {
    let broker = TestBroker::start();
    let pwm = FakePwm::new(0);
    let daemon = DaemonProcess::spawn(
        &broker,
        &format!("{}\n[engine]\nramp_ms = 0\n", pwm.driver_toml()),
    );
    assert!(
        support::watch::wait_log(&daemon, "pwm driver open", 1, TIMEOUT),
        "daemon opens the emulated tree: {}",
        daemon.log()
    );
    let mut client = daemon.online_watcher(&broker, "pwm-watch").await;
    wait_duties(&pwm, "exported and zero at start-up", |d| {
        d.iter().all(|&v| v == 0)
    });

    // End to end: temple circles at 100 % drive pwm0 and pwm1 only; stop zeroes them.
    let start = r#""action":"start","routine":"temple-circles","intensity":100"#;
    assert_eq!(command(&mut client, &daemon, "s1", start).await["ok"], true);
    wait_duties(&pwm, "temples on", |d| {
        d[0] > 0
            && d[1] > 0
            && d[0] <= PERIOD_NS
            && d[1] <= PERIOD_NS
            && d[2..].iter().all(|&v| v == 0)
    });
    assert_eq!(
        command(&mut client, &daemon, "x1", r#""action":"stop""#).await["ok"],
        true
    );
    wait_duties(&pwm, "stop zeroes", |d| d.iter().all(|&v| v == 0));

    // Fault: pwm0's duty cycle stops being writable mid-session.
    assert_eq!(command(&mut client, &daemon, "s2", start).await["ok"], true);
    wait_duties(&pwm, "running again", |d| d[0] > 0 && d[1] > 0);
    pwm.break_duty_cycle(0);
    let fault_event: Want = (
        daemon.topic("event"),
        Box::new(|m| json(m)["event_type"] == "fault"),
    );
    let found = expect_all(&mut client, vec![fault_event, state_is(&daemon, "fault")]).await;
    let (event, state) = (json(&found[0]), json(&found[1]));
    assert_eq!(event["fault"]["code"], "driver_io", "{event}");
    assert_eq!(state["fault"]["code"], "driver_io", "{state}");
    let message = state["fault"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("pwm0/duty_cycle"),
        "the message names the file: {state}"
    );
    let duties = pwm.duties(CHANNELS);
    assert!(
        duties[1..].iter().all(|&v| v == 0),
        "every other output zero: {duties:?}"
    );

    let refused = command(&mut client, &daemon, "s3", start).await;
    assert_eq!(refused["code"], "fault_active", "{refused}");
    let refused = command(&mut client, &daemon, "c1", r#""action":"clear_fault""#).await;
    assert_eq!(refused["ok"], false, "still broken: {refused}");
    assert_eq!(refused["code"], "fault_active", "{refused}");
    let retained = client
        .retained(&daemon.topic("state"), TIMEOUT)
        .await
        .expect("state");
    assert!(String::from_utf8_lossy(&retained).contains(r#""state":"fault""#));

    pwm.repair_duty_cycle(0);
    client
        .publish(
            &daemon.topic("set"),
            r#"{"id":"c2","action":"clear_fault"}"#,
            false,
        )
        .await;
    let found = expect_all(
        &mut client,
        vec![response_to(&daemon, "c2"), state_is(&daemon, "idle")],
    )
    .await;
    let (cleared, state) = (json(&found[0]), json(&found[1]));
    assert_eq!(cleared["ok"], true, "{cleared}\n{}", daemon.log());
    assert!(state["fault"].is_null(), "{state}");
    let payload = format!(r#"{{"id":"s4",{start}}}"#);
    client.publish(&daemon.topic("set"), payload, false).await;
    let found = expect_all(
        &mut client,
        vec![response_to(&daemon, "s4"), state_is(&daemon, "running")],
    )
    .await;
    assert_eq!(json(&found[0])["ok"], true);
    wait_duties(&pwm, "a new session drives the repaired channel", |d| {
        d[0] > 0 && d[1] > 0
    });
    assert_eq!(
        command(&mut client, &daemon, "x2", r#""action":"stop""#).await["ok"],
        true
    );
    wait_duties(&pwm, "stopped", |d| d.iter().all(|&v| v == 0));
}
