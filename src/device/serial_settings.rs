//! `[driver.serial]`: the serial driver's settings and defaults.

use super::DeviceError;
use crate::core::limits::out_of_range;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// `[driver.serial]`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SerialSection {
    /// Serial device path.
    pub port: PathBuf,
    /// Baud rate.
    pub baud: u32,
    /// Interval of heartbeat lines while idle, in milliseconds.
    pub heartbeat_ms: u32,
    /// Silence after which the microcontroller stops all outputs, in milliseconds.
    pub heartbeat_timeout_ms: u32,
    /// How long to wait for an acknowledgement, in milliseconds.
    pub ack_timeout_ms: u32,
}

impl Default for SerialSection {
    fn default() -> Self {
        SerialSection {
            port: "/dev/ttyUSB0".into(),
            baud: 115_200,
            heartbeat_ms: 250,
            heartbeat_timeout_ms: 1000,
            ack_timeout_ms: 200,
        }
    }
}

impl SerialSection {
    /// Every broken rule of the section, each naming its key (the watchdog bound is checked at
    /// open by [`check_timings`], where the unit's `WatchdogSec` is known).
    pub(crate) fn problems(&self) -> Vec<DeviceError> {
        let mut problems = Vec::new();
        for (key, value) in [
            ("driver.serial.baud", self.baud),
            ("driver.serial.heartbeat_ms", self.heartbeat_ms),
            ("driver.serial.ack_timeout_ms", self.ack_timeout_ms),
        ] {
            if let Some(problem) = out_of_range(value, &(1..=u32::MAX)) {
                problems.push(DeviceError::Config {
                    key: key.into(),
                    problem,
                });
            }
        }
        if self.heartbeat_ms >= self.heartbeat_timeout_ms {
            problems.push(DeviceError::Config {
                key: "driver.serial.heartbeat_timeout_ms".into(),
                problem: format!(
                    "{} must be longer than heartbeat_ms = {}, or the microcontroller stops between heartbeats",
                    self.heartbeat_timeout_ms, self.heartbeat_ms
                ),
            });
        }
        problems
    }
}

/// Upper bound of `driver.serial.heartbeat_ms`: a host silent for longer is presumed dead.
pub const MAX_HEARTBEAT_MS: u32 = 5000;

/// Checks the serial timings: all above 0, heartbeat at most [`MAX_HEARTBEAT_MS`] and below the
/// microcontroller's timeout, and (under a systemd watchdog, `watchdog_half` = `WatchdogSec/2`,
/// the interval the daemon pings at) the ack timeout below `WatchdogSec/2`, so that waiting for
/// one acknowledgement can never cost a watchdog ping. A write waits at most the ack timeout.
pub fn check_timings(
    section: &SerialSection,
    watchdog_half: Option<Duration>,
) -> Result<(), DeviceError> {
    let config = |key: &str, problem: String| DeviceError::Config {
        key: key.into(),
        problem,
    };
    for (key, value) in [
        ("driver.serial.heartbeat_ms", section.heartbeat_ms),
        ("driver.serial.ack_timeout_ms", section.ack_timeout_ms),
    ] {
        if value == 0 {
            return Err(config(key, "must be greater than 0".into()));
        }
    }
    if section.heartbeat_ms > MAX_HEARTBEAT_MS {
        return Err(config(
            "driver.serial.heartbeat_ms",
            format!(
                "{} is above the maximum of {MAX_HEARTBEAT_MS} ms: the microcontroller would keep \
                 outputs on that long after the host died",
                section.heartbeat_ms
            ),
        ));
    }
    if section.heartbeat_ms >= section.heartbeat_timeout_ms {
        return Err(config(
            "driver.serial.heartbeat_ms",
            format!(
                "{} must be below heartbeat_timeout_ms ({}), or the microcontroller stops between heartbeats",
                section.heartbeat_ms, section.heartbeat_timeout_ms
            ),
        ));
    }
    if let Some(half) = watchdog_half {
        if Duration::from_millis(u64::from(section.ack_timeout_ms)) >= half {
            return Err(config(
                "driver.serial.ack_timeout_ms",
                format!(
                    "{} ms must be below half of the unit's WatchdogSec ({} ms), or one slow \
                     acknowledgement makes systemd kill the daemon",
                    section.ack_timeout_ms,
                    half.as_millis()
                ),
            ));
        }
    }
    Ok(())
}
