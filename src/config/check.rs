//! `massaged check-config`: load and validate a configuration, summarise it.

use super::error::ConfigErrors;
use super::load::config_path;
use super::sections::{Config, DriverKind};
use super::warnings::{ConfigWarning, config_warnings};
use crate::mqtt::url::redact_url;
use std::fmt;
use std::path::{Path, PathBuf};

/// What a valid configuration amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// The file that was read; `None` means built-in defaults.
    pub file: Option<PathBuf>,
    /// The device id topics and unique ids use.
    pub device_id: String,
    /// The output backend.
    pub driver: DriverKind,
    /// The broker URL with any password hidden.
    pub broker: String,
    /// Routines in the library (built-in and user).
    pub routines: usize,
    /// Of those, the user's own.
    pub user_routines: usize,
    /// Things that work but deserve attention (clear-text password, readable secrets).
    pub warnings: Vec<ConfigWarning>,
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => writeln!(f, "configuration {} is valid", file.display())?,
            None => writeln!(f, "no configuration file; built-in defaults are valid")?,
        }
        writeln!(f, "  device id: {}", self.device_id)?;
        writeln!(f, "  driver:    {}", driver_name(self.driver))?;
        writeln!(f, "  broker:    {}", self.broker)?;
        write!(
            f,
            "  routines:  {} ({} built-in, {} user)",
            self.routines,
            self.routines - self.user_routines,
            self.user_routines
        )?;
        for warning in &self.warnings {
            write!(f, "\nwarning: {warning}")?;
        }
        Ok(())
    }
}

fn driver_name(kind: DriverKind) -> &'static str {
    match kind {
        DriverKind::Sim => "sim",
        DriverKind::Pwm => "pwm",
        DriverKind::Serial => "serial",
    }
}

/// Loads `path` (or the default location) with the process environment's overrides, exactly as
/// the daemon would, and summarises it; the error lists every problem with key and line.
pub fn check_config(path: Option<&Path>) -> Result<CheckReport, ConfigErrors> {
    let env = super::load::process_env()?;
    check_config_with_env(path, &env)
}

/// [`check_config`] with an explicit environment.
pub fn check_config_with_env(
    path: Option<&Path>,
    env: &[(String, String)],
) -> Result<CheckReport, ConfigErrors> {
    let file = config_path(path);
    let config = Config::load_with_env(file.as_deref(), env)?;
    let in_file = |errors: ConfigErrors| errors.in_file(file.clone());
    let routines = config.routine_library().map_err(in_file)?;
    config.engine_config().map_err(in_file)?;
    let warnings = config_warnings(&config, file.as_deref());
    Ok(CheckReport {
        file,
        device_id: config.device_id(),
        driver: config.driver.kind,
        broker: redact_url(&config.mqtt.url),
        routines: routines.len(),
        user_routines: config.routines.len(),
        warnings,
    })
}
