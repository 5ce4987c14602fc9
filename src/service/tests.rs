//! Every policy of the service in virtual time: instants are built by arithmetic, nothing sleeps.

use super::*;
use crate::config::builtin_routines;
use crate::core::{Counters, EngineConfig, Settings};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn settings(relaxer_date: Option<Date>) -> Settings {
    Settings {
        routine: "temple-circles".into(),
        intensity: 50,
        minutes: 10,
        heat: false,
        relaxer_date,
    }
}

fn config(watchdog: Option<Duration>) -> ServiceConfig {
    ServiceConfig {
        topics: Topics::new("massaged", "dev", "homeassistant"),
        discovery: Some("{\"discovery\":true}".into()),
        clock: WallClock::new(Instant::now(), SystemTime::UNIX_EPOCH),
        rate_limit_per_s: 10,
        rate_limit_burst: 5,
        max_payload_bytes: 4096,
        save_debounce: ms(50),
        watchdog,
        broker: "broker:1883".into(),
        routine_picture: false,
    }
}

fn service_with(t0: Instant, settings: Settings, config: ServiceConfig, seed: u64) -> Service {
    let engine = Engine::new(
        EngineConfig::default(),
        builtin_routines(),
        settings.clone(),
        Counters::default(),
    )
    .expect("engine");
    let saved = SavedState::new(&settings, Counters::default());
    Service::new(t0, engine, saved, config, fastrand::Rng::with_seed(seed))
}

/// A service connected at `t0`, with its start-up actions drained.
fn connected(t0: Instant) -> Service {
    let mut service = service_with(t0, settings(None), config(None), 1);
    service.handle_link(t0, LinkInput::Connected);
    drain(&mut service);
    service
}

fn drain(service: &mut Service) -> Vec<Action> {
    std::iter::from_fn(|| service.poll_action()).collect()
}

fn command(service: &mut Service, now: Instant, payload: &str) -> Vec<Action> {
    service.handle_link(now, message("massaged/dev/set", payload, false));
    drain(service)
}

fn message(topic: &str, payload: &str, retain: bool) -> LinkInput {
    LinkInput::Message {
        topic: topic.into(),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        retain,
    }
}

fn publishes<'a>(actions: &'a [Action], topic: &'a str) -> impl Iterator<Item = &'a Publish> {
    actions.iter().filter_map(move |a| match a {
        Action::Publish(p) if p.topic == topic => Some(p),
        _ => None,
    })
}

fn texts(actions: &[Action], topic: &str) -> Vec<String> {
    publishes(actions, topic)
        .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
        .collect()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("JSON")
}

/// Runs the service's timers up to `until`, in virtual time; returns every action.
fn run_until(service: &mut Service, until: Instant) -> Vec<Action> {
    let mut actions = drain(service);
    while let Some(due) = service.poll_timeout().filter(|due| *due <= until) {
        service.handle_timeout(due);
        actions.extend(drain(service));
    }
    actions
}

/// Everything logged while `f` runs, as text lines.
fn logs<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("sink").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let result = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&sink.0.lock().expect("sink")).into_owned();
    (result, text.lines().map(str::to_owned).collect())
}

#[test]
fn a_retained_command_is_cleared_never_executed() {
    let t0 = Instant::now();
    let mut service = connected(t0);
    let start = r#"{"action":"start","id":"replayed"}"#;
    let (actions, lines) = logs(|| {
        service.handle_link(t0, message("massaged/dev/set", start, true));
        drain(&mut service)
    });
    let cleared: Vec<_> = publishes(&actions, "massaged/dev/set").collect();
    assert_eq!(cleared.len(), 1, "{actions:?}");
    assert!(cleared[0].payload.is_empty() && cleared[0].retain);
    assert_eq!(cleared[0].delivery, Delivery::Latest);
    assert!(!actions.iter().any(|a| matches!(a, Action::WriteFrame(_))));
    assert!(texts(&actions, "massaged/dev/response").is_empty());
    assert_eq!(service.state(), SessionState::Idle);
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("retained command ignored and cleared"))
            .count(),
        1
    );
    // Our own clearing comes back empty and retained: nothing happens.
    service.handle_link(t0, message("massaged/dev/set", "", true));
    assert!(drain(&mut service).is_empty());
}

