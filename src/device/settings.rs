//! `[driver]`: which backend, the zone-to-slot map and each backend's own section.

use super::{PwmSection, SerialSection};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which output backend drives the device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriverKind {
    /// Simulated: logs frames, optionally records them to CSV.
    #[default]
    Sim,
    /// Linux PWM sysfs.
    Pwm,
    /// Line protocol to a microcontroller.
    Serial,
}

/// Frame slots of each zone.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZoneChannels {
    /// Temple motors.
    pub(crate) temples: Vec<u16>,
    /// Hairline motors.
    pub(crate) hairline: Vec<u16>,
    /// Crown motors.
    pub(crate) crown: Vec<u16>,
    /// Ear motors.
    pub ears: Vec<u16>,
    /// Neck motors.
    pub neck: Vec<u16>,
}

impl Default for ZoneChannels {
    fn default() -> Self {
        ZoneChannels {
            temples: vec![0, 1],
            hairline: vec![2, 3],
            crown: vec![4, 5],
            ears: vec![6, 7],
            neck: vec![8, 9],
        }
    }
}

/// `[driver]`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriverSection {
    /// Backend.
    pub kind: DriverKind,
    /// Zone to frame slots.
    pub channels: ZoneChannels,
    /// Slot of the heater; `"none"` (or `false`) when the device has no heater.
    #[serde(deserialize_with = "deserialize_heat_channel")]
    pub heat_channel: Option<u16>,
    /// `sim` only: append every frame to this CSV file.
    pub record: Option<PathBuf>,
    /// PWM settings.
    pub pwm: PwmSection,
    /// Serial settings.
    pub serial: SerialSection,
}

impl Default for DriverSection {
    fn default() -> Self {
        DriverSection {
            kind: DriverKind::Sim,
            channels: ZoneChannels::default(),
            heat_channel: Some(10),
            record: None,
            pwm: PwmSection::default(),
            serial: SerialSection::default(),
        }
    }
}

/// Reads `heat_channel`: a slot number, or `"none"` / `""` / `false` for no heater. TOML has no
/// null, and environment values arrive as strings, so both spellings are accepted.
fn deserialize_heat_channel<'de, D>(deserializer: D) -> Result<Option<u16>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::{Error, Unexpected, Visitor};
    use std::fmt;

    struct HeatChannel;

    const EXPECTED: &str = "a channel number 0..=65535 or \"none\"";

    impl<'de> Visitor<'de> for HeatChannel {
        type Value = Option<u16>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(EXPECTED)
        }

        fn visit_u64<E: Error>(self, v: u64) -> Result<Self::Value, E> {
            u16::try_from(v)
                .map(Some)
                .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &EXPECTED))
        }

        fn visit_i64<E: Error>(self, v: i64) -> Result<Self::Value, E> {
            u16::try_from(v)
                .map(Some)
                .map_err(|_| E::invalid_value(Unexpected::Signed(v), &EXPECTED))
        }

        fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
            let v = v.trim();
            if v.is_empty() || v.eq_ignore_ascii_case("none") {
                return Ok(None);
            }
            v.parse()
                .map(Some)
                .map_err(|_| E::invalid_value(Unexpected::Str(v), &EXPECTED))
        }

        fn visit_bool<E: Error>(self, v: bool) -> Result<Self::Value, E> {
            if v {
                Err(E::invalid_value(Unexpected::Bool(v), &EXPECTED))
            } else {
                Ok(None)
            }
        }

        fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }

    deserializer.deserialize_any(HeatChannel)
}
