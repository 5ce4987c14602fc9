//! Outputs on a microcontroller, driven over a serial line (docs/serial-protocol.md).
//!
//! A write and its acknowledgement are each bounded by `driver.serial.ack_timeout_ms`
//! ([`check_timings`](super::serial_settings::check_timings) keeps it below half of systemd's `WatchdogSec`; heartbeats come at
//! least every 5 s). Every line waits for its `OK` before the call returns, so an error surfaces on the
//! frame that caused it. A lost port (USB adapter unplugged) is dropped; `recover`
//! opens the path again, which also works when the adapter comes back under a new
//! device node behind the same udev symlink.

use super::SerialSection;
use super::protocol::{
    DecodeError, HostLine, MAX_LINE, PROTOCOL_VERSION, Reply, decode_reply, encode_host, seq_after,
};
pub use super::serial_settings::{MAX_HEARTBEAT_MS, check_timings};
use super::{DeviceError, check_frame};
use crate::core::Frame;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_serial::{ClearBuffer, SerialPort, SerialStream};

/// How long the handshake may take: boards that reset when the port opens need a moment to boot.
const HELLO_WAIT: Duration = Duration::from_secs(3);

/// A microcontroller speaking the massaged line protocol.
#[derive(Debug)]
pub struct SerialDriver {
    settings: SerialSection,
    slots: usize,
    port: Option<SerialStream>,
    seq: u32,
    last_sent: Instant,
    inbox: Vec<u8>,
}

/// How to treat lines that do not decode while waiting for a reply.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Garbage {
    /// During the handshake: a booting board may print anything.
    Skip,
    /// Afterwards: the firmware is broken or the line is noisy.
    Fail,
}

impl SerialDriver {
    /// Opens the port and shakes hands; the microcontroller starts with every output at 0.
    pub async fn open(section: &SerialSection, slots: usize) -> Result<SerialDriver, DeviceError> {
        let watchdog_half = crate::systemd::Notifier::from_env().watchdog_interval();
        check_timings(section, watchdog_half)?;
        let mut driver = SerialDriver {
            settings: section.clone(),
            slots,
            port: None,
            seq: 0,
            last_sent: Instant::now(),
            inbox: Vec::new(),
        };
        driver.connect().await?;
        Ok(driver)
    }

    fn port_path(&self) -> PathBuf {
        self.settings.port.clone()
    }

    /// Forgets a broken port and says what happened.
    fn lost(&mut self, problem: String) -> DeviceError {
        self.port = None;
        tracing::warn!(port = %self.settings.port.display(), problem, "serial port lost");
        DeviceError::SerialLost {
            port: self.port_path(),
            problem,
        }
    }