#[test]
fn an_empty_live_command_is_refused_as_invalid_json() {
    let t0 = Instant::now();
    let mut service = connected(t0);
    let actions = command(&mut service, t0, "");
    let events = texts(&actions, "massaged/dev/event");
    assert_eq!(events.len(), 1, "{actions:?}");
    assert_eq!(json(&events[0])["code"], "invalid_json");
}

#[test]
fn the_rate_limit_refuses_a_flood_but_never_a_stop_and_logs_once_per_second() {
    let t0 = Instant::now();
    let mut service = connected(t0);
    let (codes, lines) = logs(|| {
        let mut codes = Vec::new();
        // 100 pauses within 10 ms: the burst of 5 passes (and is refused as not running).
        for n in 0..100u64 {
            let at = t0 + Duration::from_micros(n * 100);
            let actions = command(
                &mut service,
                at,
                &format!(r#"{{"action":"pause","id":"p{n}"}}"#),
            );
            let reply = texts(&actions, "massaged/dev/response");
            codes.push(json(&reply[0])["code"].as_str().unwrap_or("").to_owned());
        }
        // A stop inside the flood is accepted at once, and critical.
        let actions = command(&mut service, t0 + ms(10), r#"{"action":"stop","id":"s"}"#);
        let reply: Vec<_> = publishes(&actions, "massaged/dev/response").collect();
        assert_eq!(
            json(&String::from_utf8_lossy(&reply[0].payload)),
            serde_json::json!({"id":"s","ok":true})
        );
        assert_eq!(reply[0].delivery, Delivery::Critical);
        // The final count of unlogged refusals comes one second after the first line.
        let actions = run_until(&mut service, t0 + ms(1000));
        assert!(actions.is_empty(), "{actions:?}");
        codes
    });
    assert!(codes[..5].iter().all(|c| c == "not_running"), "{codes:?}");
    assert!(codes[5..].iter().all(|c| c == "rate_limited"), "{codes:?}");
    let rejected: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("command rejected"))
        .collect();
    assert_eq!(rejected.len(), 1, "one line for 100 refusals: {lines:#?}");
    let summary: Vec<_> = lines.iter().filter(|l| l.contains("not logged")).collect();
    assert_eq!(summary.len(), 1, "{lines:#?}");
    assert!(summary[0].contains("count=99"), "{}", summary[0]);
    // 100 ms later one token is back (10 per second).
    let actions = command(
        &mut service,
        t0 + ms(1100),
        r#"{"action":"pause","id":"later"}"#,
    );
    let reply = texts(&actions, "massaged/dev/response");
    assert_eq!(json(&reply[0])["code"], "not_running");
}

#[test]
fn a_thousand_births_give_one_republish_after_a_seeded_delay_and_one_log_line() {
    let t0 = Instant::now();
    let delay_for = |seed| {
        let mut service = service_with(t0, settings(None), config(None), seed);
        service.handle_link(t0, LinkInput::Connected);
        drain(&mut service);
        service.handle_link(t0, message("homeassistant/status", "online", false));
        service.poll_timeout().map(|due| due - t0)
    };
    let delay = delay_for(7).expect("a republish is scheduled");
    assert_eq!(delay_for(7), Some(delay), "same seed, same delay");
    assert!(
        (200..2500).contains(&(delay.as_millis() as u64)),
        "{delay:?}"
    );
    assert!(
        (0..20).any(|seed| delay_for(seed) != Some(delay)),
        "the delay is random"
    );

    let mut service = service_with(t0, settings(None), config(None), 7);
    service.handle_link(t0, LinkInput::Connected);
    drain(&mut service);
    let (actions, lines) = logs(|| {
        for n in 0..1000 {
            service.handle_link(t0 + ms(n), message("homeassistant/status", "online", false));
        }
        // "offline" is not a birth.
        service.handle_link(t0, message("homeassistant/status", "offline", false));
        let before = run_until(&mut service, t0 + delay - ms(1));
        assert!(before.is_empty(), "nothing before the delay: {before:?}");
        run_until(&mut service, t0 + ms(10_000))
    });
    assert_eq!(texts(&actions, "massaged/dev/availability"), ["online"]);
    assert_eq!(
        publishes(&actions, "homeassistant/device/dev/config").count(),
        1
    );
    assert_eq!(publishes(&actions, "massaged/dev/state").count(), 1);
    assert!(
        publishes(&actions, "massaged/dev/availability")
            .all(|p| p.retain && p.delivery == Delivery::Latest)
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("home assistant online"))
            .count(),
        1,
        "{lines:#?}"
    );
}

