//! What is published and when: shed counts, nothing while the broker is away.

use super::*;

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
