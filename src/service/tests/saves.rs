//! Saves (debounce, retry with backoff, the `save_failed` problem) and the final save at
//! shutdown.

use super::*;

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