#[test]
fn ready_goes_out_after_the_first_attempt_or_at_the_deadline() {
    let t0 = Instant::now();
    let ready = |actions: &[Action]| {
        actions
            .iter()
            .filter(|a| matches!(a, Action::Notify(Notice::Ready)))
            .count()
    };
    // A failed first attempt counts as an attempt.
    let mut service = service_with(t0, settings(None), config(None), 1);
    drain(&mut service);
    service.handle_link(
        t0 + ms(300),
        LinkInput::Disconnected {
            reason: "refused".into(),
        },
    );
    assert_eq!(ready(&drain(&mut service)), 1);
    service.handle_link(t0 + ms(400), LinkInput::Connected);
    assert_eq!(
        ready(&run_until(&mut service, t0 + ms(10_000))),
        0,
        "only once"
    );

    // No answer at all: READY at the 5 s deadline, not before.
    let mut service = service_with(t0, settings(None), config(None), 1);
    drain(&mut service);
    assert_eq!(service.poll_timeout(), Some(t0 + ready::READY_DEADLINE));
    assert_eq!(ready(&run_until(&mut service, t0 + ms(4999))), 0);
    assert_eq!(ready(&run_until(&mut service, t0 + ms(5000))), 1);
    service.handle_link(t0 + ms(6000), LinkInput::Connected);
    assert_eq!(ready(&drain(&mut service)), 0);
    assert_eq!(service.poll_timeout(), None, "idle: no timer left");
}

#[test]
fn the_watchdog_is_due_every_interval() {
    let t0 = Instant::now();
    let mut service = service_with(t0, settings(None), config(Some(ms(500))), 1);
    service.handle_link(t0, LinkInput::Connected);
    let actions = run_until(&mut service, t0 + ms(2000));
    let pings = actions
        .iter()
        .filter(|a| matches!(a, Action::Notify(Notice::Watchdog)))
        .count();
    assert_eq!(pings, 5, "at 0, 0.5, 1, 1.5 and 2 s");
    assert_eq!(service.poll_timeout(), Some(t0 + ms(2500)));
}

