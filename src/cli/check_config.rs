//! `massaged check-config`: the report of a good file on stdout, every bad key on stderr.

use super::emit;
use anyhow::Result;
use std::path::Path;
use std::process::ExitCode;

/// Checks `path` (default: the usual configuration file); exits non-zero when it is bad.
pub(crate) fn check_config(path: Option<&Path>) -> Result<ExitCode> {
    match massaged::config::check_config(path) {
        Ok(report) => {
            emit(&format!("{report}\n"))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprintln!("{errors}");
            Ok(ExitCode::FAILURE)
        }
    }
}
