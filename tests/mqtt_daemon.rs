//! The daemon's MQTT behaviour over real TCP, against the broker chosen by
//! `MASSAGED_TEST_BROKER` (embedded by default, `mosquitto` for a real Mosquitto).
//!
//! Every test runs its own broker and daemon process (the sim driver records every frame), so
//! the tests run in parallel and never see each other's messages.

#[allow(dead_code)]
mod support;

use serde_json::Value;
use std::time::{Duration, Instant};
use support::daemon::DaemonProcess;
use support::routine::{Step, routine_toml};
use support::{Received, TIMEOUT, TestBroker, TestClient};

/// A broker, a daemon connected to it and a client subscribed to everything the daemon
/// publishes, with the daemon's first availability, discovery (when enabled) and state consumed.
struct Rig {
    broker: TestBroker,
    daemon: DaemonProcess,
    client: TestClient,
    /// State messages received so far (including ones skipped while waiting for others).
    states_seen: usize,
    /// Every message received so far, as (topic, payload text).
    seen: Vec<(String, String)>,
}

impl Rig {
    async fn up(name: &str, extra_toml: &str) -> Rig {
        let broker = TestBroker::start();
        let daemon = DaemonProcess::spawn(&broker, extra_toml);
        Rig::attach(broker, daemon, name).await
    }

    /// A rig around `client`, nothing received yet.
    fn new(broker: TestBroker, daemon: DaemonProcess, client: TestClient) -> Rig {
        Rig {
            broker,
            daemon,
            client,
            states_seen: 0,
            seen: Vec::new(),
        }
    }

    async fn attach(broker: TestBroker, daemon: DaemonProcess, name: &str) -> Rig {
        let client = daemon.watcher(&broker, name).await;
        let mut rig = Rig::new(broker, daemon, client);
        rig.expect_text("availability", "online").await;
        rig.expect_state(|_| true).await;
        rig
    }

    fn topic(&self, leaf: &str) -> String {
        self.daemon.topic(leaf)
    }

    async fn send(&mut self, payload: impl Into<Vec<u8>>) {
        let topic = self.topic("set");
        self.client.publish(&topic, payload, false).await;
    }

    async fn expect_text(&mut self, leaf: &str, text: &str) {
        let topic = self.topic(leaf);
        self.expect_raw(&topic, |m| m.text() == text).await;
    }

