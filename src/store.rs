//! Saved settings and counters: a small JSON file written atomically, plus a save debouncer.

use crate::core::{Counters, Date, Settings};
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Version of the file format written by this build.
pub const FORMAT_VERSION: u32 = 1;

/// Everything that survives a restart (the file's contents).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SavedState {
    /// File format version.
    pub version: u32,
    /// Selected routine id (empty: the first routine).
    pub routine: String,
    /// User level in percent.
    pub intensity: u32,
    /// Session length in minutes.
    pub minutes: u32,
    /// Whether sessions heat by default.
    pub heat: bool,
    /// Next chemical relaxer, `YYYY-MM-DD`.
    #[serde(with = "date_text")]
    pub relaxer_date: Option<Date>,
    /// Sessions started.
    pub sessions_total: u64,
    /// Seconds of massage over all sessions.
    pub massage_seconds_total: u64,
}

impl Default for SavedState {
    fn default() -> Self {
        SavedState {
            version: FORMAT_VERSION,
            routine: String::new(),
            intensity: 50,
            minutes: 10,
            heat: false,
            relaxer_date: None,
            sessions_total: 0,
            massage_seconds_total: 0,
        }
    }
}

impl SavedState {
    /// The state to save for these settings and counters.
    pub fn new(settings: &Settings, counters: Counters) -> SavedState {
        SavedState {
            version: FORMAT_VERSION,
            routine: settings.routine.clone(),
            intensity: settings.intensity,
            minutes: settings.minutes,
            heat: settings.heat,
            relaxer_date: settings.relaxer_date,
            sessions_total: counters.sessions_total,
            massage_seconds_total: counters.massage_seconds_total,
        }
    }

    /// The saved settings (the engine clamps out-of-range values and unknown routines).
    pub fn settings(&self) -> Settings {
        Settings {
            routine: self.routine.clone(),
            intensity: self.intensity,
            minutes: self.minutes,
            heat: self.heat,
            relaxer_date: self.relaxer_date,
        }
    }

    /// The saved counters.
    pub fn counters(&self) -> Counters {
        Counters {
            sessions_total: self.sessions_total,
            massage_seconds_total: self.massage_seconds_total,
        }
    }
}

/// Serde for `Option<Date>` as `"YYYY-MM-DD"` or `null`.
mod date_text {
    use crate::core::Date;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(date: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
        match date {
            Some(date) => s.collect_str(date),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| text.parse().map_err(D::Error::custom))
            .transpose()
    }
}

/// Why the state could not be saved.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot save state to {path}: {action} failed: {source}; check store.path and that its \
     directory exists and is writable by the massaged user"
)]
pub struct StoreError {
    /// The file or directory concerned.
    pub path: PathBuf,
    /// The step that failed.
    pub action: &'static str,
    /// The operating system's error.
    pub source: std::io::Error,
}

/// Something wrong with the saved file that load worked around (defaults were used).
#[derive(Debug, thiserror::Error)]
pub enum LoadWarning {
    /// The file was not valid; it was renamed so that it can be inspected.
    #[error("{path} was unreadable ({problem}); moved it to {moved_to} and started from defaults")]
    MovedAside {
        /// The state file.
        path: PathBuf,
        /// Where it is now.
        moved_to: PathBuf,
        /// What was wrong.
        problem: String,
    },
    /// The file was not valid and could not be renamed either.
    #[error(
        "{path} was unreadable ({problem}) and could not be moved aside ({source}); started from defaults"
    )]
    Unusable {
        /// The state file.
        path: PathBuf,
        /// What was wrong.
        problem: String,
        /// Why renaming failed.
        source: std::io::Error,
    },
}

/// The state file at one path.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
}

impl Store {
    /// A store at `path` (nothing is read or written yet).
    pub fn new(path: impl Into<PathBuf>) -> Store {
        Store { path: path.into() }
    }

    /// The state file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the saved state: defaults when there is no file; a broken file is moved to
    /// `<name>.bad` (with a warning) and defaults are used.
    pub fn load(&self) -> (SavedState, Option<LoadWarning>) {
        let problem = match fs::read(&self.path) {
            Ok(bytes) => match parse(&bytes) {
                Ok(state) => return (state, None),
                Err(problem) => problem,
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return (SavedState::default(), None);
            }
            Err(e) => format!("read failed: {e}"),
        };
        let moved_to = sibling(&self.path, ".bad");
        let warning = match fs::rename(&self.path, &moved_to) {
            Ok(()) => LoadWarning::MovedAside {
                path: self.path.clone(),
                moved_to,
                problem,
            },
            Err(source) => LoadWarning::Unusable {
                path: self.path.clone(),
                problem,
                source,
            },
        };
        (SavedState::default(), Some(warning))
    }

