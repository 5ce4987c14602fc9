//! The shell around the pure [`Service`]: it turns what the device and the link report into
//! the service's inputs and executes the actions the service returns. It decides nothing;
//! the loop in `mod.rs` decides only what to wait for next.

use super::calendar;
use super::pictures::Pictures;
use super::saver::Saver;
use crate::device::front::{DeviceReport, Front};
use crate::mqtt::link::{Events, LinkEvent, Publisher};
use crate::service::{Action, DeviceFailure, LinkInput, Notice, Service};
use crate::systemd::Notifier;
use std::time::{Duration, Instant};

/// Longest wait for the broker to take `offline` and our DISCONNECT on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(800);

/// The service and the handles that execute its actions.
pub(super) struct Shell {
    pub(super) service: Service,
    pub(super) front: Front,
    pub(super) saver: Saver,
    publisher: Publisher,
    pictures: Pictures,
    notifier: Notifier,
    /// Whether the broker took our last connection (for the DISCONNECT at shutdown).
    connected: bool,
    /// Outbound publishes the link had shed when last looked at.
    shed_seen: u64,
}

impl Shell {
    /// A shell that has not seen the broker yet.
    pub(super) fn new(
        service: Service,
        front: Front,
        saver: Saver,
        publisher: Publisher,
        pictures: Pictures,
        notifier: Notifier,
    ) -> Shell {
        Shell {
            service,
            front,
            saver,
            publisher,
            pictures,
            notifier,
            connected: false,
            shed_seen: 0,
        }
    }

    /// Hands one link event to the service (its actions wait for [`Shell::execute`]).
    pub(super) fn on_link(&mut self, event: LinkEvent) {
        #[cfg(debug_assertions)]
        debug_panic_on(&event);
        match event {
            LinkEvent::Connected => self.connected = true,
            LinkEvent::Disconnected { .. } => self.connected = false,
            LinkEvent::Message { .. } | LinkEvent::Overloaded { .. } => {}
        }
        self.service.handle_link(Instant::now(), link_input(event));
    }

    /// Hands a device report to the service; a device thread that ended stops the daemon.
    pub(super) fn on_device(&mut self, report: Option<DeviceReport>) {
        let now = Instant::now();
        match report {
            Some(DeviceReport::Failed(error)) => {
                self.service
                    .handle_device(now, Err(DeviceFailure::from(&error)));
            }
            Some(DeviceReport::Recovered(result)) => {
                let result = result.map_err(|error| DeviceFailure::from(&error));
                self.service.handle_recovered(now, result);
            }
            Some(DeviceReport::Closed(_)) | None => {
                // The device thread ended (it panicked): nothing drives the outputs any more.
                let failure = DeviceFailure {
                    code: "driver_io".into(),
                    message: "the device thread ended unexpectedly".into(),
                };
                self.service.handle_device(now, Err(failure));
                self.service.shutdown(now);
            }
        }
    }

    /// Executes every action the service has queued; none of them waits. Bulk publishes the
    /// link shed since the last turn are counted in the state.
    pub(super) fn execute(&mut self) {
        let shed = self.publisher.shed_totals().outbound;
        if shed > self.shed_seen {
            self.service
                .handle_shed(Instant::now(), shed - self.shed_seen);
            self.shed_seen = shed;
        }
        while let Some(action) = self.service.poll_action() {
            match action {
                Action::WriteFrame(frame) => self.front.write(frame),
                Action::Publish(publish) => {
                    if let Err(error) = self.publisher.send(
                        &publish.topic,
                        publish.payload,
                        publish.retain,
                        publish.delivery,
                    ) {
                        tracing::debug!(%error, "publish not queued");
                    }
                }
                Action::Save(state) => self.saver.save(state),
                Action::RecoverDevice => self.front.recover(),
                Action::DrawPicture(key) => self.pictures.draw(key),
                Action::Notify(notice) => match notice {
                    Notice::Ready => self.notifier.ready(),
                    Notice::Watchdog => self.notifier.watchdog(),
                    Notice::Stopping => self.notifier.stopping(),
                    Notice::Status(text) => self.notifier.status(&text),
                },
                Action::CheckCalendar => self.service.set_today(
                    Instant::now(),
                    calendar::local_today(),
                    calendar::until_next_midnight(),
                ),
                // The loop sees `is_exited` and closes down.
                Action::Exit => {}
            }
        }
    }

    /// Device off and released, pending save written, broker disconnected.
    pub(super) async fn close(self, events: &mut Events) {
        let Shell {
            front,
            publisher,
            saver,
            connected,
            ..
        } = self;
        if let Err(error) = front.close(SHUTDOWN_GRACE).await {
            tracing::warn!(%error, "closing the device");
        }
        saver.finish(SHUTDOWN_GRACE).await;
        if connected {
            // DISCONNECT is queued after `offline`; the link reports when it went out.
            let disconnected = async {
                if let Err(error) = publisher.disconnect().await {
                    tracing::warn!(%error, "mqtt disconnect");
                    return;
                }
                while let Some(event) = events.recv().await {
                    if matches!(event, LinkEvent::Disconnected { .. }) {
                        return;
                    }
                }
            };
            if tokio::time::timeout(SHUTDOWN_GRACE, disconnected)
                .await
                .is_err()
            {
                tracing::warn!("broker did not take the disconnect in time");
            }
        }
        tracing::info!("massaged stopped");
    }
}

/// Debug builds only: panics in the shell when a command's payload equals the environment
/// variable `MASSAGED_DEBUG_PANIC_ON`, so tests can check that a panic leaves the outputs off.
#[cfg(debug_assertions)]
fn debug_panic_on(event: &LinkEvent) {
    if let LinkEvent::Message {
        payload,
        retain: false,
        ..
    } = event
        && std::env::var_os("MASSAGED_DEBUG_PANIC_ON")
            .is_some_and(|v| v.as_encoded_bytes() == payload.as_ref())
    {
        panic!("deliberate panic (debug build, MASSAGED_DEBUG_PANIC_ON)");
    }
}

fn link_input(event: LinkEvent) -> LinkInput {
    match event {
        LinkEvent::Connected => LinkInput::Connected,
        LinkEvent::Disconnected { reason } => LinkInput::Disconnected { reason },
        LinkEvent::Message {
            topic,
            payload,
            retain,
        } => LinkInput::Message {
            topic,
            payload,
            retain,
        },
        LinkEvent::Overloaded { shed, ids } => LinkInput::Overloaded { shed, ids },
    }
}
