//! Linux PWM sysfs outputs (`/sys/class/pwm/pwmchipC/pwmN/{period,duty_cycle,enable}`).
//!
//! At open every channel is disabled and its polarity set to `normal` before anything else:
//! a channel left `inversed` (by another program or an overlay) is fully on at duty 0.
//!
//! `open` waits (bounded, [`EXPORT_WAIT`]) for exported channels to appear; `recover` never
//! sleeps: it writes the exports and checks once, and a channel not there yet fails this
//! attempt (the caller retries with its own backoff).
//!
//! Every write is logged at trace level with the file and the value, which is how the
//! order of writes can be checked on a real board.

use super::PwmSection;
use super::pwm_settings::parse_output;
use super::{DeviceError, check_frame};
use crate::core::{Frame, LEVEL_MAX};
use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long to wait for `pwmN/` to appear (and for udev to fix its permissions) after `export`.
const EXPORT_WAIT: Duration = Duration::from_secs(2);
/// Poll interval while waiting for `pwmN/`.
const EXPORT_POLL: Duration = Duration::from_millis(5);

/// One PWM output: a channel of a chip.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PwmChannel {
    chip: u32,
    channel: u32,
    chip_dir: PathBuf,
    dir: PathBuf,
}

impl PwmChannel {
    fn attr(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Drives one PWM output per frame slot through sysfs.
#[derive(Debug)]
pub struct PwmDriver {
    outputs: Vec<PwmChannel>,
    period_ns: u64,
    /// Last level written per slot; `None` forces the next write.
    written: Vec<Option<u16>>,
    closed: bool,
}

/// The output of every slot: `outputs[n]` when given, else `{chip}:{n}`.
fn plan_outputs(section: &PwmSection, slots: usize) -> Result<Vec<PwmChannel>, DeviceError> {
    if section.outputs.len() > slots {
        return Err(DeviceError::Config {
            key: "driver.pwm.outputs".into(),
            problem: format!(
                "{} outputs listed but the frame has only {slots} channels",
                section.outputs.len()
            ),
        });
    }
    let mut outputs: Vec<PwmChannel> = Vec::with_capacity(slots);
    for slot in 0..slots {
        let (chip, channel) = match section.outputs.get(slot) {
            Some(text) => parse_output(slot, text)?,
            None => (
                section.chip,
                u32::try_from(slot).map_err(|_| DeviceError::Config {
                    key: "driver.pwm".into(),
                    problem: format!("slot {slot} is out of range"),
                })?,
            ),
        };
        if let Some(other) = outputs
            .iter()
            .position(|o| o.chip == chip && o.channel == channel)
        {
            return Err(DeviceError::Config {
                key: format!("driver.pwm.outputs[{slot}]"),
                problem: format!("output {chip}:{channel} is already used by slot {other}"),
            });
        }
        let chip_dir = section.sysfs_root.join(format!("pwmchip{chip}"));
        let dir = chip_dir.join(format!("pwm{channel}"));
        outputs.push(PwmChannel {
            chip,
            channel,
            chip_dir,
            dir,
        });
    }
    Ok(outputs)
}

/// Maps an I/O error on `path` to the error that says what to do.
fn classify(path: &Path, source: std::io::Error) -> DeviceError {
    match source.kind() {
        ErrorKind::PermissionDenied => DeviceError::PermissionDenied {
            path: path.to_owned(),
        },
        _ => DeviceError::Io {
            path: path.to_owned(),
            source,
        },
    }
}

/// Writes one sysfs attribute. Never creates the file: sysfs attributes always exist.
fn write_attr(path: &Path, value: &str) -> Result<(), DeviceError> {
    tracing::trace!(file = %path.display(), value, "pwm sysfs write");
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut file| file.write_all(value.as_bytes()))
        .map_err(|e| classify(path, e))
}

impl PwmDriver {
    /// Exports, configures and enables one output per slot, every duty cycle 0.
    pub fn open(section: &PwmSection, slots: usize) -> Result<PwmDriver, DeviceError> {
        if section.frequency_hz == 0 || section.frequency_hz > 1_000_000 {
            return Err(DeviceError::Config {
                key: "driver.pwm.frequency_hz".into(),
                problem: format!("{} is not in 1..=1000000", section.frequency_hz),
            });
        }
        let outputs = plan_outputs(section, slots)?;
        let mut driver = PwmDriver {
            outputs,
            period_ns: 1_000_000_000 / u64::from(section.frequency_hz),
            written: vec![None; slots],
            closed: false,
        };
        driver.setup(EXPORT_WAIT)?;
        tracing::info!(
            slots,
            period_ns = driver.period_ns,
            root = %section.sysfs_root.display(),
            "pwm driver open"
        );
        Ok(driver)
    }

