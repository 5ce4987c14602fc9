//! `[driver.pwm]`: the PWM driver's settings, defaults and checks.

use super::DeviceError;
use crate::core::limits::out_of_range;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[driver.pwm]`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PwmSection {
    /// Root of the PWM class directory.
    pub sysfs_root: PathBuf,
    /// Chip number used for slots without an explicit output.
    pub chip: u32,
    /// Optional per-slot outputs as `"CHIP:CHANNEL"`; slot `n` defaults to `{chip}:{n}`.
    pub outputs: Vec<String>,
    /// PWM frequency in hertz.
    pub frequency_hz: u32,
}

impl Default for PwmSection {
    fn default() -> Self {
        PwmSection {
            sysfs_root: "/sys/class/pwm".into(),
            chip: 0,
            outputs: Vec::new(),
            frequency_hz: 1000,
        }
    }
}

impl PwmSection {
    /// Every broken rule of the section, each naming its key.
    pub(crate) fn problems(&self) -> Vec<DeviceError> {
        let mut problems = Vec::new();
        if let Some(problem) = out_of_range(self.frequency_hz, &(1..=1_000_000)) {
            problems.push(DeviceError::Config {
                key: "driver.pwm.frequency_hz".into(),
                problem,
            });
        }
        for (i, output) in self.outputs.iter().enumerate() {
            if let Err(problem) = parse_output(i, output) {
                problems.push(problem);
            }
        }
        problems
    }
}

/// Parses a PWM output `"CHIP:CHANNEL"`.
pub fn parse_pwm_output(text: &str) -> Option<(u32, u32)> {
    let (chip, channel) = text.split_once(':')?;
    Some((chip.trim().parse().ok()?, channel.trim().parse().ok()?))
}

/// Parses `driver.pwm.outputs[index]`, saying what is wrong when it is not `"CHIP:CHANNEL"`.
pub(crate) fn parse_output(index: usize, text: &str) -> Result<(u32, u32), DeviceError> {
    parse_pwm_output(text).ok_or_else(|| DeviceError::Config {
        key: format!("driver.pwm.outputs[{index}]"),
        problem: format!("'{text}' is not CHIP:CHANNEL, e.g. \"0:1\""),
    })
}
