//! The local calendar date, for the relaxer guard.

use crate::core::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

/// The system's time zone file, read as it is when `TZ` is not set.
const LOCALTIME: &str = "/etc/localtime";

/// Today's date in the system's time zone (UTC if the zone cannot be read).
pub(crate) fn local_today() -> Date {
    let now = local_now();
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
    let now = local_now();
    let next = now
        .tomorrow()
        .and_then(|tomorrow| tomorrow.start_of_day())
        .ok()
        .and_then(|midnight| now.duration_until(&midnight).try_into().ok())
        .unwrap_or(Duration::from_secs(3600));
    next.max(Duration::from_secs(1))
}

fn local_now() -> Zoned {
    Timestamp::now().to_zoned(local_zone())
}

/// The system's time zone: `/etc/localtime` as it is, unless `TZ` is set or the file cannot
/// be read, then jiff's own lookup ([`TimeZone::system`]). That lookup starts by listing
/// every zone of the system database to learn the file's zone name (about 110 kB kept for
/// the life of the process); the same rules come from the file, and a date needs no name.
fn local_zone() -> TimeZone {
    zone_file(std::env::var_os("TZ").as_deref(), Path::new(LOCALTIME))
        .unwrap_or_else(TimeZone::system)
}

/// The zone described by `file` when `tz` (the `TZ` variable) is unset; `None` leaves the
/// choice to jiff.
fn zone_file(tz: Option<&OsStr>, file: &Path) -> Option<TimeZone> {
    if tz.is_some() {
        return None;
    }
    TimeZone::tzif("localtime", &std::fs::read(file).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offsets either side of a year's daylight-saving changes agree.
    fn assert_same_rules(ours: &TimeZone, theirs: &TimeZone) {
        let now = Timestamp::now();
        for days in (-400..=400).step_by(15) {
            let at = now + jiff::SignedDuration::from_hours(24 * days);
            assert_eq!(ours.to_offset(at), theirs.to_offset(at), "{at}");
        }
    }

    #[test]
    fn the_local_zone_has_the_system_zones_rules() {
        assert_same_rules(&local_zone(), &TimeZone::system());
    }

    #[test]
    fn a_zone_file_has_the_rules_of_its_named_zone() {
        // Needs the system zone database (Debian's tzdata; .ci/run installs it).
        let file = Path::new("/usr/share/zoneinfo/Europe/Berlin");
        assert!(file.exists(), "{} missing: install tzdata", file.display());
        let ours = zone_file(None, file).expect("reads the file");
        let named = jiff::tz::db()
            .get("Europe/Berlin")
            .expect("in the database");
        assert_same_rules(&ours, &named);
        assert_ne!(ours.to_offset(Timestamp::UNIX_EPOCH), jiff::tz::Offset::UTC);
    }

    #[test]
    fn tz_set_or_no_file_leaves_the_zone_to_jiff() {
        let file = Path::new("/usr/share/zoneinfo/Europe/Berlin");
        assert!(zone_file(Some(OsStr::new("UTC")), file).is_none());
        assert!(zone_file(None, Path::new("/nonexistent/localtime")).is_none());
    }
}
