//! The service's timers: Home Assistant's birth, READY=1, the watchdog, local midnight.

use super::*;

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