    /// The next message on `topic` satisfying `predicate`, recording everything received.
    async fn expect_raw(&mut self, topic: &str, predicate: impl Fn(&Received) -> bool) -> Received {
        let state_topic = self.topic("state");
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = tokio::time::timeout(left, self.client.expect_any("#", 2 * TIMEOUT))
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no matching message on {topic} within {TIMEOUT:?}; skipped: {skipped:#?}\ndaemon log:\n{}",
                        self.daemon.log()
                    )
                });
            if message.topic == state_topic {
                self.states_seen += 1;
            }
            self.seen.push((message.topic.clone(), message.text()));
            if message.topic == topic && predicate(&message) {
                return message;
            }
            skipped.push(format!("{} = {}", message.topic, message.text()));
        }
    }

    /// Whether any message received so far on `{root}/{leaf}` satisfies `predicate`.
    fn saw(&self, leaf: &str, predicate: impl Fn(&str) -> bool) -> bool {
        let topic = self.topic(leaf);
        self.seen
            .iter()
            .any(|(t, text)| *t == topic && predicate(text))
    }

    /// The next message on `{root}/{leaf}` whose JSON satisfies `predicate`.
    async fn expect_json(&mut self, leaf: &str, predicate: impl Fn(&Value) -> bool) -> Value {
        let topic = self.topic(leaf);
        let message = self
            .expect_raw(&topic, |m| json(m).is_some_and(|v| predicate(&v)))
            .await;
        json(&message).expect("checked by the predicate")
    }

    async fn expect_state(&mut self, predicate: impl Fn(&Value) -> bool) -> Value {
        self.expect_json("state", predicate).await
    }

    /// The latest state if it already satisfies `predicate`, else the next that does: a state
    /// waiting in the daemon's outbox keeps its place (latest wins), so it may arrive before
    /// the response a test waited for first.
    async fn state_becomes(&mut self, predicate: impl Fn(&Value) -> bool) -> Value {
        let topic = self.topic("state");
        let latest = self
            .seen
            .iter()
            .rev()
            .find(|(t, _)| *t == topic)
            .and_then(|(_, text)| serde_json::from_str::<Value>(text).ok());
        match latest {
            Some(state) if predicate(&state) => state,
            _ => self.expect_state(predicate).await,
        }
    }

    async fn expect_event(&mut self, event_type: &str) -> Value {
        self.expect_json("event", |v| v["event_type"] == event_type)
            .await
    }

    /// The `rejected` event with `code`, then (when `id` is given) the response carrying it.
    async fn expect_rejected(&mut self, code: &str, id: Option<&str>) {
        let event = self.expect_event("rejected").await;
        assert_eq!(event["code"], code, "rejected event: {event}");
        assert!(
            event["message"].as_str().is_some_and(|m| !m.is_empty()),
            "rejected event has a message: {event}"
        );
        if let Some(id) = id {
            assert_eq!(event["id"], id, "rejected event carries the id: {event}");
            let response = self.expect_json("response", |v| v["id"] == id).await;
            assert_eq!(response["ok"], false, "{response}");
            assert_eq!(response["code"], code, "{response}");
            assert!(response["message"].is_string(), "{response}");
        }
    }

    async fn expect_ok(&mut self, id: &str) {
        let response = self.expect_json("response", |v| v["id"] == id).await;
        assert_eq!(
            response,
            serde_json::json!({"id": id, "ok": true}),
            "response to {id}"
        );
    }

    /// The retained state as a fresh client sees it.
    async fn retained_state(&self, name: &str) -> Value {
        let mut fresh = TestClient::connect(&self.broker, name).await;
        let payload = fresh
            .retained(&self.topic("state"), TIMEOUT)
            .await
            .expect("a retained state");
        serde_json::from_slice(&payload).expect("state is JSON")
    }
}

fn json(message: &Received) -> Option<Value> {
    serde_json::from_slice(&message.payload).ok()
}

fn any_output_on(frames: &[(u64, Vec<u16>)]) -> bool {
    frames
        .last()
        .is_some_and(|(_, levels)| levels.iter().any(|&l| l > 0))
}

fn all_outputs_off(frames: &[(u64, Vec<u16>)]) -> bool {
    frames
        .last()
        .is_some_and(|(_, levels)| levels.iter().all(|&l| l == 0))
}

