//! Simulated outputs: frames go to the log and, optionally, to a CSV recording.

use super::DriverSection;
use super::{DeviceError, check_frame};
use crate::core::{ChannelMap, Frame};
use crate::timeline::channel_names;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A CSV file receiving one row per frame: `t_ms,temples_left,...,heat` (see
/// [`column_names`]), `t_ms` counted from open.
#[derive(Debug)]
struct Recording {
    path: PathBuf,
    out: BufWriter<File>,
}

/// Logs frames at debug level; with a recording, appends each frame to a CSV file.
#[derive(Debug)]
pub struct SimDriver {
    slots: usize,
    opened: Instant,
    recording: Option<Recording>,
    last_zero: bool,
}

/// Recording column names for `section`'s channel map, the same names as `simulate --format
/// csv` ([`crate::timeline::channel_names`]); `chN` for every slot when the map is unusable
/// (the config check reports that before a driver opens).
pub(crate) fn column_names(section: &DriverSection, slots: usize) -> Vec<String> {
    let zone = |list: &[u16]| list.iter().map(|&slot| usize::from(slot)).collect();
    let channels = &section.channels;
    let map = ChannelMap::new(
        [
            zone(&channels.temples),
            zone(&channels.hairline),
            zone(&channels.crown),
            zone(&channels.ears),
            zone(&channels.neck),
        ],
        section.heat_channel.map(usize::from),
    );
    let mut names = map.map(|m| channel_names(&m)).unwrap_or_default();
    names.truncate(slots);
    names.extend((names.len()..slots).map(|n| format!("ch{n}")));
    names
}

impl SimDriver {
    /// Starts a simulated device of `slots` channels; `record` is created (truncated) with a
    /// header of `ch0,ch1,...`.
    pub fn open(record: Option<&Path>, slots: usize) -> Result<SimDriver, DeviceError> {
        let names: Vec<String> = (0..slots).map(|n| format!("ch{n}")).collect();
        SimDriver::open_named(record, &names)
    }

    /// Starts a simulated device with one channel per name; `record` is created (truncated)
    /// with the names as its header.
    pub(crate) fn open_named(
        record: Option<&Path>,
        names: &[String],
    ) -> Result<SimDriver, DeviceError> {
        let slots = names.len();
        let recording = match record {
            None => None,
            Some(path) => {
                let io_err = |source| DeviceError::Io {
                    path: path.to_owned(),
                    source,
                };
                let mut out = BufWriter::new(File::create(path).map_err(io_err)?);
                let mut header = String::from("t_ms");
                for name in names {
                    header.push(',');
                    header.push_str(name);
                }
                writeln!(out, "{header}").map_err(io_err)?;
                out.flush().map_err(io_err)?;
                Some(Recording {
                    path: path.to_owned(),
                    out,
                })
            }
        };
        tracing::info!(slots, recording = ?record, "sim driver open");
        let mut driver = SimDriver {
            slots,
            opened: Instant::now(),
            recording,
            last_zero: false,
        };
        driver.all_off()?;
        Ok(driver)
    }

    /// Logs the frame and records it.
    pub fn write(&mut self, frame: &Frame) -> Result<(), DeviceError> {
        check_frame(frame, self.slots)?;
        tracing::debug!(levels = ?frame.levels, "sim frame");
        self.record(&frame.levels)
    }

    /// Records an all-zero frame.
    pub fn all_off(&mut self) -> Result<(), DeviceError> {
        let zero = Frame::zero(self.slots);
        tracing::debug!(levels = ?zero.levels, "sim all off");
        self.record(&zero.levels)
    }

    /// Records an all-zero frame and closes the recording.
    pub fn close(mut self) -> Result<(), DeviceError> {
        self.all_off()
        // Drop sees last_zero and writes nothing more.
    }

    fn record(&mut self, levels: &[u16]) -> Result<(), DeviceError> {
        self.last_zero = levels.iter().all(|&l| l == 0);
        let Some(rec) = self.recording.as_mut() else {
            return Ok(());
        };
        let mut row = self.opened.elapsed().as_millis().to_string();
        for level in levels {
            row.push_str(&format!(",{level}"));
        }
        // Flushed per frame so that a reader (or a crash) sees every frame written so far.
        writeln!(rec.out, "{row}")
            .and_then(|()| rec.out.flush())
            .map_err(|source| DeviceError::Io {
                path: rec.path.clone(),
                source,
            })
    }
}

impl Drop for SimDriver {
    fn drop(&mut self) {
        if !self.last_zero {
            // Best effort: the recording shows the outputs going off, as real hardware would.
            let _ = self.all_off();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_frame_is_recorded_and_a_drop_records_the_outputs_going_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("frames.csv");
        let mut sim = SimDriver::open(Some(&path), 3).unwrap();
        sim.write(&Frame {
            levels: vec![10, 20, 1000],
        })
        .unwrap();
        assert!(sim.write(&Frame::zero(2)).is_err(), "wrong slot count");
        drop(sim);
        let text = std::fs::read_to_string(&path).unwrap();
        let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
        assert_eq!(rows[0], ["t_ms", "ch0", "ch1", "ch2"]);
        assert_eq!(rows[1][1..], ["0", "0", "0"], "open writes all off");
        assert_eq!(rows[2][1..], ["10", "20", "1000"]);
        assert_eq!(rows[3][1..], ["0", "0", "0"], "drop writes all off");
        assert_eq!(rows.len(), 4);
        let times: Vec<u64> = rows[1..].iter().map(|r| r[0].parse().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    }

    #[test]
    fn recording_columns_are_named_after_zones_and_sides() {
        let mut section = DriverSection::default();
        let names = column_names(&section, 11);
        assert_eq!(
            names[..3],
            ["temples_left", "temples_right", "hairline_left"]
        );
        assert_eq!(names[10], "heat");
        section.channels.neck = vec![12];
        section.heat_channel = None;
        let names = column_names(&section, 13);
        assert_eq!(names[8..], ["ch8", "ch9", "ch10", "ch11", "neck"]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("frames.csv");
        drop(SimDriver::open_named(
            Some(&path),
            &column_names(&DriverSection::default(), 11),
        ));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("t_ms,temples_left,temples_right,"),
            "{text}"
        );
        assert!(
            text.lines().next().unwrap().ends_with(",neck_right,heat"),
            "{text}"
        );
    }

    #[test]
    fn an_unwritable_record_path_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").unwrap();
        let err = SimDriver::open(Some(&blocker.join("x.csv")), 1).unwrap_err();
        assert!(err.to_string().contains("file/x.csv"), "{err}");
    }
}
