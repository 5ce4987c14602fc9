//! Set-topic intake end to end: retained commands, refusals, the rate limit and its log
//! throttle, the last refusal in the state.

use super::*;

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