/// Replaces every occurrence of `from` in the strings of `value` with `to`.
fn replace_strings(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::String(s) => *s = s.replace(from, to),
        Value::Array(items) => items.iter_mut().for_each(|v| replace_strings(v, from, to)),
        Value::Object(fields) => fields
            .values_mut()
            .for_each(|v| replace_strings(v, from, to)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_is_retained_on_connect() {
    let rig = Rig::up("discovery", "").await;
    let mut fresh = TestClient::connect(&rig.broker, "discovery-fresh").await;
    let payload = fresh
        .retained(&rig.daemon.discovery_topic(), TIMEOUT)
        .await
        .expect("discovery is retained");
    let mut discovery: Value = serde_json::from_slice(&payload).expect("discovery is JSON");
    // The id is random per test daemon; the version changes with every release.
    replace_strings(&mut discovery, &rig.daemon.device_id, "DEVICE_ID");
    replace_strings(&mut discovery, env!("CARGO_PKG_VERSION"), "VERSION");
    insta::assert_json_snapshot!("daemon_discovery", discovery);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_disabled_publishes_none() {
    let rig = Rig::up("no-discovery", "[homeassistant]\nenabled = false\n").await;
    // Availability, discovery and state go out together, state last: the state being
    // retained means a discovery would have been published already.
    rig.retained_state("no-discovery-state").await;
    let mut fresh = TestClient::connect(&rig.broker, "no-discovery-fresh").await;
    let discovery = fresh.retained(&rig.daemon.discovery_topic(), TIMEOUT).await;
    assert_eq!(discovery, None, "no discovery when disabled");
}

fn timestamp(value: &Value) -> jiff::Timestamp {
    value
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an RFC 3339 time: {value}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_command_runs_the_routine_and_stop_zeroes_the_outputs() {
    let mut rig = Rig::up("start-stop", "").await;
    let sent_at = jiff::Timestamp::now();
    rig.send(r#"{"action":"start","routine":"temple-circles","id":"x"}"#)
        .await;
    rig.expect_ok("x").await;
    let started = rig.expect_event("started").await;
    assert_eq!(started["routine"], "temple-circles", "{started}");
    assert_eq!(started["step_index"], 0, "{started}");
    let state = rig.expect_state(|s| s["state"] == "running").await;
    assert_eq!(state["routine"], "temple-circles", "{state}");
    assert_eq!(state["routine_name"], "Temple circles", "{state}");
    assert_eq!(state["step_index"], 0, "{state}");
    assert!(
        state["step"].as_str().is_some_and(|s| !s.is_empty()),
        "{state}"
    );
    let minutes = state["minutes"].as_i64().expect("minutes");
    let ends_at = timestamp(&state["ends_at"]);
    let expected = sent_at + jiff::SignedDuration::from_secs(minutes * 60);
    // ends_at is rounded to the second, and the command took a moment to arrive.
    let off = ends_at.duration_since(expected).as_secs_f64().abs();
    assert!(off <= 2.0, "ends_at {ends_at} vs expected {expected}");
    assert!(
        rig.daemon.wait_frames(TIMEOUT, any_output_on),
        "outputs come on: {}",
        rig.daemon.log()
    );

    rig.send("stop").await;
    let stopped = rig.expect_event("stopped").await;
    assert_eq!(stopped["routine"], "temple-circles", "{stopped}");
    let state = rig.expect_state(|s| s["state"] == "idle").await;
    assert_eq!(state["ends_at"], Value::Null, "{state}");
    assert_eq!(state["step"], Value::Null, "{state}");
    assert!(
        rig.daemon.wait_frames(TIMEOUT, all_outputs_off),
        "a zero frame after stop: {:?}",
        rig.daemon.last_frame()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_words_and_routine_by_display_name() {
    let mut rig = Rig::up("bare-words", "").await;
    rig.send(r#"{"routine":"Neck and ears","id":"pick"}"#).await;
    rig.expect_ok("pick").await;
    let state = rig.expect_state(|_| true).await;
    assert_eq!(state["state"], "idle", "{state}");
    assert_eq!(state["routine"], "neck-and-ears", "{state}");

    rig.send("start").await;
    let started = rig.expect_event("started").await;
    assert_eq!(started["routine"], "neck-and-ears", "{started}");
    rig.expect_state(|s| s["state"] == "running").await;

    rig.send(" Pause\n").await;
    rig.expect_event("paused").await;
    rig.expect_state(|s| s["state"] == "paused").await;

    rig.send("resume").await;
    rig.expect_event("resumed").await;
    rig.expect_state(|s| s["state"] == "running").await;

    rig.send("skip").await;
    let step = rig.expect_event("step").await;
    assert_eq!(step["step_index"], 1, "{step}");
    rig.expect_state(|s| s["step_index"] == 1).await;

    rig.send("stop").await;
    rig.expect_event("stopped").await;
    rig.expect_state(|s| s["state"] == "idle").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rejection_is_answered_and_changes_nothing() {
    let mut rig = Rig::up("rejections", "").await;
    let before = rig.retained_state("rejections-before").await;
    let frames_before = rig.daemon.frames().len();

    rig.send("{not json").await;
    rig.expect_rejected("invalid_json", None).await;
    rig.send(r#"{"action":"dance","id":"r1"}"#).await;
    rig.expect_rejected("unknown_action", Some("r1")).await;
    rig.send(r#"{"action":"start","routine":"no-such-routine","id":"r2"}"#)
        .await;
    rig.expect_rejected("unknown_routine", Some("r2")).await;
    rig.send(r#"{"action":"start","intensity":150,"id":"r3"}"#)
        .await;
    rig.expect_rejected("out_of_range", Some("r3")).await;
    rig.send(r#"{"minutes":0,"id":"r4"}"#).await;
    rig.expect_rejected("out_of_range", Some("r4")).await;
    rig.send(r#"{"action":"pause","id":"r5"}"#).await;
    rig.expect_rejected("not_running", Some("r5")).await;
    rig.send("resume").await;
    rig.expect_rejected("not_running", None).await;
    // Default mqtt.max_payload_bytes is 4096; a payload over it is refused unread.
    let big = format!(
        r#"{{"action":"start","id":"r6","routine":"{}"}}"#,
        "x".repeat(5000)
    );
    rig.send(big).await;
    rig.expect_rejected("too_large", None).await;

    // The only change a refusal makes is the state's last_message (its reason).
    let mut after = rig.retained_state("rejections-after").await;
    assert!(after["last_message"].is_string(), "{after}");
    after["last_message"] = before["last_message"].clone();
    assert_eq!(after, before, "state unchanged but for last_message");
    assert_eq!(rig.daemon.frames().len(), frames_before, "no frame written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relaxer_guard_refuses_a_start_unless_forced() {
    let mut rig = Rig::up("guard", "[guard]\ndays_before = 3\n").await;
    // Tomorrow is inside the window even if the daemon's date rolls over during the test.
    let tomorrow = jiff::Zoned::now().date().tomorrow().expect("a tomorrow");
    rig.send(format!(r#"{{"relaxer_date":"{tomorrow}","id":"date"}}"#))
        .await;
    rig.expect_ok("date").await;
    let guarded = rig.expect_state(|s| s["guard_active"] == true).await;
    assert_eq!(guarded["relaxer_date"], tomorrow.to_string(), "{guarded}");

    rig.send(r#"{"action":"start","routine":"temple-circles","id":"g1"}"#)
        .await;
    rig.expect_rejected("guard_active", Some("g1")).await;
    rig.send("start").await;
    rig.expect_rejected("guard_active", None).await;
    let mut after = rig.retained_state("guard-after").await;
    assert!(
        after["last_message"]
            .as_str()
            .is_some_and(|m| m.contains("relaxer guard")),
        "{after}"
    );
    after["last_message"] = guarded["last_message"].clone();
    assert_eq!(after, guarded, "unchanged but for last_message");

    rig.send(r#"{"action":"start","routine":"temple-circles","force":true,"id":"g2"}"#)
        .await;
    rig.expect_ok("g2").await;
    rig.expect_event("started").await;
    rig.expect_state(|s| s["state"] == "running").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_rate_limited_but_stop_still_gets_through() {
    // One token a second: the limiter's timing is proven in virtual time
    // (src/service/tests.rs); here only the wiring, whatever the machine's speed.
    let broker = TestBroker::start();
    let daemon = DaemonProcess::spawn_with_env(
        &broker,
        "",
        &[("MASSAGED__MQTT__RATE_LIMIT_PER_S", "1".as_ref())],
    );
    let mut rig = Rig::attach(broker, daemon, "flood").await;
    let started = Instant::now();
    // Default burst: 40.
    for n in 0..60 {
        rig.send(format!(r#"{{"action":"pause","id":"f{n}"}}"#))
            .await;
    }
    rig.send(r#"{"action":"stop","id":"stop"}"#).await;
    for n in 60..70 {
        rig.send(format!(r#"{{"action":"pause","id":"f{n}"}}"#))
            .await;
    }
    let mut codes = Vec::new();
    let mut stop = None;
    while codes.len() < 70 || stop.is_none() {
        let response = rig.expect_json("response", |_| true).await;
        if response["id"] == "stop" {
            stop = Some((codes.len(), response));
        } else {
            codes.push(response["code"].as_str().unwrap_or("").to_owned());
        }
    }
    let refills = started.elapsed().as_secs() as usize + 1;
    let (position, stop) = stop.expect("loop ends with it");
    assert_eq!(stop, serde_json::json!({"id": "stop", "ok": true}));
    // The link routes a stop ahead of commands still queued, never behind them.
    assert!(
        position <= 60,
        "stop answered after {position} commands sent after it"
    );
    assert!(
        codes[..40].iter().all(|c| c == "not_running"),
        "the burst passes the limiter: {codes:?}"
    );
    let limited = codes[40..].iter().filter(|c| *c == "rate_limited").count();
    assert!(
        limited + refills >= 30,
        "beyond the burst only refilled tokens pass: {codes:?}"
    );
    assert!(
        codes
            .iter()
            .all(|c| c == "not_running" || c == "rate_limited"),
        "{codes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_is_republished_every_progress_interval_while_running() {
    let mut rig = Rig::up("progress", "").await;
    rig.send(r#"{"action":"start","routine":"temple-circles"}"#)
        .await;
    let first = rig.expect_state(|s| s["state"] == "running").await;
    let first_at = Instant::now();
    assert_eq!(first["elapsed_s"], 0, "{first}");
    // The harness sets progress_interval_s = 1 and the first step lasts a minute, so nothing
    // but the progress timer publishes state now.
    let mut previous = first_at;
    for expected_elapsed in 1..=2 {
        let state = rig.expect_state(|_| true).await;
        let gap = previous.elapsed();
        previous = Instant::now();
        assert_eq!(state["state"], "running", "{state}");
        assert_eq!(state["elapsed_s"], expected_elapsed, "{state}");
        assert_eq!(state["ends_at"], first["ends_at"], "{state}");
        assert!(
            gap > Duration::from_millis(500) && gap < Duration::from_millis(1500),
            "republished about every second: {gap:?}"
        );
    }
}

const RETAINED_START: &str = r#"{"action":"start","routine":"temple-circles","id":"replayed"}"#;

/// Sees the retained command go by on `set` (the copy `copy` accepts) and the daemon clear
/// it; once a stop sent afterwards (id `sync`) is answered, `fresh` finds nothing retained.
async fn expect_command_cleared(
    rig: &mut Rig,
    fresh: &mut TestClient,
    set: &str,
    copy: impl Fn(&Received) -> bool,
    sync: &str,
) {
    rig.expect_raw(set, copy).await;
    // The daemon clears it with an empty retained publish, which subscribers see too.
    rig.expect_raw(set, |m| m.payload.is_empty()).await;
    // Commands are handled in order: once this is answered, the command was dealt with.
    rig.send(format!(r#"{{"action":"stop","id":"{sync}"}}"#))
        .await;
    rig.expect_ok(sync).await;
    assert_eq!(
        fresh.retained(set, TIMEOUT).await,
        None,
        "retained command cleared"
    );
}

/// No session started and no output came on, in all the test has seen so far.
fn assert_nothing_ran(rig: &Rig) {
    assert!(
        !rig.saw("event", |e| e.contains(r#""started""#)),
        "no session started: {:#?}",
        rig.seen
    );
    assert!(
        rig.daemon
            .frames()
            .iter()
            .all(|(_, l)| l.iter().all(|&v| v == 0)),
        "no output came on"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retained_command_is_never_executed_and_is_cleared() {
    let broker = TestBroker::start();
    // The first process only fixes the device id (and so the topics) before the real start.
    let mut first = DaemonProcess::spawn(&broker, "");
    first.kill();
    let set = first.topic("set");
    let mut client = TestClient::connect(&broker, "retained").await;
    client.publish(&set, RETAINED_START, true).await;
    client.subscribe(&format!("{}/#", first.root())).await;
    let mut fresh = TestClient::connect(&broker, "retained-fresh").await;
    let daemon = DaemonProcess::respawn(first, &broker, "");
    let mut rig = Rig::new(broker, daemon, client);
    let replayed = |m: &Received| m.retain && m.text() == RETAINED_START;
    expect_command_cleared(&mut rig, &mut fresh, &set, replayed, "sync").await;
    assert!(
        rig.daemon
            .log()
            .contains("retained command ignored and cleared"),
        "a warning is logged: {}",
        rig.daemon.log()
    );
    assert_nothing_ran(&rig);

    // A retained command published while the daemon runs. A broker forwards it to existing
    // subscribers as a live message; the daemon subscribes with "retain as published" (MQTT 5),
    // so it still sees the retain flag and ignores and clears it like a replayed one.
    rig.client.publish(&set, RETAINED_START, true).await;
    // The test client speaks MQTT 3.1.1, so its own copy arrives with the flag cleared.
    let live = |m: &Received| m.text() == RETAINED_START;
    expect_command_cleared(&mut rig, &mut fresh, &set, live, "sync2").await;
    assert_eq!(
        rig.daemon
            .log()
            .matches("retained command ignored and cleared")
            .count(),
        2,
        "{}",
        rig.daemon.log()
    );

    assert!(
        !rig.saw("response", |r| r.contains("replayed")),
        "{:#?}",
        rig.seen
    );
    let state = rig.retained_state("retained-state").await;
    assert_eq!(state["state"], "idle", "{state}");
    assert_nothing_ran(&rig);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_assistant_online_triggers_a_republish() {
    let mut rig = Rig::up("republish", "").await;
    let discovery = rig.daemon.discovery_topic();
    // Rig::up consumed availability, discovery and state.
    assert!(rig.seen.iter().any(|(topic, _)| *topic == discovery));

    // The random delay and its bounds are the service's, tested in virtual time.
    rig.client
        .publish("homeassistant/status", "online", false)
        .await;
    rig.expect_text("availability", "online").await;
    let config = rig.expect_raw(&discovery, |_| true).await;
    assert!(config.payload.len() > 1000, "the full discovery payload");
    let state = rig.expect_state(|_| true).await;
    assert_eq!(state["state"], "idle", "{state}");
}

/// A routine of four 2-second steps, so step events come quickly.
const QUICK_ROUTINE: [Step; 4] = [
    ("Quick one", "temples", "circles", 2),
    ("Quick two", "hairline", "circles", 2),
    ("Quick three", "crown", "knead", 2),
    ("Quick four", "neck", "press", 2),
];
const QUICK_STEP: Duration = Duration::from_secs(2);
const QUICK_STEPS: u32 = QUICK_ROUTINE.len() as u32;

/// Waits until the daemon's log contains `text`; fails with the log.
fn wait_log(daemon: &DaemonProcess, text: &str) {
    assert!(
        support::watch::wait_log(daemon, text, 1, TIMEOUT),
        "no '{text}' in the log: {}",
        daemon.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_session_reconnects_and_keeps_the_timing() {
    let quick = routine_toml(
        "quick-steps",
        "Quick steps",
        "Four short steps, for tests.",
        &QUICK_ROUTINE,
        "",
    );
    let mut rig = Rig::up("reconnect", &quick).await;
    rig.send(r#"{"action":"start","routine":"quick-steps","minutes":1,"id":"go"}"#)
        .await;
    rig.expect_ok("go").await;
    rig.expect_event("started").await;
    let started_at = Instant::now();
    let running = rig.expect_state(|s| s["state"] == "running").await;
    let ends_at = running["ends_at"].clone();

    rig.broker.kill();
    wait_log(&rig.daemon, "mqtt connection lost");
    // Keep the broker away for a second of session time, measured on the recording.
    let lost_at = rig.daemon.frames().last().map_or(0, |(t, _)| *t);
    assert!(
        rig.daemon.wait_frames(TIMEOUT, |f| f
            .last()
            .is_some_and(|(t, _)| *t >= lost_at + 1000)),
        "frames keep coming while the broker is away"
    );
    rig.broker.restart();

    // A fresh broker holds nothing retained: whatever a new client finds, the daemon published
    // after reconnecting.
    rig.client = rig.daemon.watcher(&rig.broker, "reconnect-after").await;
    rig.expect_text("availability", "online").await;
    let discovery = rig.daemon.discovery_topic();
    rig.expect_raw(&discovery, |_| true).await;
    let state = rig.expect_state(|s| s["state"] == "running").await;
    let mut fresh = TestClient::connect(&rig.broker, "reconnect-fresh").await;
    for topic in [rig.topic("availability"), discovery, rig.topic("state")] {
        assert!(
            fresh.retained(&topic, TIMEOUT).await.is_some(),
            "{topic} republished retained"
        );
    }
    assert_eq!(
        state["ends_at"], ends_at,
        "the session end did not move: {state}"
    );

    // Resubscribed: commands work again.
    rig.send(r#"{"intensity":80,"id":"after"}"#).await;
    rig.expect_ok("after").await;
    rig.expect_state(|s| s["intensity"] == 80).await;

    // The next step boundary comes on the schedule computed from the session start. Started
    // and step events take the same path, so their latencies cancel; 250 ms allows for
    // scheduling jitter on a loaded machine, while an outage that shifted the timing would
    // shift it by at least the second the broker was away.
    let step = rig.expect_event("step").await;
    let elapsed = started_at.elapsed();
    let boundaries = (elapsed.as_secs_f64() / QUICK_STEP.as_secs_f64()).round() as u32;
    let scheduled = QUICK_STEP * boundaries;
    let off = elapsed.abs_diff(scheduled);
    assert!(
        off < Duration::from_millis(250),
        "step event {elapsed:?} after start, boundary at {scheduled:?}: {step}"
    );
    assert_eq!(step["step_index"], boundaries % QUICK_STEPS, "{step}");

    // The device loop never waited on the broker: no gap in the 50 Hz frames.
    let frames = rig.daemon.frames();
    let longest_gap = frames
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .max()
        .unwrap_or(0);
    let session: Vec<_> = frames
        .iter()
        .skip_while(|(_, l)| l.iter().all(|&v| v == 0))
        .collect();
    assert!(session.len() > 50, "frames recorded: {}", session.len());
    assert!(
        longest_gap < 300,
        "longest gap between frames {longest_gap} ms"
    );

    rig.send("stop").await;
    rig.expect_event("stopped").await;
}

/// A PWM class directory whose 11 channels (10 motors and the heater) are already exported,
/// as after an earlier run, so the driver needs no emulated kernel to export them.
fn pwm_tree() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("temp dir");
    let chip = root.path().join("pwmchip0");
    std::fs::create_dir_all(&chip).expect("chip dir");
    for (name, value) in [("export", ""), ("unexport", ""), ("npwm", "16\n")] {
        std::fs::write(chip.join(name), value).expect("chip file");
    }
    for channel in 0..11 {
        let dir = chip.join(format!("pwm{channel}"));
        std::fs::create_dir_all(&dir).expect("channel dir");
        for (name, value) in [
            ("period", "0"),
            ("duty_cycle", "0"),
            ("enable", "0"),
            ("polarity", "normal"),
        ] {
            std::fs::write(dir.join(name), value).expect("channel file");
        }
    }
    root
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_fault_refuses_commands_until_cleared() {
    let tree = pwm_tree();
    // Appended inside the harness's [driver] table.
    let driver = format!(
        "kind = \"pwm\"\n\n[driver.pwm]\nsysfs_root = \"{}\"\n",
        tree.path().display()
    );
    let mut rig = Rig::up("fault", &driver).await;
    rig.send(r#"{"action":"start","routine":"temple-circles"}"#)
        .await;
    rig.expect_state(|s| s["state"] == "running").await;

    // The temples' first motor stops taking writes (its attribute turns into a directory).
    let duty = tree.path().join("pwmchip0/pwm0/duty_cycle");
    std::fs::remove_file(&duty).expect("remove duty_cycle");
    std::fs::create_dir(&duty).expect("break duty_cycle");
    let fault = rig.expect_event("fault").await;
    assert!(fault["fault"]["code"].is_string(), "{fault}");
    let state = rig.expect_state(|s| s["state"] == "fault").await;
    assert!(state["fault"]["message"].is_string(), "{state}");

    let states_before = rig.states_seen;
    rig.send(r#"{"action":"start","id":"f1"}"#).await;
    rig.expect_rejected("fault_active", Some("f1")).await;
    // The driver still fails, so clearing is refused by the daemon itself.
    rig.send(r#"{"action":"clear_fault","id":"f2"}"#).await;
    rig.expect_rejected("fault_active", Some("f2")).await;
    // At most the last_message states (one per new reason): no engine change.
    assert!(
        rig.states_seen <= states_before + 2,
        "only last_message states"
    );
    // Every other output is off (the broken one cannot be written at all).
    for channel in 1..11 {
        let path = tree
            .path()
            .join(format!("pwmchip0/pwm{channel}/duty_cycle"));
        let duty = std::fs::read_to_string(&path).expect("duty_cycle");
        assert_eq!(duty.trim(), "0", "{}", path.display());
    }

    std::fs::remove_dir(&duty).expect("repair duty_cycle");
    std::fs::write(&duty, "0").expect("repair duty_cycle");
    rig.send(r#"{"action":"clear_fault","id":"f3"}"#).await;
    rig.expect_ok("f3").await;
    let state = rig.state_becomes(|s| s["state"] == "idle").await;
    assert_eq!(state["fault"], Value::Null, "{state}");
}
