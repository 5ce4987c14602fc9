//! Output drivers: `sim` (logs, optional CSV), `pwm` (Linux PWM sysfs), `serial` (microcontroller).
//!
//! The daemon owns one [`Driver`]. Every backend zeroes its outputs when dropped, so a panic
//! that unwinds through the daemon leaves the device off.

pub(crate) mod front;
pub(crate) mod protocol;
pub(crate) mod pwm;
mod pwm_settings;
pub mod serial;
mod serial_settings;
pub(crate) mod settings;
pub(crate) mod sim;

pub use pwm::PwmDriver;
pub use pwm_settings::{PwmSection, parse_pwm_output};
pub use serial::SerialDriver;
pub use serial_settings::SerialSection;
pub(crate) use sim::SimDriver;

use crate::core::{Frame, LEVEL_MAX};
pub use settings::{DriverKind, DriverSection};
use std::path::PathBuf;
use std::time::Instant;

/// What went wrong with the outputs, naming the file or port and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The frame does not have one level per configured slot.
    #[error("frame has {got} channels but the driver was opened with {expected}")]
    FrameSize {
        /// Slots the driver was opened with.
        expected: usize,
        /// Levels in the frame.
        got: usize,
    },
    /// A configuration value the driver cannot use.
    #[error("{key}: {problem}")]
    Config {
        /// The configuration key, e.g. `driver.pwm.outputs[2]`.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The process may not write a PWM sysfs file.
    #[error(
        "permission denied writing {path}: run massaged as root or give its user write access \
         (a udev rule that hands /sys/class/pwm to the `gpio` or `pwm` group, and add the user to it)"
    )]
    PermissionDenied {
        /// The file.
        path: PathBuf,
    },
    /// Exporting a PWM channel failed because something else holds it.
    #[error(
        "{path}: PWM channel {channel} is busy: another driver or process (or a device-tree \
         overlay) owns it; free it or pick another channel in driver.pwm.outputs"
    )]
    Busy {
        /// The `export` file.
        path: PathBuf,
        /// The channel that could not be exported.
        channel: u32,
    },
    /// The PWM chip directory does not exist.
    #[error(
        "{path} does not exist: enable the PWM hardware (e.g. `dtoverlay=pwm-2chan` on a Raspberry Pi \
         or the PCA9685 overlay) or fix driver.pwm.chip / driver.pwm.outputs / driver.pwm.sysfs_root"
    )]
    ChipMissing {
        /// The chip directory.
        path: PathBuf,
    },
    /// The kernel refused to set a PWM channel's polarity to `normal`.
    #[error(
        "{path}: cannot set PWM {chip}:{channel} to polarity normal ({source}); at duty 0 an \
         inversed channel is fully on, so it is not used: fix the overlay or pick another channel"
    )]
    Polarity {
        /// The `polarity` file.
        path: PathBuf,
        /// The chip.
        chip: u32,
        /// The channel.
        channel: u32,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A PWM channel directory did not appear after `export`.
    #[error("{path} did not appear within {waited_ms} ms of exporting the channel")]
    ExportTimeout {
        /// The channel directory.
        path: PathBuf,
        /// How long the driver waited.
        waited_ms: u64,
    },
    /// Opening the serial port failed.
    #[error(
        "cannot open serial port {port}: {source}; check the cable, driver.serial.port and that \
         the user may use the port (the `dialout` group)"
    )]
    SerialOpen {
        /// The port.
        port: PathBuf,
        /// The serial library's error.
        source: tokio_serial::Error,
    },
    /// Reading or writing the serial port failed, or it closed.
    #[error(
        "serial port {port}: {problem}; the adapter may have been unplugged: plug it back in and send clear_fault"
    )]
    SerialLost {
        /// The port.
        port: PathBuf,
        /// What happened.
        problem: String,
    },
    /// The microcontroller did not answer a line in time.
    #[error(
        "microcontroller on {port} did not acknowledge line {seq} within {timeout_ms} ms; \
         check its firmware, the baud rate (driver.serial.baud) and driver.serial.ack_timeout_ms"
    )]
    AckTimeout {
        /// The port.
        port: PathBuf,
        /// Sequence number of the unacknowledged line.
        seq: u32,
        /// The timeout.
        timeout_ms: u32,
    },
    /// The microcontroller refused a line.
    #[error("microcontroller on {port} rejected line {seq}: {reason}")]
    Rejected {
        /// The port.
        port: PathBuf,
        /// Sequence number of the refused line (0 when it could not read it).
        seq: u32,
        /// The reason it gave.
        reason: String,
    },
    /// The microcontroller sent something the protocol does not allow.
    #[error(
        "microcontroller on {port} sent {line:?}: {problem}; check that its firmware speaks docs/serial-protocol.md"
    )]
    Protocol {
        /// The port.
        port: PathBuf,
        /// The offending line.
        line: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl DeviceError {
    /// A short machine-readable code for the published fault.
    pub fn code(&self) -> &'static str {
        match self {
            DeviceError::FrameSize { .. } | DeviceError::Config { .. } => "driver_config",
            DeviceError::Io { .. } => "driver_io",
            DeviceError::Polarity { .. } => "pwm_polarity",
            DeviceError::PermissionDenied { .. } => "permission_denied",
            DeviceError::Busy { .. } => "channel_busy",
            DeviceError::ChipMissing { .. } | DeviceError::ExportTimeout { .. } => "pwm_missing",
            DeviceError::SerialOpen { .. } | DeviceError::SerialLost { .. } => "serial_lost",
            DeviceError::AckTimeout { .. } => "serial_timeout",
            DeviceError::Rejected { .. } | DeviceError::Protocol { .. } => "serial_protocol",
        }
    }
}

