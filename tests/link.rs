//! The MQTT link over real TCP to a real broker (embedded, or Mosquitto with
//! `MASSAGED_TEST_BROKER=mosquitto`).

#[allow(dead_code)]
mod support;

use massaged::mqtt::CommandId;
use massaged::mqtt::link::{
    Events, LastWill, LinkError, LinkEvent, LinkOptions, Publisher, start_link,
};
use massaged::mqtt::outbox::Delivery;
use std::time::Duration;
use support::{TIMEOUT, TestBroker, TestClient};

fn options(broker: &TestBroker, client_id: &str) -> LinkOptions {
    let mut options = LinkOptions::new("127.0.0.1", broker.port(), client_id);
    // Fast reconnects keep the reconnect test short; the policy itself is unit-tested.
    options.backoff_min = Duration::from_millis(20);
    options.backoff_max = Duration::from_millis(200);
    options
}

/// Next event, failing the test after [`TIMEOUT`].
async fn next_event(events: &mut Events) -> LinkEvent {
    tokio::time::timeout(TIMEOUT, events.recv())
        .await
        .expect("link event within timeout")
        .expect("link task still running")
}

/// Starts a link with `options` and waits for its first event, which must be `Connected`.
async fn connected_link(options: LinkOptions) -> (Publisher, Events) {
    let (publisher, mut events) = start_link(options);
    assert_eq!(next_event(&mut events).await, LinkEvent::Connected);
    (publisher, events)
}

/// Skips events until one satisfies `wanted`.
async fn wait_for(events: &mut Events, wanted: impl Fn(&LinkEvent) -> bool) -> LinkEvent {
    loop {
        let event = next_event(events).await;
        if wanted(&event) {
            return event;
        }
    }
}

fn message(topic: &str, payload: &str) -> impl Fn(&LinkEvent) -> bool {
    let (topic, payload) = (topic.to_owned(), payload.to_owned());
    move |event| {
        matches!(event, LinkEvent::Message { topic: t, payload: p, .. }
            if *t == topic && p.as_ref() == payload.as_bytes())
    }
}

#[tokio::test]
async fn connects_and_reports_connected() {
    let broker = TestBroker::start();
    let _link = connected_link(options(&broker, "link-connect")).await;
}

#[tokio::test]
async fn receives_messages_on_its_subscriptions_only() {
    let broker = TestBroker::start();
    let mut link_options = options(&broker, "link-subscribe");
    link_options.subscriptions = vec!["dev/set".into(), "ha/+/status".into()];
    // Connected comes after the SubAck, so what is published now reaches the link.
    let (_publisher, mut events) = connected_link(link_options).await;

    let mut other = TestClient::connect(&broker, "other").await;
    other.publish("dev/unrelated", "no", false).await;
    other.publish("dev/set", "start", false).await;
    other.publish("ha/x/status", "online", false).await;
    assert_eq!(
        next_event(&mut events).await,
        LinkEvent::Message {
            topic: "dev/set".into(),
            payload: "start".into(),
            retain: false
        }
    );
    assert!(message("ha/x/status", "online")(
        &next_event(&mut events).await
    ));
}

#[tokio::test]
async fn retained_message_is_flagged_as_retained() {
    let broker = TestBroker::start();
    let mut setter = TestClient::connect(&broker, "setter").await;
    setter.publish("dev/set", "start", true).await;

    let mut link_options = options(&broker, "link-retained-in");
    link_options.subscriptions = vec!["dev/set".into()];
    let (_publisher, mut events) = connected_link(link_options).await;
    assert_eq!(
        next_event(&mut events).await,
        LinkEvent::Message {
            topic: "dev/set".into(),
            payload: "start".into(),
            retain: true
        }
    );
}

