//! `massaged forget`: removes the device from Home Assistant and clears its retained topics.

use crate::mqtt::discovery::forget_payloads;
use crate::mqtt::link::{Link, LinkEvent, LinkOptions};
use crate::mqtt::topics::Topics;
use std::time::Duration;

/// Why forgetting failed.
#[derive(Debug, thiserror::Error)]
pub enum ForgetError {
    /// Could not reach the broker.
    #[error("could not connect to the broker at {0} within {1:?}")]
    Connect(String, Duration),
    /// A publish failed.
    #[error("publishing an empty retained message on {0}: {1}")]
    Publish(String, String),
}

const TIMEOUT: Duration = Duration::from_secs(5);

/// Publishes empty retained messages on discovery, state and availability, then disconnects.
pub async fn run(mut options: LinkOptions, topics: Topics) -> Result<(), ForgetError> {
    let broker = format!("{}:{}", options.host, options.port);
    options.client_id = format!("massaged-forget-{:08x}", fastrand::u32(..));
    options.last_will = None;
    options.subscriptions.clear();
    let (publisher, mut events) = Link::start(options);
    let connected = async {
        while let Some(event) = events.recv().await {
            if event == LinkEvent::Connected {
                return true;
            }
        }
        false
    };
    if !matches!(tokio::time::timeout(TIMEOUT, connected).await, Ok(true)) {
        return Err(ForgetError::Connect(broker, TIMEOUT));
    }
    for (topic, _) in forget_payloads(&topics) {
        publisher
            .clear_retained(topic)
            .await
            .map_err(|e| ForgetError::Publish(topic.to_string(), e.to_string()))?;
    }
    // DISCONNECT goes out after the queued publishes; wait for the link to confirm.
    let _ = publisher.disconnect().await;
    let _ = tokio::time::timeout(TIMEOUT, async {
        while let Some(event) = events.recv().await {
            if matches!(event, LinkEvent::Disconnected { .. }) {
                break;
            }
        }
    })
    .await;
    Ok(())
}
