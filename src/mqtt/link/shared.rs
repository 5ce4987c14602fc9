//! The state the link's handles and tasks share: the outbox between publishers and the sender
//! task, the flags that end the sender task, and the shed bookkeeping.

use super::shed::Shed;
use crate::mqtt::outbox::Outbox;
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::Notify;

/// What the publishers, the sender task, the poll task and the consumer's end share.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) outbox: Mutex<Outbox>,
    /// Wakes the sender task when the outbox gains a message or a disconnect is asked.
    pub(super) wake_sender: Notify,
    pub(super) disconnect_requested: AtomicBool,
    /// Set once the poll task has ended: publishes are refused, the sender task ends.
    pub(super) closed: AtomicBool,
    pub(super) shed: Shed,
}

impl Shared {
    pub(super) fn new() -> Shared {
        Shared {
            outbox: Mutex::new(Outbox::default()),
            wake_sender: Notify::new(),
            disconnect_requested: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            shed: Shed::new(),
        }
    }
}

/// Locks `mutex`, ignoring poison.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data stays consistent across a panic elsewhere (plain counters and queues).
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