    /// Brings every output to a known state: exported, disabled, polarity normal, period set,
    /// duty 0, enabled. Waits up to `wait` per channel for exports and udev; zero never sleeps.
    fn setup(&mut self, wait: Duration) -> Result<(), DeviceError> {
        let period = self.period_ns.to_string();
        for (slot, output) in self.outputs.iter().enumerate() {
            let deadline = Instant::now() + wait;
            if output.dir.is_dir() {
                // Left over from an earlier run: zero it before anything else, and so that a
                // shorter period is not refused for being below the old duty cycle.
                write_attr(&output.attr("duty_cycle"), "0")?;
            } else {
                export(output, deadline)?;
            }
            // udev may still be changing the new files' group: retry until the deadline.
            // The kernel changes polarity only while the channel is disabled.
            retry_permission(deadline, || write_attr(&output.attr("enable"), "0"))?;
            set_polarity_normal(output)?;
            write_attr(&output.attr("period"), &period)?;
            write_attr(&output.attr("duty_cycle"), "0")?;
            write_attr(&output.attr("enable"), "1")?;
            self.written[slot] = Some(0);
        }
        Ok(())
    }

    /// Writes the duty cycle of every channel whose level changed; levels are in
    /// `0..=LEVEL_MAX` ([`super::Driver::write`] clamps).
    pub fn write(&mut self, frame: &Frame) -> Result<(), DeviceError> {
        check_frame(frame, self.outputs.len())?;
        for (slot, &level) in frame.levels.iter().enumerate() {
            if self.written[slot] == Some(level) {
                continue;
            }
            // A failed write leaves the level unknown, so the next frame writes it again.
            self.written[slot] = None;
            let duty = self.period_ns * u64::from(level) / u64::from(LEVEL_MAX);
            write_attr(&self.outputs[slot].attr("duty_cycle"), &duty.to_string())?;
            self.written[slot] = Some(level);
        }
        Ok(())
    }