#[test]
fn midnight_rolls_the_relaxer_guard_over() {
    let t0 = Instant::now();
    let today = Date::new(2026, 12, 3).expect("date");
    let tomorrow = Date::new(2026, 12, 4).expect("date");
    let relaxer = Date::new(2026, 12, 7).expect("date");
    // Guard: 3 days before the relaxer date. On the 3rd it is 4 days away: no guard.
    let mut service = service_with(t0, settings(Some(relaxer)), config(None), 1);
    service.handle_link(t0, LinkInput::Connected);
    service.set_today(t0, today, Duration::from_secs(60));
    drain(&mut service);
    assert!(!service.snapshot(t0).guard_active);
    assert_eq!(service.poll_timeout(), Some(t0 + Duration::from_secs(60)));
    let actions = run_until(&mut service, t0 + Duration::from_secs(60));
    assert_eq!(actions, [Action::CheckCalendar]);
    let midnight = t0 + Duration::from_secs(60);
    service.set_today(midnight, tomorrow, Duration::from_secs(86_400));
    let actions = drain(&mut service);
    assert!(service.snapshot(midnight).guard_active);
    let states = texts(&actions, "massaged/dev/state");
    assert_eq!(
        states.len(),
        1,
        "the guard change is published: {actions:?}"
    );
    assert_eq!(json(&states[0])["guard_active"], true);
    assert_eq!(
        service.poll_timeout(),
        Some(midnight + Duration::from_secs(86_400))
    );
    let actions = command(&mut service, midnight, r#"{"action":"start","id":"g"}"#);
    assert_eq!(
        json(&texts(&actions, "massaged/dev/response")[0])["code"],
        "guard_active"
    );
}

#[test]
fn a_device_fault_stops_and_clear_fault_waits_for_the_recovery() {
    let t0 = Instant::now();
    let mut service = connected(t0);
    command(&mut service, t0, r#"{"action":"start"}"#);
    assert_eq!(service.state(), SessionState::Running);
    let failure = DeviceFailure {
        code: "driver_io".into(),
        message: "pwm0/duty_cycle: gone".into(),
    };
    service.handle_device(t0 + ms(100), Err(failure.clone()));
    let actions = drain(&mut service);
    assert_eq!(service.state(), SessionState::Fault);
    let frame = actions.iter().find_map(|a| match a {
        Action::WriteFrame(frame) => Some(frame),
        _ => None,
    });
    assert!(
        frame.is_some_and(|f| f.levels.iter().all(|&l| l == 0)),
        "zero frame: {actions:?}"
    );
    let events = texts(&actions, "massaged/dev/event");
    assert!(
        events.iter().any(|e| json(e)["event_type"] == "fault"),
        "{events:?}"
    );
    // Further errors of the broken device change nothing.
    service.handle_device(t0 + ms(120), Err(failure.clone()));
    assert!(drain(&mut service).is_empty());

    // clear_fault asks for a recovery first and answers only with its result.
    let actions = command(
        &mut service,
        t0 + ms(200),
        r#"{"action":"clear_fault","id":"c1"}"#,
    );
    assert_eq!(actions, [Action::RecoverDevice]);
    assert_eq!(service.state(), SessionState::Fault);
    let actions = command(
        &mut service,
        t0 + ms(210),
        r#"{"action":"clear_fault","id":"c2"}"#,
    );
    assert_eq!(
        json(&texts(&actions, "massaged/dev/response")[0])["code"],
        "fault_active"
    );
    service.handle_recovered(t0 + ms(300), Err(failure));
    let actions = drain(&mut service);
    assert_eq!(service.state(), SessionState::Fault);
    let reply = json(&texts(&actions, "massaged/dev/response")[0]);
    assert_eq!(
        (reply["id"].as_str(), reply["code"].as_str()),
        (Some("c1"), Some("fault_active"))
    );

    assert_eq!(
        command(
            &mut service,
            t0 + ms(400),
            r#"{"action":"clear_fault","id":"c3"}"#
        ),
        [Action::RecoverDevice]
    );
    service.handle_recovered(t0 + ms(500), Ok(()));
    let actions = drain(&mut service);
    assert_eq!(service.state(), SessionState::Idle);
    assert_eq!(
        json(&texts(&actions, "massaged/dev/response")[0]),
        serde_json::json!({"id":"c3","ok":true})
    );
    assert_eq!(
        json(&texts(&actions, "massaged/dev/state")[0])["fault"],
        serde_json::Value::Null
    );
}

fn saves(actions: &[Action]) -> Vec<&SavedState> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Save(state) => Some(state),
            _ => None,
        })
        .collect()
}