    /// Writes the state atomically: temp file in the same directory, fsync, rename, fsync directory.
    /// Creates the directory when missing.
    pub fn save(&self, state: &SavedState) -> Result<(), StoreError> {
        let err = |path: &Path, action| {
            let path = path.to_owned();
            move |source| StoreError {
                path,
                action,
                source,
            }
        };
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir).map_err(err(&dir, "creating the directory"))?;
        let temp = sibling(&self.path, ".tmp");
        let mut json = serde_json::to_vec_pretty(state).map_err(|e| StoreError {
            path: self.path.clone(),
            action: "encoding",
            source: e.into(),
        })?;
        json.push(b'\n');
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)
            .map_err(err(&temp, "creating the temporary file"))?;
        file.write_all(&json)
            .map_err(err(&temp, "writing the temporary file"))?;
        file.sync_all()
            .map_err(err(&temp, "syncing the temporary file"))?;
        drop(file);
        fs::rename(&temp, &self.path).map_err(err(&self.path, "renaming the temporary file"))?;
        // The rename is durable only once the directory entry is on disk.
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(err(&dir, "syncing the directory"))?;
        Ok(())
    }
}

/// Parses the file; the error says what is wrong.
fn parse(bytes: &[u8]) -> Result<SavedState, String> {
    let state: SavedState = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if state.version == 0 || state.version > FORMAT_VERSION {
        return Err(format!(
            "format version {} is not supported (this build reads 1..={FORMAT_VERSION})",
            state.version
        ));
    }
    Ok(state)
}

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Coalesces saves: the first change arms a deadline `delay` later; later changes do not move
/// it, so a steady stream of changes still saves once per `delay`.
#[derive(Debug, Clone)]
pub struct Debounce {
    delay: Duration,
    deadline: Option<Instant>,
}

impl Debounce {
    /// A debouncer with nothing pending.
    pub fn new(delay: Duration) -> Debounce {
        Debounce {
            delay,
            deadline: None,
        }
    }

    /// Notes a change at `now`.
    pub fn touch(&mut self, now: Instant) {
        self.deadline.get_or_insert(now + self.delay);
    }

    /// True when a change is pending and its deadline has passed.
    pub fn due(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| now >= d)
    }

    /// When the pending save is due, if one is pending.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Forgets the pending change (call after saving, or before saving on shutdown).
    pub fn clear(&mut self) {
        self.deadline = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debounce_saves_once_per_delay_under_a_stream_of_changes() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut d = Debounce::new(ms(1000));
        assert_eq!(d.deadline(), None);
        assert!(!d.due(t0));
        d.touch(t0);
        d.touch(t0 + ms(900));
        assert_eq!(d.deadline(), Some(t0 + ms(1000)));
        assert!(!d.due(t0 + ms(999)));
        assert!(d.due(t0 + ms(1000)));
        d.clear();
        assert!(!d.due(t0 + ms(5000)));
        d.touch(t0 + ms(1500));
        assert_eq!(d.deadline(), Some(t0 + ms(2500)));
    }

    #[test]
    fn newer_versions_and_garbage_are_refused() {
        assert!(
            parse(br#"{"version": 2}"#)
                .unwrap_err()
                .contains("version 2")
        );
        assert!(parse(br#"{"version": 0}"#).is_err());
        assert!(parse(b"{\"version\": 1, \"intens").is_err());
        assert!(parse(br#"{"version": 1, "relaxer_date": "2026-02-30"}"#).is_err());
        let ok = parse(br#"{"version": 1, "relaxer_date": "2026-12-01"}"#).unwrap();
        assert_eq!(ok.relaxer_date, Date::new(2026, 12, 1));
    }

    #[test]
    fn settings_and_counters_convert_both_ways() {
        let settings = Settings {
            routine: "temple-circles".into(),
            intensity: 60,
            minutes: 12,
            heat: true,
            relaxer_date: Date::new(2026, 11, 30),
        };
        let counters = Counters {
            sessions_total: 3,
            massage_seconds_total: 540,
        };
        let state = SavedState::new(&settings, counters);
        assert_eq!(state.settings(), settings);
        assert_eq!(state.counters(), counters);
    }
}