    /// Writes duty cycle 0 to every channel, whatever was written before; returns the first error.
    pub fn all_off(&mut self) -> Result<(), DeviceError> {
        let mut first = None;
        for (slot, output) in self.outputs.iter().enumerate() {
            match write_attr(&output.attr("duty_cycle"), "0") {
                Ok(()) => self.written[slot] = Some(0),
                Err(e) => {
                    self.written[slot] = None;
                    first.get_or_insert(e);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Sets up every output again (re-exporting what disappeared); all levels 0. Never sleeps:
    /// a channel whose export has not appeared yet fails this attempt with
    /// [`DeviceError::ExportTimeout`], and the next attempt finds it.
    pub fn recover(&mut self) -> Result<(), DeviceError> {
        self.written.fill(None);
        let result = self.setup(Duration::ZERO);
        if result.is_err() {
            let _ = self.all_off();
        }
        result
    }

    /// Duty 0, disable and unexport every output; returns the first error.
    pub fn close(mut self) -> Result<(), DeviceError> {
        self.closed = true;
        let mut first = None;
        for output in &self.outputs {
            // Duty 0 before disabling: some controllers hold the last level when disabled.
            for name in ["duty_cycle", "enable"] {
                if let Err(e) = write_attr(&output.attr(name), "0") {
                    first.get_or_insert(e);
                }
            }
            let unexport = output.chip_dir.join("unexport");
            match write_attr(&unexport, &output.channel.to_string()) {
                Ok(()) => wait_gone(&output.dir),
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        tracing::info!("pwm driver closed");
        first.map_or(Ok(()), Err)
    }
}

/// Writes `normal` to `polarity` (the channel is disabled); a refusal names the channel.
fn set_polarity_normal(output: &PwmChannel) -> Result<(), DeviceError> {
    let path = output.attr("polarity");
    write_attr(&path, "normal").map_err(|error| match error {
        DeviceError::Io { path, source } => DeviceError::Polarity {
            path,
            chip: output.chip,
            channel: output.channel,
            source,
        },
        other => other,
    })
}

/// Writes `export` and waits (until `deadline`, at least one check) for the channel directory.
fn export(output: &PwmChannel, deadline: Instant) -> Result<(), DeviceError> {
    if !output.chip_dir.is_dir() {
        return Err(DeviceError::ChipMissing {
            path: output.chip_dir.clone(),
        });
    }
    let path = output.chip_dir.join("export");
    tracing::trace!(file = %path.display(), value = output.channel, "pwm sysfs write");
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .and_then(|mut file| file.write_all(output.channel.to_string().as_bytes()))
        .map_err(|e| match e.kind() {
            ErrorKind::ResourceBusy => DeviceError::Busy {
                path: path.clone(),
                channel: output.channel,
            },
            _ => classify(&path, e),
        })?;
    let started = Instant::now();
    while !output.dir.is_dir() {
        if Instant::now() >= deadline {
            return Err(DeviceError::ExportTimeout {
                path: output.dir.clone(),
                waited_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            });
        }
        std::thread::sleep(EXPORT_POLL);
    }
    Ok(())
}

/// Waits (bounded) for an unexported channel's directory to go, so that the next `unexport`
/// write cannot overtake it. The kernel removes it synchronously; emulations may lag.
fn wait_gone(dir: &Path) {
    let deadline = Instant::now() + EXPORT_WAIT;
    while dir.exists() {
        if Instant::now() >= deadline {
            tracing::warn!(dir = %dir.display(), "pwm channel still present after unexport");
            return;
        }
        std::thread::sleep(EXPORT_POLL);
    }
}

/// Repeats `op` while it fails with permission denied, until `deadline`.
fn retry_permission(
    deadline: Instant,
    mut op: impl FnMut() -> Result<(), DeviceError>,
) -> Result<(), DeviceError> {
    loop {
        match op() {
            Err(DeviceError::PermissionDenied { .. }) if Instant::now() < deadline => {
                std::thread::sleep(EXPORT_POLL);
            }
            other => return other,
        }
    }
}

impl Drop for PwmDriver {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        // Runs during unwinding too: a panic must leave the outputs off.
        if let Err(error) = self.all_off() {
            tracing::error!(%error, "pwm outputs may still be on after drop");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_default_to_the_chip_and_slot() {
        let section = PwmSection {
            sysfs_root: "/r".into(),
            chip: 2,
            outputs: vec!["0:3".into()],
            frequency_hz: 1000,
        };
        let plan = plan_outputs(&section, 2).unwrap();
        assert_eq!(plan[0].dir, Path::new("/r/pwmchip0/pwm3"));
        assert_eq!(plan[1].dir, Path::new("/r/pwmchip2/pwm1"));
    }

    #[test]
    fn bad_and_duplicate_outputs_name_the_key() {
        let mut section = PwmSection {
            outputs: vec!["zero".into()],
            ..PwmSection::default()
        };
        let err = plan_outputs(&section, 2).unwrap_err().to_string();
        assert!(err.contains("driver.pwm.outputs[0]"), "{err}");
        section.outputs = vec!["0:1".into()];
        let err = plan_outputs(&section, 2).unwrap_err().to_string();
        assert!(
            err.contains("driver.pwm.outputs[1]") || err.contains("already used"),
            "{err}"
        );
    }
}