#[tokio::test]
async fn published_retained_state_is_read_back_and_cleared() {
    let broker = TestBroker::start();
    let (publisher, _events) = connected_link(options(&broker, "link-publish")).await;

    // A live subscriber tells us when the broker has processed each publish.
    let mut watcher = TestClient::connect(&broker, "watcher").await;
    watcher.subscribe("dev/state").await;
    publisher
        .publish("dev/state", r#"{"state":"idle"}"#, true)
        .await
        .unwrap();
    watcher.expect_any("dev/state", TIMEOUT).await;

    let mut reader = TestClient::connect(&broker, "reader").await;
    assert_eq!(
        reader.retained("dev/state", TIMEOUT).await.as_deref(),
        Some(br#"{"state":"idle"}"#.as_slice())
    );

    publisher.clear_retained("dev/state").await.unwrap();
    watcher
        .expect("dev/state", |m| m.payload.is_empty(), TIMEOUT)
        .await;
    let mut late_reader = TestClient::connect(&broker, "late-reader").await;
    assert_eq!(late_reader.retained("dev/state", TIMEOUT).await, None);
}

#[tokio::test]
async fn publishing_to_a_wildcard_is_refused() {
    let broker = TestBroker::start();
    let (publisher, _events) = start_link(options(&broker, "link-invalid"));
    let error = publisher
        .publish("dev/+/state", "x", false)
        .await
        .unwrap_err();
    assert!(matches!(error, LinkError::InvalidTopic(ref t) if t == "dev/+/state"));
    assert!(error.to_string().contains("dev/+/state"));
}

fn with_will(broker: &TestBroker, client_id: &str) -> LinkOptions {
    let mut link_options = options(broker, client_id);
    link_options.last_will = Some(LastWill {
        topic: "dev/availability".into(),
        payload: "offline".into(),
        retain: true,
    });
    link_options
}

#[tokio::test]
async fn last_will_is_published_when_the_link_dies() {
    let broker = TestBroker::start();
    let mut watcher = TestClient::connect(&broker, "watcher").await;
    watcher.subscribe("dev/availability").await;

    let (publisher, events) = connected_link(with_will(&broker, "link-will")).await;
    publisher
        .publish("dev/availability", "online", true)
        .await
        .unwrap();
    watcher.expect_text("dev/availability", "online").await;

    // Dropping the receiver ends the task without DISCONNECT: the socket just closes.
    drop(events);
    watcher.expect_text("dev/availability", "offline").await;
    assert_eq!(
        retained_availability(&broker).await.as_deref(),
        Some(b"offline".as_slice())
    );
}

/// The retained `dev/availability` as a fresh client sees it.
async fn retained_availability(broker: &TestBroker) -> Option<bytes::Bytes> {
    let mut reader = TestClient::connect(broker, "reader").await;
    reader.retained("dev/availability", TIMEOUT).await
}

#[tokio::test]
async fn clean_disconnect_ends_the_link_and_keeps_the_will_unpublished() {
    let broker = TestBroker::start();
    let (publisher, mut events) = connected_link(with_will(&broker, "link-bye")).await;
    publisher
        .publish("dev/availability", "offline-by-choice", true)
        .await
        .unwrap();
    publisher.disconnect().await.unwrap();
    assert!(matches!(
        next_event(&mut events).await,
        LinkEvent::Disconnected { .. }
    ));
    // The task has ended: the channel closes and further requests fail.
    assert_eq!(
        tokio::time::timeout(TIMEOUT, events.recv()).await.unwrap(),
        None
    );
    // The publish queued before the disconnect reached the broker; no will replaced it.
    assert_eq!(
        retained_availability(&broker).await.as_deref(),
        Some(b"offline-by-choice".as_slice())
    );
}

#[tokio::test]
async fn reconnects_and_resubscribes_after_broker_restart() {
    let mut broker = TestBroker::start();
    let mut link_options = options(&broker, "link-reconnect");
    link_options.subscriptions = vec!["dev/set".into()];
    let (publisher, mut events) = connected_link(link_options).await;

    broker.kill();
    assert!(matches!(
        next_event(&mut events).await,
        LinkEvent::Disconnected { .. }
    ));
    broker.restart();
    assert_eq!(
        wait_for(&mut events, |e| *e == LinkEvent::Connected).await,
        LinkEvent::Connected
    );

    // The fresh broker knows nothing of the old session: messages arrive only because the
    // link subscribed again.
    let mut commander = TestClient::connect(&broker, "commander").await;
    commander.publish("dev/set", "stop", false).await;
    wait_for(&mut events, message("dev/set", "stop")).await;

    // And publishing works on the new connection.
    commander.subscribe("dev/state").await;
    publisher.publish("dev/state", "idle", false).await.unwrap();
    commander.expect_text("dev/state", "idle").await;
}

#[tokio::test]
async fn waits_for_a_broker_that_is_not_up_yet() {
    let mut broker = TestBroker::start();
    broker.kill();
    let (_publisher, mut events) = start_link(options(&broker, "link-early"));
    broker.restart();
    // Failed attempts before the first connection report nothing; the first ConnAck does.
    assert_eq!(next_event(&mut events).await, LinkEvent::Connected);
}

#[tokio::test]
async fn a_client_id_takeover_is_not_fought_in_a_loop() {
    let broker = TestBroker::start();
    // Both with the fast test backoff: without the takeover backoff they would knock each
    // other off in a loop.
    let link = |n| {
        let mut link_options = options(&broker, "link-same-id");
        link_options.subscriptions = vec![format!("dev/{n}")];
        start_link(link_options)
    };
    let (_first, mut first_events) = link(1);
    assert_eq!(next_event(&mut first_events).await, LinkEvent::Connected);
    let (_second, mut second_events) = link(2);
    // Within a few rounds one of them sees the takeover and backs off (10 s at least).
    let is_takeover = |e: &LinkEvent| matches!(e, LinkEvent::Disconnected { reason } if reason.contains("taken over"));
    let (mut survivor, survivor_topic) = tokio::select! {
        e = wait_for(&mut first_events, is_takeover) => { drop(e); (second_events, "dev/2") }
        e = wait_for(&mut second_events, is_takeover) => { drop(e); (first_events, "dev/1") }
    };
    // The other one holds the connection from now on: it is (re)connected and gets commands.
    let mut commander = TestClient::connect(&broker, "commander").await;
    let mut delivered = false;
    for _ in 0..50 {
        commander.publish(survivor_topic, "pause", false).await;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, survivor.recv()).await {
            if message(survivor_topic, "pause")(&event) {
                delivered = true;
                break;
            }
        }
        if delivered {
            break;
        }
    }
    assert!(delivered, "the survivor never got a command");
    for word in ["resume", "skip"] {
        commander.publish(survivor_topic, word, false).await;
        let event = wait_for(&mut survivor, |e| !matches!(e, LinkEvent::Connected)).await;
        assert!(message(survivor_topic, word)(&event), "{event:?}");
    }
}

#[tokio::test]
async fn stops_overtake_a_full_queue_and_shed_commands_are_reported_with_their_ids() {
    let broker = TestBroker::start();
    let mut link_options = options(&broker, "link-flood");
    link_options.subscriptions = vec!["dev/set".into()];
    link_options.event_capacity = 4;
    let (publisher, mut events) = connected_link(link_options).await;

    // Nobody reads the events while 30 commands arrive, then a stop: the queue holds 4.
    let mut commander = TestClient::connect(&broker, "commander").await;
    for i in 0..30 {
        let payload = format!(r#"{{"action":"start","id":{i}}}"#);
        commander.publish("dev/set", payload, false).await;
    }
    commander
        .publish("dev/set", r#"{"action":"stop","speed":9}"#, false)
        .await;
    // A probe after the stop: once it is queued or shed, the stop has been routed too.
    commander
        .publish("dev/set", r#"{"id":"probe"}"#, false)
        .await;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while publisher.shed_totals().inbound < 27 {
        assert!(tokio::time::Instant::now() < deadline, "not shed in time");
        // Polling a counter nothing can notify us of, not a synchronising sleep.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The stop comes first, then the report of what was shed, then the queued commands.
    assert!(message("dev/set", r#"{"action":"stop","speed":9}"#)(
        &next_event(&mut events).await
    ));
    let LinkEvent::Overloaded { shed, ids } = next_event(&mut events).await else {
        panic!("expected the shed report");
    };
    assert_eq!(shed, 27);
    assert_eq!(ids.len(), 27);
    assert_eq!(ids[0], CommandId::Integer("4".into()));
    assert_eq!(ids[26], CommandId::Text("probe".into()));
    for i in 0..4 {
        let payload = format!(r#"{{"action":"start","id":{i}}}"#);
        assert!(message("dev/set", &payload)(&next_event(&mut events).await));
    }
    assert_eq!(publisher.shed_totals().inbound, 27);
}

#[tokio::test]
async fn commands_over_the_default_64_kib_reach_a_link_with_a_larger_limit() {
    let broker = TestBroker::start();
    let mut link_options = options(&broker, "link-big");
    link_options.subscriptions = vec!["dev/set".into()];
    link_options.max_payload_bytes = 100 * 1024;
    let (_publisher, mut events) = connected_link(link_options).await;
    let mut commander = TestClient::connect(&broker, "commander").await;
    // Over the setting too (the headroom lets it arrive to be refused as too_large).
    let big = format!(r#"{{"id":"big","pad":"{}"}}"#, "x".repeat(150 * 1024));
    commander.publish("dev/set", big.clone(), false).await;
    let LinkEvent::Message { payload, .. } = next_event(&mut events).await else {
        panic!("expected the big command");
    };
    assert_eq!(payload.len(), big.len());
}

#[tokio::test]
async fn retained_state_converges_to_the_latest_after_a_burst() {
    let broker = TestBroker::start();
    let (publisher, _events) = connected_link(options(&broker, "link-latest")).await;
    for i in 0..5000 {
        publisher
            .send("dev/state", format!("s{i}"), true, Delivery::Latest)
            .unwrap();
        publisher
            .send("dev/event", format!("e{i}"), false, Delivery::Bulk)
            .unwrap();
    }
    publisher
        .send("dev/event", "stopped", false, Delivery::Critical)
        .unwrap();
    let mut watcher = TestClient::connect(&broker, "watcher").await;
    watcher.subscribe("dev/state").await;
    publisher
        .send("dev/state", "final", true, Delivery::Latest)
        .unwrap();
    watcher.expect_text("dev/state", "final").await;
    let mut reader = TestClient::connect(&broker, "reader").await;
    assert_eq!(
        reader.retained("dev/state", TIMEOUT).await.as_deref(),
        Some(b"final".as_slice())
    );
}
