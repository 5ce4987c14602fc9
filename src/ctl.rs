//! `massaged ctl`: a small MQTT client for people and shell scripts.

use crate::mqtt::link::{Events, LinkEvent, LinkOptions, Publisher, start_link};
use crate::mqtt::topics::{PAYLOAD_ONLINE, Topics};
use serde_json::{Value, json};
use std::time::Duration;

/// What `ctl` was asked to do.
#[derive(Debug, Clone)]
pub enum CtlRequest {
    /// Send one command object and wait for its reply.
    Command(serde_json::Map<String, Value>),
    /// Print the retained state; fail when the daemon is offline.
    Status,
    /// Follow state and events until interrupted.
    Watch,
}

/// Why `ctl` failed.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// Could not reach the broker in time.
    #[error("could not connect to the broker at {0} within {1:?}")]
    Connect(String, Duration),
    /// The daemon did not answer in time.
    #[error("no reply from {0} within {1:?}: is massaged running? (see `massaged ctl status`)")]
    NoReply(String, Duration),
    /// The daemon has no retained state.
    #[error(
        "no state on {0}: the daemon has never run against this broker, or the device id differs"
    )]
    NoState(String),
    /// A publish failed.
    #[error("publishing: {0}")]
    Publish(String),
}

/// How a finished `ctl` run should exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtlOutcome {
    /// Accepted, or online.
    Ok,
    /// Rejected, or offline.
    Failed,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
const RETAINED_TIMEOUT: Duration = Duration::from_millis(1500);

/// Runs one `ctl` request against the daemon at `topics`.
pub async fn run(
    mut options: LinkOptions,
    topics: Topics,
    request: CtlRequest,
) -> Result<CtlOutcome, CtlError> {
    let broker = format!("{}:{}", options.host, options.port);
    options.client_id = format!("massaged-ctl-{:08x}", fastrand::u32(..));
    options.last_will = None;
    options.subscriptions = vec![
        topics.response.clone(),
        topics.state.clone(),
        topics.event.clone(),
        topics.availability.clone(),
    ];
    let (publisher, mut events) = start_link(options);
    wait_connected(&mut events, &broker).await?;
    let outcome = match request {
        CtlRequest::Command(command) => send(&publisher, &mut events, &topics, command).await,
        CtlRequest::Status => status(&mut events, &topics).await,
        CtlRequest::Watch => watch(&mut events, &topics).await,
    };
    // Best effort: the process exits right after.
    let _ = publisher.disconnect().await;
    outcome
}

async fn wait_connected(events: &mut Events, broker: &str) -> Result<(), CtlError> {
    let connected = async {
        while let Some(event) = events.recv().await {
            if event == LinkEvent::Connected {
                return true;
            }
        }
        false
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, connected).await {
        Ok(true) => Ok(()),
        _ => Err(CtlError::Connect(broker.to_string(), CONNECT_TIMEOUT)),
    }
}

async fn send(
    publisher: &Publisher,
    events: &mut Events,
    topics: &Topics,
    mut command: serde_json::Map<String, Value>,
) -> Result<CtlOutcome, CtlError> {
    let id = format!("ctl-{:08x}", fastrand::u32(..));
    command.insert("id".into(), json!(id));
    let payload = Value::Object(command).to_string();
    publisher
        .publish(&topics.set, payload.into_bytes(), false)
        .await
        .map_err(|e| CtlError::Publish(e.to_string()))?;
    let reply = async {
        while let Some(event) = events.recv().await {
            if let LinkEvent::Message { topic, payload, .. } = event
                && topic == topics.response
                && let Ok(value) = serde_json::from_slice::<Value>(&payload)
                && value.get("id").and_then(Value::as_str) == Some(id.as_str())
            {
                return Some(value);
            }
        }
        None
    };
    match tokio::time::timeout(REPLY_TIMEOUT, reply).await {
        Ok(Some(value)) if value.get("ok") == Some(&Value::Bool(true)) => {
            print_line("ok");
            Ok(CtlOutcome::Ok)
        }
        Ok(Some(value)) => {
            let code = value.get("code").and_then(Value::as_str).unwrap_or("error");
            let message = value.get("message").and_then(Value::as_str).unwrap_or("");
            eprintln!("rejected: {code}: {message}");
            Ok(CtlOutcome::Failed)
        }
        _ => Err(CtlError::NoReply(topics.root.clone(), REPLY_TIMEOUT)),
    }
}

async fn status(events: &mut Events, topics: &Topics) -> Result<CtlOutcome, CtlError> {
    let mut state: Option<Value> = None;
    let mut availability: Option<String> = None;
    let collect = async {
        while let Some(event) = events.recv().await {
            if let LinkEvent::Message { topic, payload, .. } = event {
                if topic == topics.state {
                    state = serde_json::from_slice(&payload).ok();
                } else if topic == topics.availability {
                    availability = Some(String::from_utf8_lossy(&payload).into_owned());
                }
                if state.is_some() && availability.is_some() {
                    break;
                }
            }
        }
    };
    // Retained messages arrive right after subscribing; a short wait collects both.
    let _ = tokio::time::timeout(RETAINED_TIMEOUT, collect).await;
    let Some(state) = state else {
        return Err(CtlError::NoState(topics.state.clone()));
    };
    let online = availability.as_deref() == Some(PAYLOAD_ONLINE);
    print_line(&format!(
        "availability: {}",
        availability.as_deref().unwrap_or("unknown")
    ));
    print_line(&serde_json::to_string_pretty(&state).unwrap_or_default());
    Ok(if online {
        CtlOutcome::Ok
    } else {
        CtlOutcome::Failed
    })
}

async fn watch(events: &mut Events, topics: &Topics) -> Result<CtlOutcome, CtlError> {
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(CtlOutcome::Ok),
            event = events.recv() => match event {
                Some(LinkEvent::Message { topic, payload, .. }) => {
                    let kind = if topic == topics.state {
                        "state"
                    } else if topic == topics.event {
                        "event"
                    } else if topic == topics.availability {
                        "availability"
                    } else {
                        continue;
                    };
                    if !print_line(&format!("{kind} {}", String::from_utf8_lossy(&payload))) {
                        // The reader went away (`| head`): done, not an error.
                        return Ok(CtlOutcome::Ok);
                    }
                }
                Some(_) => {}
                None => return Ok(CtlOutcome::Failed),
            }
        }
    }
}

/// Prints a line; false when stdout is closed (a pipe into `head`), which `println!` would
/// turn into a panic.
fn print_line(text: &str) -> bool {
    use std::io::Write;
    writeln!(std::io::stdout().lock(), "{text}").is_ok()
}
