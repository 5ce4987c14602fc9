//! Saved settings and counters: a small JSON file written atomically, plus a save debouncer.
//!
//! Beside `state.json` the store keeps `state.json.bak`, the previous good file, and falls back
//! to it when `state.json` cannot be read or parsed (the broken file is kept as
//! `state.json.bad`). When neither is usable the relaxer date is unknown: [`Store::load`] says
//! so with [`LoadOutcome::RelaxerDateLost`] and sets [`SavedState::relaxer_date_lost`], which is
//! saved with the state, so the relaxer guard stays active (a start needs `force`) across
//! restarts until the user sets the relaxer date again.

use crate::core::{Counters, Date, Settings};
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Version of the file format written by this build.
pub(crate) const FORMAT_VERSION: u32 = 1;

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
    /// The relaxer date was lost with an unreadable file and not set since: the guard must be
    /// treated as active until it is (written only while true).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub relaxer_date_lost: bool,
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
            relaxer_date_lost: false,
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
            relaxer_date_lost: false,
        }
    }

    /// This state with [`SavedState::relaxer_date_lost`] set to `lost`: the caller keeps it
    /// true from a [`LoadOutcome::RelaxerDateLost`] until a relaxer date (or an explicit
    /// empty one) is set.
    pub fn with_relaxer_date_lost(mut self, lost: bool) -> SavedState {
        self.relaxer_date_lost = lost;
        self
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

    pub(crate) fn serialize<S: Serializer>(date: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
        match date {
            Some(date) => s.collect_str(date),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
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
    pub(crate) path: PathBuf,
    /// The step that failed.
    pub(crate) action: &'static str,
    /// The operating system's error.
    pub source: std::io::Error,
}

/// What was wrong with the state file, and what happened to it.
#[derive(Debug, thiserror::Error)]
pub enum LoadWarning {
    /// The file was not valid; it was renamed so that it can be inspected.
    #[error("{path} was unreadable ({problem}); moved it to {moved_to}")]
    MovedAside {
        /// The state file.
        path: PathBuf,
        /// Where it is now.
        moved_to: PathBuf,
        /// What was wrong.
        problem: String,
    },
    /// The file was not valid and could not be renamed either.
    #[error("{path} was unreadable ({problem}) and could not be moved aside ({source})")]
    Unusable {
        /// The state file.
        path: PathBuf,
        /// What was wrong.
        problem: String,
        /// Why renaming failed.
        source: std::io::Error,
    },
}

/// How [`Store::load`] came by the state it returns.
#[derive(Debug)]
pub enum LoadOutcome {
    /// No state file (first start): defaults.
    Fresh,
    /// The state file was read.
    Loaded,
    /// The state file was unusable; the last good copy (`.bak`) was read instead.
    FromBackup {
        /// What was wrong with the state file (`None`: it was missing).
        warning: Option<LoadWarning>,
        /// The copy that was read.
        backup: PathBuf,
    },
    /// Neither the file nor a backup was usable: defaults, and the relaxer date is unknown, so
    /// the guard must be active (the state has [`SavedState::relaxer_date_lost`] set).
    RelaxerDateLost {
        /// What was wrong with the state file (`None`: only a broken backup was found).
        warning: Option<LoadWarning>,
    },
}

impl std::fmt::Display for LoadOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadOutcome::Fresh => f.write_str("no saved state yet; using defaults"),
            LoadOutcome::Loaded => f.write_str("saved state loaded"),
            LoadOutcome::FromBackup { warning, backup } => {
                match warning {
                    Some(warning) => write!(f, "{warning}")?,
                    None => f.write_str("the state file is missing")?,
                }
                write!(f, "; using the last good copy {}", backup.display())
            }
            LoadOutcome::RelaxerDateLost { warning } => {
                if let Some(warning) = warning {
                    write!(f, "{warning}; ")?;
                }
                f.write_str(
                    "no usable backup either: started from defaults, and the relaxer date is lost, \
                     so the relaxer guard stays active (start needs force) until it is set again",
                )
            }
        }
    }
}

/// The state [`Store::load`] read and how it got it.
#[derive(Debug)]
pub struct Loaded {
    /// The state to start from.
    pub state: SavedState,
    /// Where it came from; anything but `Fresh`/`Loaded` deserves a warning.
    pub outcome: LoadOutcome,
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

    /// The last good file, `<name>.bak`.
    pub fn backup_path(&self) -> PathBuf {
        sibling(&self.path, ".bak")
    }

    /// Reads the saved state: defaults when there is no file (nor backup); a broken file is
    /// moved to `<name>.bad` and the backup is read instead; when that fails too, defaults
    /// with the relaxer date marked lost. Never fails: every problem is in the outcome.
    pub fn load(&self) -> Loaded {
        let problem = match read_state(&self.path) {
            Read::Good(state) => {
                return Loaded {
                    state,
                    outcome: LoadOutcome::Loaded,
                };
            }
            Read::Missing => None,
            Read::Broken(problem) => Some(problem),
        };
        let warning = problem.map(|problem| {
            let moved_to = sibling(&self.path, ".bad");
            match fs::rename(&self.path, &moved_to) {
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
            }
        });
        let backup = self.backup_path();
        let lost = |warning| Loaded {
            state: SavedState::default().with_relaxer_date_lost(true),
            outcome: LoadOutcome::RelaxerDateLost { warning },
        };
        match (read_state(&backup), warning) {
            (Read::Good(state), Some(warning)) => Loaded {
                state,
                outcome: LoadOutcome::FromBackup {
                    warning: Some(warning),
                    backup,
                },
            },
            // The file is gone but a backup is there: a crash between two renames of a save
            // cannot cause this (the backup is a link made before), so something removed it.
            (Read::Good(state), None) => Loaded {
                state,
                outcome: LoadOutcome::FromBackup {
                    warning: None,
                    backup,
                },
            },
            (Read::Missing, None) => Loaded {
                state: SavedState::default(),
                outcome: LoadOutcome::Fresh,
            },
            (_, warning) => lost(warning),
        }
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
        self.keep_backup();
        fs::rename(&temp, &self.path).map_err(err(&self.path, "renaming the temporary file"))?;
        // The rename is durable only once the directory entry is on disk.
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(err(&dir, "syncing the directory"))?;
        Ok(())
    }
}

impl Store {
    /// Makes the current file the backup before it is replaced: a hard link (no copy, no
    /// window without a good file), atomically renamed over the old backup. Best effort: a
    /// failure only loses the backup, never the save.
    fn keep_backup(&self) {
        if read_state(&self.path).good().is_none() {
            return;
        }
        let staged = sibling(&self.path, ".bak.tmp");
        let _ = fs::remove_file(&staged);
        let linked =
            fs::hard_link(&self.path, &staged).or_else(|_| fs::copy(&self.path, &staged).map(drop));
        if let Err(error) = linked.and_then(|()| fs::rename(&staged, self.backup_path())) {
            tracing::warn!(path = %self.path.display(), %error, "could not keep the last good state file");
        }
    }
}

/// The result of reading one state file.
enum Read {
    Good(SavedState),
    Missing,
    Broken(String),
}

impl Read {
    fn good(self) -> Option<SavedState> {
        match self {
            Read::Good(state) => Some(state),
            _ => None,
        }
    }
}

fn read_state(path: &Path) -> Read {
    match fs::read(path) {
        Ok(bytes) => match parse(&bytes) {
            Ok(state) => Read::Good(state),
            Err(problem) => Read::Broken(problem),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Read::Missing,
        Err(e) => Read::Broken(format!("read failed: {e}")),
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

#[cfg(test)]
mod tests {
    use super::*;

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
