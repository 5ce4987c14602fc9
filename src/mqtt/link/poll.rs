//! The task that polls the rumqttc event loop: it turns what the loop yields into events on
//! the consumer's lanes, renews the subscriptions after every ConnAck, and waits out the
//! reconnect delay after every error. Which delay, and whether a lost connection was a
//! takeover, is decided by [`Reconnect`]; what a failed attempt is called, by
//! [`problem_of`].
//!
//! It never publishes or subscribes itself: a rumqttc request sent from the polling task
//! blocks forever once the request channel is full, because only polling drains it.
//! Resubscription is therefore handed to a short-lived task ([`resubscribe`]).

use super::backoff::Backoff;
use super::events::Lanes;
use super::failure::{FailureLog, problem_of};
use super::reconnect::{Ending, Reconnect, is_takeover};
use super::subscribe::{resubscribe, subscription, warn_refused};
use super::{LinkEvent, LinkOptions};
use crate::mqtt::tls::{self, TlsError, TlsFiles};
use rumqttc::v5::mqttbytes::v5::{Filter, Packet};
use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop};
use rumqttc::{Outgoing, TlsConfiguration, Transport};
use std::ops::ControlFlow;
use std::time::Duration;
use tokio::time::Instant;

/// The poll task's state between two polls of the event loop.
///
/// Its async methods take `&mut self` even when they only read: the event loop is not `Sync`,
/// so a shared borrow held across an await would make the task's future not `Send`.
pub(super) struct PollTask {
    eventloop: EventLoop,
    client: AsyncClient,
    filters: Vec<Filter>,
    /// `host:port`, for log fields.
    broker: String,
    /// TLS settings, loaded again for every attempt.
    tls: Option<TlsFiles>,
    events: Lanes,
    reconnect: Reconnect,
    failures: FailureLog,
    /// Subscriptions renewed after a ConnAck, their SubAck not yet in: `Connected` waits
    /// for it, so messages published after it arrive.
    awaiting_suback: bool,
    /// The next poll opens a new connection (first poll, or after an error).
    attempt_pending: bool,
}

impl PollTask {
    /// The poll task for `eventloop`, connecting as `options` say and reporting to `events`.
    pub(super) fn new(
        eventloop: EventLoop,
        client: AsyncClient,
        options: &LinkOptions,
        events: Lanes,
    ) -> PollTask {
        let backoff = Backoff::new(options.backoff_min, options.backoff_max);
        PollTask {
            eventloop,
            client,
            filters: options
                .subscriptions
                .iter()
                .map(|filter| subscription(filter))
                .collect(),
            broker: format!("{}:{}", options.host, options.port),
            tls: options.tls.clone(),
            events,
            reconnect: Reconnect::new(backoff, fastrand::Rng::new()),
            failures: FailureLog::default(),
            awaiting_suback: false,
            attempt_pending: true,
        }
    }

    /// Polls the event loop until a requested disconnect or until the consumer goes away.
    pub(super) async fn run(mut self) {
        loop {
            if self.attempt_pending
                && let Err(error) = self.load_tls()
            {
                if self.skip_attempt(&error).await.is_break() {
                    break;
                }
                continue;
            }
            // Cancelling `poll` only happens when we are about to drop the event loop anyway.
            let polled = tokio::select! {
                biased;
                _ = self.events.closed() => break,
                polled = self.eventloop.poll() => polled,
            };
            let flow = match polled {
                Ok(event) => {
                    self.attempt_pending = false;
                    self.on_event(event).await
                }
                Err(error) => self.on_error(&error).await,
            };
            if flow.is_break() {
                break;
            }
        }
    }

