//! `massaged forget`: removes the device from Home Assistant and clears its retained topics.

use crate::mqtt::discovery::forget_topics;
use crate::mqtt::link::{LinkEvent, LinkOptions, start_link};
use crate::mqtt::topics::Topics;
use std::time::Duration;

/// Why forgetting failed.
#[derive(Debug, thiserror::Error)]
pub enum ForgetError {
    /// Could not reach the broker.
    #[error("could not connect to the broker at {0} within {1:?}")]
    Connect(String, Duration),
    /// The broker did not confirm the clears.
    #[error("the broker did not confirm the cleared topics within {0:?}")]
    Unconfirmed(Duration),
    /// A publish failed.
    #[error("publishing an empty retained message on {0}: {1}")]
    Publish(String, String),
}

const TIMEOUT: Duration = Duration::from_secs(5);

/// Publishes empty retained messages on discovery, the routine picture, state and
/// availability, then disconnects.
pub async fn run(mut options: LinkOptions, topics: Topics) -> Result<(), ForgetError> {
    let broker = format!("{}:{}", options.host, options.port);
    options.client_id = format!("massaged-forget-{:08x}", fastrand::u32(..));
    options.last_will = None;
    // Subscribed to what it clears: the broker echoing each empty message back proves it took
    // it, so the DISCONNECT cannot overtake the last clear.
    options.subscriptions = forget_topics(&topics).map(str::to_string).into();
    let (publisher, mut events) = start_link(options);
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
    for topic in forget_topics(&topics) {
        publisher
            .clear_retained(topic)
            .await
            .map_err(|e| ForgetError::Publish(topic.to_string(), e.to_string()))?;
    }
    let mut pending: Vec<String> = forget_topics(&topics).map(str::to_string).into();
    let echoed = async {
        while let Some(event) = events.recv().await {
            if let LinkEvent::Message { topic, payload, .. } = event
                && payload.is_empty()
            {
                pending.retain(|t| *t != topic);
                if pending.is_empty() {
                    return true;
                }
            }
        }
        false
    };
    if !matches!(tokio::time::timeout(TIMEOUT, echoed).await, Ok(true)) {
        return Err(ForgetError::Unconfirmed(TIMEOUT));
    }
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
