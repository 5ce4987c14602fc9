//! The device's answers: a failed write puts the engine in `fault` (once: a broken device
//! keeps failing), and a recovery check decides the `clear_fault` that asked for it.

use super::{DeviceFailure, Service};
use crate::core::{Fault, SessionState};
use crate::mqtt::outbox::Delivery;
use std::time::Instant;

impl Service {
    /// The result of writing a frame or a heartbeat: an error puts the engine in `fault`.
    pub(crate) fn handle_device(&mut self, now: Instant, result: Result<(), DeviceFailure>) {
        if self.exited {
            return;
        }
        if let Err(failure) = result {
            if self.engine.state() == SessionState::Fault {
                tracing::debug!(code = %failure.code, error = %failure.message, "device still failing");
            } else {
                tracing::error!(code = %failure.code, error = %failure.message, "device fault: outputs off");
                self.engine.handle_fault(
                    now,
                    Fault {
                        code: failure.code,
                        message: failure.message,
                    },
                );
            }
        }
        self.settle(now);
    }

    /// The result of [`super::Action::RecoverDevice`]: the waiting `clear_fault` is applied on
    /// success, refused with `fault_active` otherwise.
    pub(crate) fn handle_recovered(&mut self, now: Instant, result: Result<(), DeviceFailure>) {
        let result = result.map_err(|failure| failure.message);
        let Some(waiting) = self.intake.recovered(result) else {
            return;
        };
        if self.exited {
            return;
        }
        match waiting {
            Ok(parsed) => {
                tracing::info!("device recovered");
                self.apply(now, parsed);
            }
            Err((id, rejection)) => self.refuse(now, id.as_ref(), &rejection, Delivery::Bulk),
        }
        self.settle(now);
    }
}
