//! The local calendar date, for the relaxer guard.

use crate::core::Date;
use std::time::Duration;

/// Today's date in the system's time zone (UTC if the zone cannot be read).
pub(crate) fn local_today() -> Date {
    let now = jiff::Zoned::now();
    let date = now.date();
    // jiff dates are always valid calendar dates within years -9999..=9999.
    Date::new(
        i32::from(date.year()),
        date.month().unsigned_abs(),
        date.day().unsigned_abs(),
    )
    .unwrap_or(Date::EPOCH)
}

/// Time until the next local midnight (at least one second, to avoid a busy loop at the edge).
pub(crate) fn until_next_midnight() -> Duration {
    let now = jiff::Zoned::now();
    let next = now
        .tomorrow()
        .and_then(|tomorrow| tomorrow.start_of_day())
        .ok()
        .and_then(|midnight| now.duration_until(&midnight).try_into().ok())
        .unwrap_or(Duration::from_secs(3600));
    next.max(Duration::from_secs(1))
}
