//! The MQTT link over real TCP to a real broker (embedded, or Mosquitto with
//! `MASSAGED_TEST_BROKER=mosquitto`).

mod support;

use massaged::mqtt::link::{LastWill, Link, LinkError, LinkEvent, LinkOptions};
use std::time::Duration;
use support::{TIMEOUT, TestBroker, TestClient};
use tokio::sync::mpsc;

fn options(broker: &TestBroker, client_id: &str) -> LinkOptions {
    let mut options = LinkOptions::new("127.0.0.1", broker.port(), client_id);
    // Fast reconnects keep the reconnect test short; the policy itself is unit-tested.
    options.backoff_min = Duration::from_millis(20);
    options.backoff_max = Duration::from_millis(200);
    options
}

/// Next event, failing the test after [`TIMEOUT`].
async fn next_event(events: &mut mpsc::Receiver<LinkEvent>) -> LinkEvent {
    tokio::time::timeout(TIMEOUT, events.recv())
        .await
        .expect("link event within timeout")
        .expect("link task still running")
}

/// Skips events until one satisfies `wanted`.
async fn wait_for(
    events: &mut mpsc::Receiver<LinkEvent>,
    wanted: impl Fn(&LinkEvent) -> bool,
) -> LinkEvent {
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
    let (_publisher, mut events) = Link::start(options(&broker, "link-connect"));
    assert_eq!(next_event(&mut events).await, LinkEvent::Connected);
}

#[tokio::test]
async fn receives_messages_on_its_subscriptions_only() {
    let broker = TestBroker::start();
    let mut link_options = options(&broker, "link-subscribe");
    link_options.subscriptions = vec!["dev/set".into(), "ha/+/status".into()];
    let (_publisher, mut events) = Link::start(link_options);
    // Connected comes after the SubAck, so what is published now reaches the link.
    assert_eq!(next_event(&mut events).await, LinkEvent::Connected);

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
    let (_publisher, mut events) = Link::start(link_options);
    assert_eq!(next_event(&mut events).await, LinkEvent::Connected);
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
    let (publisher, mut events) = Link::start(options(&broker, "link-publish"));
    assert_eq!(next_event(&mut events).await, LinkEvent::Connected);

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
    let (publisher, _events) = Link::start(options(&broker, "link-invalid"));
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

    let (publisher, mut events) = Link::start(with_will(&broker, "link-will"));
    assert_eq!(next_event(&mut events).await, LinkEvent::Connected);
    publisher
        .publish("dev/availability", "online", true)
        .await
        .unwrap();
    watcher
        .expect("dev/availability", |m| m.text() == "online", TIMEOUT)
        .await;

    // Dropping the receiver ends the task without DISCONNECT: the socket just closes.
    drop(events);
    watcher
        .expect("dev/availability", |m| m.text() == "offline", TIMEOUT)
        .await;
    let mut reader = TestClient::connect(&broker, "reader").await;
    assert_eq!(
        reader
            .retained("dev/availability", TIMEOUT)
            .await
            .as_deref(),
        Some(b"offline".as_slice())
    );
}

#[tokio::test]
async fn clean_disconnect_ends_the_link_and_keeps_the_will_unpublished() {
    let broker = TestBroker::start();
    let (publisher, mut events) = Link::start(with_will(&broker, "link-bye"));
    assert_eq!(next_event(&mut events).await, LinkEvent::Connected);
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
    let mut reader = TestClient::connect(&broker, "reader").await;
    assert_eq!(
        reader
            .retained("dev/availability", TIMEOUT)
            .await
            .as_deref(),
        Some(b"offline-by-choice".as_slice())
    );
}

#[tokio::test]
async fn reconnects_and_resubscribes_after_broker_restart() {
    let mut broker = TestBroker::start();
    let mut link_options = options(&broker, "link-reconnect");
    link_options.subscriptions = vec!["dev/set".into()];
    let (publisher, mut events) = Link::start(link_options);
    assert_eq!(next_event(&mut events).await, LinkEvent::Connected);

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
    commander
        .expect("dev/state", |m| m.text() == "idle", TIMEOUT)
        .await;
}

#[tokio::test]
async fn waits_for_a_broker_that_is_not_up_yet() {
    let mut broker = TestBroker::start();
    broker.kill();
    let (_publisher, mut events) = Link::start(options(&broker, "link-early"));
    broker.restart();
    // Failed attempts before the first connection report nothing; the first ConnAck does.
    assert_eq!(next_event(&mut events).await, LinkEvent::Connected);
}

#[tokio::test]
async fn same_client_id_takes_over_the_session() {
    let broker = TestBroker::start();
    let mut first_options = options(&broker, "link-same-id");
    // Slow to come back, so it does not take the id back while the test runs.
    first_options.backoff_min = Duration::from_secs(60);
    first_options.backoff_max = Duration::from_secs(60);
    let (_first, mut first_events) = Link::start(first_options);
    assert_eq!(next_event(&mut first_events).await, LinkEvent::Connected);
    let mut second_options = options(&broker, "link-same-id");
    second_options.subscriptions = vec!["dev/set".into()];
    let (_second, mut second_events) = Link::start(second_options);
    assert_eq!(next_event(&mut second_events).await, LinkEvent::Connected);
    // The broker drops the older connection with the same id.
    assert!(matches!(
        next_event(&mut first_events).await,
        LinkEvent::Disconnected { .. }
    ));
    let mut commander = TestClient::connect(&broker, "commander").await;
    commander.publish("dev/set", "pause", false).await;
    wait_for(&mut second_events, message("dev/set", "pause")).await;
}