    /// (Re)opens the port and runs the handshake.
    async fn connect(&mut self) -> Result<(), DeviceError> {
        self.port = None;
        self.inbox.clear();
        let path = self.settings.port.to_string_lossy().into_owned();
        let builder = tokio_serial::new(path, self.settings.baud);
        let port = SerialStream::open(&builder).map_err(|source| DeviceError::SerialOpen {
            port: self.port_path(),
            source,
        })?;
        // Stale input (a boot banner, replies to a previous run) must not be taken for replies.
        let _ = port.clear(ClearBuffer::Input);
        self.port = Some(port);
        self.seq = 0;
        let deadline = Instant::now() + HELLO_WAIT;
        loop {
            let hello = HostLine::Hello {
                seq: self.next_seq(),
                channels: self.slots,
                timeout_ms: self.settings.heartbeat_timeout_ms,
            };
            match self.exchange(hello, Garbage::Skip).await {
                Ok(info) => return self.check_version(&info),
                Err(DeviceError::AckTimeout { .. }) if Instant::now() < deadline => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn check_version(&self, info: &str) -> Result<(), DeviceError> {
        let version = info.split(' ').next().unwrap_or("");
        if version == PROTOCOL_VERSION.to_string() {
            tracing::info!(port = %self.settings.port.display(), slots = self.slots, "serial driver open");
            Ok(())
        } else {
            Err(DeviceError::Protocol {
                port: self.port_path(),
                line: format!("OK ... {info}"),
                problem: format!(
                    "the HELLO reply must carry protocol version {PROTOCOL_VERSION}, got '{version}'"
                ),
            })
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends one line and waits for its reply; returns the `OK` line's extra fields.
    async fn exchange(&mut self, line: HostLine, garbage: Garbage) -> Result<String, DeviceError> {
        let seq = line.seq();
        let text = encode_host(&line);
        let Some(port) = self.port.as_mut() else {
            return Err(DeviceError::SerialLost {
                port: self.port_path(),
                problem: "closed after an earlier error".into(),
            });
        };
        let timeout_ms = self.settings.ack_timeout_ms;
        let wait = Duration::from_millis(u64::from(timeout_ms));
        // A port that stops draining (flow control held, adapter wedged) must not hold up
        // the caller: the write gets the same bound as the acknowledgement.
        match tokio::time::timeout(wait, port.write_all(text.as_bytes())).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(self.lost(format!("write failed: {e}"))),
            Err(_) => {
                return Err(self.lost(format!("write did not complete within {timeout_ms} ms")));
            }
        }
        self.last_sent = Instant::now();
        match tokio::time::timeout(wait, self.read_reply(seq, garbage)).await {
            Ok(result) => result,
            Err(_) => Err(DeviceError::AckTimeout {
                port: self.port_path(),
                seq,
                timeout_ms,
            }),
        }
    }

    /// Reads lines until the reply to `seq`.
    async fn read_reply(&mut self, seq: u32, garbage: Garbage) -> Result<String, DeviceError> {
        let mut buf = [0u8; 256];
        loop {
            while let Some(end) = self.inbox.iter().position(|&b| b == b'\n') {
                let raw: Vec<u8> = self.inbox.drain(..=end).collect();
                let text = String::from_utf8_lossy(&raw[..end]).into_owned();
                if let Some(info) = self.check_reply(&text, seq, garbage)? {
                    return Ok(info);
                }
            }
            if self.inbox.len() > MAX_LINE {
                let line = String::from_utf8_lossy(&self.inbox).into_owned();
                self.inbox.clear();
                if garbage == Garbage::Fail {
                    return Err(self.protocol(line, &DecodeError::TooLong));
                }
            }
            let Some(port) = self.port.as_mut() else {
                return Err(self.lost("closed after an earlier error".into()));
            };
            match port.read(&mut buf).await {
                Ok(0) => return Err(self.lost("the other end closed the line".into())),
                Ok(n) => self.inbox.extend_from_slice(&buf[..n]),
                Err(e) => return Err(self.lost(format!("read failed: {e}"))),
            }
        }
    }

    /// Decides what one received line means while waiting for the reply to `seq`:
    /// `Some(info)` for its `OK`, `None` for a line to skip, an error otherwise.
    fn check_reply(
        &self,
        text: &str,
        seq: u32,
        garbage: Garbage,
    ) -> Result<Option<String>, DeviceError> {
        let trimmed = text.trim_end_matches('\r');
        // Blank lines and `#` comments are the firmware's debug output.
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return Ok(None);
        }
        match decode_reply(trimmed) {
            Ok(Reply::Ok { seq: got, info }) if got == seq => Ok(Some(info)),
            Ok(Reply::Err {
                seq: Some(got),
                reason,
            }) if got == seq => Err(self.rejected(seq, reason)),
            Ok(Reply::Err { seq: None, reason }) => Err(self.rejected(0, reason)),
            Ok(Reply::Ok { seq: got, .. } | Reply::Err { seq: Some(got), .. })
                if seq_after(seq, got) =>
            {
                tracing::debug!(stale = got, waiting_for = seq, "late reply skipped");
                Ok(None)
            }
            Ok(_) => Err(DeviceError::Protocol {
                port: self.port_path(),
                line: trimmed.to_owned(),
                problem: format!("reply to a line not sent yet (waiting for {seq})"),
            }),
            Err(e) if garbage == Garbage::Skip => {
                tracing::debug!(line = trimmed, error = %e, "noise before handshake skipped");
                Ok(None)
            }
            Err(e) => Err(self.protocol(trimmed.to_owned(), &e)),
        }
    }

    fn rejected(&self, seq: u32, reason: String) -> DeviceError {
        DeviceError::Rejected {
            port: self.port_path(),
            seq,
            reason,
        }
    }

    fn protocol(&self, line: String, error: &DecodeError) -> DeviceError {
        DeviceError::Protocol {
            port: self.port_path(),
            line,
            problem: error.to_string(),
        }
    }

    /// Sends the frame and waits for the acknowledgement; levels are in `0..=LEVEL_MAX`
    /// ([`super::Driver::write`] clamps).
    pub async fn write(&mut self, frame: &Frame) -> Result<(), DeviceError> {
        check_frame(frame, self.slots)?;
        let levels = frame.levels.clone();
        let line = HostLine::Frame {
            seq: self.next_seq(),
            levels,
        };
        self.exchange(line, Garbage::Fail).await.map(drop)
    }

    /// Sends the all-off line and waits for the acknowledgement.
    pub async fn all_off(&mut self) -> Result<(), DeviceError> {
        let line = HostLine::Off {
            seq: self.next_seq(),
        };
        self.exchange(line, Garbage::Fail).await.map(drop)
    }

    /// Closes the port, opens it again and shakes hands.
    pub async fn recover(&mut self) -> Result<(), DeviceError> {
        self.connect().await
    }

    /// When the next heartbeat is due; `None` while the port is lost (nothing to keep alive).
    pub fn heartbeat_due(&self) -> Option<Instant> {
        self.port.as_ref()?;
        Some(self.last_sent + Duration::from_millis(u64::from(self.settings.heartbeat_ms)))
    }

    /// Sends a heartbeat line and waits for the acknowledgement.
    pub(crate) async fn heartbeat(&mut self) -> Result<(), DeviceError> {
        let line = HostLine::Heartbeat {
            seq: self.next_seq(),
        };
        self.exchange(line, Garbage::Fail).await.map(drop)
    }

    /// Sends the all-off line, waits for its acknowledgement and closes the port.
    pub async fn close(mut self) -> Result<(), DeviceError> {
        let result = if self.port.is_some() {
            self.all_off().await
        } else {
            Ok(())
        };
        self.port = None;
        tracing::info!(port = %self.settings.port.display(), "serial driver closed");
        result
    }
}

impl Drop for SerialDriver {
    fn drop(&mut self) {
        let line = HostLine::Off {
            seq: self.next_seq(),
        };
        if let Some(port) = self.port.as_mut() {
            // Synchronous and non-blocking, so it also works while a panic unwinds; should it
            // not get through, the microcontroller's heartbeat timeout turns everything off.
            let _ = port.try_write(encode_host(&line).as_bytes());
        }
    }
}