#[test]
fn changes_are_saved_after_the_debounce_and_a_failed_save_is_retried_with_backoff() {
    let t0 = Instant::now();
    let mut service = connected(t0);
    command(&mut service, t0, r#"{"intensity":70}"#);
    command(&mut service, t0 + ms(10), r#"{"intensity":80}"#);
    assert_eq!(
        service.poll_timeout(),
        Some(t0 + ms(50)),
        "debounced from the first change"
    );
    let actions = run_until(&mut service, t0 + ms(50));
    let issued = saves(&actions);
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].intensity, 80);

    // Disk full: one warning, a problem in the state, retries at 1 s, 2 s, 4 s...
    let (_, lines) = logs(|| {
        service.handle_saved(t0 + ms(60), Err("No space left on device".into()));
        let actions = drain(&mut service);
        let state = json(&texts(&actions, "massaged/dev/state")[0]);
        assert_eq!(state["problem"]["code"], "save_failed", "{state}");
        let mut at = t0 + ms(60);
        for backoff in [1000, 2000, 4000] {
            assert_eq!(service.poll_timeout(), Some(at + ms(backoff)));
            let actions = run_until(&mut service, at + ms(backoff));
            assert_eq!(saves(&actions).len(), 1, "retried after {backoff} ms");
            at += ms(backoff);
            service.handle_saved(at, Err("No space left on device".into()));
            assert!(
                drain(&mut service).is_empty(),
                "no new state while it keeps failing"
            );
        }
        assert_eq!(
            service.diagnostics().problem.map(|p| p.code),
            Some("save_failed")
        );
        let actions = run_until(&mut service, at + ms(8000));
        assert_eq!(saves(&actions)[0].intensity, 80, "still the unsaved state");
        service.handle_saved(at + ms(8000), Ok(()));
        let actions = drain(&mut service);
        let state = json(&texts(&actions, "massaged/dev/state")[0]);
        assert_eq!(state["problem"], serde_json::Value::Null, "{state}");
    });
    let warnings = lines
        .iter()
        .filter(|l| l.contains("could not save state"))
        .count();
    assert_eq!(warnings, 1, "{lines:#?}");
    assert_eq!(service.poll_timeout(), None, "saved: nothing pending");
}

#[test]
fn a_signal_stops_the_session_publishes_offline_saves_and_exits() {
    for signal in [
        Signal::Terminate,
        Signal::Interrupt,
        Signal::Hangup,
        Signal::Quit,
    ] {
        let t0 = Instant::now();
        let mut service = connected(t0);
        command(&mut service, t0, r#"{"action":"start"}"#);
        // The start is saved after the debounce; the session's time only at its end.
        assert_eq!(saves(&run_until(&mut service, t0 + ms(60))).len(), 1);
        service.handle_saved(t0 + ms(60), Ok(()));
        run_until(&mut service, t0 + ms(1500));
        service.handle_signal(t0 + ms(1500), signal);
        let actions = drain(&mut service);
        let zero = actions
            .iter()
            .position(|a| matches!(a, Action::WriteFrame(f) if f.levels.iter().all(|&l| l == 0)));
        let offline = actions.iter().position(|a| {
            matches!(a, Action::Publish(p) if p.topic == "massaged/dev/availability" && p.payload == b"offline")
        });
        assert!(
            zero.is_some() && offline.is_some() && zero < offline,
            "{signal:?}: {actions:?}"
        );
        let stopped = publishes(&actions, "massaged/dev/event")
            .find(|p| json(&String::from_utf8_lossy(&p.payload))["event_type"] == "stopped")
            .expect("stopped event");
        assert_eq!(stopped.delivery, Delivery::Critical);
        let last = saves(&actions);
        assert_eq!(last.len(), 1, "{signal:?}: {actions:?}");
        assert_eq!(last[0].sessions_total, 1, "{signal:?}");
        assert!(
            last[0].massage_seconds_total >= 1,
            "{signal:?}: {:?}",
            last[0]
        );
        assert_eq!(actions.last(), Some(&Action::Exit));
        assert!(service.is_exited());
        assert_eq!(service.poll_timeout(), None);
    }
}

#[test]
fn shed_publishes_are_counted_in_the_state_and_logged_with_the_true_count() {
    let t0 = Instant::now();
    let mut service = connected(t0);
    let (_, lines) = logs(|| {
        for n in 0..30_000u64 {
            service.handle_shed(t0 + Duration::from_micros(n * 10), 1);
        }
        run_until(&mut service, t0 + ms(2000));
    });
    let shed: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("publishes shed"))
        .collect();
    assert_eq!(shed.len(), 2, "{lines:#?}");
    assert!(shed[0].contains("count=1 "), "{}", shed[0]);
    assert!(
        shed[1].contains("count=29999 ") && shed[1].contains("total=30000"),
        "{}",
        shed[1]
    );
    let actions = command(&mut service, t0 + ms(3000), r#"{"intensity":60}"#);
    assert_eq!(
        json(&texts(&actions, "massaged/dev/state")[0])["shed"],
        30_000
    );
}

#[test]
fn nothing_is_published_while_the_broker_is_away() {
    let t0 = Instant::now();
    let mut service = service_with(t0, settings(None), config(None), 1);
    let actions = drain(&mut service);
    assert!(
        matches!(actions[..], [Action::WriteFrame(_)]),
        "{actions:?}"
    );
    service.handle_link(t0, LinkInput::Connected);
    let actions = drain(&mut service);
    let topics: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Publish(p) => Some(p.topic.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        topics,
        [
            "massaged/dev/availability",
            "homeassistant/device/dev/config",
            "massaged/dev/state"
        ]
    );
}

fn pictures(actions: &[Action]) -> Vec<PictureKey> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::DrawPicture(key) => Some(key.clone()),
            _ => None,
        })
        .collect()
}

