//! The allowed range of every engine setting and command value; the one owner of these
//! ranges. `config::validate` and `Engine::new` both check against them.

use super::channels::LEVEL_MAX;
use std::fmt::Display;
use std::ops::RangeInclusive;

/// Frames per second while running (`engine.frame_hz`).
pub(crate) const FRAME_HZ: RangeInclusive<u32> = 1..=200;
/// Soft start, soft stop and intensity ramp in milliseconds (`engine.ramp_ms`).
pub(crate) const RAMP_MS: RangeInclusive<u32> = 0..=60_000;
/// A channel level cap in permille (`safety.max_level`, `safety.heat_level`).
pub(crate) const LEVEL: RangeInclusive<u16> = 0..=LEVEL_MAX;
/// The session length cap in minutes (`safety.max_session_minutes`).
pub(crate) const MAX_SESSION_MINUTES: RangeInclusive<u32> = 1..=240;
/// The continuous heat cap in minutes (`safety.max_heat_minutes`).
pub(crate) const MAX_HEAT_MINUTES: RangeInclusive<u32> = 1..=120;
/// Days before the relaxer date on which starts are refused (`guard.days_before`).
pub(crate) const GUARD_DAYS_BEFORE: RangeInclusive<u32> = 0..=365;
/// The user's level in percent (setting and command `intensity`).
pub(crate) const INTENSITY: RangeInclusive<u32> = 1..=100;

/// A session length in minutes under the configured cap (setting and command `minutes`).
pub(crate) fn session_minutes(max_session_minutes: u32) -> RangeInclusive<u32> {
    1..=max_session_minutes
}

/// `None` when `value` is inside `range`, else the problem in the words every caller uses:
/// `"{value} is out of range {low}..={high}"`.
pub(crate) fn out_of_range<T: PartialOrd + Display>(
    value: T,
    range: &RangeInclusive<T>,
) -> Option<String> {
    (!range.contains(&value)).then(|| {
        format!(
            "{value} is out of range {}..={}",
            range.start(),
            range.end()
        )
    })
}