    /// Sets the TLS transport for the coming attempt from the files as they are now.
    fn load_tls(&mut self) -> Result<(), TlsError> {
        if let Some(files) = &self.tls {
            let config = tls::client_config(files)?;
            self.eventloop
                .options
                .set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(config)));
        }
        Ok(())
    }

    /// The TLS settings could not be loaded: never fall back to plain TCP, skip this attempt
    /// and retry the files later.
    async fn skip_attempt(&mut self, error: &TlsError) -> ControlFlow<()> {
        let reason = error.to_string();
        self.failures.record(&self.broker, "tls_settings", &reason);
        let delay = self.reconnect.attempt_skipped();
        self.wait(&reason, delay).await
    }

    async fn on_event(&mut self, event: Event) -> ControlFlow<()> {
        match event {
            Event::Incoming(Packet::ConnAck(_)) => self.on_connack().await,
            Event::Incoming(Packet::SubAck(suback)) if self.awaiting_suback => {
                self.awaiting_suback = false;
                warn_refused(&self.filters, &suback);
                self.report(LinkEvent::Connected).await
            }
            Event::Incoming(Packet::Publish(publish)) => go_on(self.events.deliver(publish).await),
            Event::Outgoing(Outgoing::Disconnect) => {
                tracing::info!("mqtt disconnected on request");
                // Best effort: the consumer may already be gone.
                let _ = self
                    .report(LinkEvent::Disconnected {
                        reason: "disconnect requested".into(),
                    })
                    .await;
                ControlFlow::Break(())
            }
            _ => ControlFlow::Continue(()),
        }
    }

    async fn on_connack(&mut self) -> ControlFlow<()> {
        self.reconnect.connected(Instant::now());
        self.failures = FailureLog::default();
        tracing::info!(
            client_id = %self.eventloop.options.client_id(),
            broker = %self.broker,
            tls = self.tls.is_some(),
            "mqtt connected"
        );
        if self.filters.is_empty() {
            return self.report(LinkEvent::Connected).await;
        }
        self.awaiting_suback = true;
        resubscribe(&self.client, &self.filters);
        ControlFlow::Continue(())
    }

    /// The connection or the attempt ended: log it, tell the consumer if a connection was
    /// lost, and wait before the next attempt.
    async fn on_error(&mut self, error: &ConnectionError) -> ControlFlow<()> {
        self.attempt_pending = true;
        self.awaiting_suback = false;
        let retry = self.reconnect.ended(Instant::now(), is_takeover(error));
        let reason = match retry.ending {
            Ending::AttemptFailed => {
                let reason = error.to_string();
                self.failures
                    .record(&self.broker, problem_of(error), &reason);
                reason
            }
            Ending::Lost => {
                let reason = error.to_string();
                tracing::warn!(%reason, "mqtt connection lost");
                self.report_lost(&reason).await?;
                reason
            }
            Ending::TakenOver { first } => {
                let reason = self.taken_over(first, retry.delay);
                self.report_lost(&reason).await?;
                reason
            }
        };
        self.wait(&reason, retry.delay).await
    }

    /// Logs a takeover (a warning the first time) and returns the reason given to the consumer.
    fn taken_over(&self, first: bool, delay: Duration) -> String {
        let client_id = self.eventloop.options.client_id();
        let reason = format!(
            "session taken over: another client connected with client id '{client_id}'; retrying in {} s",
            delay.as_secs()
        );
        if first {
            tracing::warn!(
                %client_id,
                retry_s = delay.as_secs(),
                "mqtt session taken over by another client with our client id; backing off instead of taking it back (set mqtt.client_id to a unique value)"
            );
        } else {
            tracing::debug!(%reason, "mqtt client id taken over again");
        }
        reason
    }

    async fn report_lost(&mut self, reason: &str) -> ControlFlow<()> {
        self.report(LinkEvent::Disconnected {
            reason: reason.to_owned(),
        })
        .await
    }

    /// Sends a must-not-lose event; `Break` when the consumer is gone.
    async fn report(&mut self, event: LinkEvent) -> ControlFlow<()> {
        go_on(self.events.send_priority(event).await)
    }

    /// Waits `delay` before the next attempt; `Break` if the consumer goes away meanwhile.
    async fn wait(&mut self, reason: &str, delay: Duration) -> ControlFlow<()> {
        tracing::debug!(%reason, delay_ms = delay.as_millis() as u64, "mqtt reconnect scheduled");
        go_on(self.events.sleep(delay).await)
    }
}

/// `Continue` while the consumer is there.
fn go_on(consumer_there: bool) -> ControlFlow<()> {
    if consumer_there {
        ControlFlow::Continue(())
    } else {
        ControlFlow::Break(())
    }
}