fn with_picture(t0: Instant) -> Service {
    let config = ServiceConfig {
        routine_picture: true,
        ..config(None)
    };
    service_with(t0, settings(None), config, 1)
}

#[test]
fn the_routine_picture_follows_the_selection_at_a_bounded_rate_and_on_birth() {
    let t0 = Instant::now();
    let mut service = with_picture(t0);
    assert!(pictures(&drain(&mut service)).is_empty(), "none offline");
    service.handle_link(t0, LinkInput::Connected);
    let first = pictures(&drain(&mut service));
    assert_eq!(first.len(), 1, "drawn on connect");
    let key = first[0].clone();

    // A drawn picture is published retained; a stale one (another selection) is not.
    service.handle_picture(&key, Ok("<svg/>".into()));
    let published = drain(&mut service);
    let image: Vec<_> = publishes(&published, "massaged/dev/routine_image").collect();
    assert_eq!(image.len(), 1);
    assert!(image[0].retain && image[0].delivery == Delivery::Latest);

    // Three changes within the rate bound give one more picture, of the latest selection.
    command(&mut service, t0 + ms(100), r#"{"intensity":40}"#);
    command(&mut service, t0 + ms(200), r#"{"intensity":50}"#);
    let actions = command(&mut service, t0 + ms(300), r#"{"minutes":20}"#);
    assert!(pictures(&actions).is_empty(), "rate bound");
    let later = run_until(&mut service, t0 + ms(10_000));
    let drawn = pictures(&later);
    assert_eq!(drawn.len(), 1, "{drawn:?}");
    assert_eq!((drawn[0].intensity, drawn[0].minutes), (50, 20));
    service.handle_picture(&key, Ok("<svg/>".into()));
    assert!(
        publishes(&drain(&mut service), "massaged/dev/routine_image")
            .next()
            .is_none(),
        "a picture of an older selection is dropped"
    );

    // Home Assistant's birth republishes it with the rest.
    service.handle_link(
        t0 + ms(10_000),
        message("homeassistant/status", "online", false),
    );
    let after_birth = run_until(&mut service, t0 + ms(20_000));
    assert_eq!(pictures(&after_birth).len(), 1, "{after_birth:?}");
}

#[test]
fn no_picture_without_home_assistant() {
    let t0 = Instant::now();
    let mut service = connected(t0);
    command(&mut service, t0 + ms(100), r#"{"intensity":40}"#);
    assert!(pictures(&run_until(&mut service, t0 + ms(10_000))).is_empty());
}

#[test]
fn the_last_refusal_is_in_the_state_until_a_command_is_accepted() {
    let t0 = Instant::now();
    let mut service = connected(t0);
    let refused = command(&mut service, t0 + ms(10), "pause");
    let states = texts(&refused, "massaged/dev/state");
    let last = json(states.last().expect("state republished"));
    assert!(
        last["last_message"].as_str().is_some_and(|m| !m.is_empty()),
        "{last}"
    );
    let accepted = command(&mut service, t0 + ms(20), r#"{"intensity":40}"#);
    let last = json(
        texts(&accepted, "massaged/dev/state")
            .last()
            .expect("state"),
    );
    assert!(
        last["last_message"].is_null() || last["last_message"] == "",
        "{last}"
    );
}