/// The device outputs, whichever backend drives them.
#[derive(Debug)]
pub enum Driver {
    /// Simulated outputs.
    Sim(SimDriver),
    /// Linux PWM sysfs.
    Pwm(PwmDriver),
    /// Microcontroller over a serial line.
    Serial(SerialDriver),
}

impl Driver {
    /// Opens the configured backend for `slots` channels and sets every output to 0.
    pub async fn open(section: &DriverSection, slots: usize) -> Result<Driver, DeviceError> {
        Ok(match section.kind {
            DriverKind::Sim => Driver::Sim(SimDriver::open_named(
                section.record.as_deref(),
                &sim::column_names(section, slots),
            )?),
            DriverKind::Pwm => Driver::Pwm(PwmDriver::open(&section.pwm, slots)?),
            DriverKind::Serial => Driver::Serial(SerialDriver::open(&section.serial, slots).await?),
        })
    }

    /// The backend's kind.
    pub fn kind(&self) -> DriverKind {
        match self {
            Driver::Sim(_) => DriverKind::Sim,
            Driver::Pwm(_) => DriverKind::Pwm,
            Driver::Serial(_) => DriverKind::Serial,
        }
    }

    /// Sets every channel to the frame's level, clamped to `0..=LEVEL_MAX` here, once, for
    /// every backend.
    pub async fn write(&mut self, frame: &Frame) -> Result<(), DeviceError> {
        let clamped;
        let frame = if frame.levels.iter().any(|&level| level > LEVEL_MAX) {
            clamped = Frame {
                levels: frame
                    .levels
                    .iter()
                    .map(|&level| level.min(LEVEL_MAX))
                    .collect(),
            };
            &clamped
        } else {
            frame
        };
        match self {
            Driver::Sim(d) => d.write(frame),
            Driver::Pwm(d) => d.write(frame),
            Driver::Serial(d) => d.write(frame).await,
        }
    }

    /// Sets every channel to 0, trying all of them even when one fails (returns the first error).
    pub async fn all_off(&mut self) -> Result<(), DeviceError> {
        match self {
            Driver::Sim(d) => d.all_off(),
            Driver::Pwm(d) => d.all_off(),
            Driver::Serial(d) => d.all_off().await,
        }
    }

    /// Re-opens and re-checks the device, leaving every output at 0; the fault may be cleared on `Ok`.
    pub(crate) async fn recover(&mut self) -> Result<(), DeviceError> {
        match self {
            Driver::Sim(d) => d.all_off(),
            Driver::Pwm(d) => d.recover(),
            Driver::Serial(d) => d.recover().await,
        }
    }

    /// When [`Driver::heartbeat`] must next be called (`serial` only; `None` means never).
    pub fn heartbeat_due(&self) -> Option<Instant> {
        match self {
            Driver::Serial(d) => d.heartbeat_due(),
            Driver::Sim(_) | Driver::Pwm(_) => None,
        }
    }

    /// Sends a heartbeat so the microcontroller keeps its outputs (a no-op for other backends).
    pub async fn heartbeat(&mut self) -> Result<(), DeviceError> {
        match self {
            Driver::Serial(d) => d.heartbeat().await,
            Driver::Sim(_) | Driver::Pwm(_) => Ok(()),
        }
    }

    /// Turns everything off and releases the device (PWM: disable and unexport).
    pub async fn close(self) -> Result<(), DeviceError> {
        match self {
            Driver::Sim(d) => d.close(),
            Driver::Pwm(d) => d.close(),
            Driver::Serial(d) => d.close().await,
        }
    }
}

/// Checks that a frame has one level per slot.
fn check_frame(frame: &Frame, slots: usize) -> Result<(), DeviceError> {
    if frame.levels.len() == slots {
        Ok(())
    } else {
        Err(DeviceError::FrameSize {
            expected: slots,
            got: frame.levels.len(),
        })
    }
}
