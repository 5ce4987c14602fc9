//! Configuration errors that name the key and, where known, where its value came from.

use std::fmt;
use std::path::PathBuf;

/// Where a faulty value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A position in the file, both 1-based; the column counts characters.
    File {
        /// Line number.
        line: usize,
        /// Column number.
        column: usize,
    },
    /// An environment variable, by name.
    Env(String),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File { line, column } => write!(f, "line {line}, column {column}"),
            Location::Env(name) => write!(f, "environment {name}"),
        }
    }
}

/// One problem in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigIssue {
    /// Dotted key such as `mqtt.keep_alive_s` or `routines[2].steps[0].seconds`; `None` for
    /// syntax and file errors.
    pub key: Option<String>,
    /// Where the value came from, when known.
    pub location: Option<Location>,
    /// What is wrong.
    pub message: String,
}

impl ConfigIssue {
    /// An issue about one key, not yet located.
    pub(crate) fn at_key(key: impl Into<String>, message: impl Into<String>) -> ConfigIssue {
        ConfigIssue {
            key: Some(key.into()),
            location: None,
            message: message.into(),
        }
    }

    /// An issue about the file as a whole (unreadable, syntax).
    pub(crate) fn general(message: impl Into<String>, location: Option<Location>) -> ConfigIssue {
        ConfigIssue {
            key: None,
            location,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.key, &self.location) {
            (Some(key), Some(location)) => write!(f, "{key} ({location}): {}", self.message),
            (Some(key), None) => write!(f, "{key}: {}", self.message),
            (None, Some(location)) => write!(f, "{location}: {}", self.message),
            (None, None) => f.write_str(&self.message),
        }
    }
}

/// Every problem found in one configuration; never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors {
    /// The file the configuration came from, if any.
    pub file: Option<PathBuf>,
    /// The problems, in file order where known.
    pub issues: Vec<ConfigIssue>,
}

impl ConfigErrors {
    /// Wraps issues that have no file yet.
    pub fn new(issues: Vec<ConfigIssue>) -> ConfigErrors {
        ConfigErrors { file: None, issues }
    }

    /// Records which file the issues are about.
    pub(crate) fn in_file(mut self, file: Option<PathBuf>) -> ConfigErrors {
        self.file = file;
        self
    }

    #[cfg(test)]
    /// True when some issue is about `key` exactly.
    pub(crate) fn mentions(&self, key: &str) -> bool {
        self.issues.iter().any(|i| i.key.as_deref() == Some(key))
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.issues.len();
        let noun = if count == 1 { "error" } else { "errors" };
        match &self.file {
            Some(file) => write!(f, "{count} configuration {noun} in {}", file.display())?,
            None => write!(f, "{count} configuration {noun}")?,
        }
        for issue in &self.issues {
            write!(f, "\n  {issue}")?;
        }
        Ok(())
    }
}
