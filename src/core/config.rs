//! Engine settings that come from the configuration file.

use super::channels::{ChannelMap, LEVEL_MAX};
use std::time::Duration;

/// Everything the engine needs to know about the device and the safety limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Frames per second while running (1..=200).
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
