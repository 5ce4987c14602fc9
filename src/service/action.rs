//! What the service asks its shell to do.

use crate::mqtt::outbox::Delivery;
use crate::store::SavedState;

/// One thing for the shell to execute, in the order the service returns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Hand this frame to the device (latest wins: an older unwritten frame may be replaced).
    WriteFrame(crate::core::Frame),
    /// Queue an MQTT publish.
    Publish(Publish),
    /// Write this state to the store, then report with [`super::Service::handle_saved`].
    Save(SavedState),
    /// Re-open and re-check the device (outputs at 0), then report with
    /// [`super::Service::handle_recovered`].
    RecoverDevice,
    /// Send a systemd notification.
    Notify(Notice),
    /// Draw the routine picture for this selection (a simulated session: off the loop), then
    /// report with [`super::Service::handle_picture`].
    DrawPicture(crate::mqtt::routine_image::PictureKey),
    /// Local midnight passed: read the calendar and call [`super::Service::set_today`].
    CheckCalendar,
    /// Shut down: close the device, finish the pending save, disconnect from the broker.
    Exit,
}

/// An MQTT publish the service wants made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// Topic to publish on.
    pub(crate) topic: String,
    /// Payload bytes.
    pub(crate) payload: Vec<u8>,
    /// Whether the broker keeps it.
    pub(crate) retain: bool,
    /// How it may be treated under overload.
    pub(crate) delivery: Delivery,
}

/// A systemd notification (`sd_notify`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// `READY=1`.
    Ready,
    /// `WATCHDOG=1`.
    Watchdog,
    /// `STOPPING=1`.
    Stopping,
    /// `STATUS=...`.
    Status(String),
}
