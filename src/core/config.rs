//! Engine settings that come from the configuration file.

use super::channels::{ChannelMap, LEVEL_MAX};
use super::limits;
use std::time::Duration;

/// Everything the engine needs to know about the device and the safety limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Frames per second while running ([`limits::FRAME_HZ`]).
    pub frame_hz: u32,
    /// Length of soft start, soft stop and intensity changes.
    pub ramp: Duration,
    /// Highest motor level, permille.
    pub max_level: u16,
    /// Heater level when on, permille.
    pub heat_level: u16,
    /// Longest session in minutes.
    pub max_session_minutes: u32,
    /// Longest continuous heat.
    pub max_heat: Duration,
    /// Days before the relaxer date on which sessions are refused.
    pub guard_days_before: u32,
    /// How often the state is republished while running.
    pub progress_interval: Duration,
    /// Which slots belong to which zone and the heater.
    pub channels: ChannelMap,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            frame_hz: 50,
            ramp: Duration::from_secs(2),
            max_level: LEVEL_MAX,
            heat_level: LEVEL_MAX,
            max_session_minutes: 30,
            max_heat: Duration::from_secs(15 * 60),
            guard_days_before: 3,
            progress_interval: Duration::from_secs(10),
            channels: ChannelMap::headrest(),
        }
    }
}

/// Why an engine configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("engine setting {key}: {problem}")]
pub struct ConfigError {
    /// The setting's name.
    pub(crate) key: &'static str,
    /// What is wrong with its value.
    pub(crate) problem: String,
}

impl EngineConfig {
    /// Checks every setting against [`limits`]; the error names the first bad one.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        let heat_seconds = {
            let minutes = &limits::MAX_HEAT_MINUTES;
            u64::from(*minutes.start()) * 60..=u64::from(*minutes.end()) * 60
        };
        let ramp_ms = u64::try_from(self.ramp.as_millis()).unwrap_or(u64::MAX);
        let ramp_range = u64::from(*limits::RAMP_MS.start())..=u64::from(*limits::RAMP_MS.end());
        let problems = [
            (
                "frame_hz",
                limits::out_of_range(self.frame_hz, &limits::FRAME_HZ),
            ),
            ("ramp_ms", limits::out_of_range(ramp_ms, &ramp_range)),
            (
                "max_level",
                limits::out_of_range(self.max_level, &limits::LEVEL),
            ),
            (
                "heat_level",
                limits::out_of_range(self.heat_level, &limits::LEVEL),
            ),
            (
                "max_session_minutes",
                limits::out_of_range(self.max_session_minutes, &limits::MAX_SESSION_MINUTES),
            ),
            (
                "max_heat_s",
                limits::out_of_range(self.max_heat.as_secs(), &heat_seconds),
            ),
            (
                "guard_days_before",
                limits::out_of_range(self.guard_days_before, &limits::GUARD_DAYS_BEFORE),
            ),
        ];
        match problems
            .into_iter()
            .find_map(|(key, p)| p.map(|p| (key, p)))
        {
            Some((key, problem)) => Err(ConfigError { key, problem }),
            None => Ok(()),
        }
    }
}
