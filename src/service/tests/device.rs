//! Device faults and the `clear_fault` that waits for the recovery.

use super::*;

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
